"""Train and evaluate every benchmark cell (classifier x backbone x scale x {plain SR, SR-FER}) and tabulate them.

Example::

    python scripts/benchmark.py --preset cpu-small                      # whole matrix on CPU (about 40 min)
    python scripts/benchmark.py --preset paper --backbones RCAN EDSR --scales 4 --iters 300000
    python scripts/benchmark.py --preset cpu-small --backbones RCAN --scales 4 --fer \\
        options/fer/resnet18slim_fer7_demo.py options/fer/mobilenetv3-small_fer7_demo.py \\
        options/fer/repvgg-a0_fer7_demo.py

Cells come from ``scripts/make_benchmark_options.py`` (one template per preset). Each cell is trained by
``python -m srfer_plugin.train -opt <cell>.yml --auto_resume`` in a subprocess, so an interrupted cell resumes
from its last training state, and is then evaluated on the test split with the demo's evaluation
(``srfer_plugin.demo.evaluation_options``): PSNR/SSIM (Y channel) and the accuracy of one frozen FER classifier
on SR (``acc``), HR (``acc_hr``) and bicubic (``acc_bicubic``) images. Plain-SR cells (BasicSR ``SRModel``, L1
only) are evaluated the same way. A cell whose ``result.json`` exists is skipped: rerunning the command continues
an interrupted benchmark. Cells a backbone cannot run in BasicSR 1.4.2 (RRDBNet and MSRResNet at x8) are listed
as ``unsupported`` with the reason.

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

* ``cpu-small``: the demo's synthetic faces. The demo's classifier (``options/fer/resnet18slim_fer7_demo.py``)
  is the demo's cached one (shared with ``python -m srfer_plugin.demo`` through ``--exp-root``); any other
  config without ``=CHECKPOINT`` is pre-trained on the same faces for the demo's epochs
  (``srfer_plugin.fer_pretrain.train_fer``, cached in ``<exp-root>/experiments/bench_fer_<config stem>``).
* ``paper``: the dataset and classifier of ``options/train_RCAN_srfer_x4.yml`` (``--data-root`` and
  ``--fer-checkpoint`` override them); other classifiers need ``CONFIG=CHECKPOINT``. Everything must exist
  before anything trains.

Outputs under ``--out`` (default ``results/benchmark_<preset>``): ``benchmark.csv``, ``benchmark.md``,
``benchmark_acc.png`` (accuracy per scale, one panel per classifier x backbone) and ``cells/<name>/``
(options, training output, evaluation reports, ``result.json``). BasicSR writes ``experiments/<name>/`` under
``--exp-root``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_benchmark_options import (  # noqa: E402
    BACKBONES,
    METHODS,
    PRESETS,
    REPO_ROOT,
    SCALES,
    cell_name,
    default_fer_config,
    make_options,
    template,
    unsupported_reason,
    write_options,
)

COLUMNS = (
    'fer', 'backbone', 'scale', 'method', 'status', 'acc', 'acc_hr', 'acc_bicubic', 'psnr', 'ssim',
    'train_s_per_iter', 'params', 'iters', 'note',
)  # fmt: skip
METRIC_KEYS = ('acc', 'acc_hr', 'acc_bicubic', 'psnr', 'ssim')
TIME_RE = re.compile(r'time \(data\): ([\d.]+) \(([\d.]+)\)')  # BasicSR MessageLogger: avg iter time (data time)
SIZE_RE = re.compile(r'(\d+)(?:x(\d+))?')  # @SIZE of a --fer entry: N or HxW
FER_HELP = (
    'FER classifiers, each CONFIG[=CHECKPOINT][@SIZE]: an mmpretrain config file (e.g. options/fer/*.py; relative '
    'to the current folder or the repository), optionally its weights (cpu-small pre-trains a classifier given '
    'without them; paper needs them except for its own classifier) and network_fer.input_size (N or HxW: faces '
    'are resized to it before the classifier; default: fed as they are), e.g. options/fer/deit-tiny_fer7.py@112 '
    "or my_fer.py=work_dirs/my_fer/fer_final.pth. Default: the preset's own classifier, with the cell names of "
    'earlier runs; other classifiers add their config stem (and _in<SIZE>) to their cell names'
)


@dataclasses.dataclass(frozen=True)
class Classifier:
    """One FER classifier of the benchmark (a ``--fer`` entry).

    Attributes:
        config: Absolute path of the mmpretrain config.
        checkpoint: Weights (None until :func:`prepare_data_and_classifiers` provides them).
        input_size: ``network_fer.input_size`` (``N`` or ``(h, w)``), or None to feed the faces as they are.
        label: Its name in the tables: the config stem, with ``@SIZE``.
        tag: Suffix of its cell names; empty for the preset's own classifier (the names of a run without --fer).
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
    """One benchmark row: a classifier, a backbone, a scale and a method.

    Attributes:
        name: Folder ``cells/<name>/`` of its evaluation and ``result.json``.
        train_name: BasicSR experiment of its ``network_g`` (plain cells share one across classifiers).
        backbone: One of :data:`BACKBONES`.
        scale: Upscale factor.
        method: ``plain`` or ``srfer``.
        fer: The classifier that evaluates it (and trains it, for SR-FER).
    """

    name: str
    train_name: str
    backbone: str
    scale: int
    method: str
    fer: Classifier


