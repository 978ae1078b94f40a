"""The SR-FER study as benchmark presets (``ablation``, ``stages``, ``weights``, ``joint``), cells = variant x seed.

Every cell is one of the demo's SR trainings (:func:`srfer_plugin.studies.synthetic.sr_options`: synthetic faces,
RCAN x4, the demo's classifier, batch 8, 1,000 iterations) with one variant of the SR-FER losses, seeded by
``manual_seed``. Trainings are named by what they train (``bench_study_<losses>[_it<N>]_seed<k>``), so a variant
that two presets share (plain SR, the demo's SR-FER, attention on every stage) trains once per seed and iteration
count; cells (``bench_<preset>_<variant>[_it<N>]_seed<k>``) are evaluated per preset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from srfer_plugin.studies import synthetic
from srfer_plugin.studies.benchmark_cells import Cell, Classifier, fer_network_options
from srfer_plugin.studies.runner import network_path

STUDY_ITERS = synthetic.PRESETS['default']['sr_iters']  # the demo's 1,000 iterations
STUDY_SEEDS = 3  # default --seeds of a study preset
ATT = synthetic.DEMO_SRFER_LOSSES['attention_opt']['loss_weight']  # 0.1
PRED = synthetic.DEMO_SRFER_LOSSES['prediction_opt']['loss_weight']  # 0.001
ALL_STAGES = (0, 1, 2, 3)
# Joint-learning settings a variant may override (name part of its trainings), and the demo's values of them.
JOINT_KNOBS = {'sr_grad_weight': 'g', 'fer_frozen_iters': 'w', 'fer_lr': 'lr', 'fer_distill': 'kd'}
# The joint overrides each method takes: plain_finetuned trains the classifier alone, so only its learning rate
JOINT_OVERRIDES = {'srfer_joint': tuple(JOINT_KNOBS), 'plain_finetuned': ('fer_lr',)}
JOINT_DEFAULTS = {
    'sr_grad_weight': synthetic.DEMO_JOINT_LEARNING['joint_opt']['sr_grad_weight'],
    'fer_frozen_iters': synthetic.DEMO_JOINT_LEARNING['joint_opt']['fer_frozen_iters'],
    'fer_lr': synthetic.DEMO_JOINT_LEARNING['optim_fer']['lr'],
    'fer_distill': 0.0,  # no fer_distill_opt
}
BACKBONE, SCALE = 'RCAN', 4  # synthetic.DEMO_NETWORK_G


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of a study preset: a method of ``sr_options`` and its consistency losses.

    Attributes:
        name: Its ``method`` in the tables (``none``, ``both``, ``stage0``, ...).
        method: ``sr_options`` method (``plain_sr``, ``srfer``, ``srfer_joint``, ``plain_finetuned``).
        att: Attention-consistency weight, or None for no attention loss.
        pred: Prediction-consistency weight, or None for no prediction loss.
        stages: ``network_fer.stages`` (the taps the attention loss compares).
        stage_weights: ``attention_opt.stage_weights`` (None: 1 per stage).
        shares: ``att`` and ``pred`` are gradient shares of ``train.consistency_weights`` (rule
            ``gradient_share``), not hand-set weights.
        joint: Overrides of the demo's joint learning (``srfer_joint`` only): any of ``sr_grad_weight`` and
            ``fer_frozen_iters`` (``joint_opt``), ``fer_lr`` (``optim_fer.lr``) and ``fer_distill`` (the weight
            of :data:`~srfer_plugin.studies.synthetic.DEMO_FER_DISTILL`), as ``((key, value), ...)``.
        init: The variant whose trained network this one starts from (``plain_finetuned``, the GAN methods).
        degradation: The training set's degradation scenario.
        iters_share: Its iterations as a share of the preset's (GAN fine-tuning: :data:`GAN_SHARE`).
    """

    name: str
    method: str = 'srfer'
    att: float | None = None
    pred: float | None = None
    stages: tuple[int, ...] = ALL_STAGES
    stage_weights: tuple[float, ...] | None = None
    shares: bool = False
    joint: tuple[tuple[str, float], ...] = ()
    init: str | None = None
    degradation: str = 'bicubic'
    iters_share: float = 1.0

    def __post_init__(self) -> None:
        unknown = [k for k, _ in self.joint if k not in JOINT_OVERRIDES.get(self.method, ())]
        if unknown:
            raise ValueError(
                f'Variant {self.name}: joint overrides {unknown} need method srfer_joint (keys {sorted(JOINT_KNOBS)}) '
                "or plain_finetuned (key 'fer_lr')"
            )

    @property
    def classifier(self) -> str:
        """``adapted`` when the training fine-tunes the classifier (evaluated with it), else ``frozen``."""
        return 'adapted' if self.method in synthetic.JOINT_METHODS else 'frozen'

    @property
    def uses_classifier(self) -> bool:
        """False for plain SR, its GAN fine-tuning and bicubic: their training is the same under every classifier."""
        return self.method not in ('plain_sr', 'esrgan', 'bicubic')

    @property
    def trains(self) -> bool:
        """False for the ``bicubic`` row (interpolation, nothing trained)."""
        return self.method != 'bicubic'

    def key(self) -> str:
        """What it trains, as a name part: ``plain``, ``plain_finetuned``, ``att0.1_pred0.001``, ``att0.1_s0``, ...
        (``_<scenario>`` after it when trained on other degradations than bicubic)."""
        scenario = '' if self.degradation == 'bicubic' else f'_{self.degradation}'
        named = {'plain_sr': 'plain', 'plain_finetuned': 'plain_finetuned', 'esrgan': 'plain_esrgan'}
        if self.method in named:
            return named[self.method] + ''.join(f'_{part}' for part in self._joint_name_parts()) + scenario
        parts = []
        if self.att is not None:
            parts.append(f'att{self.att:g}')
            if self.stages != ALL_STAGES:
                parts.append('s' + ''.join(map(str, self.stages)))
            if self.stage_weights is not None:
                parts.append('sw' + '-'.join(f'{w:g}' for w in self.stage_weights))
        if self.pred is not None:
            parts.append(f'pred{self.pred:g}')
        if self.shares:
            parts.append('gshare')
        if self.method == 'srfer_joint':
            parts.append('joint')
            parts.extend(self._joint_name_parts())
        if self.method == 'srfer_esrgan':
            parts.append('esrgan')
        return '_'.join(parts) + scenario

    def _joint_name_parts(self) -> list[str]:
        """The joint overrides as name parts; a method that trains the classifier always names its learning rate,
        so a training at one rate is never reused as another after the default changes."""
        overrides = dict(self.joint)
        parts = [f'{JOINT_KNOBS[k]}{v:g}' for k, v in self.joint if k != 'fer_lr']
        if self.method in JOINT_OVERRIDES:
            parts.append(f'{JOINT_KNOBS["fer_lr"]}{overrides.get("fer_lr", JOINT_DEFAULTS["fer_lr"]):g}')
        return parts

    def losses(self) -> dict[str, Any]:
        """The ``attention_opt``/``prediction_opt`` sections (the demo's, with this variant's weights; without a
        ``loss_weight`` when the weights come from gradient shares, :meth:`consistency_weights`)."""
        losses: dict[str, Any] = {}
        for key, weight in (('attention_opt', self.att), ('prediction_opt', self.pred)):
            if weight is not None:
                losses[key] = dict(synthetic.DEMO_SRFER_LOSSES[key], loss_weight=weight)
                if self.shares:  # the demo's sections carry a weight; the rule sets it instead
                    del losses[key]['loss_weight']
        if self.stage_weights is not None and 'attention_opt' in losses:
            losses['attention_opt']['stage_weights'] = list(self.stage_weights)
        return losses

    def consistency_weights(self) -> dict[str, Any] | None:
        """``train.consistency_weights`` of a variant with gradient shares, else None."""
        if not self.shares:
            return None
        shares = {term: share for term, share in (('l_att', self.att), ('l_pred', self.pred)) if share is not None}
        return {'rule': 'gradient_share', 'shares': shares}

    def describe(self) -> str:
        """One line for the tables: the losses and what trains (and on what, when not bicubic)."""
        scenario = '' if self.degradation == 'bicubic' else f'; trained on {self.degradation}'
        if self.method == 'bicubic':
            return 'bicubic upsampling (nothing trained)'
        if self.method == 'plain_sr':
            return 'plain SR (L1)' + scenario
        if self.method == 'plain_finetuned':
            lr = dict(JOINT_DEFAULTS, **dict(self.joint))['fer_lr']
            return f"plain SR's network frozen + the classifier fine-tuned on its outputs (CE on SR; lr {lr:g})"
        if self.method == 'esrgan':
            return f'ESRGAN fine-tuning of {self.init} (L1 + relativistic GAN){scenario}'
        parts = []
        share = ' share' if self.shares else ''
        if self.att is not None:
            weights = f' x {list(self.stage_weights)}' if self.stage_weights is not None else ''
            parts.append(f'att{share} {self.att:g} on stages {list(self.stages)}{weights}')
        if self.pred is not None:
            parts.append(f'pred{share} {self.pred:g}')
        if self.shares:
            parts[-1] += ' (weights from gradient shares of l_pix: train.consistency_weights)'
        joint = ''
        if self.method == 'srfer_joint':
            settings = dict(JOINT_DEFAULTS, **dict(self.joint))
            distill = settings['fer_distill']
            joint = (
                f' + joint learning (CE on SR and HR; sr_grad_weight {settings["sr_grad_weight"]:g}, '
                f'fer_frozen_iters {settings["fer_frozen_iters"]:g}, classifier lr {settings["fer_lr"]:g}'
                + (f'; distillation from the starting classifier on HR faces, weight {distill:g}' if distill else '')
                + ')'
            )
        if self.method == 'srfer_esrgan':
            return f'ESRGAN fine-tuning of {self.init} (L1 + relativistic GAN) + ' + ' + '.join(parts) + scenario
        return 'L1 + ' + ' + '.join(parts) + joint + scenario

    def apply_joint(self, opt: dict[str, Any]) -> None:
        """Write the joint overrides into the ``train`` section of ``opt`` (``joint_opt``, ``optim_fer.lr``,
        ``fer_distill_opt``)."""
        for knob, value in self.joint:
            if knob == 'fer_lr':
                opt['train']['optim_fer']['lr'] = value
            elif knob == 'fer_distill':
                opt['train']['fer_distill_opt'] = dict(synthetic.DEMO_FER_DISTILL, loss_weight=value)
            else:
                opt['train']['joint_opt'][knob] = int(value) if knob == 'fer_frozen_iters' else value


