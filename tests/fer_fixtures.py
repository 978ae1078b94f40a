"""Tiny FER datasets and option files made on the fly for the tests."""

from __future__ import annotations

import copy
import os
from typing import Any

import cv2
import numpy as np
import yaml

from srfer_plugin.data.fer_layout import meta_info_name, write_classes, write_meta_info
from srfer_plugin.studies.synthetic import DEMO_GAN
from srfer_plugin.train_loop.patches import record_dataset_keys

TINY_CLASSES = ('neutral', 'happy', 'sad', 'surprise')
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def draw_face(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A crude face whose mouth shape encodes the label (BGR uint8)."""
    img = np.full((size, size, 3), rng.integers(40, 90), np.uint8)
    c = size // 2
    cv2.circle(img, (c, c), int(size * 0.42), tuple(int(v) for v in rng.integers(120, 230, 3)), -1)
    for dx in (-1, 1):
        cv2.circle(img, (c + dx * size // 6, c - size // 8), max(1, size // 16), (20, 20, 20), -1)
    mouth_y, half = c + size // 5, size // 6
    if label == 0:
        cv2.line(img, (c - half, mouth_y), (c + half, mouth_y), (30, 30, 120), max(1, size // 32))
    else:
        start, end = {1: (0, 180), 2: (180, 360), 3: (0, 360)}[label]
        cv2.ellipse(
            img,
            (c, mouth_y - (half // 2 if label == 1 else 0)),
            (half, half // 2),
            0,
            start,
            end,
            (30, 30, 120),
            max(1, size // 32),
        )
    return img


def make_tiny_fer_dataset(
    root: str,
    size: int = 32,
    per_class: dict[str, int] | None = None,
    seed: int = 0,
    classes: tuple[str, ...] = TINY_CLASSES,
) -> str:
    """Write a tiny dataset in the plugin's layout (class folders + meta_info files + classes.txt).

    Args:
        root: Output folder.
        size: Image size.
        per_class: Images per class for each split. Default ``{'train': 3, 'val': 2}``.
        seed: Random seed.
        classes: Class names.

    Returns:
        ``root``.
    """
    per_class = per_class or {'train': 3, 'val': 2}
    rng = np.random.default_rng(seed)
    write_classes(os.path.join(root, 'classes.txt'), classes)
    for split, count in per_class.items():
        items = []
        for label, name in enumerate(classes):
            os.makedirs(os.path.join(root, split, name), exist_ok=True)
            for i in range(count):
                rel = f'{split}/{name}/{name}_{i:03d}.png'
                cv2.imwrite(os.path.join(root, rel), draw_face(label, size, rng))
                items.append((rel, label))
        write_meta_info(os.path.join(root, meta_info_name(split)), items)
    return root


def load_options(name: str) -> dict[str, Any]:
    """Load a YAML option file of the repository (path relative to the repo root)."""
    with open(os.path.join(REPO_ROOT, name), encoding='utf-8') as f:
        return yaml.safe_load(f)


def tiny_train_options(data_root: str, **overrides: Any) -> dict[str, Any]:
    """The tiny CPU training options, pointed at ``data_root``; ``overrides`` replace top-level keys."""
    opt = load_options('options/tests/train_srfer_tiny_cpu.yml')
    for phase in ('train', 'val'):
        ds = opt['datasets'][phase]
        ds['dataroot_gt'] = data_root
        ds['meta_info_file'] = os.path.join(data_root, meta_info_name(phase))
    opt.update(overrides)
    return opt


def write_options(opt: dict[str, Any], path: str) -> str:
    """Write options to a YAML file and return its path."""
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


# A size-agnostic discriminator small enough for the tiny 32 px faces (Real-ESRGAN's U-Net with spectral norm).
TINY_NET_D: dict[str, Any] = {'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 8, 'skip_connection': True}
# The GAN sections of a tiny GAN training (``train.gan_opt`` is the gan preset's GAN loss).
GAN_TRAIN: dict[str, Any] = {
    'gan_opt': copy.deepcopy(DEMO_GAN['train']['gan_opt']),
    'optim_d': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
}

# Small network_g settings of every supported backbone (x4) for CPU tests.
TINY_SR_ARCHS: dict[str, dict[str, Any]] = {
    'RCAN': {
        'type': 'RCAN',
        'num_in_ch': 3,
        'num_out_ch': 3,
        'num_feat': 8,
        'num_group': 1,
        'num_block': 1,
        'squeeze_factor': 4,
        'upscale': 4,
        'res_scale': 1,
        'img_range': 255.0,
        'rgb_mean': [0.4488, 0.4371, 0.4040],
    },
    'EDSR': {
        'type': 'EDSR',
        'num_in_ch': 3,
        'num_out_ch': 3,
        'num_feat': 8,
        'num_block': 1,
        'upscale': 4,
        'res_scale': 1,
        'img_range': 255.0,
        'rgb_mean': [0.4488, 0.4371, 0.4040],
    },
    'SwinIR': {
        'type': 'SwinIR',
        'upscale': 4,
        'in_chans': 3,
        'img_size': 8,
        'window_size': 4,
        'img_range': 1.0,
        'depths': [1],
        'embed_dim': 12,
        'num_heads': [2],
        'mlp_ratio': 2,
        'upsampler': 'pixelshuffle',
        'resi_connection': '1conv',
    },
    'MSRResNet': {'type': 'MSRResNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 4},
    'RRDBNet': {
        'type': 'RRDBNet',
        'num_in_ch': 3,
        'num_out_ch': 3,
        'num_feat': 8,
        'num_block': 1,
        'num_grow_ch': 4,
        'scale': 4,
    },
}


# A 4-layer ViT classifier (patch 8, 4 classes): 4x4 token grids on the tiny 32 px faces.
TINY_VIT_FER: dict[str, Any] = {
    'type': 'MMPretrainFER',
    'config': 'vit-base-p16_32xb128-mae_in1k',
    'num_classes': 4,
    'cfg_options': {
        'model.backbone.arch': {
            '_delete_': True,
            'embed_dims': 32,
            'num_layers': 4,
            'num_heads': 2,
            'feedforward_channels': 64,
        },
        'model.backbone.patch_size': 8,
        'model.head.in_channels': 32,
    },
}


def model_options(
    data_root: str, exp_root: str, network_g: dict[str, Any] | None = None, is_train: bool = True
) -> dict[str, Any]:
    """Options as ``parse_options`` returns them (no distributed run), for building SRFERModel directly."""
    opt = tiny_train_options(data_root)
    if network_g is not None:
        opt['network_g'] = dict(network_g)
    for phase, ds in opt['datasets'].items():
        ds['phase'], ds['scale'] = phase, opt['scale']
    opt.update(
        {'is_train': is_train, 'dist': False, 'rank': 0, 'world_size': 1, 'auto_resume': False, 'root_path': exp_root}
    )
    opt['path'].update(
        {
            'experiments_root': exp_root,
            'models': os.path.join(exp_root, 'models'),
            'training_states': os.path.join(exp_root, 'training_states'),
            'log': exp_root,
            'visualization': os.path.join(exp_root, 'visualization'),
            'results_root': os.path.join(exp_root, 'results'),
        }
    )
    record_dataset_keys(opt)  # what the plugin's parse_options adds
    return opt


def without_classifier(opt: dict[str, Any]) -> dict[str, Any]:
    """``opt`` (from :func:`model_options`) without the classifier and its losses: a plain-SR run (SafeSRModel)."""
    opt['model_type'] = 'SafeSRModel'
    opt.pop('network_fer')
    for key in ('attention_opt', 'prediction_opt', 'fer_opt', 'optim_fer'):
        opt['train'].pop(key, None)
    opt['path'].pop('ignore_resume_networks', None)
    return opt


def with_consistency_weights(opt: dict[str, Any], section: dict[str, Any]) -> dict[str, Any]:
    """``opt`` with ``train.consistency_weights: section`` instead of the consistency losses' hand-set weights."""
    for key in ('attention_opt', 'prediction_opt'):
        opt['train'][key].pop('loss_weight', None)
    opt['train']['consistency_weights'] = section
    return opt


def synthetic_faces_and_random_fer(root: str, size: int, **split_sizes: int) -> tuple[str, str]:
    """Synthetic 7-class faces of ``size`` px (``num_train``/``num_val``/``num_test``) and the demo's classifier
    with its random initialisation (seed 0) saved as an mmengine-style checkpoint.

    Returns:
        ``(data_root, checkpoint)``.
    """
    import torch

    from srfer_plugin.archs.mmpretrain_fer_arch import MMPretrainFER
    from srfer_plugin.studies.synthetic import FER_DEMO_CONFIG
    from srfer_plugin.synthetic import ensure_synthetic_dataset

    data_root = ensure_synthetic_dataset(os.path.join(root, 'faces'), seed=0, size=size, **split_sizes)
    torch.manual_seed(0)
    fer = MMPretrainFER(FER_DEMO_CONFIG, checkpoint=None, num_classes=7)  # a srfer:: name or its clone path
    checkpoint = os.path.join(root, 'fer.pth')
    torch.save({'state_dict': fer.model.state_dict()}, checkpoint)
    return data_root, checkpoint
