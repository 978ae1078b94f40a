"""The SR-FER study as benchmark presets (``ablation``, ``stages``, ``weights``, ``joint``), cells = variant x seed.

Every cell is one of the demo's SR trainings (:func:`srfer_plugin.studies.synthetic.sr_options`: synthetic faces,
RCAN x4, the demo's classifier, batch 8, 1,000 iterations) with one variant of the SR-FER losses, seeded by
``manual_seed``. Trainings are named by what they train (``bench_study_<losses>[_it<N>]_seed<k>``), so a variant
that two presets share (plain SR, the demo's SR-FER, attention on every stage) trains once per seed and iteration
count; cells (``bench_<preset>_<variant>[_it<N>]_seed<k>``) are evaluated per preset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from srfer_plugin.studies import synthetic
from srfer_plugin.studies.benchmark_cells import Cell, Classifier, fer_network_options
from srfer_plugin.studies.runner import network_path
from srfer_plugin.studies.study_variants import (
    ALL_STAGES,
    BACKBONE,
    SCALE,
    STUDY_ITERS,
    STUDY_PRESETS,
    STUDY_SEEDS,
    Variant,
)


def is_study(preset: str) -> bool:
    """Whether ``preset`` is a study preset (else a matrix preset: ``paper``, ``cpu-small``)."""
    return preset in STUDY_PRESETS


def data_preset(preset: str) -> str:
    """The matrix preset whose data and classifier a preset uses: ``cpu-small`` (the demo's) for a study preset."""
    return 'cpu-small' if is_study(preset) else preset


def run_seeds(preset: str, seeds: int | None = None, seed_list: list[int] | None = None) -> list[int]:
    """The seeds of a run: ``--seeds N`` (0 to N-1) or ``--seed-list`` (repeats dropped).

    Args:
        preset: The preset (default seeds: :data:`STUDY_SEEDS` for a study, seed 0 alone for a matrix preset).
        seeds: ``--seeds``.
        seed_list: ``--seed-list``.

    Returns:
        The seeds, in order.

    Raises:
        ValueError: Both given, fewer than one seed, or a negative seed.
    """
    if seeds is not None and seed_list is not None:
        raise ValueError('give --seeds or --seed-list, not both')
    if seed_list is None:
        count = seeds if seeds is not None else (STUDY_SEEDS if is_study(preset) else 1)
        if count < 1:
            raise ValueError(f'--seeds must be >= 1, got {count}')
        seed_list = list(range(count))
    if not seed_list or min(seed_list) < 0:
        raise ValueError(f'--seed-list needs seeds >= 0, got {seed_list}')
    return list(dict.fromkeys(int(s) for s in seed_list))


def iters_suffix(iters: int | None) -> str:
    """``_it<N>`` in study names when ``iters`` is not the default :data:`STUDY_ITERS`, else empty."""
    return f'_it{iters}' if iters and iters != STUDY_ITERS else ''


def select_variants(preset: str, names: list[str] | tuple[str, ...] | None = None) -> tuple[Variant, ...]:
    """The variants of a study preset to run: all, or those named (plus the variants they start from, ``init``).

    Args:
        preset: A key of :data:`STUDY_PRESETS`.
        names: Variant names (``--variants``), or None for all.

    Returns:
        The variants, in the preset's training order.

    Raises:
        ValueError: A name that is not a variant of the preset.
    """
    variants = STUDY_PRESETS[preset].variants
    if not names:
        return variants
    known = [v.name for v in variants]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f'--variants: {unknown} not in the variants of --preset {preset}: {known}')
    preset_of = STUDY_PRESETS[preset]
    wanted, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend([preset_of.variant(name).init] if preset_of.variant(name).init else [])
    return tuple(v for v in variants if v.name in wanted)


def check_study_classifiers(
    preset: str,
    classifiers: Sequence[Classifier],
    variants: list[str] | tuple[str, ...] | None = None,
    train_faces: int | None = None,
) -> None:
    """Refuse classifiers that a study preset's variants cannot run with, before anything trains.

    Args:
        preset: A key of :data:`STUDY_PRESETS`.
        classifiers: The ``--fer`` classifiers.
        variants: ``--variants`` (None: all).
        train_faces: ``--train-faces``.

    Raises:
        ValueError: ``--train-faces`` with another classifier than the demo's (it pre-trains that one on the smaller
            set), or a variant that picks the demo classifier's taps by index (one stage, stage weights)
            with another classifier.
    """
    if train_faces is not None and any(not c.own or c.input_size for c in classifiers):
        raise ValueError("--train-faces pre-trains the demo's classifier on the smaller set: drop the other --fer")
    tapped = [v.name for v in select_variants(preset, variants) if v.stages != ALL_STAGES or v.stage_weights]
    others = [c.label for c in classifiers if not c.own]
    if tapped and others:
        raise ValueError(
            f"--preset {preset}: variants {tapped} pick the demo classifier's taps by index, which {others} do "
            "not have; run them with the demo's classifier, or choose other --variants"
        )