@dataclasses.dataclass(frozen=True)
class StudyPreset:
    """A study preset: its variants (in training order) and the variants every other is compared with.

    Attributes:
        variants: The rows, in training order (a variant after the one it starts from).
        references: Variants every other is compared with.
        test_degradation: The test set's degradation scenario (None: bicubic).
        extra_metrics: Metrics evaluated on top of PSNR/SSIM (``niqe``).
    """

    variants: tuple[Variant, ...]
    references: tuple[str, ...]
    test_degradation: str | None = None
    extra_metrics: tuple[str, ...] = ()

    def variant(self, name: str) -> Variant:
        """The variant called ``name``."""
        return next(v for v in self.variants if v.name == name)


NONE = Variant('none', 'plain_sr')
ATTENTION = Variant('attention', att=ATT)
BOTH = Variant('both', att=ATT, pred=PRED)  # the demo's SR-FER
STAGE_WEIGHTS = {'deep_weighted': (0.4, 0.8, 1.2, 1.6), 'shallow_weighted': (1.6, 1.2, 0.8, 0.4)}  # sum 4, as 1 each
WEIGHT_GRID = ((0.03, ATT, 0.3), (0.0003, PRED, 0.003))  # attention x prediction weights around the demo's
# The gradient shares of l_pix that the demo's weights (attention 0.1, prediction 0.001) give with the quick demo's
# classifier and plain-SR network (srfer gradient-shares, 20 batches; docs/results.md): the automatic rule sets
# every classifier's weights from these shares.
AUTO_SHARES = (1.15, 0.007)
AUTO = Variant('auto', att=AUTO_SHARES[0], pred=AUTO_SHARES[1], shares=True)


