"""Train and evaluate every benchmark cell (backbone x scale x {plain SR, SR-FER}) and tabulate the results.

Example::

    python scripts/benchmark.py --preset cpu-small                      # whole matrix on CPU (about 40 min)
    python scripts/benchmark.py --preset paper --backbones RCAN EDSR --scales 4 --iters 300000

Cells come from ``scripts/make_benchmark_options.py`` (one template per preset). Each cell is trained by
``python -m srfer_plugin.train -opt <cell>.yml --auto_resume`` in a subprocess, so an interrupted cell resumes
from its last training state, and is then evaluated on the test split with the demo's evaluation
(``srfer_plugin.demo.evaluate_sr``): PSNR/SSIM (Y channel) and the accuracy of one frozen FER classifier on SR
(``acc``), HR (``acc_hr``) and bicubic (``acc_bicubic``) images. Plain-SR cells (BasicSR ``SRModel``, L1 only)
are evaluated the same way. A cell whose ``result.json`` exists is skipped: rerunning the command continues an
interrupted benchmark. Cells a backbone cannot run in BasicSR 1.4.2 (RRDBNet and MSRResNet at x8) are listed
as ``unsupported`` with the reason.

Data and classifier:

* ``cpu-small``: the demo's synthetic faces and its pre-trained FER classifier (generated and trained on the
  first run, then shared with ``python -m srfer_plugin.demo`` through ``--exp-root``).
* ``paper``: the dataset and classifier of ``options/train_RCAN_srfer_x4.yml`` (``--data-root`` and
  ``--fer-checkpoint`` override them); both must exist before anything trains.

Outputs under ``--out`` (default ``results/benchmark_<preset>``): ``benchmark.csv``, ``benchmark.md``,
``benchmark_acc.png`` (accuracy per scale, one panel per backbone) and ``cells/<name>/`` (options, training
output, evaluation reports, ``result.json``). BasicSR writes ``experiments/<name>/`` under ``--exp-root``.
"""

from __future__ import annotations

import argparse
import csv
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
    make_options,
    template,
    unsupported_reason,
    write_options,
)

COLUMNS = (
    'backbone', 'scale', 'method', 'status', 'acc', 'acc_hr', 'acc_bicubic', 'psnr', 'ssim',
    'train_s_per_iter', 'params', 'iters', 'note',
)  # fmt: skip
METRIC_KEYS = ('acc', 'acc_hr', 'acc_bicubic', 'psnr', 'ssim')
TIME_RE = re.compile(r'time \(data\): ([\d.]+) \(([\d.]+)\)')  # BasicSR MessageLogger: avg iter time (data time)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Benchmark SR-FER against plain SR over backbones and scales.')
    parser.add_argument('--backbones', nargs='+', default=list(BACKBONES), choices=BACKBONES)
    parser.add_argument('--scales', nargs='+', type=int, default=list(SCALES), choices=SCALES)
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    parser.add_argument('--iters', type=int, default=None, help='training iterations per cell (preset default)')
    parser.add_argument('--preset', choices=sorted(PRESETS), default='cpu-small')
    parser.add_argument('--data-root', default=None, help='FER dataset in the plugin layout (preset default)')
    parser.add_argument('--fer-checkpoint', default=None, help='FER classifier weights (preset default)')
    parser.add_argument('--exp-root', default='.', help='folder of experiments/ (and the demo caches)')
    parser.add_argument('--out', default=None, help='output folder (default: results/benchmark_<preset>)')
    args = parser.parse_args(argv)
    if args.iters is not None and args.iters < 1:
        parser.error(f'--iters must be >= 1, got {args.iters}')
    return args


def prepare_data_and_classifier(args: argparse.Namespace) -> tuple[str, str]:
    """The dataset root and FER checkpoint of the run, checked before any training starts.

    Returns:
        ``(data_root, fer_checkpoint)`` as absolute paths.
    """
    if args.preset == 'cpu-small' and not (args.data_root and args.fer_checkpoint):
        from srfer_plugin.demo import prepare_data_and_classifier as demo_prepare

        data_root, fer = demo_prepare('default', os.path.abspath(args.exp_root), args.data_root)
        return data_root, fer['fer_final']
    recipe = template(args.preset, 'srfer', None, args.data_root, args.fer_checkpoint)
    data_root = args.data_root or recipe['datasets']['train']['dataroot_gt']
    fer_checkpoint = args.fer_checkpoint or recipe['network_fer']['checkpoint']
    for what, path in (('train list', os.path.join(data_root, 'meta_info_train.txt')),
                       ('test list', os.path.join(data_root, 'meta_info_test.txt')),
                       ('FER checkpoint (--fer-checkpoint)', fer_checkpoint)):  # fmt: skip
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'{args.preset} benchmark: {what} {path!r} does not exist (see docs/datasets.md and '
                'scripts/train_fer.py; --data-root and --fer-checkpoint choose others)'
            )
    return os.path.abspath(data_root), os.path.abspath(fer_checkpoint)


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