def plan_study_cells(
    preset: str,
    classifiers: Sequence[Classifier],
    seeds: list[int] | tuple[int, ...],
    iters: int | None = None,
    variants: list[str] | tuple[str, ...] | None = None,
    train_faces: int | None = None,
) -> list[Cell]:
    """Every cell of a study preset, seed by seed and classifier by classifier, each in the preset's variant order.

    Args:
        preset: A key of :data:`STUDY_PRESETS`.
        classifiers: The classifiers (with their weights): the demo's (the names of earlier runs) and any others
            (``--fer``), whose cell and training names end in their tag. A training that needs no classifier
            (plain SR and its GAN fine-tuning) is shared by all of them.
        seeds: ``manual_seed`` of the trainings.
        iters: ``train.total_iter`` (None: :data:`STUDY_ITERS`).
        variants: Names of the variants to run (:func:`select_variants`); None: all.
        train_faces: A smaller training set (``--train-faces``): ``_train<N>`` in the cell and training names.

    Returns:
        The cells; a cell that starts from another variant's network (``init``: ``plain_finetuned``, the GAN
        methods) comes after that variant's cell of its seed and classifier (``init_from``). The ``bicubic`` cell
        trains nothing (``train_name`` empty).
    """
    check_study_classifiers(preset, classifiers, variants, train_faces)
    study = STUDY_PRESETS[preset]
    cells: list[Cell] = []
    chosen = select_variants(preset, variants)
    for seed in seeds:
        end = f'{iters_suffix(iters)}{synthetic.train_faces_suffix(train_faces)}_seed{seed}'
        for fer in classifiers:
            tag = f'_{fer.tag}' if fer.tag else ''
            for v in chosen:
                init_from = _training_name(study.variant(v.init), tag, end) if v.init else None
                if init_from and init_from not in {c.train_name for c in cells}:
                    raise ValueError(f'{preset}: {v.name} needs the {v.init} cell of seed {seed} before it')
                train_name = _training_name(v, tag, end) if v.trains else ''
                cells.append(
                    Cell(f'bench_{preset}_{v.name}{tag}{end}', train_name, BACKBONE, SCALE, v.name, fer, seed,
                         v.classifier, init_from)
                )  # fmt: skip
    return cells


def _training_name(variant: Variant, tag: str, end: str) -> str:
    """``bench_study_<key>[_<classifier tag>]<end>``: the tag only where the training uses the classifier."""
    return f'bench_study_{variant.key()}{tag if variant.uses_classifier else ""}{end}'


def study_options(cell: Cell, preset: str, iters: int | None, data_root: str, exp_root: str) -> dict[str, Any]:
    """The training options of a study cell (named ``cell.train_name``, seeded ``cell.seed``).

    Args:
        cell: A cell of :func:`plan_study_cells`.
        preset: Its study preset.
        iters: ``train.total_iter`` (None: :data:`STUDY_ITERS`).
        data_root: The synthetic faces.
        exp_root: Folder of ``experiments/`` (where ``init_from``'s network is).

    Returns:
        The option dict, with absolute paths (trainings run in ``exp_root``); for the ``bicubic`` cell, only its
        ``network_g`` (:class:`~srfer_plugin.archs.bicubic_arch.BicubicUpsampler`).
    """
    v = STUDY_PRESETS[preset].variant(cell.method)
    if not v.trains:
        return {'network_g': {'type': 'BicubicUpsampler', 'upscale': SCALE}, 'train': {'total_iter': 0}}
    init = network_path(exp_root, cell.init_from) if cell.init_from else None
    opt = synthetic.sr_options(
        v.method,
        data_root,
        cell.fer.checkpoint,
        max(1, round((iters or STUDY_ITERS) * v.iters_share)),
        cell.seed,
        preset,
        v.losses(),
        list(v.stages),
        init,
        v.degradation,
    )
    opt['name'] = cell.train_name
    v.apply_joint(opt)
    consistency_weights = v.consistency_weights(opt['train']['total_iter'])
    if consistency_weights:
        opt['train']['consistency_weights'] = consistency_weights
    if v.fer_batch_size is not None:
        opt['train']['fer_batch_size'] = v.fer_batch_size
    if 'network_fer' in opt:
        opt['network_fer'] = fer_network_options(opt['network_fer'], cell.fer)
    return opt


def descriptions(preset: str) -> dict[str, str]:
    """``{variant name: what it trains}`` of a study preset, for the report."""
    return {v.name: v.describe() for v in STUDY_PRESETS[preset].variants}