BOTH_JOINT = Variant('both_joint', 'srfer_joint', att=ATT, pred=PRED)  # the demo's joint learning
PLAIN_FINETUNED = Variant('plain_finetuned', 'plain_finetuned', init='none')
BLIND = 'blind_face'  # the gan preset's degradation scenario (training and test)
GAN_SHARE = 0.3  # GAN fine-tuning: 30 % of the L1 iterations (a CPU GAN step costs about 3 L1 steps)


def _gan_rows(suffix: str, degradation: str) -> tuple[Variant, ...]:
    """Plain SR, SR-FER (L1) and their ESRGAN fine-tunings, trained on ``degradation``."""
    plain, srfer = f'plain_sr{suffix}', f'srfer{suffix}'
    return (
        Variant(plain, 'plain_sr', degradation=degradation),
        Variant(srfer, att=ATT, pred=PRED, degradation=degradation),
        Variant(f'esrgan{suffix}', 'esrgan', init=plain, degradation=degradation, iters_share=GAN_SHARE),
        Variant(
            f'srfer_esrgan{suffix}', 'srfer_esrgan', att=ATT, pred=PRED, init=srfer, degradation=degradation,
            iters_share=GAN_SHARE,
        ),
    )  # fmt: skip


def _joint_variant(name: str, **joint: float) -> Variant:
    return Variant(name, 'srfer_joint', att=ATT, pred=PRED, joint=tuple(joint.items()))


