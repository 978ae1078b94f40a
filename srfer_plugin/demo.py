"""The bundled default: ``python -m srfer_plugin.demo`` (console script ``srfer-demo``).

One command runs the whole SR-FER chain on a CPU, with nothing to download:

1. generates synthetic expression faces (cached under ``datasets/``);
2. pre-trains the FER classifier with mmengine's Runner (cached under ``experiments/``);
3. trains a plain SR model (the plugin's ``SafeSRModel``: BasicSR's ``SRModel`` with the plugin's training fixes,
   pixel loss only);
4. trains SR-FER with the same backbone, data, iterations and seed;
5. evaluates bicubic, plain SR, SR-FER and HR on the test split with the same classifier,

and writes ``report.csv``, ``report.md``, ``accuracy.png`` and ``faces.png`` under ``results/demo``. Both SR runs
are real BasicSR trainings (``python -m srfer_plugin.train`` on option files written to ``results/demo/options``),
so they resume when interrupted and can be rerun by hand. The experiment itself (data, classifier, options, training,
evaluation) is the library ``srfer_plugin.studies``; this module is its command line and report.

``--full`` adds two rows: joint SR-FER (``srfer_joint``: SR-FER with the classifier trained too), scored by the
classifier its training adapted (``net_fer_latest.pth``) instead of the frozen one; and the first baseline a
reviewer asks for, bicubic faces read by a classifier trained on x4 LR faces (``lr_classifier``: the same network
pre-trained on bicubic-upsampled x4 faces, ``srfer::fer/resnet18slim_fer7_demo_lr_x4.py``). They are not in the
default run because their trainings would take it past its 15-minute budget on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from typing import Any

import torch
from basicsr.data import build_dataset

from srfer_plugin.data.degradations import upsample_bicubic
from srfer_plugin.predictor import SRFERPredictor
from srfer_plugin.studies import baselines
from srfer_plugin.studies.evaluation import evaluate_bicubic, evaluate_sr
from srfer_plugin.studies.runner import network_path, run_training, write_options
from srfer_plugin.studies.synthetic import (
    DEMO_JOINT_LEARNING,
    DEMO_NETWORK_G,
    DEMO_SRFER_LOSSES,
    FER_DEMO_CONFIG,
    PRESETS,
    dataset_options,
    prepare_data_and_classifier,
    pretrain_fer,
    sr_options,
)
from srfer_plugin.synthetic import SyntheticRootError
from srfer_plugin.utils.cli_args import at_least
from srfer_plugin.utils.formatting import format_value

METHODS = ('hr', 'bicubic', 'plain_sr', 'srfer')
FULL_METHODS = (*METHODS, 'srfer_joint', 'lr_classifier')  # --full
METHOD_TITLES = {'hr': 'HR', 'bicubic': 'bicubic', 'plain_sr': 'plain SR', 'srfer': 'SR-FER', 'lr': 'LR'}
METHOD_TITLES.update(srfer_joint='joint SR-FER', lr_classifier='bicubic + LR-trained classifier')
LR_CLASSIFIER_CONFIG = baselines.classifier_config('lr', 4, 'bicubic')  # the demo's network on x4 LR faces


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='SR-FER demo on synthetic faces (CPU, no downloads).')
    parser.add_argument('--quick', action='store_true', help='smoke run of the whole chain (~5 min)')
    parser.add_argument(
        '--full',
        action='store_true',
        help='also train joint SR-FER (scored by its adapted classifier) and a classifier on x4 LR faces',
    )
    parser.add_argument(
        '--seed', type=at_least(0), default=0, help='seed of the SR trainings (data and FER stay fixed)'
    )
    parser.add_argument('--sr-iters', type=at_least(1), help='SR training iterations (default: from the preset)')
    parser.add_argument('--out', default='results/demo', help='report folder')
    parser.add_argument(
        '--data-root',
        help='synthetic dataset folder: new, or written by the generator (default: datasets/synthetic_fer[_quick])',
    )
    parser.add_argument('--exp-root', default='.', help='folder that receives experiments/ and tb_logger/')
    parser.add_argument('--num-grid-faces', type=at_least(1), default=6, help='faces in faces.png')
    return parser.parse_args(argv)


def train_sr(opt: dict[str, Any], opt_dir: str, exp_root: str, desc: str) -> str:
    """Write ``opt`` to ``opt_dir`` and train it with a progress bar, unless its ``net_g_latest.pth`` exists.

    Args:
        opt: Options of :func:`srfer_plugin.studies.synthetic.sr_options`.
        opt_dir: Folder of the option file (``<name>.yml``, rerunnable by hand).
        exp_root: Working folder of the training.
        desc: Title of the progress bar.

    Returns:
        The path of the trained ``net_g_latest.pth``.
    """
    opt_path = write_options(opt, os.path.join(opt_dir, f'{opt["name"]}.yml'))
    latest = network_path(exp_root, opt['name'])
    if os.path.isfile(latest):
        print(f'{desc}: reusing {latest}')
        return latest
    return run_training(opt_path, exp_root, progress=desc, env={'PYTHONWARNINGS': 'ignore'})


def write_report(out_dir: str, rows: dict[str, dict[str, float]], settings: dict[str, Any]) -> None:
    """Write ``report.csv``, ``report.md`` and the bar chart ``accuracy.png`` (the ``--full`` rows too when in
    rows)."""
    os.makedirs(out_dir, exist_ok=True)
    methods = [m for m in FULL_METHODS if m in rows]
    with open(os.path.join(out_dir, 'report.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['method', 'acc', 'psnr', 'ssim'])
        for method in methods:
            row = rows[method]
            writer.writerow([method] + [format_value(row.get(key)) for key in ('acc', 'psnr', 'ssim')])
    plot_accuracy(rows, os.path.join(out_dir, 'accuracy.png'))
    lines = [
        '# SR-FER demo report',
        '',
        f'Synthetic expression faces, x4, test split of {settings["num_test_images"]} faces; FER accuracy of the '
        f'same classifier (HR test accuracy {rows["hr"]["acc"]:.2f}%). PSNR/SSIM on the Y channel, border 4.',
        '',
        '| method | acc (%) | PSNR (dB) | SSIM |',
        '| --- | --- | --- | --- |',
    ]
    for method in methods:
        row = rows[method]
        cells = [format_value(row.get('acc'), 2), format_value(row.get('psnr'), 2), format_value(row.get('ssim'))]
        lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
    srfer, plain, bic, hr = (rows[m]['acc'] for m in ('srfer', 'plain_sr', 'bicubic', 'hr'))
    gap = (srfer - bic) / (hr - bic) if hr != bic else float('nan')
    psnr_delta = rows['srfer']['psnr'] - rows['plain_sr']['psnr']
    lines += [
        '',
        f'- SR-FER vs plain SR: {srfer - plain:+.2f} acc points, {psnr_delta:+.2f} dB PSNR',
        f'- SR-FER vs bicubic: {srfer - bic:+.2f} acc points; gap closed (acc_sr - acc_bicubic) / '
        f'(acc_hr - acc_bicubic) = {gap:.2f}',
        *joint_lines(rows),
        *lr_classifier_lines(rows),
        '',
        '![accuracy](accuracy.png)',
        '',
        '![faces](faces.png)',
        '',
        '## Settings',
        '',
        '```json',
        json.dumps(settings, indent=2),
        '```',
        '',
    ]
    with open(os.path.join(out_dir, 'report.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))


def joint_lines(rows: dict[str, dict[str, float]]) -> list[str]:
    """The report's lines on ``srfer_joint`` (none without it): scored by its adapted classifier, not the frozen one."""
    if 'srfer_joint' not in rows:
        return []
    joint, srfer = rows['srfer_joint'], rows['srfer']
    return [
        f'- srfer_joint (joint SR-FER, --full) is scored by its own adapted classifier (fine-tuned in its training, '
        f"net_fer_latest.pth), every other row by the frozen one. That classifier's accuracy is "
        f'{joint["acc_hr"]:.2f} % on HR and {joint["acc_bicubic"]:.2f} % on bicubic; against frozen SR-FER: '
        f'{joint["acc"] - srfer["acc"]:+.2f} acc points, {joint["psnr"] - srfer["psnr"]:+.2f} dB PSNR',
    ]