def parse_fer_entry(entry: str) -> tuple[str, str | None, int | tuple[int, int] | None]:
    """Split a ``--fer`` entry ``CONFIG[=CHECKPOINT][@SIZE]``.

    ``@`` starts the size only when what follows the last ``@`` is ``N`` or ``HxW``; ``=`` is the first one.

    Returns:
        ``(config, checkpoint or None, input_size or None)``.
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


def _size_text(input_size: int | tuple[int, int]) -> str:
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
        path = config if os.path.isfile(config) else os.path.join(REPO_ROOT, config)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'--fer: mmpretrain config {config!r} does not exist')
        if checkpoint and not os.path.isfile(checkpoint):
            raise FileNotFoundError(f'--fer: checkpoint {checkpoint!r} of {config!r} does not exist')
        path = os.path.abspath(path)
        own = os.path.realpath(path) == os.path.realpath(own_config)
        stem = os.path.splitext(os.path.basename(path))[0]
        size = f'_in{_size_text(input_size)}' if input_size else ''
        label = stem + (f'@{_size_text(input_size)}' if input_size else '')
        tag = '' if own and not input_size else re.sub(r'[^0-9A-Za-z]+', '_', stem) + size
        if any(label == c.label or tag == c.tag for c in classifiers):
            raise ValueError(f'--fer: classifier {label} is given twice (config stems and sizes must differ)')
        if checkpoint is None and preset == 'paper':
            if not own:
                raise ValueError(f'--fer {config!r}: the paper preset trains no classifier; give CONFIG=CHECKPOINT')
            checkpoint = template(preset, 'srfer', None, None, None)['network_fer']['checkpoint']
        checkpoint = os.path.abspath(checkpoint) if checkpoint else None
        classifiers.append(Classifier(path, checkpoint, input_size, label, tag, own))
    return classifiers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ``classifiers`` holds the resolved ``--fer`` entries."""
    parser = argparse.ArgumentParser(
        description='Benchmark SR-FER against plain SR over classifiers, backbones and scales.'
    )
    parser.add_argument('--backbones', nargs='+', default=list(BACKBONES), choices=BACKBONES)
    parser.add_argument('--scales', nargs='+', type=int, default=list(SCALES), choices=SCALES)
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    parser.add_argument('--fer', nargs='+', default=None, metavar='CONFIG[=CHECKPOINT][@SIZE]', help=FER_HELP)
    parser.add_argument('--iters', type=int, default=None, help='training iterations per cell (preset default)')
    parser.add_argument('--preset', choices=sorted(PRESETS), default='cpu-small')
    parser.add_argument('--data-root', default=None, help='FER dataset in the plugin layout (preset default)')
    parser.add_argument(
        '--fer-checkpoint', default=None, help='weights of the only classifier (preset default; several: --fer C=W)'
    )
    parser.add_argument('--exp-root', default='.', help='folder of experiments/ (and the demo caches)')
    parser.add_argument('--out', default=None, help='output folder (default: results/benchmark_<preset>)')
    args = parser.parse_args(argv)
    if args.iters is not None and args.iters < 1:
        parser.error(f'--iters must be >= 1, got {args.iters}')
    try:
        args.classifiers = resolve_classifiers(args.preset, args.fer, args.fer_checkpoint)
    except ValueError as err:
        parser.error(str(err))
    return args


