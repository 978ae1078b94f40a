"""Train, evaluate and tabulate every benchmark cell: a backbone x scale matrix or a study's variants, over seeds.

Example::

    srfer benchmark --preset cpu-small                      # whole matrix on CPU (about 40 min)
    srfer benchmark --preset paper --backbones RCAN EDSR --scales 4 --iters 300000
    srfer benchmark --preset cpu-small --backbones RCAN --scales 4 --fer \\
        srfer::fer/resnet18slim_fer7_demo.py srfer::fer/mobilenetv3-small_fer7_demo.py \\
        srfer::fer/repvgg-a0_fer7_demo.py
    srfer benchmark --preset ablation --seeds 3            # the SR-FER ablation, 3 seeds
    srfer benchmark --preset weights --seed-list 0 1 --iters 300
    srfer benchmark --preset baselines                     # SR-FER against LR-trained classifiers, 3 seeds

Presets: ``paper`` and ``cpu-small`` are the backbone x scale matrices (below); ``ablation``, ``stages``,
``weights``, ``cost``, ``joint`` and ``gan`` are the SR-FER study on the demo's synthetic faces (RCAN x4, the demo's
classifier or the ``--fer`` classifiers, ``srfer_plugin.studies.study_variants``): plain SR, each consistency loss
alone, both, joint learning and the plain-SR network with the classifier fine-tuned (``ablation``); attention on
single stages, on all, and with stage weights (``stages``); a 3 x 3 grid of attention x prediction weights around the
demo's and the gradient-share rule at several sets of shares (``weights``); the classifier on part of each batch
(``cost``); joint learning's settings (``joint``); blind faces with L1 and GAN training (``gan``). Joint cells are
scored by the classifier their training fine-tuned (``classifier`` column ``adapted``).

``baselines`` (``srfer_plugin.studies.baselines``) answers "why not train the classifier on low-resolution faces?":
at x4 and x8 (``--scales``) on bicubic and ``blind_face`` test faces (``--degradations``), the accuracy of bicubic,
plain-SR, SR-FER (HR-guided) and SR-FER (guided by the multi-resolution classifier) faces under the HR-trained
(demo's), the LR-trained (test scale only) and the multi-resolution classifier; the LR and multi-resolution
classifiers (``srfer::fer/resnet18slim_fer7_demo_lr_x*.py``, ``..._multires*.py``) are pre-trained on the synthetic
faces first (``--fer-checkpoint`` gives the HR-trained one other weights than the demo's cached classifier). Its
``benchmark.md`` states per condition which pipeline is best and where SR-FER is not.

Seeds: ``--seeds N`` (seeds 0 to N-1; default 3 for a study, 1 for a matrix) or ``--seed-list``. The seed is the
training's ``manual_seed`` and ends the cell name (``_seed<k>``), except seed 0 of a matrix preset, which keeps
the name it had before seeds. With several seeds, ``benchmark.md`` adds mean ± std per variant and differences of
means against the preset's reference variants, marked ``(within seed spread)`` when at most the larger std.

Matrix cells come from ``scripts/make_benchmark_options.py`` (one template per preset). Each cell is trained by
``python -m srfer_plugin.train -opt <cell>.yml --auto_resume`` in a subprocess, so an interrupted cell resumes
from its last training state, and is then evaluated on the test split with the demo's evaluation
(``srfer_plugin.studies.evaluation``): PSNR/SSIM (Y channel) and the accuracy of one frozen FER classifier
on SR (``acc``), HR (``acc_hr``) and bicubic (``acc_bicubic``) images. Plain-SR cells (the plugin's
``SafeSRModel``, L1 only) are evaluated the same way. A cell whose ``result.json`` exists is skipped: rerunning
the command continues an interrupted benchmark. A cell or training made with other settings (``--iters``,
``--data-root``) stops the run before anything is trained (use another ``--exp-root``/``--out``). Cells a backbone
cannot run in BasicSR 1.4.2 (RRDBNet and MSRResNet at x8) are listed as ``unsupported`` with the reason.

Classifiers (``--fer CONFIG[=CHECKPOINT][@SIZE] ...``; default: the preset's own classifier only):

* Each entry is an mmpretrain config. Its SR-FER cells train with it as ``network_fer`` (its checkpoint, and
  ``input_size`` when ``@SIZE`` is given; classifiers other than the preset's own config use MMPretrainFER's
  default ``stages``). Plain SR does not depend on the classifier: each plain cell is trained once per backbone
  x scale and evaluated with every classifier, so plain SR, SR-FER, bicubic and HR are compared under the same
  classifier.
* Names: the preset's own classifier (its config without ``@SIZE``) keeps the cell names of a run without
  ``--fer``; the others append a tag (the config stem, ``_in<SIZE>`` with ``@SIZE``) to the names of their cells.
  Every row has a ``fer`` column (the config stem, ``@SIZE``).

Data and classifier weights:

* ``cpu-small`` and the study presets: the demo's synthetic faces. The demo's classifier
  (``srfer::fer/resnet18slim_fer7_demo.py``) is the demo's cached one (shared with ``python -m srfer_plugin.demo``
  through ``--exp-root``); any other config without ``=CHECKPOINT`` is pre-trained on the same faces for the demo's
  epochs (``srfer_plugin.fer_pretrain.train_fer``, cached in ``<exp-root>/experiments/bench_fer_<config stem>``).
  The study presets use the demo's classifier (``--fer-checkpoint`` gives it other weights) or the ``--fer``
  classifiers; ``stages`` keeps to the demo's, whose four taps its variants pick.
* ``paper``: the dataset and classifier of ``srfer::train_RCAN_srfer_x4.yml`` (``--data-root`` and
  ``--fer-checkpoint`` override them); other classifiers need ``CONFIG=CHECKPOINT``. Everything must exist
  before anything trains.

Outputs under ``--out`` (default ``results/benchmark_<preset>``): ``benchmark.csv``, ``benchmark.md``,
``benchmark_acc.png`` (accuracy per scale, one panel per classifier x backbone; for a study, mean accuracy per
variant), ``benchmark_mean.csv`` (mean and std per variant, with several seeds) and ``cells/<name>/``
(options, training output, evaluation reports, ``result.json``). BasicSR writes ``experiments/<name>/`` under
``--exp-root``. The library behind this command line is ``srfer_plugin.studies`` (``benchmark``,
``benchmark_cells``, ``study_variants``, ``study_presets``, ``benchmark_report``, ``aggregate``).
"""

