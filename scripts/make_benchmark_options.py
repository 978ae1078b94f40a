"""Write the benchmark option files (backbone x scale x {plain SR, SR-FER}) from one template.

Example::

    python scripts/make_benchmark_options.py          # options/benchmark/*.yml (paper preset, committed)

Every cell is its preset's template with the cell's ``name``, ``scale``, ``network_g``, learning rate and metric
``crop_border`` replaced; the plain variant also drops ``network_fer`` and the FER losses:

* ``paper``: ``options/train_RCAN_srfer_x4.yml`` (RAF-DB, ResNet-18 FER, SR-FER loss weights, schedule).
* ``cpu-small``: the demo's SR trainings (``srfer_plugin.demo.sr_options``: synthetic faces, the demo's FER
  classifier and loss weights), with small networks. ``scripts/benchmark.py`` writes these per run.

network_g settings copy BasicSR's official recipes (``options/train/<arch>/``), adapted to 112x112 faces:

* RCAN: 64 feat, 10 groups x 20 blocks, squeeze 16, img_range 255, DIV2K rgb_mean (train_RCAN_x*.yml).
* EDSR: EDSR-M (64 feat, 16 blocks, res_scale 1; train_EDSR_Mx*.yml).
* SwinIR: classical SR (embed 180, depths/heads [6]*6, mlp 2, pixelshuffle, 1conv). BasicSR's SwinIR does
  not pad inputs to the window size, so the window is 7 (divides the LR sizes 56/28/14 of 112px faces)
  instead of 8, and ``img_size`` is the training LR size.
* RRDBNet: 64 feat, 23 blocks, grow 32 (ESRGAN/RRDBNet_PSNR). BasicSR's RRDBNet upsamples x4 only; ``scale``
  2 (and 1) pixel-unshuffles the input first. x8 is not supported: skipped.
* MSRResNet: 64 feat, 16 blocks (SRResNet). Supports x2, x3, x4 only: x8 skipped.

The ``cpu-small`` preset keeps the layouts with small widths/depths (for a whole matrix on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from typing import Any

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKBONES = ('RCAN', 'EDSR', 'SwinIR', 'RRDBNet', 'MSRResNet')
SCALES = (2, 4, 8)
METHODS = ('plain', 'srfer')
DIV2K_MEAN = [0.4488, 0.4371, 0.4040]

RECIPE = os.path.join(REPO_ROOT, 'options', 'train_RCAN_srfer_x4.yml')
PRESETS: dict[str, dict[str, Any]] = {
    # Template: options/train_RCAN_srfer_x4.yml (RAF-DB, ResNet-18 FER, batch 16, 300k iterations, GPU).
    'paper': {'template': 'recipe'},
    # Template: the demo's SR trainings (synthetic faces, the demo's FER classifier, batch 8, CPU).
    'cpu-small': {'template': 'demo', 'iters': 200},
}

# Official recipe sizes and learning rates (paper) and small variants (cpu-small); upscale/scale/img_size are
# filled per scale. The cpu-small sizes keep each backbone's layout at about 0.1-0.45 s per CPU step.
NETWORKS: dict[str, dict[str, dict[str, Any]]] = {
    'RCAN': {
        'paper': dict(num_feat=64, num_group=10, num_block=20, squeeze_factor=16, lr=1e-4),
        'cpu-small': dict(num_feat=32, num_group=2, num_block=4, squeeze_factor=16),
    },
    'EDSR': {
        'paper': dict(num_feat=64, num_block=16, lr=1e-4),
        'cpu-small': dict(num_feat=32, num_block=4),
    },
    'SwinIR': {
        'paper': dict(embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, window_size=7, lr=2e-4),
        'cpu-small': dict(embed_dim=24, depths=[2, 2], num_heads=[2, 2], window_size=7),
    },
    'RRDBNet': {
        'paper': dict(num_feat=64, num_block=23, num_grow_ch=32, lr=2e-4),
        'cpu-small': dict(num_feat=32, num_block=2, num_grow_ch=16),
    },
    'MSRResNet': {
        'paper': dict(num_feat=64, num_block=16, lr=2e-4),
        'cpu-small': dict(num_feat=32, num_block=4),
    },
}
HR_SIZE = 112  # face crops of the recipe and the demo


def unsupported_reason(backbone: str, scale: int) -> str | None:
    """Why a backbone cannot run at a scale in BasicSR 1.4.2, or None when it can."""
    if backbone == 'MSRResNet' and scale not in (2, 3, 4):
        return 'BasicSR MSRResNet supports upscale 2, 3 and 4 only'
    if backbone == 'RRDBNet' and scale not in (1, 2, 4):
        return 'BasicSR RRDBNet upsamples x4 (x1/x2 by pixel-unshuffling the input); no x8'
    return None


def network_g(backbone: str, scale: int, preset: str = 'paper') -> dict[str, Any]:
    """The ``network_g`` section of a backbone at a scale.

    Args:
        backbone: One of :data:`BACKBONES`.
        scale: Upscale factor.
        preset: ``paper`` (official recipe sizes) or ``cpu-small``.

    Returns:
        The network options (BasicSR's ``type`` plus constructor arguments).
    """
    reason = unsupported_reason(backbone, scale)
    if reason:
        raise ValueError(f'{backbone} x{scale}: {reason}')
    cfg = {k: v for k, v in NETWORKS[backbone][preset].items() if k != 'lr'}
    io = {'num_in_ch': 3, 'num_out_ch': 3}
    if backbone == 'RCAN':
        net = dict(type='RCAN', **io, **cfg, upscale=scale, res_scale=1, img_range=255.0, rgb_mean=DIV2K_MEAN)
    elif backbone == 'EDSR':
        net = dict(type='EDSR', **io, **cfg, upscale=scale, res_scale=1, img_range=255.0, rgb_mean=DIV2K_MEAN)
    elif backbone == 'SwinIR':
        lr_size = HR_SIZE // scale
        net = dict(
            type='SwinIR', upscale=scale, in_chans=3, img_size=lr_size, img_range=1.0, mlp_ratio=2,
            upsampler='pixelshuffle', resi_connection='1conv', **cfg,
        )  # fmt: skip
    elif backbone == 'RRDBNet':
        net = dict(type='RRDBNet', **io, **cfg, scale=scale)
    elif backbone == 'MSRResNet':
        net = dict(type='MSRResNet', **io, **cfg, upscale=scale)
    else:
        raise ValueError(f'unknown backbone {backbone!r}; choose from {BACKBONES}')
    return copy.deepcopy(net)


def cell_name(preset: str, backbone: str, scale: int, method: str, fer_tag: str = '') -> str:
    """Experiment name of a benchmark cell; ``fer_tag`` (empty for the preset's own classifier) names the classifier."""
    return f'bench_{preset.replace("-", "_")}_{backbone}_x{scale}_{method}' + (f'_{fer_tag}' if fer_tag else '')


def default_fer_config(preset: str) -> str:
    """Absolute path of the preset's own FER classifier config (the template's ``network_fer.config``)."""
    if PRESETS[preset]['template'] == 'demo':
        from srfer_plugin.demo import FER_DEMO_CONFIG

        return os.path.join(REPO_ROOT, FER_DEMO_CONFIG)
    return os.path.join(REPO_ROOT, _load_recipe()['network_fer']['config'])  # no-op when already absolute


def _load_recipe() -> dict[str, Any]:
    with open(RECIPE, encoding='utf-8') as f:
        return yaml.safe_load(f)


def template(
    preset: str, method: str, iters: int | None, data_root: str | None, fer_checkpoint: str | None
) -> dict[str, Any]:
    """The options every cell of a preset starts from (the SR-FER recipe or the demo's trainings).

    Args:
        preset: ``paper`` or ``cpu-small``.
        method: ``plain`` (BasicSR SRModel, L1 only) or ``srfer`` (SRFERModel, L1 + consistency losses).
        iters: ``train.total_iter`` (default: the template's); LR milestones keep their relative positions.
        data_root: Dataset root in the plugin's FER layout (default: the template's).
        fer_checkpoint: FER weights (default: the template's).

    Returns:
        Option dict (RCAN x4 network, to be replaced per cell).
    """
    if method not in METHODS:
        raise ValueError(f'method {method!r} not in {METHODS}')
    if PRESETS[preset]['template'] == 'demo':
        from srfer_plugin.demo import sr_options

        if not data_root or not fer_checkpoint:
            raise ValueError('the cpu-small preset needs data_root and fer_checkpoint (benchmark.py provides them)')
        iters = int(iters or PRESETS[preset]['iters'])
        return sr_options('srfer' if method == 'srfer' else 'plain_sr', data_root, fer_checkpoint, iters, 0, preset)
    opt = _load_recipe()
    if data_root:
        for name, split in (('train', 'train'), ('val', 'test')):
            opt['datasets'][name]['dataroot_gt'] = data_root
            opt['datasets'][name]['meta_info_file'] = f'{data_root}/meta_info_{split}.txt'
    if fer_checkpoint:
        opt['network_fer']['checkpoint'] = fer_checkpoint
    if iters:
        old = opt['train']['total_iter']
        sched = opt['train']['scheduler']
        sched['milestones'] = [max(1, int(m * iters / old)) for m in sched['milestones']]
        opt['train']['total_iter'] = int(iters)
    return plain_variant(opt) if method == 'plain' else opt


def plain_variant(opt: dict[str, Any]) -> dict[str, Any]:
    """The plain-SR twin of SR-FER options: BasicSR ``SRModel``, no classifier, no FER losses.

    Args:
        opt: SR-FER options (not modified).

    Returns:
        A new option dict.
    """
    plain = copy.deepcopy(opt)
    plain['model_type'] = 'SRModel'
    plain.pop('network_fer', None)
    for key in ('attention_opt', 'prediction_opt', 'fer_opt', 'optim_fer', 'fer_inputs'):
        plain['train'].pop(key, None)
    plain['path'].pop('ignore_resume_networks', None)
    plain['path'].pop('pretrain_network_fer', None)
    return plain


def make_options(
    backbone: str,
    scale: int,
    method: str,
    preset: str = 'paper',
    iters: int | None = None,
    data_root: str | None = None,
    fer_checkpoint: str | None = None,
) -> dict[str, Any]:
    """Training options of one benchmark cell: the preset's template with the cell's network, scale and name.

    Args:
        backbone: One of :data:`BACKBONES`.
        scale: Upscale factor.
        method: ``plain`` or ``srfer``.
        preset: ``paper`` or ``cpu-small`` (see :data:`PRESETS`).
        iters: ``train.total_iter`` (default: the template's).
        data_root: Dataset root (default: the template's).
        fer_checkpoint: FER weights (default: the template's).

    Returns:
        An option dict ready for ``python -m srfer_plugin.train``.
    """
    opt = template(preset, method, iters, data_root, fer_checkpoint)
    opt['name'] = cell_name(preset, backbone, scale, method)
    opt['scale'] = scale
    opt['network_g'] = network_g(backbone, scale, preset)
    lr = NETWORKS[backbone][preset].get('lr')
    if lr:
        opt['train']['optim_g']['lr'] = lr
    for metric in ((opt.get('val') or {}).get('metrics') or {}).values():
        metric['crop_border'] = scale
    opt['logger']['print_freq'] = min(int(opt['logger']['print_freq']), int(opt['train']['total_iter']))
    return opt


def write_options(opt: dict[str, Any], path: str) -> str:
    """Write an option dict as YAML (BasicSR's loader reads it)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write('# Generated by scripts/make_benchmark_options.py; edit the template there, not this file.\n')
        yaml.safe_dump(opt, f, sort_keys=False, default_flow_style=None)
    return path


def write_matrix(
    out_dir: str,
    backbones: tuple[str, ...] = BACKBONES,
    scales: tuple[int, ...] = SCALES,
    preset: str = 'paper',
    **kwargs: Any,
) -> tuple[list[str], dict[str, str]]:
    """Write every supported cell's options to ``out_dir`` and ``skipped.txt`` for the others.

    Returns:
        The written option files and ``{cell: reason}`` of the skipped cells.
    """
    written, skipped = [], {}
    for backbone in backbones:
        for scale in scales:
            reason = unsupported_reason(backbone, scale)
            for method in METHODS:
                name = cell_name(preset, backbone, scale, method)
                if reason:
                    skipped[name] = reason
                    continue
                opt = make_options(backbone, scale, method, preset, **kwargs)
                written.append(write_options(opt, os.path.join(out_dir, f'{name}.yml')))
    with open(os.path.join(out_dir, 'skipped.txt'), 'w', encoding='utf-8') as f:
        f.write('# Benchmark cells not generated: the backbone does not support the scale in BasicSR 1.4.2.\n')
        f.writelines(f'{name}: {reason}\n' for name, reason in skipped.items())
    return written, skipped


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--out', default=os.path.join(REPO_ROOT, 'options', 'benchmark'))
    parser.add_argument('--preset', choices=sorted(PRESETS), default='paper')
    parser.add_argument('--backbones', nargs='+', default=list(BACKBONES), choices=BACKBONES)
    parser.add_argument('--scales', nargs='+', type=int, default=list(SCALES))
    parser.add_argument('--iters', type=int, default=None)
    parser.add_argument('--data-root', default=None)
    parser.add_argument('--fer-checkpoint', default=None)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    written, skipped = write_matrix(
        args.out,
        tuple(args.backbones),
        tuple(args.scales),
        args.preset,
        iters=args.iters,
        data_root=args.data_root,
        fer_checkpoint=args.fer_checkpoint,
    )
    print(f'wrote {len(written)} option files to {args.out}; skipped {len(skipped)} cells (see skipped.txt)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