def _check_files(preset: str, data_root: str, classifiers: list[Classifier]) -> None:
    """Raise FileNotFoundError naming the first missing dataset list or classifier checkpoint."""
    files = [
        ('train list', os.path.join(data_root, 'meta_info_train.txt')),
        ('test list', os.path.join(data_root, 'meta_info_test.txt')),
    ]
    for c in classifiers:
        files.append((f'FER checkpoint of {c.label} (--fer-checkpoint or --fer CONFIG=CHECKPOINT)', c.checkpoint or ''))
    for what, path in files:
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'{preset} benchmark: {what} {path!r} does not exist (see docs/datasets.md and '
                'scripts/train_fer.py; --data-root, --fer-checkpoint and --fer choose others)'
            )


def pretrain_classifier(config: str, data_root: str, exp_root: str) -> str:
    """Pre-train (or reuse) a classifier on the synthetic faces like the demo's; return its ``fer_final.pth``."""
    from srfer_plugin import fer_pretrain
    from srfer_plugin.demo import FER_DATALOADER_OPTIONS
    from srfer_plugin.demo import PRESETS as DEMO_PRESETS

    work_dir = os.path.join(exp_root, 'experiments', f'bench_fer_{os.path.splitext(os.path.basename(config))[0]}')
    print(f'FER pre-training (mmpretrain, {config}) -> {work_dir}', flush=True)
    summary = fer_pretrain.train_fer(
        config,
        work_dir=work_dir,
        data_root=data_root,
        device='cpu',
        seed=0,
        max_epochs=DEMO_PRESETS['default']['fer_epochs'],
        cfg_options=FER_DATALOADER_OPTIONS,
        reuse=True,
    )
    return os.path.abspath(summary['fer_final'])


def prepare_data_and_classifiers(args: argparse.Namespace) -> tuple[str, list[Classifier]]:
    """The dataset root and the classifiers with their weights, before any SR training starts.

    ``cpu-small`` generates the synthetic faces and pre-trains the classifiers given without weights (cached);
    ``paper`` checks that its files exist.

    Returns:
        ``(data_root, classifiers)``: an absolute path, and ``args.classifiers`` with absolute checkpoints.
    """
    classifiers = list(args.classifiers)
    if args.preset != 'cpu-small':
        data_root = (
            args.data_root or template(args.preset, 'srfer', None, None, None)['datasets']['train']['dataroot_gt']
        )
        _check_files(args.preset, data_root, classifiers)
        return os.path.abspath(data_root), classifiers
    from srfer_plugin.demo import FER_DEMO_CONFIG
    from srfer_plugin.demo import prepare_data_and_classifier as demo_prepare

    exp_root = os.path.abspath(args.exp_root)
    demo_config = os.path.realpath(os.path.join(REPO_ROOT, FER_DEMO_CONFIG))

    def demo_cache(fer: Classifier) -> bool:
        return fer.checkpoint is None and os.path.realpath(fer.config) == demo_config

    if any(demo_cache(c) for c in classifiers):
        data_root, fer = demo_prepare('default', exp_root, args.data_root)  # the demo's data and classifier cache
        classifiers = [dataclasses.replace(c, checkpoint=fer['fer_final']) if demo_cache(c) else c for c in classifiers]
    elif args.data_root:
        data_root = os.path.abspath(args.data_root)
        _check_files(args.preset, data_root, [])
    else:
        from srfer_plugin.data.synthetic_faces import ensure_synthetic_dataset
        from srfer_plugin.demo import PRESETS as DEMO_PRESETS

        sizes = {k: DEMO_PRESETS['default'][k] for k in ('num_train', 'num_val', 'num_test')}
        data_root = os.path.join(exp_root, 'datasets', 'synthetic_fer_default')  # the demo's default dataset
        print(f'synthetic faces -> {data_root}', flush=True)
        ensure_synthetic_dataset(data_root, seed=0, size=112, **sizes)
    classifiers = [
        c if c.checkpoint else dataclasses.replace(c, checkpoint=pretrain_classifier(c.config, data_root, exp_root))
        for c in classifiers
    ]
    return os.path.abspath(data_root), classifiers