from __future__ import annotations

import argparse
import os
import sys

from srfer_plugin.studies import baselines
from srfer_plugin.studies.benchmark import BenchmarkRun, prepare_data_and_classifiers, run_benchmark
from srfer_plugin.studies.benchmark_cells import plan_cells, resolve_classifiers
from srfer_plugin.studies.benchmark_options import BACKBONES, METHODS, PRESETS, SCALES
from srfer_plugin.studies.study_presets import (
    STUDY_PRESETS,
    STUDY_SEEDS,
    check_study_classifiers,
    data_preset,
    is_study,
    plan_study_cells,
    run_seeds,
    select_variants,
)
from srfer_plugin.studies.synthetic import check_train_faces
from srfer_plugin.synthetic import SyntheticRootError
from srfer_plugin.utils.cli_args import at_least

FER_HELP = (
    'FER classifiers, each CONFIG[=CHECKPOINT][@SIZE]: an mmpretrain config file, or a shipped one by name '
    '(srfer::fer/*.py; srfer list-options fer lists them), optionally its weights (cpu-small and the study presets '
    'pre-train a classifier given without them; paper needs them except for its own classifier) and '
    'network_fer.input_size (N or HxW: faces are resized to it before the classifier; default: fed as they are), '
    "e.g. srfer::fer/deit-tiny_fer7.py@112 or my_fer.py=work_dirs/my_fer/fer_final.pth. Default: the preset's own "
    'classifier, with the cell names of earlier runs; other classifiers add their config stem (and _in<SIZE>) to '
    'their cell and training names'
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ``classifiers`` holds the resolved ``--fer`` entries, ``seed_values`` the seeds."""
    parser = argparse.ArgumentParser(
        description='Benchmark SR-FER against plain SR: classifiers x backbones x scales, or study variants; seeds.'
    )
    matrix = 'matrix presets only; default: all'
    parser.add_argument('--backbones', nargs='+', default=None, choices=BACKBONES, help=matrix)
    parser.add_argument(
        '--scales', nargs='+', type=int, default=None, choices=SCALES, help=f'{matrix}; baselines: 4 and/or 8'
    )
    parser.add_argument(
        '--degradations',
        nargs='+',
        default=None,
        choices=baselines.DEGRADATIONS,
        help='baselines preset only: test (and training) degradations; default: both',
    )
    parser.add_argument('--methods', nargs='+', default=None, choices=METHODS, help=matrix)
    parser.add_argument('--fer', nargs='+', default=None, metavar='CONFIG[=CHECKPOINT][@SIZE]', help=FER_HELP)
    parser.add_argument(
        '--variants', nargs='+', default=None, metavar='NAME', help='study presets: only these variants'
    )
    parser.add_argument('--iters', type=at_least(1), default=None, help='training iterations per cell (preset default)')
    parser.add_argument(
        '--train-faces',
        type=int,
        default=None,
        metavar='N',
        help='study presets: train on the first N synthetic training faces (a multiple of 7, e.g. 1001), with the '
        "demo's classifier pre-trained on them alone; names get _train<N>. Default: all 2,100",
    )
    parser.add_argument(
        '--preset', choices=sorted(PRESETS) + list(STUDY_PRESETS) + [baselines.PRESET], default='cpu-small'
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument('--seeds', type=int, default=None, help='seeds 0..N-1 (default: 3 for a study, else 1)')
    seeds.add_argument('--seed-list', nargs='+', type=at_least(0), default=None, metavar='SEED', help='these seeds')
    parser.add_argument('--data-root', default=None, help='FER dataset in the plugin layout (preset default)')
    parser.add_argument(
        '--fer-checkpoint', default=None, help='weights of the only classifier (preset default; several: --fer C=W)'
    )
    parser.add_argument('--exp-root', default='.', help='folder of experiments/ (and the demo caches)')
    parser.add_argument('--out', default=None, help='output folder (default: results/benchmark_<preset>)')
    args = parser.parse_args(argv)
    if args.iters is not None and args.iters < 1:
        parser.error(f'--iters must be >= 1, got {args.iters}')
    if args.degradations is not None and not baselines.is_baselines(args.preset):
        parser.error(f'--degradations chooses the conditions of --preset {baselines.PRESET}, not of {args.preset}')
    if args.train_faces is not None:
        if not is_study(args.preset):
            parser.error(f'--train-faces sets the training set of a study preset, not of --preset {args.preset}')
        if args.data_root or args.fer_checkpoint:
            parser.error('--train-faces makes its own data and classifier: drop --data-root and --fer-checkpoint')
        try:
            check_train_faces('default', args.train_faces)
        except ValueError as err:
            parser.error(str(err))
    if baselines.is_baselines(args.preset):
        return _parse_baselines(parser, args)
    if is_study(args.preset):
        given = [f'--{k}' for k in ('backbones', 'scales', 'methods') if getattr(args, k) is not None]
        if given:
            parser.error(f"--preset {args.preset} trains the demo's RCAN x4: drop {given}")
    elif args.variants:
        parser.error(
            f'--variants chooses variants of a study preset ({", ".join(STUDY_PRESETS)}), not of {args.preset}'
        )
    else:
        args.backbones = args.backbones or list(BACKBONES)
        args.scales = args.scales or list(SCALES)
        args.methods = args.methods or list(METHODS)
    try:
        args.seed_values = run_seeds(args.preset, args.seeds, args.seed_list)
        args.classifiers = resolve_classifiers(data_preset(args.preset), args.fer, args.fer_checkpoint)
        if is_study(args.preset):
            select_variants(args.preset, args.variants)
            check_study_classifiers(args.preset, args.classifiers, args.variants, args.train_faces)
    except ValueError as err:
        parser.error(str(err))
    return args


def _parse_baselines(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """The baselines preset's arguments: its scales, degradations, seeds (3 by default) and classifiers
    (``--fer-checkpoint``: the weights of the HR-trained one, else the demo's cached classifier)."""
    given = [f'--{k}' for k in ('backbones', 'methods', 'fer', 'variants') if getattr(args, k) is not None]
    if given:
        parser.error(f'--preset {baselines.PRESET} has its own classifiers, methods and RCAN: drop {given}')
    if args.fer_checkpoint and not os.path.isfile(args.fer_checkpoint):
        parser.error(f'--fer-checkpoint {args.fer_checkpoint!r} does not exist')
    args.scales = args.scales or list(baselines.SCALES)
    args.degradations = args.degradations or list(baselines.DEGRADATIONS)
    seeds = STUDY_SEEDS if args.seeds is None and args.seed_list is None else args.seeds
    try:
        args.seed_values = run_seeds(args.preset, seeds, args.seed_list)
        args.classifiers = baselines.classifiers(args.scales, args.degradations, args.fer_checkpoint)
    except ValueError as err:
        parser.error(str(err))
    return args


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    command = 'srfer benchmark ' + ' '.join(sys.argv[1:] if argv is None else argv)
    out = os.path.abspath(args.out or os.path.join('results', f'benchmark_{args.preset.replace("-", "_")}'))
    exp_root = os.path.abspath(args.exp_root)
    data_preset_name = 'cpu-small' if baselines.is_baselines(args.preset) else data_preset(args.preset)
    try:
        data_root, classifiers = prepare_data_and_classifiers(
            data_preset_name, args.classifiers, args.data_root, exp_root, args.train_faces
        )
    except SyntheticRootError as err:  # before any training: one line, no traceback
        print(f'error: --data-root {err}', file=sys.stderr)
        return 2
    run = BenchmarkRun(args.preset, out, exp_root, data_root, args.iters)
    if baselines.is_baselines(args.preset):
        cells = baselines.plan_cells(classifiers, args.seed_values, args.iters, args.scales, args.degradations)
    elif is_study(args.preset):
        cells = plan_study_cells(
            args.preset, classifiers, args.seed_values, args.iters, args.variants, args.train_faces
        )
    else:
        cells = plan_cells(args.preset, classifiers, args.backbones, args.scales, args.methods, args.seed_values)
    run_benchmark(run, cells, command, classifiers)
    with open(os.path.join(out, 'benchmark.md'), encoding='utf-8') as f:
        print(f.read(), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