def run_cell(
    args: argparse.Namespace,
    out: str,
    data_root: str,
    fer_checkpoint: str,
    fer_config: str,
    backbone: str,
    scale: int,
    method: str,
) -> dict[str, Any]:
    """Train and evaluate one cell unless its ``result.json`` exists; return its row."""
    from srfer_plugin.demo import evaluate_sr

    name = cell_name(args.preset, backbone, scale, method)
    row: dict[str, Any] = {'backbone': backbone, 'scale': scale, 'method': method}
    reason = unsupported_reason(backbone, scale)
    if reason:
        return dict(row, status='unsupported', note=reason)
    cell_dir = os.path.join(out, 'cells', name)
    result_path = os.path.join(cell_dir, 'result.json')
    if os.path.exists(result_path):
        print(f'[{name}] finished before: skipped', flush=True)
        with open(result_path, encoding='utf-8') as f:
            return json.load(f)
    os.makedirs(cell_dir, exist_ok=True)
    opt = make_options(backbone, scale, method, args.preset, args.iters, data_root, fer_checkpoint)
    if 'network_fer' in opt:
        opt['network_fer']['config'] = fer_config  # absolute: trainings run in --exp-root
    opt_path = write_options(opt, os.path.join(cell_dir, f'{name}.yml'))
    exp_root = os.path.abspath(args.exp_root)
    exp_dir = os.path.join(exp_root, 'experiments', name)
    net_g_path = os.path.join(exp_dir, 'models', 'net_g_latest.pth')
    start = time.time()
    if not os.path.exists(net_g_path):
        print(f'[{name}] training {opt["train"]["total_iter"]} iterations', flush=True)
        train_cell(opt_path, exp_root, os.path.join(cell_dir, 'train_stdout.log'))
    print(f'[{name}] evaluating', flush=True)
    metrics, model = evaluate_sr(
        data_root, fer_checkpoint, net_g_path, os.path.join(cell_dir, 'eval'),
        network_g=opt['network_g'], scale=scale, fer_config=fer_config,
    )  # fmt: skip
    row.update({key: float(metrics[key]) for key in METRIC_KEYS})
    row.update(
        status='done',
        iters=opt['train']['total_iter'],
        train_s_per_iter=train_seconds_per_iter(exp_dir),
        params=sum(p.numel() for p in model.get_bare_model(model.net_g).parameters()),
        note=f'cell wall time {time.time() - start:.0f} s',
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


def write_tables(rows: list[dict[str, Any]], out: str, command: str) -> None:
    """Write ``benchmark.csv`` and ``benchmark.md``."""
    with open(os.path.join(out, 'benchmark.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        '# SR-FER benchmark',
        '',
        f'Command: `{command}`',
        '',
        '| ' + ' | '.join(COLUMNS) + ' |',
        '|' + '---|' * len(COLUMNS),
    ]
    lines += ['| ' + ' | '.join(_fmt(row.get(c)) for c in COLUMNS) + ' |' for row in rows]
    lines += [
        '',
        'acc: FER accuracy (%) on the SR output; acc_hr: on HR; acc_bicubic: on bicubic upsampling (same frozen '
        'classifier, test split). psnr/ssim: Y channel, scale pixels cropped. plain = BasicSR SRModel (L1), '
        "srfer = SRFERModel (L1 + attention and prediction consistency). train_s_per_iter: BasicSR's logged "
        'average iteration time. params: network_g parameters.',
        '',
    ]
    with open(os.path.join(out, 'benchmark.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))


def plot(rows: list[dict[str, Any]], out: str) -> str:
    """Accuracy per scale, one panel per backbone (plain, SR-FER, HR and bicubic references)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    backbones = [b for b in BACKBONES if any(r['backbone'] == b for r in rows)]
    fig, axes = plt.subplots(1, len(backbones), figsize=(3.2 * len(backbones), 3.2), squeeze=False, sharey=True)
    for ax, backbone in zip(axes[0], backbones):
        done = [r for r in rows if r['backbone'] == backbone and r.get('status') == 'done']
        curves = (
            ('plain SR', lambda r: r['method'] == 'plain', 'acc', 'o-'),
            ('SR-FER', lambda r: r['method'] == 'srfer', 'acc', 's-'),
            ('HR', lambda r: True, 'acc_hr', 'k--'),
            ('bicubic', lambda r: True, 'acc_bicubic', 'k:'),
        )
        for label, keep, key, style in curves:
            points = dict(sorted((int(r['scale']), float(r[key])) for r in done if keep(r)))
            if points:
                ax.plot(list(points), list(points.values()), style, label=label)
        ax.set_title(backbone)
        ax.set_xlabel('scale')
        ax.set_xscale('log', base=2)
        ax.set_xticks(SCALES, [f'x{s}' for s in SCALES])
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel('FER accuracy (%)')
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
    data_root, fer_checkpoint = prepare_data_and_classifier(args)
    fer_config = template(args.preset, 'srfer', None, data_root, fer_checkpoint)['network_fer']['config']
    fer_config = os.path.join(REPO_ROOT, fer_config)  # no-op when already absolute
    rows = []
    for backbone in args.backbones:
        for scale in args.scales:
            for method in args.methods:
                rows.append(run_cell(args, out, data_root, fer_checkpoint, fer_config, backbone, scale, method))
                write_tables(rows, out, command)  # partial tables survive an interruption
    plot(rows, out)
    with open(os.path.join(out, 'benchmark.md'), encoding='utf-8') as f:
        print(f.read(), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