def plan_cells(
    preset: str,
    classifiers: list[Classifier],
    backbones: list[str] | tuple[str, ...],
    scales: list[int] | tuple[int, ...],
    methods: list[str] | tuple[str, ...] = METHODS,
) -> list[Cell]:
    """Every row of a run, classifier by classifier, in the order they run.

    SR-FER cells train one network per classifier; plain cells of a backbone and scale share one training
    (today's plain cell name) and get one evaluation per classifier.
    """
    cells = []
    for fer in classifiers:
        for backbone in backbones:
            for scale in scales:
                for method in methods:
                    name = cell_name(preset, backbone, scale, method, fer.tag)
                    train_name = cell_name(preset, backbone, scale, method) if method == 'plain' else name
                    cells.append(Cell(name, train_name, backbone, int(scale), method, fer))
    return cells


def fer_network_options(network_fer: dict[str, Any], fer: Classifier) -> dict[str, Any]:
    """A ``network_fer`` section with ``fer``'s config, checkpoint and input size.

    The preset's own classifier keeps the section's ``stages``; other configs get MMPretrainFER's default.
    """
    section = dict(network_fer, config=fer.config, checkpoint=fer.checkpoint)
    if fer.input_size is not None:
        section['input_size'] = fer.input_size if isinstance(fer.input_size, int) else list(fer.input_size)
    if not fer.own:
        section.pop('stages', None)
    return section


def cell_options(cell: Cell, preset: str, iters: int | None, data_root: str) -> dict[str, Any]:
    """The training options of a cell's ``network_g`` (named ``cell.train_name``)."""
    opt = make_options(cell.backbone, cell.scale, cell.method, preset, iters, data_root, cell.fer.checkpoint)
    opt['name'] = cell.train_name
    if 'network_fer' in opt:
        opt['network_fer'] = fer_network_options(opt['network_fer'], cell.fer)  # absolute: trainings run elsewhere
    return opt


def train_cell(opt_path: str, exp_root: str, log_path: str) -> None:
    """Train (or resume) one cell in a subprocess; raise with the log tail when it fails."""
    cmd = [sys.executable, '-m', 'srfer_plugin.train', '-opt', opt_path, '--auto_resume']
    with open(log_path, 'a', encoding='utf-8') as log:
        proc = subprocess.run(cmd, cwd=exp_root, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        with open(log_path, encoding='utf-8') as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'training failed (exit {proc.returncode}): {" ".join(cmd)}\n{tail}')


def train_seconds_per_iter(exp_dir: str) -> float | None:
    """The last iteration time BasicSR logged (its running average, ``time (data): t (d)``)."""
    times = []
    for name in sorted(os.listdir(exp_dir)):
        if name.startswith('train_') and name.endswith('.log'):
            with open(os.path.join(exp_dir, name), encoding='utf-8') as f:
                times += [float(m.group(1)) for m in TIME_RE.finditer(f.read())]
    return times[-1] if times else None


def evaluate_cell(
    data_root: str, fer: Classifier, net_g_path: str, results_root: str, network_g: dict[str, Any], scale: int
) -> tuple[dict[str, float], int]:
    """The demo's evaluation of a trained ``network_g`` under one classifier.

    Returns:
        ``(metrics, params)``: ``acc``, ``acc_hr``, ``acc_bicubic``, ``psnr``, ``ssim``, and the parameter
        count of ``network_g``. The srfer-test reports go to ``results_root``.
    """
    from srfer_plugin.demo import evaluation_options, run_evaluation

    opt = evaluation_options(
        data_root, fer.checkpoint, net_g_path, results_root, network_g=network_g, scale=scale, fer_config=fer.config
    )
    opt['network_fer'] = fer_network_options(opt['network_fer'], fer)
    metrics, model = run_evaluation(opt)
    params = sum(p.numel() for p in model.get_bare_model(model.net_g).parameters())
    return metrics, int(params)