def _grid_variant(att: float, pred: float) -> Variant:
    return BOTH if (att, pred) == (ATT, PRED) else Variant(f'att{att:g}_pred{pred:g}', att=att, pred=pred)


STUDY_PRESETS: dict[str, StudyPreset] = {
    'ablation': StudyPreset(
        (
            NONE,  # before plain_finetuned, which starts from its network
            ATTENTION,
            Variant('prediction', pred=PRED),
            BOTH,
            BOTH_JOINT,
            PLAIN_FINETUNED,
        ),
        ('both', 'none'),
    ),
    'stages': StudyPreset(
        (
            NONE,
            *(Variant(f'stage{s}', att=ATT, stages=(s,)) for s in ALL_STAGES),
            ATTENTION,
            *(Variant(name, att=ATT, stage_weights=w) for name, w in STAGE_WEIGHTS.items()),
            BOTH,
        ),
        ('both',),
    ),
    'weights': StudyPreset(
        (NONE, *(_grid_variant(a, p) for a in WEIGHT_GRID[0] for p in WEIGHT_GRID[1]), AUTO),
        ('both',),
    ),
    # How to set joint learning: where the classification loss's gradient goes, a warm-up, the classifier's LR.
    'joint': StudyPreset(
        (
            NONE,
            BOTH,
            BOTH_JOINT,
            *(_joint_variant(f'sr_grad_{g:g}', sr_grad_weight=g) for g in (0.1, 1.0)),
            _joint_variant('warmup_300', fer_frozen_iters=300),
            _joint_variant('fer_lr_1e-5', fer_lr=1e-5),
            _joint_variant('distill_1', fer_distill=1.0),
            PLAIN_FINETUNED,
            Variant('plain_finetuned_lr_1e-5', 'plain_finetuned', init='none', joint=(('fer_lr', 1e-5),)),
        ),
        ('both_joint', 'both'),
    ),
    # SR-FER beyond bicubic: blind face degradations, L1 and GAN training; trained on them and, crossed, on bicubic.
    'gan': StudyPreset(
        (
            Variant('bicubic', 'bicubic'),
            *_gan_rows('', BLIND),
            *_gan_rows('_trained_bicubic', 'bicubic'),
        ),
        ('plain_sr', 'esrgan'),
        test_degradation=BLIND,
        extra_metrics=('niqe',),
    ),
}


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
    consistency_weights = v.consistency_weights()
    if consistency_weights:
        opt['train']['consistency_weights'] = consistency_weights
    if 'network_fer' in opt:
        opt['network_fer'] = fer_network_options(opt['network_fer'], cell.fer)
    return opt


def descriptions(preset: str) -> dict[str, str]:
    """``{variant name: what it trains}`` of a study preset, for the report."""
    return {v.name: v.describe() for v in STUDY_PRESETS[preset].variants}
