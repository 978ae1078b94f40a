"""The ``baselines`` benchmark preset: SR-FER against classifiers trained on low-resolution faces.

A reviewer's question, "why not train the classifier on low-resolution faces instead?", as one run on the demo's
synthetic faces (RCAN, 1,000 iterations, the demo's slim ResNet-18; 3 seeds by default). Each *condition* is a test
scale (x4, x8) and a degradation of the test faces (``bicubic``, ``blind_face``); the SR networks of a condition are
trained on that degradation at that scale. Three classifiers score every face of a condition:

* ``hr``: the demo's classifier, trained on HR faces (``srfer::fer/resnet18slim_fer7_demo.py``);
* ``lr``: the same network trained on LR faces at the test scale only (``..._lr_x<scale>[_blind].py``);
* ``multires``: trained on faces down-sampled by a factor drawn from [1, 8] (``..._multires[_blind].py``).

The LR and multi-resolution classifiers use the condition's degradation (``_blind``: ``blind_face``) in
:class:`~srfer_plugin.data.fer_transforms.RandomLowResolution`; the benchmark pre-trains them on the synthetic faces
like the demo's classifier (cached in ``experiments/bench_fer_<config stem>``). The faces: bicubic upsampling (the
``acc_bicubic`` of every cell), plain SR (``plain``), SR-FER guided by the HR classifier (``srfer``, the demo's
SR-FER) and SR-FER guided by the multi-resolution classifier (``srfer_multires``). Every SR network is trained once
per seed and condition and evaluated under each classifier (cells ``bench_baselines_x<s>_<degradation>_<method>
_by_<classifier>[_it<N>]_seed<k>``). Trainings are named like the study presets' (``bench_study_<losses>[_<scenario>]
[_x8][_guide_<config>][_it<N>]_seed<k>``), so the x4 trainings of plain SR and SR-FER are the ablation's and the
gan preset's when both run in the same ``--exp-root``.

The report (:mod:`.baselines_report`) gives, per condition, the accuracy of each face type under each classifier
(mean ± std over seeds), the differences against SR-FER with the seed-spread rule of :mod:`.aggregate`, and a line
per condition naming the best pipeline, stating plainly where SR-FER is not it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from srfer_plugin.studies import synthetic
from srfer_plugin.studies.benchmark_cells import Cell, Classifier, fer_network_options
from srfer_plugin.studies.study_presets import iters_suffix
from srfer_plugin.studies.study_variants import ATT, PRED, STUDY_ITERS, STUDY_SEEDS, Variant
from srfer_plugin.utils.shipped_options import resolve_path

PRESET = 'baselines'
SCALES = (4, 8)
DEGRADATIONS = ('bicubic', 'blind_face')
BACKBONE = 'RCAN'
ROLES = ('hr', 'lr', 'multires')  # the classifiers of a condition
ROLE_TITLES = {'hr': 'HR-trained', 'lr': 'LR-trained (test scale)', 'multires': 'multi-resolution'}
METHODS = ('plain', 'srfer', 'srfer_multires')  # the trained faces; bicubic comes with every cell (acc_bicubic)
FACES = ('bicubic', *METHODS)  # the columns of the report
FACE_TITLES = {
    'bicubic': 'bicubic',
    'plain': 'plain SR',
    'srfer': 'SR-FER (HR-guided)',
    'srfer_multires': 'SR-FER (multires-guided)',
}
SRFER_FACES = ('srfer', 'srfer_multires')
GUIDES = {'plain': None, 'srfer': 'hr', 'srfer_multires': 'multires'}  # the classifier a training is guided by
CONFIG_DIR = 'srfer::fer'  # the shipped FER configs
DEMO_STEM = 'resnet18slim_fer7_demo'


def is_baselines(preset: str) -> bool:
    """Whether ``preset`` is this preset."""
    return preset == PRESET


def _blind(degradation: str) -> str:
    return '' if degradation == 'bicubic' else '_blind'


def classifier_config(role: str, scale: int, degradation: str) -> str:
    """The config of a classifier role in a condition: a shipped one (``srfer::fer/...``; the HR one named as the
    study presets name it).

    Args:
        role: One of :data:`ROLES`.
        scale: The test scale (the LR classifier's training factor).
        degradation: The test faces' degradation (the LR and multi-resolution classifiers' training degradation).

    Returns:
        The config's name (:func:`~srfer_plugin.utils.shipped_options.resolve_path` finds it).
    """
    if role == 'hr':
        return synthetic.FER_DEMO_CONFIG
    if role == 'lr':
        return f'{CONFIG_DIR}/{DEMO_STEM}_lr_x{scale}{_blind(degradation)}.py'
    if role == 'multires':
        return f'{CONFIG_DIR}/{DEMO_STEM}_multires{_blind(degradation)}.py'
    raise ValueError(f'classifier role {role!r} not in {ROLES}')


def _stem(config: str) -> str:
    return os.path.splitext(os.path.basename(config))[0]


def check_selection(scales: list[int] | tuple[int, ...], degradations: list[str] | tuple[str, ...]) -> None:
    """Raise ValueError naming the option when a scale or degradation is not one of the preset's."""
    bad = [s for s in scales if s not in SCALES]
    if bad or not scales:
        raise ValueError(f'--scales: {bad or scales} not in the {PRESET} preset scales {list(SCALES)}')
    bad = [d for d in degradations if d not in DEGRADATIONS]
    if bad or not degradations:
        raise ValueError(f'--degradations: {bad or degradations} not in the {PRESET} degradations {list(DEGRADATIONS)}')