def run_cell(args: argparse.Namespace, out: str, data_root: str, cell: Cell) -> dict[str, Any]:
    """Train (unless its ``network_g`` exists) and evaluate one cell unless its ``result.json`` exists.

    Returns:
        Its row (:data:`COLUMNS`).
    """
    name = cell.name
    row: dict[str, Any] = {'fer': cell.fer.label, 'backbone': cell.backbone, 'scale': cell.scale, 'method': cell.method}
    reason = unsupported_reason(cell.backbone, cell.scale)
    if reason:
        return dict(row, status='unsupported', note=reason)
    cell_dir = os.path.join(out, 'cells', name)
    result_path = os.path.join(cell_dir, 'result.json')
    if os.path.exists(result_path):
        print(f'[{name}] finished before: skipped', flush=True)
        with open(result_path, encoding='utf-8') as f:
            return {'fer': cell.fer.label, **json.load(f)}  # results of runs before --fer have no fer
    os.makedirs(cell_dir, exist_ok=True)
    opt = cell_options(cell, args.preset, args.iters, data_root)
    train_dir = os.path.join(out, 'cells', cell.train_name)
    opt_path = write_options(opt, os.path.join(train_dir, f'{cell.train_name}.yml'))
    exp_root = os.path.abspath(args.exp_root)
    exp_dir = os.path.join(exp_root, 'experiments', cell.train_name)
    net_g_path = os.path.join(exp_dir, 'models', 'net_g_latest.pth')
    start = time.time()
    if not os.path.exists(net_g_path):
        print(f'[{cell.train_name}] training {opt["train"]["total_iter"]} iterations', flush=True)
        train_cell(opt_path, exp_root, os.path.join(train_dir, 'train_stdout.log'))
    print(f'[{name}] evaluating with {cell.fer.label}', flush=True)
    metrics, params = evaluate_cell(
        data_root, cell.fer, net_g_path, os.path.join(cell_dir, 'eval'), opt['network_g'], cell.scale
    )
    row.update({key: float(metrics[key]) for key in METRIC_KEYS})
    shared = f'; network_g of {cell.train_name}' if cell.train_name != name else ''
    row.update(
        status='done',
        iters=opt['train']['total_iter'],
        train_s_per_iter=train_seconds_per_iter(exp_dir),
        params=params,
        note=f'cell wall time {time.time() - start:.0f} s{shared}',
    )
    tmp = result_path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(row, f, indent=2)
    os.replace(tmp, result_path)  # written last: a cell without result.json is not finished
    print(f'[{name}] ' + ', '.join(f'{k} {row[k]:.4g}' for k in METRIC_KEYS), flush=True)
    return row


def _fmt(value: Any) -> str:
    if value is None or value == '':
        return ''
    if isinstance(value, float):
        return f'{value:.4f}' if abs(value) < 1 else f'{value:.2f}'
    return str(value)


def _display_path(path: str | None) -> str:
    if not path:
        return ''
    rel = os.path.relpath(path, REPO_ROOT)
    return path if rel.startswith('..') else rel


def _table(header: list[str], body: list[list[Any]]) -> list[str]:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return lines + ['| ' + ' | '.join(_fmt(v) for v in row) + ' |' for row in body]


