"""The bundled default: ``python -m srfer_plugin.demo`` (console script ``srfer-demo``).

One command runs the whole SR-FER chain on a CPU, with nothing to download:

1. generates synthetic expression faces (cached under ``datasets/``);
2. pre-trains the FER classifier with mmengine's Runner (cached under ``experiments/``);
3. trains a plain SR model (BasicSR's ``SRModel``, pixel loss only);
4. trains SR-FER with the same backbone, data, iterations and seed;
5. evaluates bicubic, plain SR, SR-FER and HR on the test split with the same classifier,

and writes ``report.csv``, ``report.md``, ``accuracy.png`` and ``faces.png`` under ``results/demo``. Both SR runs
are real BasicSR trainings (``python -m srfer_plugin.train`` on option files written to ``results/demo/options``),
so they resume when interrupted and can be rerun by hand.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import numpy as np
import torch
import yaml
from basicsr.data import build_dataloader, build_dataset
from basicsr.metrics import calculate_metric
from basicsr.models import build_model
from basicsr.utils import tensor2img
from tqdm import tqdm

from srfer_plugin.data.degradations import upsample_bicubic
from srfer_plugin.data.synthetic_faces import ensure_synthetic_dataset
from srfer_plugin.fer_pretrain import train_fer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ('hr', 'bicubic', 'plain_sr', 'srfer')
METHOD_TITLES = {'hr': 'HR', 'bicubic': 'bicubic', 'plain_sr': 'plain SR', 'srfer': 'SR-FER', 'lr': 'LR'}

# Presets: sizes of the synthetic data, FER pre-training epochs and SR iterations.
PRESETS: dict[str, dict[str, Any]] = {
    'default': {'num_train': 300, 'num_val': 20, 'num_test': 60, 'fer_epochs': 12, 'sr_iters': 1000},
    'quick': {'num_train': 100, 'num_val': 10, 'num_test': 20, 'fer_epochs': 6, 'sr_iters': 300},
}

# The SR backbone of the demo: RCAN with 32 features, 2 groups and 4 blocks (about 0.12 s per CPU step).
DEMO_NETWORK_G: dict[str, Any] = {
    'type': 'RCAN',
    'num_in_ch': 3,
    'num_out_ch': 3,
    'num_feat': 32,
    'num_group': 2,
    'num_block': 4,
    'squeeze_factor': 16,
    'upscale': 4,
    'res_scale': 1,
    'img_range': 255.0,
    'rgb_mean': [0.4488, 0.4371, 0.4040],
}
# The SR-FER losses of the demo (see docs/demo.md for how they were chosen).
DEMO_SRFER_LOSSES: dict[str, Any] = {
    'attention_opt': {'type': 'AttentionConsistencyLoss', 'loss_weight': 0.1, 'p': 2},
    'prediction_opt': {'type': 'PredictionConsistencyLoss', 'loss_weight': 0.001, 'temperature': 4.0},
}
FER_DEMO_CONFIG = 'options/fer/resnet18slim_fer7_demo.py'
# One loader worker: the worker count changes the augmentation random streams, and the demo's numbers were measured
# with one (docs/demo.md).
FER_DATALOADER_OPTIONS = {f'{split}_dataloader.num_workers': 1 for split in ('train', 'val', 'test')}


def metric_options(scale: int = 4) -> dict[str, dict[str, Any]]:
    """PSNR/SSIM options (Y channel, ``scale`` border pixels cropped) of the demo and the benchmark."""
    return {
        'psnr': {'type': 'calculate_psnr', 'crop_border': scale, 'test_y_channel': True},
        'ssim': {'type': 'calculate_ssim', 'crop_border': scale, 'test_y_channel': True},
    }


METRICS = metric_options(4)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='SR-FER demo on synthetic faces (CPU, no downloads).')
    parser.add_argument('--quick', action='store_true', help='smoke run of the whole chain (~5 min)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the SR trainings (data and FER stay fixed)')
    parser.add_argument('--sr-iters', type=int, help='SR training iterations (default: from the preset)')
    parser.add_argument('--out', default='results/demo', help='report folder')
    parser.add_argument('--data-root', help='synthetic dataset folder (default: datasets/synthetic_fer[_quick])')
    parser.add_argument('--exp-root', default='.', help='folder that receives experiments/ and tb_logger/')
    parser.add_argument('--num-grid-faces', type=int, default=6, help='faces in faces.png')
    return parser.parse_args(argv)


def repo_path(rel_path: str) -> str:
    """Absolute path of a file shipped in the repository (options/...)."""
    path = os.path.join(REPO_ROOT, rel_path)
    if not os.path.exists(path):
        raise FileNotFoundError(f'{path!r} is missing: run the demo from a clone of the srfer_plugin repository')
    return path


def dataset_options(data_root: str, split: str, phase: str) -> dict[str, Any]:
    """A PairedFERDataset section for one split of the synthetic data."""
    opt = {
        'name': f'synthetic_{split}',
        'type': 'PairedFERDataset',
        'dataroot_gt': data_root,
        'meta_info_file': os.path.join(data_root, f'meta_info_{split}.txt'),
        'degradation': {'type': 'bicubic'},
        'io_backend': {'type': 'disk'},
    }
    if phase == 'train':
        opt.update(
            use_hflip=True, num_worker_per_gpu=1, batch_size_per_gpu=8, dataset_enlarge_ratio=1, prefetch_mode=None
        )
    return opt


def sr_options(method: str, data_root: str, fer_checkpoint: str, iters: int, seed: int, tag: str) -> dict[str, Any]:
    """BasicSR options of one demo SR training: ``plain_sr`` (SRModel) or ``srfer`` (SRFERModel)."""
    opt: dict[str, Any] = {
        'name': f'demo_{method}_{tag}_seed{seed}',
        'model_type': 'SRModel' if method == 'plain_sr' else 'SRFERModel',
        'scale': 4,
        'num_gpu': 0,
        'manual_seed': seed,
        'datasets': {'train': dataset_options(data_root, 'train', 'train')},
        'network_g': copy.deepcopy(DEMO_NETWORK_G),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0,
            'optim_g': {'type': 'Adam', 'lr': 5e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [int(iters * 0.7)], 'gamma': 0.5},
            'total_iter': iters,
            'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'logger': {
            'print_freq': 10,
            'save_checkpoint_freq': max(iters // 3, 10),
            'use_tb_logger': False,
            'wandb': {'project': None, 'resume_id': None},
        },
    }
    if method == 'srfer':
        opt['network_fer'] = {
            'type': 'MMPretrainFER',
            'config': repo_path(FER_DEMO_CONFIG),
            'checkpoint': fer_checkpoint,
            'num_classes': 7,
            'stages': [0, 1, 2, 3],
            'freeze': True,
        }
        opt['path']['ignore_resume_networks'] = ['network_fer']
        opt['train'].update(copy.deepcopy(DEMO_SRFER_LOSSES))
    return opt


def run_training(opt: dict[str, Any], opt_dir: str, exp_root: str, desc: str) -> str:
    """Run ``python -m srfer_plugin.train --auto_resume`` on ``opt`` with a progress bar.

    Returns:
        The path of the trained ``net_g_latest.pth``.
    """
    os.makedirs(opt_dir, exist_ok=True)
    opt_path = os.path.abspath(os.path.join(opt_dir, f'{opt["name"]}.yml'))
    with open(opt_path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    latest = os.path.join(exp_root, 'experiments', opt['name'], 'models', 'net_g_latest.pth')
    if os.path.isfile(latest):
        print(f'{desc}: reusing {latest}')
        return latest
    cmd = [sys.executable, '-m', 'srfer_plugin.train', '-opt', opt_path, '--auto_resume']
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    log_lines: list[str] = []
    with tqdm(total=opt['train']['total_iter'], desc=desc, unit='it') as pbar:
        proc = subprocess.Popen(cmd, cwd=exp_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            log_lines.append(line)
            match = re.search(r'epoch:\s*\d+, iter:\s*([\d,]+)', line)  # BasicSR's MessageLogger line
            if match:
                pbar.update(max(0, int(match.group(1).replace(',', '')) - pbar.n))
        proc.wait()
    if proc.returncode != 0 or not os.path.isfile(latest):
        tail = ''.join(log_lines[-40:])
        raise RuntimeError(f'training {opt["name"]} failed (exit {proc.returncode}); command: {" ".join(cmd)}\n{tail}')
    return latest


def evaluation_options(
    data_root: str,
    fer_checkpoint: str,
    net_g_path: str | None,
    results_root: str,
    network_g: dict[str, Any] | None = None,
    scale: int = 4,
    fer_config: str = FER_DEMO_CONFIG,
) -> dict[str, Any]:
    """Options of an SRFERModel in test mode (as ``parse_options`` returns them).

    Args:
        data_root: Dataset in the plugin's FER layout (its ``test`` split is evaluated).
        fer_checkpoint: Weights of the frozen FER classifier.
        net_g_path: Trained ``net_g`` (``params``), or None.
        results_root: Folder of the srfer-test reports.
        network_g: SR network options (default: the demo's RCAN).
        scale: Upscale factor of ``network_g``.
        fer_config: mmpretrain config of the classifier (relative to the repository or absolute).

    Returns:
        The options for ``basicsr.models.build_model``.
    """
    return {
        'name': 'demo_eval',
        'model_type': 'SRFERModel',
        'scale': scale,
        'num_gpu': 1 if torch.cuda.is_available() else 0,
        'is_train': False,
        'dist': False,
        'rank': 0,
        'world_size': 1,
        'datasets': {'test': dict(dataset_options(data_root, 'test', 'test'), phase='test', scale=scale)},
        'network_g': copy.deepcopy(network_g or DEMO_NETWORK_G),
        'network_fer': {
            'type': 'MMPretrainFER',
            'config': fer_config if os.path.isabs(fer_config) else repo_path(fer_config),
            'checkpoint': fer_checkpoint,
            'num_classes': 7,
            'stages': [0, 1, 2, 3],
        },
        'path': {
            'pretrain_network_g': net_g_path,
            'strict_load_g': True,
            'param_key_g': 'params',
            'results_root': results_root,
        },
        'val': {'save_img': False, 'metrics': metric_options(scale)},
    }


def evaluate_sr(
    data_root: str, fer_checkpoint: str, net_g_path: str, results_root: str, **eval_kwargs: Any
) -> tuple[dict[str, float], Any]:
    """PSNR, SSIM, acc, acc_hr and acc_bicubic of a trained network_g on the test split.

    The srfer-test reports (per-class accuracy, confusion matrices) go to ``results_root``.

    Args:
        data_root: Dataset in the plugin's FER layout.
        fer_checkpoint: Weights of the frozen FER classifier.
        net_g_path: Trained ``net_g``.
        results_root: Folder of the reports.
        **eval_kwargs: ``network_g``, ``scale`` and ``fer_config`` of :func:`evaluation_options`.

    Returns:
        ``(metrics, model)``; ``model.fer_results`` holds the per-image predictions.
    """
    return run_evaluation(evaluation_options(data_root, fer_checkpoint, net_g_path, results_root, **eval_kwargs))


def run_evaluation(opt: dict[str, Any]) -> tuple[dict[str, float], Any]:
    """Build the test-mode SRFERModel of ``opt`` (:func:`evaluation_options`) and validate it on its test split.

    Returns:
        ``(metrics, model)``.
    """
    model = build_model(opt)
    dataset = build_dataset(opt['datasets']['test'])
    loader = build_dataloader(dataset, opt['datasets']['test'], num_gpu=0, dist=False)
    model.nondist_validation(loader, current_iter=0, tb_logger=None, save_img=False)
    return dict(model.metric_results), model


def evaluate_bicubic(dataset) -> dict[str, float]:
    """PSNR and SSIM of bicubic upsampling on a dataset, with the demo's metric options."""
    sums = dict.fromkeys(METRICS, 0.0)
    for i in range(len(dataset)):
        sample = dataset[i]
        up = upsample_bicubic(sample['lq'][None], sample['gt'].shape[-2:])[0]
        data = {'img': tensor2img([up]), 'img2': tensor2img([sample['gt']])}
        for name, metric_opt in METRICS.items():
            sums[name] += calculate_metric(data, metric_opt)
    return {name: value / len(dataset) for name, value in sums.items()}


def write_report(out_dir: str, rows: dict[str, dict[str, float]], settings: dict[str, Any]) -> None:
    """Write ``report.csv``, ``report.md`` and the bar chart ``accuracy.png``."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'report.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['method', 'acc', 'psnr', 'ssim'])
        for method in METHODS:
            row = rows[method]
            writer.writerow([method] + [_fmt(row.get(key)) for key in ('acc', 'psnr', 'ssim')])
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
    for method in METHODS:
        row = rows[method]
        lines.append(
            f'| {method} | {_fmt(row.get("acc"), 2)} | {_fmt(row.get("psnr"), 2)} | {_fmt(row.get("ssim"), 4)} |'
        )
    srfer, plain, bic, hr = (rows[m]['acc'] for m in ('srfer', 'plain_sr', 'bicubic', 'hr'))
    gap = (srfer - bic) / (hr - bic) if hr != bic else float('nan')
    psnr_delta = rows['srfer']['psnr'] - rows['plain_sr']['psnr']
    lines += [
        '',
        f'- SR-FER vs plain SR: {srfer - plain:+.2f} acc points, {psnr_delta:+.2f} dB PSNR',
        f'- SR-FER vs bicubic: {srfer - bic:+.2f} acc points; gap closed (acc_sr - acc_bicubic) / '
        f'(acc_hr - acc_bicubic) = {gap:.2f}',
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


def _fmt(value: float | None, digits: int = 4) -> str:
    return '' if value is None or (isinstance(value, float) and np.isnan(value)) else f'{value:.{digits}f}'


def plot_accuracy(rows: dict[str, dict[str, float]], path: str) -> None:
    """Bar chart of FER accuracy (and PSNR) per method."""
    import matplotlib

    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    names = [METHOD_TITLES[m] for m in METHODS]
    accs = [rows[m]['acc'] for m in METHODS]
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=120)
    bars = ax.bar(names, accs, color=['#4c72b0', '#c44e52', '#8172b2', '#55a868'])
    for bar, method in zip(bars, METHODS):
        psnr = rows[method].get('psnr')
        label = f'{bar.get_height():.1f}%' + (f'\n{psnr:.2f} dB' if psnr is not None else '')
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 1, label, ha='center', va='bottom', fontsize=8)
    ax.set_ylabel('FER accuracy on the test split (%)')
    ax.set_ylim(0, 115)
    ax.set_title('x4 synthetic faces: FER accuracy by restoration')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_faces(path: str, dataset, models: dict[str, Any], net_fer, class_names: list[str], num_faces: int) -> None:
    """Grid of test faces: LR, bicubic, plain SR, SR-FER and HR with predictions, and last-stage attention."""
    import matplotlib

    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    from srfer_plugin.utils.visualize import attention_heatmaps, overlay_heatmap

    step = max(1, len(dataset) // num_faces)
    indices = [(i * step + i) % len(dataset) for i in range(num_faces)]
    columns = ['lr', 'bicubic', 'plain_sr', 'srfer', 'hr']
    fig, axes = plt.subplots(
        2 * num_faces, len(columns), figsize=(len(columns) * 1.5, num_faces * 3.1), dpi=110, squeeze=False
    )
    for r, index in enumerate(indices):
        sample = dataset[index]
        lq, gt, label = sample['lq'][None], sample['gt'][None], int(sample['label'])
        with torch.no_grad():
            images = {'bicubic': upsample_bicubic(lq, gt.shape[-2:]), 'hr': gt}
            for method, net in models.items():
                images[method] = net(lq).clamp(0, 1)
        batch = torch.cat([images[m] for m in columns[1:]])
        maps, logits = attention_heatmaps(net_fer, batch)
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


def prepare_data_and_classifier(
    preset_name: str, exp_root: str, data_root: str | None = None, step_prefix: tuple[str, str] = ('', '')
) -> tuple[str, dict[str, Any]]:
    """Synthetic faces and the FER classifier pre-trained on them (both cached; the benchmark shares them).

    Args:
        preset_name: ``default`` or ``quick`` (see :data:`PRESETS`).
        exp_root: Folder holding ``datasets/`` and ``experiments/``.
        data_root: Dataset folder (default: ``<exp_root>/datasets/synthetic_fer_<preset_name>``).
        step_prefix: Text put before the two progress lines.

    Returns:
        ``(data_root, fer)``: ``fer`` is :func:`srfer_plugin.fer_pretrain.train_fer`'s result (``fer_final``,
        ``accuracy_top1``, ``classes``).
    """
    preset = PRESETS[preset_name]
    data_root = os.path.abspath(data_root or os.path.join(exp_root, 'datasets', f'synthetic_fer_{preset_name}'))
    print(f'{step_prefix[0]}synthetic faces -> {data_root}', flush=True)
    ensure_synthetic_dataset(
        data_root,
        seed=0,
        size=112,
        num_train=preset['num_train'],
        num_val=preset['num_val'],
        num_test=preset['num_test'],
    )
    fer_dir = os.path.join(exp_root, 'experiments', f'demo_fer_{preset_name}')
    print(f'{step_prefix[1]}FER pre-training (mmpretrain, {FER_DEMO_CONFIG}) -> {fer_dir}', flush=True)
    fer = train_fer(
        repo_path(FER_DEMO_CONFIG),
        work_dir=fer_dir,
        data_root=data_root,
        device='cpu',
        seed=0,
        max_epochs=preset['fer_epochs'],
        cfg_options=FER_DATALOADER_OPTIONS,
        reuse=True,
    )
    return data_root, fer


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

    data_root, fer = prepare_data_and_classifier(tag, exp_root, data_root, step_prefix=('[1/5] ', '[2/5] '))
    fer_checkpoint = fer['fer_final']

    opt_dir = os.path.join(out_dir, 'options')
    trained = {}
    for step, method in ((3, 'plain_sr'), (4, 'srfer')):
        opt = sr_options(method, data_root, fer_checkpoint, preset['sr_iters'], args.seed, tag)
        print(
            f'[{step}/5] {METHOD_TITLES[method]} training ({opt["model_type"]}, {preset["sr_iters"]} iters)', flush=True
        )
        trained[method] = run_training(opt, opt_dir, exp_root, METHOD_TITLES[method])

    print('[5/5] evaluation on the test split', flush=True)
    rows: dict[str, dict[str, float]] = {}
    models = {}
    for method in ('plain_sr', 'srfer'):
        metrics, model = evaluate_sr(data_root, fer_checkpoint, trained[method], os.path.join(out_dir, 'eval', method))
        rows[method] = {'acc': metrics['acc'], 'psnr': metrics['psnr'], 'ssim': metrics['ssim']}
        rows['hr'] = {'acc': metrics['acc_hr']}
        rows['bicubic'] = {'acc': metrics['acc_bicubic']}
        models[method] = model.net_g.eval()
    test_set = build_dataset(dict(dataset_options(data_root, 'test', 'test'), phase='test', scale=4))
    rows['bicubic'].update(evaluate_bicubic(test_set))
    settings = {
        'command': 'python -m srfer_plugin.demo' + (' --quick' if args.quick else '') + f' --seed {args.seed}',
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
    write_report(out_dir, rows, settings)
    plot_faces(
        os.path.join(out_dir, 'faces.png'),
        test_set,
        models,
        model.net_fer,
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