def classifiers(
    scales: list[int] | tuple[int, ...] = SCALES,
    degradations: list[str] | tuple[str, ...] = DEGRADATIONS,
    hr_checkpoint: str | None = None,
) -> list[Classifier]:
    """The classifiers of a run, the HR one first; without weights (the benchmark pre-trains or reuses them)
    except the HR one's ``hr_checkpoint`` (``--fer-checkpoint``).

    All are the demo's network (same stages), so each keeps the demo's ``network_fer.stages`` (``own``); the HR one
    has no cell-name tag (the demo's classifier), the others their config stem.

    Args:
        scales: Test scales of the run.
        degradations: Test degradations of the run.
        hr_checkpoint: Weights of the HR classifier (None: the demo's cached classifier).

    Returns:
        One :class:`~srfer_plugin.studies.benchmark_cells.Classifier` per config, in the order of first use.
    """
    check_selection(scales, degradations)
    configs = [synthetic.FER_DEMO_CONFIG]
    for degradation in degradations:
        for scale in scales:
            configs.append(classifier_config('lr', scale, degradation))
        configs.append(classifier_config('multires', scales[0], degradation))
    out = []
    for config in dict.fromkeys(configs):
        stem = _stem(config)
        hr = config == synthetic.FER_DEMO_CONFIG
        checkpoint = os.path.abspath(hr_checkpoint) if hr and hr_checkpoint else None
        out.append(Classifier(os.path.abspath(resolve_path(config)), checkpoint, None, stem, '' if hr else stem, True))
    return out


@dataclasses.dataclass(frozen=True)
class BaselineCell(Cell):
    """A cell of the baselines preset: a :class:`~srfer_plugin.studies.benchmark_cells.Cell` with its condition.

    Attributes:
        degradation: The degradation of its training and test faces (a scenario name).
        role: The role of ``fer`` (the classifier scoring it): one of :data:`ROLES`.
        guide: The classifier its SR-FER training is guided by (None for plain SR).
    """

    degradation: str = 'bicubic'
    role: str = 'hr'
    guide: Classifier | None = None

    @property
    def test_degradation(self) -> str:
        """The test faces' degradation (the training's)."""
        return self.degradation


def _variant(method: str, degradation: str) -> Variant:
    """The study variant whose options and training name a method of this preset uses."""
    if method == 'plain':
        return Variant('plain', 'plain_sr', degradation=degradation)
    return Variant(method, att=ATT, pred=PRED, degradation=degradation)


def train_name(method: str, scale: int, degradation: str, seed: int, iters: int | None, guide: Classifier | None):
    """The training of a method in a condition: the study presets' name, with ``_x<scale>`` off x4 and the guide's
    config stem when it is not the demo's classifier."""
    scale_part = '' if scale == 4 else f'_x{scale}'
    guide_part = f'_guide_{_stem(guide.config)}' if guide is not None and guide.tag else ''
    key = _variant(method, degradation).key()
    return f'bench_study_{key}{scale_part}{guide_part}{iters_suffix(iters)}_seed{seed}'