def comparison(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Per classifier, backbone and scale: HR, bicubic, plain SR and SR-FER accuracy and SR-FER minus plain."""
    groups: dict[tuple[str, str, int], dict[str, dict[str, Any]]] = {}
    for row in rows:
        if row.get('status') == 'done':
            groups.setdefault((row['fer'], row['backbone'], int(row['scale'])), {})[row['method']] = row
    body = []
    for (fer, backbone, scale), methods in groups.items():
        any_row = next(iter(methods.values()))
        plain, srfer = (float(methods[m]['acc']) if m in methods else None for m in ('plain', 'srfer'))
        gain = srfer - plain if plain is not None and srfer is not None else None
        body.append([fer, backbone, scale, any_row['acc_hr'], any_row['acc_bicubic'], plain, srfer, gain])
    return body


def write_tables(
    rows: list[dict[str, Any]], out: str, command: str, classifiers: list[Classifier] | None = None
) -> None:
    """Write ``benchmark.csv`` and ``benchmark.md`` (classifiers, every cell, plain vs SR-FER per classifier)."""
    with open(os.path.join(out, 'benchmark.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    hr_acc = {}
    for row in rows:
        if row.get('status') == 'done':
            hr_acc.setdefault(row['fer'], row['acc_hr'])
    fers = []
    for c in classifiers or []:
        size = _size_text(c.input_size) if c.input_size else ''
        fers.append([c.label, _display_path(c.config), _display_path(c.checkpoint), size, hr_acc.get(c.label)])
    lines = ['# SR-FER benchmark', '', f'Command: `{command}`', '', '## Classifiers', '']
    lines += _table(['fer', 'config', 'checkpoint', 'input_size', 'acc_hr'], fers)
    lines += [
        '',
        'acc_hr: accuracy (%) of the classifier on the HR test faces (the same in all its cells).',
        '',
        '## Cells',
        '',
    ]
    lines += _table(list(COLUMNS), [[row.get(c) for c in COLUMNS] for row in rows])
    lines += [
        '',
        'acc: FER accuracy (%) on the SR output; acc_hr: on HR; acc_bicubic: on bicubic upsampling (the frozen '
        'classifier of the row, test split). psnr/ssim: Y channel, scale pixels cropped. plain = BasicSR SRModel '
        '(L1, one training per backbone and scale, evaluated by each classifier), srfer = SRFERModel (L1 + '
        "attention and prediction consistency with the row's classifier). train_s_per_iter: BasicSR's logged "
        'average iteration time. params: network_g parameters.',
        '',
        '## Plain SR vs SR-FER under the same classifier',
        '',
    ]
    header = ['fer', 'backbone', 'scale', 'acc_hr', 'acc_bicubic', 'acc plain', 'acc srfer', 'srfer - plain']
    lines += _table(header, comparison(rows))
    lines.append('')
    with open(os.path.join(out, 'benchmark.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))


def plot(rows: list[dict[str, Any]], out: str) -> str:
    """Accuracy per scale, one row of panels per classifier and one column per backbone."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    backbones = [b for b in BACKBONES if any(r['backbone'] == b for r in rows)]
    fers = list(dict.fromkeys(r.get('fer', '') for r in rows))
    fig, axes = plt.subplots(
        len(fers), len(backbones), figsize=(3.2 * len(backbones), 3.2 * len(fers)), squeeze=False, sharey=True
    )
    curves = (
        ('plain SR', lambda r: r['method'] == 'plain', 'acc', 'o-'),
        ('SR-FER', lambda r: r['method'] == 'srfer', 'acc', 's-'),
        ('HR', lambda r: True, 'acc_hr', 'k--'),
        ('bicubic', lambda r: True, 'acc_bicubic', 'k:'),
    )
    for fer, panels in zip(fers, axes):
        for ax, backbone in zip(panels, backbones):
            done = [
                r for r in rows if r.get('fer', '') == fer and r['backbone'] == backbone and r.get('status') == 'done'
            ]
            for label, keep, key, style in curves:
                points = dict(sorted((int(r['scale']), float(r[key])) for r in done if keep(r)))
                if points:
                    ax.plot(list(points), list(points.values()), style, label=label)
            ax.set_title(backbone if len(fers) == 1 else f'{backbone} | {fer}', fontsize=9)
            ax.set_xlabel('scale')
            ax.set_xscale('log', base=2)
            ax.set_xticks(SCALES, [f'x{s}' for s in SCALES])
            ax.grid(alpha=0.3)
        panels[0].set_ylabel('FER accuracy (%)' if len(fers) == 1 else f'{fer}\nFER accuracy (%)')
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, 'benchmark_acc.png')
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    command = 'python scripts/benchmark.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    out = os.path.abspath(args.out or os.path.join('results', f'benchmark_{args.preset.replace("-", "_")}'))
    os.makedirs(out, exist_ok=True)
    data_root, classifiers = prepare_data_and_classifiers(args)
    rows = []
    for cell in plan_cells(args.preset, classifiers, args.backbones, args.scales, args.methods):
        rows.append(run_cell(args, out, data_root, cell))
        write_tables(rows, out, command, classifiers)  # partial tables survive an interruption
    plot(rows, out)
    with open(os.path.join(out, 'benchmark.md'), encoding='utf-8') as f:
        print(f.read(), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
