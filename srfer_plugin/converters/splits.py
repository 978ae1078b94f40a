"""Split specs (``--split``) and the assignment of samples to splits: official, subject, random or all."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from srfer_plugin.converters.records import SPLIT_NAMES, PrepareError, Sample

_SPLIT_NAME = re.compile(r'[A-Za-z0-9_]+')
_SUM_TOLERANCE = 1e-6  # --split fractions must sum to 1 within this
T = TypeVar('T')


@dataclass
class SplitSpec:
    """How samples are assigned to splits.

    Attributes:
        mode: ``official`` (the dataset's own split), ``subject`` (subject-independent, seeded),
            ``random`` (stratified per class, seeded) or ``all`` (every sample in one split).
        ratios: ``(split_name, fraction)`` pairs for ``subject``/``random``; ``((name, 1.0),)`` for ``all``.
    """

    mode: str
    ratios: tuple[tuple[str, float], ...] = ()


def parse_split_spec(spec: str) -> SplitSpec:
    """Parse ``--split``.

    Syntax: ``official``; ``all:<split>`` (e.g. ``all:test``); ``subject:<fractions>`` or ``random:<fractions>``
    where fractions are ``0.8,0.1,0.1`` (train,val,test), ``0.9,0.1`` (train,test) or named
    ``train=0.7,val=0.3``. Fractions must be >= 0 and sum to 1 (within ``1e-6``): ``0.1,0.1`` is an error, not
    a 50/50 split.

    Args:
        spec: The ``--split`` value.

    Returns:
        The parsed spec.

    Raises:
        PrepareError: The spec does not follow the syntax, or its fractions do not sum to 1.
    """
    mode, _, rest = spec.strip().partition(':')
    mode = mode.lower()
    if mode == 'official' and not rest:
        return SplitSpec('official')
    if mode == 'all':
        name = rest.strip() or 'train'
        if not _SPLIT_NAME.fullmatch(name):
            raise PrepareError(f'--split {spec!r}: bad split name {name!r}')
        return SplitSpec('all', ((name, 1.0),))
    if mode not in ('subject', 'random') or not rest:
        raise PrepareError(
            f'--split {spec!r}: expected official, all:<split>, subject:<fractions> or '
            f'random:<fractions> (e.g. subject:0.8,0.1,0.1)'
        )
    parts = [p.strip() for p in rest.split(',') if p.strip()]
    named = all('=' in p for p in parts)
    if not named and any('=' in p for p in parts):
        raise PrepareError(f'--split {spec!r}: name all fractions or none')
    if named:
        pairs = [tuple(p.split('=', 1)) for p in parts]
    elif len(parts) == 3:
        pairs = list(zip(SPLIT_NAMES, parts))
    elif len(parts) == 2:
        pairs = list(zip(('train', 'test'), parts))
    else:
        raise PrepareError(f'--split {spec!r}: give 2 (train,test) or 3 (train,val,test) fractions')
    try:
        ratios = [(name.strip(), float(v)) for name, v in pairs]
    except ValueError:
        raise PrepareError(f'--split {spec!r}: fractions must be numbers') from None
    names = [n for n, _ in ratios]
    bad_names = len(set(names)) != len(names) or not all(_SPLIT_NAME.fullmatch(n) for n in names)
    if bad_names or any(v < 0 for _, v in ratios):
        raise PrepareError(f'--split {spec!r}: fractions must be >= 0, with distinct split names')
    total = sum(v for _, v in ratios)
    if not abs(total - 1.0) <= _SUM_TOLERANCE:
        hint, scaled = '', [float(f'{v / total:.4g}') for _, v in ratios] if total > 0 else []
        if scaled and abs(sum(scaled) - 1.0) <= _SUM_TOLERANCE:  # a suggestion that is itself accepted
            shown = [f'{n}={v:g}' if named else f'{v:g}' for (n, _), v in zip(ratios, scaled)]
            hint = f' (e.g. {mode}:{",".join(shown)})'
        raise PrepareError(f'--split {spec!r}: fractions sum to {total:g}, not 1; give fractions that sum to 1{hint}')
    return SplitSpec(mode, tuple((n, v / total) for n, v in ratios))


def split_order(splits: Iterable[str]) -> list[str]:
    """Distinct split names, train/val/test first, then the others alphabetically."""
    known = {n: i for i, n in enumerate(SPLIT_NAMES)}
    return sorted(set(splits), key=lambda s: (known.get(s, len(known)), s))


def _allocate(n: int, ratios: Sequence[float], at_least_one: bool) -> list[int]:
    """Largest-remainder split of ``n`` items by ``ratios``; optionally >= 1 per positive ratio when possible."""
    exact = [n * r for r in ratios]
    counts = [int(x) for x in exact]
    order = sorted(range(len(ratios)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    if at_least_one and n >= sum(r > 0 for r in ratios):
        for i, r in enumerate(ratios):
            if r > 0 and counts[i] == 0:
                donor = max(range(len(counts)), key=lambda j: counts[j])
                counts[donor] -= 1
                counts[i] += 1
    return counts


def _deal(items: Sequence[T], spec: SplitSpec, counts: Sequence[int]) -> list[tuple[str, T]]:
    """``(split, item)`` pairs: the first ``counts[0]`` items go to the first split of ``spec``, and so on."""
    out, start = [], 0
    for (name, _), count in zip(spec.ratios, counts):
        out += [(name, item) for item in items[start : start + count]]
        start += count
    return out


def _by_subject(samples: Sequence[Sample], spec: SplitSpec, rng: random.Random) -> list[tuple[str, Sample]]:
    """Give each split a share of the shuffled subject ids (no subject in two splits)."""
    missing = [s.source for s in samples if s.subject is None]
    if missing:
        raise PrepareError(
            f'--split subject needs subject ids, which this format does not have (e.g. '
            f'{missing[0]!r}); use --split random:... instead'
        )
    subjects = sorted({s.subject for s in samples})
    rng.shuffle(subjects)
    counts = _allocate(len(subjects), [r for _, r in spec.ratios], at_least_one=True)
    split_of = {subject: name for name, subject in _deal(subjects, spec, counts)}
    return [(split_of[s.subject], s) for s in samples]


def _by_class(samples: Sequence[Sample], spec: SplitSpec, rng: random.Random) -> list[tuple[str, Sample]]:
    """Shuffle each class and split it by the fractions (stratified)."""
    by_class: dict[str, list[Sample]] = {}
    for s in samples:
        by_class.setdefault(s.label, []).append(s)
    fractions = [r for _, r in spec.ratios]
    out: list[tuple[str, Sample]] = []
    for label in sorted(by_class):
        group = by_class[label]
        rng.shuffle(group)
        out += _deal(group, spec, _allocate(len(group), fractions, at_least_one=False))
    return out


def assign_splits(samples: Sequence[Sample], spec: SplitSpec, seed: int = 0) -> list[tuple[str, Sample]]:
    """Assign every sample a split.

    Args:
        samples: Samples from a reader.
        spec: ``official`` keeps ``Sample.split``; ``subject`` shuffles the subject ids with ``seed`` and
            gives each split a share of subjects (no subject in two splits); ``random`` shuffles each class
            with ``seed`` and splits it by the fractions (stratified); ``all`` puts everything in one split.
        seed: Seed of the shuffles.

    Returns:
        ``(split, sample)`` pairs, sorted by split order then source order.

    Raises:
        PrepareError: ``official`` without official splits, or ``subject`` without subject ids.
    """
    samples = sorted(samples, key=lambda s: (s.source, s.name))
    if spec.mode == 'official':
        missing = [s.source for s in samples if s.split is None]
        if missing:
            raise PrepareError(
                f'this source has no official split (e.g. {missing[0]!r}); '
                'use --split subject:0.8,0.1,0.1, random:0.8,0.1,0.1 or all:test'
            )
        names, out = SPLIT_NAMES, [(s.split, s) for s in samples]
    elif spec.mode == 'all':
        names, out = (), [(spec.ratios[0][0], s) for s in samples]
    else:
        assign = _by_subject if spec.mode == 'subject' else _by_class
        names = [n for n, _ in spec.ratios]
        out = assign(samples, spec, random.Random(seed))
    order = {n: i for i, n in enumerate(names)}
    return sorted(out, key=lambda p: (order.get(p[0], 0), p[1].label, p[1].name))
