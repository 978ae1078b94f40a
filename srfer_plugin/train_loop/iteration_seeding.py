"""Per-iteration reseeding: the randomness of iteration ``i`` depends on ``(manual_seed, rank, i)`` only.

BasicSR seeds once at start-up, so what an iteration draws (crops, flips, degradations, dropout) depends on
everything that ran before it: validation, a restart. The prefetchers here reseed python, numpy and torch just
before they fetch batch ``i``. A resumed run then draws what the uninterrupted run drew at the same iteration.

How it hooks in: BasicSR builds ``CPUPrefetcher(train_loader)`` / ``CUDAPrefetcher(train_loader, opt)`` by looking
the names up in ``basicsr.train`` when training starts. ``train_loop.patches`` replaces those names, once the options
are parsed, with classes made by :func:`seeded_prefetcher_classes` that close over one :class:`IterationSeeding`
of that run, so no state is shared between runs. The seeding happens in :func:`_fetch_seeded` *before* the
loader's ``next`` (the loader's workers are already running; with ``num_worker_per_gpu: 0`` the batch itself is
drawn in this process, after the reseed, which is what makes CPU resumes bit-exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher

from srfer_plugin.utils.rng import seed_iteration


@dataclass(frozen=True)
class IterationSeeding:
    """How one training run reseeds.

    Attributes:
        seed: ``manual_seed``.
        rank: Process rank.
        start_iter: Iterations already done (the resumed iteration, else 0).
        enabled: ``train.seed_per_iter``.
    """

    seed: int
    rank: int
    start_iter: int
    enabled: bool = True

    @classmethod
    def from_options(cls, opt: dict) -> IterationSeeding:
        """The seeding of a run from its parsed options (``manual_seed``, ``rank``, ``resume_position``)."""
        resume = opt.get('resume_position') or {}
        return cls(
            seed=int(opt.get('manual_seed') or 0),
            rank=int(opt.get('rank', 0)),
            start_iter=int(resume.get('iter', 0)),
            enabled=bool((opt.get('train') or {}).get('seed_per_iter', True)),
        )


def _fetch_seeded(seeding: IterationSeeding, prefetcher: Any, fetch: Callable[[], Any]) -> Any:
    """Reseed for the next batch number, fetch it, and count it when there was one."""
    if seeding.enabled:
        seed_iteration(seeding.seed, seeding.rank, prefetcher.fetched + 1)
    batch = fetch()
    if batch is not None:
        prefetcher.fetched += 1
    return batch


def seeded_prefetcher_classes(seeding: IterationSeeding) -> tuple[type, type]:
    """BasicSR's CPU and CUDA prefetchers, reseeding per batch as ``seeding`` says.

    Args:
        seeding: The run's seeding.

    Returns:
        ``(SeededCPUPrefetcher, SeededCUDAPrefetcher)`` with BasicSR's constructor signatures.
    """

    class SeededCPUPrefetcher(CPUPrefetcher):
        """CPUPrefetcher that reseeds the RNGs from the number of the batch it fetches."""

        def __init__(self, loader: Any) -> None:
            self.fetched = seeding.start_iter
            super().__init__(loader)

        def next(self) -> Any:
            return _fetch_seeded(seeding, self, super().next)

    class SeededCUDAPrefetcher(CUDAPrefetcher):
        """CUDAPrefetcher that reseeds the RNGs from the number of the batch it fetches (in ``preload``)."""

        def __init__(self, loader: Any, opt: dict) -> None:
            self.fetched = seeding.start_iter
            super().__init__(loader, opt)

        def preload(self) -> None:
            def fetch():
                super(SeededCUDAPrefetcher, self).preload()
                return self.batch

            _fetch_seeded(seeding, self, fetch)

    return SeededCPUPrefetcher, SeededCUDAPrefetcher