def lr_classifier_lines(rows: dict[str, dict[str, float]]) -> list[str]:
    """The report's lines on ``lr_classifier`` (none without it): another classifier, and SR-FER against it."""
    if 'lr_classifier' not in rows:
        return []
    lr, srfer = rows['lr_classifier'], rows['srfer']['acc']
    verdict = 'below' if srfer > lr['acc'] else 'at or above'
    return [
        f'- lr_classifier (--full) reads the bicubic faces with a classifier trained on x4 LR faces instead of the '
        f'frozen HR one ({lr["acc_hr"]:.2f} % on HR faces, {lr["acc_plain_sr"]:.2f} % on plain SR): '
        f'{lr["acc"]:.2f} %, {verdict} SR-FER ({lr["acc"] - srfer:+.2f} points)',
    ]


def plot_accuracy(rows: dict[str, dict[str, float]], path: str) -> None:
    """Bar chart of FER accuracy (and PSNR) per method (the ``--full`` rows too when in rows)."""
    import matplotlib

    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    methods = [m for m in FULL_METHODS if m in rows]
    names = [METHOD_TITLES[m] for m in methods]
    accs = [rows[m]['acc'] for m in methods]
    fig, ax = plt.subplots(figsize=(1.1 * len(methods) + 1, 3.4), dpi=120)
    bars = ax.bar(names, accs, color=['#4c72b0', '#c44e52', '#8172b2', '#55a868', '#dd8452', '#937860'][: len(methods)])
    for bar, method in zip(bars, methods):
        psnr = rows[method].get('psnr')
        label = f'{bar.get_height():.1f}%' + (f'\n{psnr:.2f} dB' if psnr is not None else '')
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 1, label, ha='center', va='bottom', fontsize=8)
    ax.set_ylabel('FER accuracy on the test split (%)')
    ax.set_ylim(0, 115)
    ax.set_title('x4 synthetic faces: FER accuracy by restoration')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_faces(
    path: str, dataset, predictors: dict[str, SRFERPredictor], class_names: list[str], num_faces: int
) -> None:
    """Grid of test faces: LR, bicubic, plain SR, SR-FER and HR with predictions, and last-stage attention.

    Args:
        path: PNG file to write.
        dataset: The test set (``lq``, ``gt``, ``label``).
        predictors: ``plain_sr`` and ``srfer`` predictors sharing one classifier.
        class_names: Names of the labels.
        num_faces: Rows of faces.
    """
    import matplotlib

    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    from srfer_plugin.utils.visualize import overlay_heatmap

    step = max(1, len(dataset) // num_faces)
    indices = [(i * step + i) % len(dataset) for i in range(num_faces)]
    columns = ['lr', 'bicubic', 'plain_sr', 'srfer', 'hr']
    fig, axes = plt.subplots(
        2 * num_faces, len(columns), figsize=(len(columns) * 1.5, num_faces * 3.1), dpi=110, squeeze=False
    )
    for r, index in enumerate(indices):
        sample = dataset[index]
        lq, gt, label = sample['lq'][None], sample['gt'][None], int(sample['label'])
        images = {'bicubic': upsample_bicubic(lq, gt.shape[-2:]), 'hr': gt}
        for method, predictor in predictors.items():
            images[method] = predictor.super_resolve(lq)
        batch = torch.cat([images[m] for m in columns[1:]])
        maps, logits = predictors['srfer'].attention(batch)
        probs = torch.softmax(logits, dim=1)
        for c, method in enumerate(columns):
            top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
            for ax in (top, bottom):
                ax.set_xticks([])
                ax.set_yticks([])
            if method == 'lr':
                top.imshow(lq[0].permute(1, 2, 0).numpy(), interpolation='nearest')
                top.set_title(f'LR {lq.shape[-1]}px\ntrue: {class_names[label]}', fontsize=7)
                bottom.axis('off')
                continue
            k = c - 1
            pred = int(probs[k].argmax())
            image = batch[k].permute(1, 2, 0).numpy()
            top.imshow(image)
            mark = 'ok' if pred == label else 'wrong'
            top.set_title(
                f'{METHOD_TITLES[method]}\n{class_names[pred]} ({mark})',
                fontsize=7,
                color='green' if pred == label else 'red',
            )
            bottom.imshow(overlay_heatmap(image, maps[-1][k]))
            if r == 0:
                bottom.set_title('last-stage attention', fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the demo and return the report rows."""
    args = parse_args(argv)
    preset = dict(PRESETS['quick' if args.quick else 'default'])
    if args.sr_iters:
        preset['sr_iters'] = args.sr_iters
    tag = 'quick' if args.quick else 'default'
    exp_root = os.path.abspath(args.exp_root)
    data_root = args.data_root
    out_dir = os.path.abspath(args.out)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    start = time.time()

    trainings = ('plain_sr', 'srfer', 'srfer_joint') if args.full else ('plain_sr', 'srfer')
    steps = 3 + len(trainings) + args.full
    try:
        data_root, fer = prepare_data_and_classifier(tag, exp_root, data_root, (f'[1/{steps}] ', f'[2/{steps}] '))
    except SyntheticRootError as err:  # before any training: one line, no traceback
        print(f'error: --data-root {err}', file=sys.stderr)
        raise SystemExit(2) from None
    fer_checkpoint = fer['fer_final']
    if args.full:
        lr_fer = pretrain_fer(
            LR_CLASSIFIER_CONFIG,
            os.path.join(exp_root, 'experiments', f'demo_fer_{tag}_lr_x4'),
            data_root,
            tag,
            f'[3/{steps}] ',
            LR_CLASSIFIER_CONFIG,
        )

    opt_dir = os.path.join(out_dir, 'options')
    trained = {}
    for step, method in enumerate(trainings, start=3 + args.full):
        opt = sr_options(method, data_root, fer_checkpoint, preset['sr_iters'], args.seed, tag)
        print(
            f'[{step}/{steps}] {METHOD_TITLES[method]} training ({opt["model_type"]}, {preset["sr_iters"]} iters)',
            flush=True,
        )
        trained[method] = train_sr(opt, opt_dir, exp_root, METHOD_TITLES[method])

    print(f'[{steps}/{steps}] evaluation on the test split', flush=True)
    rows: dict[str, dict[str, float]] = {}
    predictors = {}
    for method in ('plain_sr', 'srfer'):
        metrics, model = evaluate_sr(data_root, fer_checkpoint, trained[method], os.path.join(out_dir, 'eval', method))
        rows[method] = {'acc': metrics['acc'], 'psnr': metrics['psnr'], 'ssim': metrics['ssim']}
        rows['hr'] = {'acc': metrics['acc_hr']}
        rows['bicubic'] = {'acc': metrics['acc_bicubic']}
        predictors[method] = SRFERPredictor(model.net_g.eval(), model.net_fer, scale=4)
    if args.full:  # scored by the classifier its training fine-tuned
        adapted = os.path.join(os.path.dirname(trained['srfer_joint']), 'net_fer_latest.pth')
        results = os.path.join(out_dir, 'eval', 'srfer_joint')
        metrics, _ = evaluate_sr(data_root, fer_checkpoint, trained['srfer_joint'], results, fer_weights=adapted)
        rows['srfer_joint'] = {k: metrics[k] for k in ('acc', 'psnr', 'ssim', 'acc_hr', 'acc_bicubic')}
        results = os.path.join(out_dir, 'eval', 'lr_classifier')  # plain SR's network: acc_bicubic is the row's
        metrics, _ = evaluate_sr(data_root, lr_fer['fer_final'], trained['plain_sr'], results)
        rows['lr_classifier'] = {
            'acc': metrics['acc_bicubic'],
            'acc_hr': metrics['acc_hr'],
            'acc_plain_sr': metrics['acc'],
        }
    test_set = build_dataset(dict(dataset_options(data_root, 'test', 'test'), phase='test', scale=4))
    rows['bicubic'].update(evaluate_bicubic(test_set))
    if args.full:  # the LR-trained classifier reads the bicubic faces
        rows['lr_classifier'].update({k: rows['bicubic'].get(k) for k in ('psnr', 'ssim')})
    flags = ''.join(f' --{flag}' for flag in ('quick', 'full') if getattr(args, flag))
    settings = {
        'command': f'python -m srfer_plugin.demo{flags} --seed {args.seed}',
        'preset': tag,
        **preset,
        'seed': args.seed,
        'num_test_images': len(test_set),
        'network_g': DEMO_NETWORK_G,
        'fer_config': FER_DEMO_CONFIG,
        'fer_hr_test_accuracy_runner': fer.get('accuracy_top1'),
        'srfer_losses': DEMO_SRFER_LOSSES,
        'wall_time_s': round(time.time() - start, 1),
    }
    if args.full:
        settings['srfer_joint'] = {'joint_learning': DEMO_JOINT_LEARNING, 'scored_by': 'its net_fer_latest.pth'}
        settings['lr_classifier'] = {'fer_config': LR_CLASSIFIER_CONFIG, 'faces': 'bicubic'}
    write_report(out_dir, rows, settings)
    plot_faces(
        os.path.join(out_dir, 'faces.png'),
        test_set,
        predictors,
        fer.get('classes') or [str(i) for i in range(7)],
        args.num_grid_faces,
    )
    with open(os.path.join(out_dir, 'report.md'), encoding='utf-8') as f:
        table = [line for line in f.read().splitlines() if line.startswith('|') or line.startswith('- ')]
    print('\n'.join(table), flush=True)
    print(f'report: {os.path.join(out_dir, "report.md")} ({time.time() - start:.0f} s)', flush=True)
    return rows


if __name__ == '__main__':
    main()
