"""The SR-FER study's variants (one SR training's losses and settings each) and the study presets made of them.

A :class:`Variant` names what one training of the study changes against the demo's SR training; a
:class:`StudyPreset` lists the variants of a preset (``ablation``, ``stages``, ``weights``, ``cost``, ``joint``,
``gan``) and those every other is compared with. :mod:`srfer_plugin.studies.study_presets` turns them into cells
and options.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from srfer_plugin.models.consistency_weights import DEFAULTS as CONSISTENCY_DEFAULTS
from srfer_plugin.studies import synthetic

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
        calibration_iters: With ``shares``: the rule's ``calibration_iters`` (weights held after that many
            iterations); None: measured throughout.
        budget_db: With ``shares``: rule ``psnr_budget`` at this PSNR cost (the shares set the ratio and the
            start); None: rule ``gradient_share``.
        budget_start: With ``budget_db``: the rule's ``budget_start`` (named in the trainings unless 1).
        pilot_share: With ``budget_db``: rule ``psnr_pilot`` instead, its pilot this share of the run's iterations.
        joint: Overrides of the demo's joint learning (``srfer_joint`` only): any of ``sr_grad_weight`` and
            ``fer_frozen_iters`` (``joint_opt``), ``fer_lr`` (``optim_fer.lr``) and ``fer_distill`` (the weight
            of :data:`~srfer_plugin.studies.synthetic.DEMO_FER_DISTILL`), as ``((key, value), ...)``.
        init: The variant whose trained network this one starts from (``plain_finetuned``, the GAN methods).
        degradation: The training set's degradation scenario.
        fer_batch_size: ``train.fer_batch_size`` (the classifier reads that many faces of each batch); None: all.
        iters_share: Its iterations as a share of the preset's (GAN fine-tuning: :data:`GAN_SHARE`).
    """

    name: str
    method: str = 'srfer'
    att: float | None = None
    pred: float | None = None
    stages: tuple[int, ...] = ALL_STAGES
    stage_weights: tuple[float, ...] | None = None
    shares: bool = False
    calibration_iters: int | None = None
    budget_db: float | None = None
    budget_start: float = 1.0
    pilot_share: float | None = None
    joint: tuple[tuple[str, float], ...] = ()
    init: str | None = None
    degradation: str = 'bicubic'
    fer_batch_size: int | None = None
    iters_share: float = 1.0

    def __post_init__(self) -> None:
        if (self.calibration_iters is not None or self.budget_db is not None) and not self.shares:
            raise ValueError(f'Variant {self.name}: calibration_iters and budget_db need shares=True')
        if self.pilot_share is not None and (
            self.budget_db is None or self.budget_start != 1 or not 0 < self.pilot_share < 1
        ):
            raise ValueError(f'Variant {self.name}: pilot_share needs budget_db (no budget_start) and lies in (0, 1)')
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
            if self.calibration_iters is not None:
                parts.append(f'hold{self.calibration_iters}')
            if self.budget_db is not None:
                parts.append(
                    f'budget{self.budget_db:g}' + (f'_start{self.budget_start:g}' if self.budget_start != 1 else '')
                )
                if self.pilot_share is not None:
                    parts.append(f'pilot{self.pilot_share:g}')
        if self.method == 'srfer_joint':
            parts.append('joint')
            parts.extend(self._joint_name_parts())
        if self.method == 'srfer_esrgan':
            parts.append('esrgan')
        if self.fer_batch_size is not None:
            parts.append(f'fb{self.fer_batch_size}')
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

    def consistency_weights(self, total_iter: int) -> dict[str, Any] | None:
        """``train.consistency_weights`` of a variant with gradient shares (in a run of ``total_iter`` iterations),
        else None."""
        if not self.shares:
            return None
        shares = {term: share for term, share in (('l_att', self.att), ('l_pred', self.pred)) if share is not None}
        if self.pilot_share is not None:
            pilot_iters = min(max(1, round(total_iter * self.pilot_share)), total_iter - 1)
            rule = {'rule': 'psnr_pilot', 'shares': shares, 'budget_db': self.budget_db, 'pilot_iters': pilot_iters}
            short = pilot_iters < CONSISTENCY_DEFAULTS['interval']  # a short run's pilot measures every step
            return {**rule, 'interval': pilot_iters} if short else rule
        if self.budget_db is not None:
            return {
                'rule': 'psnr_budget',
                'shares': shares,
                'budget_db': self.budget_db,
                'budget_start': self.budget_start,
            }
        rule = {'rule': 'gradient_share', 'shares': shares}
        return rule if self.calibration_iters is None else {**rule, 'calibration_iters': self.calibration_iters}

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
            held = '' if self.calibration_iters is None else f', held after {self.calibration_iters} iterations'
            if self.pilot_share is not None:
                held = (
                    f', scaled to cost {self.budget_db:g} dB against a plain-SR twin in a pilot of '
                    f'{self.pilot_share:.0%} of the run, then from plain SR, held'
                )
            elif self.budget_db is not None:
                held = f', scaled from {self.budget_start:g} to cost {self.budget_db:g} dB against a plain-SR twin'
            parts[-1] += f' (weights from gradient shares of l_pix{held}: train.consistency_weights)'
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
        if self.fer_batch_size is not None:
            joint += f'; the classifier reads {self.fer_batch_size} faces of each batch (train.fer_batch_size)'
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
# The gradient shares of l_pix that the demo's weights (attention 0.1, prediction 0.001) give with a plain-SR network
# (srfer gradient-shares, 20 batches; docs/results.md): the automatic rule sets every classifier's weights from
# them. AUTO_SHARES were read with the quick demo's classifier, AUTO_FULL_SHARES with the demo's classifier
# pre-trained in full (the one the hand-set weights were chosen on).
AUTO_SHARES = (1.15, 0.007)
AUTO_FULL_SHARES = (0.47, 4.2)
AUTO = Variant('auto', att=AUTO_SHARES[0], pred=AUTO_SHARES[1], shares=True)
AUTO_FULL = Variant('auto_full', att=AUTO_FULL_SHARES[0], pred=AUTO_FULL_SHARES[1], shares=True)
# Calibrate, then hold: the shares that give the hand-set weights (0.1, 0.001) under the demo's classifier pre-trained
# in full after the rule's first 50 iterations (read from AUTO_FULL's training log, seed 0: 0.0565 and 7.0e-4 at
# shares 0.47 and 4.2), measured over 50 iterations and then held for the run.
AUTO_HOLD_SHARES, AUTO_HOLD_ITERS = (0.83, 6.0), 50
AUTO_HOLD = Variant(
    'auto_hold', att=AUTO_HOLD_SHARES[0], pred=AUTO_HOLD_SHARES[1], shares=True, calibration_iters=AUTO_HOLD_ITERS
)
# The PSNR budget: the shares of the best hand-set cell within 0.7 dB under the demo's classifier (attention 0.3,
# prediction 0.001: AUTO_HOLD's shares with three times the attention share), scaled throughout to cost BUDGET_DB
# against a plain-SR twin on the training batches, the scale starting at 0.1 (the rule's default) or at 1.
BUDGET_SHARES, BUDGET_DB = (2.49, AUTO_HOLD_SHARES[1]), 0.5
AUTO_BUDGET = Variant(
    'auto_budget', att=BUDGET_SHARES[0], pred=BUDGET_SHARES[1], shares=True, budget_db=BUDGET_DB, budget_start=0.1
)
AUTO_BUDGET_START1 = Variant(
    'auto_budget_start1', att=BUDGET_SHARES[0], pred=BUDGET_SHARES[1], shares=True, budget_db=BUDGET_DB
)
# The pilot: the same shares run for the first PILOT_SHARE of the run beside a plain-SR twin; the run then goes on
# from the twin with the shares scaled by min(1, PILOT_BUDGET_DB / the pilot's gap). PILOT_BUDGET_DB is the gap the
# demo's classifier showed at those shares after 200 of 1000 iterations (seed 0), so its weights stay the shares.
PILOT_BUDGET_DB, PILOT_SHARE = 0.2, 0.2
AUTO_PILOT = Variant(
    'auto_pilot', att=BUDGET_SHARES[0], pred=BUDGET_SHARES[1], shares=True, budget_db=PILOT_BUDGET_DB,
    pilot_share=PILOT_SHARE,
)  # fmt: skip
# Between the two: AUTO's attention share with a prediction share between AUTO's and AUTO_FULL's.
AUTO_PRED_SHARES = (0.3, 1.0)
AUTO_PRED = tuple(
    Variant(f'auto_pred{p:g}', att=AUTO_SHARES[0], pred=p, shares=True) for p in AUTO_PRED_SHARES
)  # fmt: skip
# Reruns of the best grid cells within 0.7 dB (the demo's classifier; MobileNetV3-Small and RepVGG-A0) with the
# attention weight moved by 1e-6, which names a new training: the run-to-run spread of the gain at one seed.
RERUN_CELLS, RERUN_OFFSET = ((0.3, 0.001), (0.03, 0.0003)), 1e-6
RERUNS = tuple(
    Variant(f'rerun_att{a:g}_pred{p:g}', att=round(a + RERUN_OFFSET, 6), pred=p) for a, p in RERUN_CELLS
)  # fmt: skip


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
        (
            NONE,
            *(_grid_variant(a, p) for a in WEIGHT_GRID[0] for p in WEIGHT_GRID[1]),
            AUTO,
            AUTO_FULL,
            *AUTO_PRED,
            AUTO_HOLD,
            AUTO_BUDGET,
            AUTO_BUDGET_START1,
            AUTO_PILOT,
            *RERUNS,
        ),
        ('both',),
    ),
    # The cheaper step: the classifier on part of each batch of 8 (train.fer_batch_size).
    'cost': StudyPreset(
        (NONE, BOTH, *(Variant(f'both_fer_batch{n}', att=ATT, pred=PRED, fer_batch_size=n) for n in (4, 2))),
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