def plan_cells(
    fers: list[Classifier],
    seeds: list[int] | tuple[int, ...] = tuple(range(STUDY_SEEDS)),
    iters: int | None = None,
    scales: list[int] | tuple[int, ...] = SCALES,
    degradations: list[str] | tuple[str, ...] = DEGRADATIONS,
) -> list[BaselineCell]:
    """Every cell, seed by seed, condition by condition (scale, then degradation), method by method, classifier by
    classifier (``hr``, ``lr``, ``multires``).

    Args:
        fers: The run's classifiers (:func:`classifiers`, with weights once prepared), matched by config.
        seeds: ``manual_seed`` of the trainings.
        iters: ``train.total_iter`` (None: the studies' 1,000).
        scales: Test scales (of :data:`SCALES`).
        degradations: Test degradations (of :data:`DEGRADATIONS`).

    Returns:
        The cells; the cells of one training share its ``train_name``.

    Raises:
        ValueError: A scale or degradation not in the preset, or a classifier the conditions need is missing.
    """
    check_selection(scales, degradations)
    by_stem = {_stem(c.config): c for c in fers}
    cells = []
    for seed in seeds:
        end = f'{iters_suffix(iters)}_seed{seed}'
        for scale in scales:
            for degradation in degradations:
                roles = {}
                for role in ROLES:
                    stem = _stem(classifier_config(role, scale, degradation))
                    if stem not in by_stem:
                        raise ValueError(f'{PRESET}: classifier {stem} (x{scale} {degradation}) is not in the run')
                    roles[role] = by_stem[stem]
                for method in METHODS:
                    guide = roles[GUIDES[method]] if GUIDES[method] else None
                    training = train_name(method, scale, degradation, seed, iters, guide)
                    for role in ROLES:
                        name = f'bench_{PRESET}_x{scale}_{degradation}_{method}_by_{role}{end}'
                        cell = BaselineCell(name, training, BACKBONE, scale, method, roles[role], seed)
                        cells.append(dataclasses.replace(cell, degradation=degradation, role=role, guide=guide))
    return cells


def cell_options(cell: BaselineCell, iters: int | None, data_root: str) -> dict[str, Any]:
    """The training options of a cell's SR network (named ``cell.train_name``, seeded ``cell.seed``).

    The demo's training (:func:`~srfer_plugin.studies.synthetic.sr_options`, as the study presets build it) on the
    cell's degradation, with RCAN's ``upscale`` and ``scale`` set to the cell's scale and, for SR-FER, the guide's
    config and weights as ``network_fer``.

    Args:
        cell: A cell of :func:`plan_cells`.
        iters: ``train.total_iter`` (None: :data:`~srfer_plugin.studies.study_variants.STUDY_ITERS`).
        data_root: The synthetic faces.

    Returns:
        The option dict (absolute paths).
    """
    variant = _variant(cell.method, cell.degradation)
    guide = cell.guide
    opt = synthetic.sr_options(
        variant.method,
        data_root,
        guide.checkpoint if guide else None,
        iters or STUDY_ITERS,
        cell.seed,
        PRESET,
        variant.losses(),
        list(variant.stages),
        None,
        variant.degradation,
    )
    opt['name'] = cell.train_name
    opt['scale'] = cell.scale
    opt['network_g']['upscale'] = cell.scale
    if 'network_fer' in opt:
        opt['network_fer'] = fer_network_options(opt['network_fer'], guide)
    return opt


def describe(method: str) -> str:
    """What a method's faces are, for the report."""
    return {
        'bicubic': 'bicubic upsampling of the LR test face (nothing trained; acc_bicubic of the cells)',
        'plain': 'plain SR (RCAN, L1)',
        'srfer': "SR-FER (L1 + attention and prediction consistency) guided by the HR-trained classifier (the demo's)",
        'srfer_multires': 'SR-FER guided by the multi-resolution classifier of the condition',
    }[method]
