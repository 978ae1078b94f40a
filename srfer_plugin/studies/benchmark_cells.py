"""The benchmark's classifiers (``--fer`` entries) and cells (seed x classifier x backbone x scale x method).

Plain SR does not depend on the classifier: a plain cell is trained once per seed, backbone and scale and evaluated
by every classifier. The preset's own classifier keeps the cell names of a run without ``--fer``; the others add a tag
(the config stem, ``_in<SIZE>`` with ``@SIZE``) to the names of their cells. Seed :data:`MATRIX_SEED` (the seed of
every run before seeds existed) keeps those names; other seeds add ``_seed<k>``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from typing import Any

from srfer_plugin.archs.mmpretrain_config import resolve_config_file
from srfer_plugin.studies.benchmark_options import (
    METHODS,
    cell_name,
    default_fer_config,
    make_options,
    template,
)

SIZE_RE = re.compile(r'(\d+)(?:x(\d+))?')  # @SIZE of a --fer entry: N or HxW
MATRIX_SEED = 0  # manual_seed of both templates: the matrix presets' cells of this seed keep their old names


@dataclasses.dataclass(frozen=True)
class Classifier:
    """One FER classifier of the benchmark (a ``--fer`` entry).

    Attributes:
        config: Absolute path of the mmpretrain config.
        checkpoint: Weights (None until ``benchmark.prepare_data_and_classifiers`` provides them).
        input_size: ``network_fer.input_size`` (``N`` or ``(h, w)``), or None to feed the faces as they are.
        label: Its name in the tables: the config stem, with ``@SIZE``.
        tag: Suffix of its cell names; empty for the preset's own classifier with its own weights (the names of a
            run without --fer); weights given explicitly add ``_w<digest>`` of the file, so other weights never
            reuse trainings guided by these.
        own: Whether ``config`` is the preset's own classifier config (whose ``network_fer.stages`` are kept).
    """

    config: str
    checkpoint: str | None = None
    input_size: int | tuple[int, int] | None = None
    label: str = ''
    tag: str = ''
    own: bool = True


@dataclasses.dataclass(frozen=True)
class Cell:
    """One benchmark row: a classifier, a backbone, a scale, a method and a seed.

    Attributes:
        name: Folder ``cells/<name>/`` of its evaluation and ``result.json``.
        train_name: BasicSR experiment of its ``network_g`` (plain cells share one across classifiers).
        backbone: One of ``benchmark_options.BACKBONES``.
        scale: Upscale factor.
        method: ``plain`` or ``srfer``; in a study preset, the variant (``none``, ``both``, ...).
        fer: The classifier that evaluates it (and trains it, for SR-FER).
        seed: ``manual_seed`` of its training.
        classifier: ``frozen`` (evaluated by ``fer``) or ``adapted`` (by the classifier its training fine-tuned,
            ``experiments/<train_name>/models/net_fer_latest.pth``).
        init_from: Training whose ``network_g`` this one starts from (trained earlier in the run), or None.
    """

    name: str
    train_name: str
    backbone: str
    scale: int
    method: str
    fer: Classifier
    seed: int = MATRIX_SEED
    classifier: str = 'frozen'
    init_from: str | None = None


def parse_fer_entry(entry: str) -> tuple[str, str | None, int | tuple[int, int] | None]:
    """Split a ``--fer`` entry ``CONFIG[=CHECKPOINT][@SIZE]``.

    ``@`` starts the size only when what follows the last ``@`` is ``N`` or ``HxW``; ``=`` is the first one.

    Args:
        entry: The entry.

    Returns:
        ``(config, checkpoint or None, input_size or None)``.

    Raises:
        ValueError: A malformed entry or a size below 1.
    """
    text, input_size = entry, None
    rest, at, size = entry.rpartition('@')
    match = SIZE_RE.fullmatch(size) if at else None
    if match:
        height, width = int(match.group(1)), int(match.group(2) or match.group(1))
        if min(height, width) < 1:
            raise ValueError(f'--fer {entry!r}: the input size must be positive')
        input_size = height if match.group(2) is None else (height, width)
        text = rest
    config, equals, checkpoint = text.partition('=')
    if not config or (equals and not checkpoint):
        raise ValueError(f'--fer {entry!r}: expected CONFIG[=CHECKPOINT][@SIZE]')
    return config, checkpoint or None, input_size


def size_text(input_size: int | tuple[int, int]) -> str:
    """``N`` or ``HxW``: an input size as ``--fer`` entries and the tables write it."""
    return str(input_size) if isinstance(input_size, int) else 'x'.join(map(str, input_size))


def resolve_classifiers(preset: str, entries: list[str] | None, fer_checkpoint: str | None) -> list[Classifier]:
    """The classifiers of a run, with their configs (and any explicit checkpoints) checked.

    Args:
        preset: ``paper`` or ``cpu-small``.
        entries: ``--fer`` entries (None: the preset's own classifier).
        fer_checkpoint: ``--fer-checkpoint``: the weights of the only classifier.

    Returns:
        One :class:`Classifier` per entry; ``checkpoint`` is None where the preset provides it later.

    Raises:
        FileNotFoundError: A config or an explicit checkpoint does not exist.
        ValueError: Malformed or repeated entries, or weights missing where they must be given.
    """
    own_config = os.path.abspath(default_fer_config(preset))
    parsed = [parse_fer_entry(e) for e in entries] if entries else [(own_config, None, None)]
    if fer_checkpoint:
        if len(parsed) > 1:
            raise ValueError('--fer-checkpoint is for a single classifier; give several as --fer CONFIG=CHECKPOINT')
        if parsed[0][1]:
            raise ValueError('give the classifier weights once: --fer CONFIG=CHECKPOINT or --fer-checkpoint')
        parsed = [(parsed[0][0], fer_checkpoint, parsed[0][2])]
    classifiers: list[Classifier] = []
    for config, checkpoint, input_size in parsed:
        path = resolve_config_file(config, '--fer')
        if checkpoint and not os.path.isfile(checkpoint):
            raise FileNotFoundError(f'--fer: checkpoint {checkpoint!r} of {config!r} does not exist')
        path = os.path.abspath(path)
        own = os.path.realpath(path) == os.path.realpath(own_config)
        stem = os.path.splitext(os.path.basename(path))[0]
        size = f'_in{size_text(input_size)}' if input_size else ''
        label = stem + (f'@{size_text(input_size)}' if input_size else '')
        weights = f'_w{weights_digest(checkpoint)}' if checkpoint else ''
        tag = '' if own and not input_size and not weights else re.sub(r'[^0-9A-Za-z]+', '_', stem) + size + weights
        if any(label == c.label or tag == c.tag for c in classifiers):
            raise ValueError(f'--fer: classifier {label} is given twice (config stems and sizes must differ)')
        if checkpoint is None and preset == 'paper':
            if not own:
                raise ValueError(f'--fer {config!r}: the paper preset trains no classifier; give CONFIG=CHECKPOINT')
            checkpoint = template(preset, 'srfer', None, None, None)['network_fer']['checkpoint']
        checkpoint = os.path.abspath(checkpoint) if checkpoint else None
        classifiers.append(Classifier(path, checkpoint, input_size, label, tag, own))
    return classifiers


def weights_digest(path: str, length: int = 8) -> str:
    """The first ``length`` hex digits of the SHA-256 of the file at ``path`` (names the weights in cell names)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()[:length]


def seed_suffix(seed: int) -> str:
    """``_seed<k>`` for a matrix-preset cell name; empty for :data:`MATRIX_SEED` (the names before seeds)."""
    return '' if seed == MATRIX_SEED else f'_seed{seed}'


def plan_cells(
    preset: str,
    classifiers: list[Classifier],
    backbones: list[str] | tuple[str, ...],
    scales: list[int] | tuple[int, ...],
    methods: list[str] | tuple[str, ...] = METHODS,
    seeds: list[int] | tuple[int, ...] = (MATRIX_SEED,),
) -> list[Cell]:
    """Every row of a run, seed by seed and classifier by classifier, in the order they run.

    SR-FER cells train one network per classifier; plain cells of a seed, backbone and scale share one training
    (the plain cell name of the preset's own classifier) and get one evaluation per classifier.

    Args:
        preset: ``paper`` or ``cpu-small``.
        classifiers: The classifiers of the run.
        backbones: Backbones of the matrix.
        scales: Scales of the matrix.
        methods: ``plain`` and/or ``srfer``.
        seeds: ``manual_seed`` of the trainings, one matrix per seed.

    Returns:
        The cells.
    """
    cells = []
    for seed in seeds:
        for fer in classifiers:
            for backbone in backbones:
                for scale in scales:
                    for method in methods:
                        name = cell_name(preset, backbone, scale, method, fer.tag) + seed_suffix(seed)
                        train_name = cell_name(preset, backbone, scale, method) + seed_suffix(seed)
                        cells.append(
                            Cell(
                                name, train_name if method == 'plain' else name, backbone, int(scale), method, fer, seed
                            )
                        )
    return cells


def fer_network_options(network_fer: dict[str, Any], fer: Classifier) -> dict[str, Any]:
    """A ``network_fer`` section with ``fer``'s config, checkpoint and input size.

    The preset's own classifier keeps the section's ``stages``; other configs get MMPretrainFER's default.

    Args:
        network_fer: The template's section (not modified).
        fer: The classifier.

    Returns:
        A new section.
    """
    section = dict(network_fer, config=fer.config, checkpoint=fer.checkpoint)
    if fer.input_size is not None:
        section['input_size'] = fer.input_size if isinstance(fer.input_size, int) else list(fer.input_size)
    if not fer.own:
        section.pop('stages', None)
    return section


def cell_options(cell: Cell, preset: str, iters: int | None, data_root: str | None) -> dict[str, Any]:
    """The training options of a matrix cell's ``network_g`` (named ``cell.train_name``, seeded ``cell.seed``).

    Args:
        cell: The cell.
        preset: ``paper`` or ``cpu-small``.
        iters: ``train.total_iter`` (default: the preset's).
        data_root: Dataset root (default: the template's).

    Returns:
        The option dict, with absolute classifier paths (trainings run in another folder).
    """
    opt = make_options(cell.backbone, cell.scale, cell.method, preset, iters, data_root, cell.fer.checkpoint)
    opt['name'] = cell.train_name
    opt['manual_seed'] = cell.seed
    if 'network_fer' in opt:
        opt['network_fer'] = fer_network_options(opt['network_fer'], cell.fer)
    return opt
