"""The synthetic-face experiment shared by ``python -m srfer_plugin.demo`` and the benchmark's demo-based presets.

Data (synthetic expression faces), the FER classifier pre-trained on them (both cached) and the BasicSR options of
the SR trainings: plain SR (``SafeSRModel``, pixel loss only) and SR-FER (``SRFERModel``), which differ only in the
classifier and its losses; joint SR-FER (the classifier trained too) and plain SR's network frozen with the
classifier fine-tuned on its outputs (the baseline of joint learning).
"""

from __future__ import annotations

import copy
import os
from typing import Any

from srfer_plugin import fer_pretrain
from srfer_plugin.data.fer_layout import FER7_CLASSES
from srfer_plugin.synthetic import ensure_synthetic_dataset
from srfer_plugin.utils.shipped_options import shipped_path

NUM_CLASSES = len(FER7_CLASSES)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
# Joint learning on top of the SR-FER losses: the classifier is trained too (``train.train_network_fer: true``).
# ``sr_grad_weight: 0``: the classification loss trains the classifier only, not the SR network. Classifier LR 1e-4,
# as in options/train_RCAN_srfer_joint_x4.yml (the joint preset of docs/benchmark.md measured 1e-4 above 1e-5).
DEMO_JOINT_LEARNING: dict[str, Any] = {
    'train_network_fer': True,
    'fer_opt': {'type': 'FERCrossEntropyLoss', 'loss_weight': 1.0, 'label_smoothing': 0.1},
    'fer_inputs': ['sr', 'hr'],
    'optim_fer': {'type': 'Adam', 'lr': 1e-4},
    'joint_opt': {'sr_grad_weight': 0.0, 'fer_frozen_iters': 0},
}
# Joint learning's guard against overfitting a small set (train.fer_distill_opt): the trained classifier's logits on
# HR faces kept close to its frozen starting copy's (knowledge distillation at T = 2, T^2-scaled KL).
DEMO_FER_DISTILL: dict[str, Any] = {'type': 'PredictionConsistencyLoss', 'loss_weight': 1.0, 'temperature': 2.0}
# GAN fine-tuning of an L1-trained network_g, as ESRGAN starts from its PSNR-oriented network: ESRGAN's relativistic
# losses (SafeESRGANModel / SRFERESRGANModel) with Real-ESRGAN's U-Net discriminator (size-agnostic; BasicSR's
# VGG-style one takes 128 or 256 px only; 16 features instead of 64, for CPU) and Real-ESRGAN's GAN weight. No
# perceptual loss: its VGG19 weights cannot be downloaded here (the recipe options/train_ESRGAN_srfer_x4.yml has it).
DEMO_GAN: dict[str, Any] = {
    'network_d': {'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 16, 'skip_connection': True},
    'train': {
        'optim_g': {'type': 'Adam', 'lr': 1e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]},
        'optim_d': {'type': 'Adam', 'lr': 1e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]},
        'gan_opt': {
            'type': 'GANLoss',
            'gan_type': 'vanilla',
            'real_label_val': 1.0,
            'fake_label_val': 0.0,
            'loss_weight': 0.1,
        },
        'net_d_iters': 1,
        'net_d_init_iters': 0,
    },
}
GAN_METHODS = {'esrgan': 'SafeESRGANModel', 'srfer_esrgan': 'SRFERESRGANModel'}  # method: model_type
SR_METHODS = ('plain_sr', 'srfer', 'srfer_joint', 'plain_finetuned', *GAN_METHODS)
JOINT_METHODS = ('srfer_joint', 'plain_finetuned')  # methods that train the classifier (net_fer_latest.pth)
FER_DEMO_CONFIG = 'options/fer/resnet18slim_fer7_demo.py'
# One loader worker: the worker count changes the augmentation random streams, and the demo's numbers were measured
# with one (docs/demo.md).
FER_DATALOADER_OPTIONS = {f'{split}_dataloader.num_workers': 1 for split in ('train', 'val', 'test')}


def repo_path(rel_path: str) -> str:
    """Absolute path of a shipped file (``options/...``): in a clone the repository's file, installed the package's.

    Args:
        rel_path: Path relative to the repository root.

    Returns:
        The absolute path.

    Raises:
        FileNotFoundError: The file is not shipped.
    """
    path = os.path.join(REPO_ROOT, rel_path)
    if os.path.exists(path):  # a clone
        return path
    return shipped_path(rel_path.split('/', 1)[1] if rel_path.startswith('options/') else rel_path)
    return path


def dataset_options(data_root: str, split: str, phase: str, degradation: str | None = None) -> dict[str, Any]:
    """A PairedFERDataset section for one split of the synthetic data.

    Args:
        data_root: Dataset in the plugin's FER layout.
        split: ``train``, ``val`` or ``test`` (its ``meta_info_<split>.txt``).
        phase: ``train`` adds the training loader settings (flips, batch 8, one worker).
        degradation: A scenario of ``srfer_plugin.data.degradations.SCENARIOS`` (default: bicubic).

    Returns:
        The dataset options.
    """
    opt = {
        'name': f'synthetic_{split}',
        'type': 'PairedFERDataset',
        'dataroot_gt': data_root,
        'meta_info_file': os.path.join(data_root, f'meta_info_{split}.txt'),
        'degradation': degradation if degradation and degradation != 'bicubic' else {'type': 'bicubic'},
        'io_backend': {'type': 'disk'},
    }
    if phase == 'train':
        opt.update(
            use_hflip=True, num_worker_per_gpu=1, batch_size_per_gpu=8, dataset_enlarge_ratio=1, prefetch_mode=None
        )
    return opt


def sr_options(
    method: str,
    data_root: str,
    fer_checkpoint: str,
    iters: int,
    seed: int,
    tag: str,
    losses: dict[str, Any] | None = None,
    stages: list[int] | None = None,
    init_network_g: str | None = None,
    degradation: str | None = None,
) -> dict[str, Any]:
    """BasicSR options of one demo SR training.

    Methods: ``plain_sr`` (SafeSRModel, pixel loss only), ``srfer`` (SRFERModel: pixel loss + the consistency
    losses, frozen classifier), ``srfer_joint`` (``srfer`` + :data:`DEMO_JOINT_LEARNING`: the classifier is trained
    too) and ``plain_finetuned`` (the network of a plain-SR run frozen, ``train_network_g: false``, and the classifier
    fine-tuned on its outputs with :data:`DEMO_JOINT_LEARNING`'s loss on ``[sr]`` only; no pixel or consistency
    loss, no ``optim_g``; the classifier follows ``scheduler``). The two joint methods save their classifier as
    ``net_fer_latest.pth``. ``esrgan`` and ``srfer_esrgan`` (:data:`GAN_METHODS`) fine-tune the network of an L1
    training (``init_network_g``) with :data:`DEMO_GAN`'s discriminator and losses, ``srfer_esrgan`` with the
    consistency losses too.

    Args:
        method: One of :data:`SR_METHODS`.
        data_root: Synthetic dataset (its train split).
        fer_checkpoint: Weights of the classifier (not used by ``plain_sr``).
        iters: ``train.total_iter``; the learning rate halves at 70 %.
        seed: ``manual_seed``.
        tag: Part of the experiment name ``demo_<method>_<tag>_seed<seed>``. The methods that train the classifier
            (:data:`JOINT_METHODS`) carry its learning rate after the method (``demo_srfer_joint_lr0.0001_...``), so
            a training made with another rate is never reused as this one.
        losses: The consistency losses of ``srfer``/``srfer_joint`` (``attention_opt``, ``prediction_opt``);
            default :data:`DEMO_SRFER_LOSSES`.
        stages: ``network_fer.stages`` (default ``[0, 1, 2, 3]``).
        init_network_g: ``path.pretrain_network_g``: the plain-SR network that ``plain_finetuned`` freezes, or the
            L1 network a GAN method fine-tunes.
        degradation: The training set's degradation scenario (default: bicubic).

    Returns:
        The option dict for ``python -m srfer_plugin.train``.

    Raises:
        ValueError: An unknown method, or ``plain_finetuned`` or a GAN method without ``init_network_g``.
    """
    if method not in SR_METHODS:
        raise ValueError(f'method {method!r} not in {SR_METHODS}')
    if method in ('plain_finetuned', *GAN_METHODS) and not init_network_g:
        raise ValueError(f'{method} starts from a trained L1 network: give init_network_g')
    fer_lr = f'_lr{DEMO_JOINT_LEARNING["optim_fer"]["lr"]:g}' if method in JOINT_METHODS else ''
    opt: dict[str, Any] = {
        'name': f'demo_{method}{fer_lr}_{tag}_seed{seed}',
        'model_type': GAN_METHODS.get(method, 'SafeSRModel' if method == 'plain_sr' else 'SRFERModel'),
        'scale': 4,
        'num_gpu': 0,
        'manual_seed': seed,
        'datasets': {'train': dataset_options(data_root, 'train', 'train', degradation)},
        'network_g': copy.deepcopy(DEMO_NETWORK_G),
        'path': {'pretrain_network_g': init_network_g, 'strict_load_g': True, 'resume_state': None},
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
    if method in GAN_METHODS:
        opt['network_d'] = copy.deepcopy(DEMO_GAN['network_d'])
        opt['train'].update(copy.deepcopy(DEMO_GAN['train']))
    if method not in ('plain_sr', 'esrgan'):
        opt['network_fer'] = {
            'type': 'MMPretrainFER',
            'config': repo_path(FER_DEMO_CONFIG),
            'checkpoint': fer_checkpoint,
            'num_classes': 7,
            'stages': list(stages) if stages is not None else [0, 1, 2, 3],
        }
    if method in ('srfer', 'srfer_joint', 'srfer_esrgan'):
        opt['train'].update(copy.deepcopy(DEMO_SRFER_LOSSES if losses is None else losses))
    if method in JOINT_METHODS:
        opt['train'].update(copy.deepcopy(DEMO_JOINT_LEARNING))
    if method == 'plain_finetuned':  # network_g is not trained: no optimizer, no pixel loss
        del opt['train']['optim_g'], opt['train']['pixel_opt']
        opt['train'].update(fer_inputs=['sr'], train_network_g=False)
    return opt


def default_data_root(exp_root: str, preset_name: str, train_faces: int | None = None) -> str:
    """The cached synthetic dataset of a preset: ``<exp_root>/datasets/synthetic_fer_<preset_name>[_train<N>]``."""
    return os.path.join(exp_root, 'datasets', f'synthetic_fer_{preset_name}{train_faces_suffix(train_faces)}')


def train_faces_suffix(train_faces: int | None) -> str:
    """``_train<N>`` in the names of a smaller training set's data, classifier and trainings, else empty."""
    return f'_train{train_faces}' if train_faces else ''


def check_train_faces(preset_name: str, train_faces: int) -> None:
    """Raise ValueError naming ``--train-faces`` unless it is a multiple of the 7 classes within the preset's set."""
    most = PRESETS[preset_name]['num_train'] * NUM_CLASSES
    if train_faces % NUM_CLASSES or not 0 < train_faces <= most:
        raise ValueError(
            f'--train-faces must be a multiple of the {NUM_CLASSES} classes between {NUM_CLASSES} and {most} (the '
            f'full training set); got {train_faces}'
        )


def ensure_faces(preset_name: str, data_root: str, prefix: str = '', train_faces: int | None = None) -> str:
    """Generate (or reuse) the synthetic faces of a preset (112 px, seed 0) in ``data_root``.

    Every face is drawn from its own split and index, so a smaller training set (``train_faces``) holds the first
    faces of the full one, class-balanced, with the same validation and test faces.

    Args:
        preset_name: A key of :data:`PRESETS` (its split sizes).
        data_root: Dataset folder.
        prefix: Text put before the progress line.
        train_faces: Training faces (a multiple of 7; default: the preset's).

    Returns:
        ``data_root``.
    """
    preset = PRESETS[preset_name]
    print(f'{prefix}synthetic faces -> {data_root}', flush=True)
    sizes = {key: preset[key] for key in ('num_train', 'num_val', 'num_test')}
    if train_faces:
        check_train_faces(preset_name, train_faces)
        sizes['num_train'] = train_faces // NUM_CLASSES
    ensure_synthetic_dataset(data_root, seed=0, size=112, **sizes)
    return data_root


def pretrain_fer(
    config: str, work_dir: str, data_root: str, preset_name: str = 'default', prefix: str = '', label: str = ''
) -> dict[str, Any]:
    """Pre-train (or reuse) a classifier on the synthetic faces like the demo's (CPU, seed 0, one loader worker).

    Args:
        config: mmpretrain config file.
        work_dir: mmengine work folder (the cache).
        data_root: Synthetic dataset.
        preset_name: A key of :data:`PRESETS` (its ``fer_epochs``).
        prefix: Text put before the progress line.
        label: Name of the config in the progress line (default: ``config``).

    Returns:
        :func:`srfer_plugin.fer_pretrain.train_fer`'s result (``fer_final``, ``accuracy_top1``, ``classes``).
    """
    print(f'{prefix}FER pre-training (mmpretrain, {label or config}) -> {work_dir}', flush=True)
    return fer_pretrain.train_fer(
        config,
        work_dir=work_dir,
        data_root=data_root,
        device='cpu',
        seed=0,
        max_epochs=PRESETS[preset_name]['fer_epochs'],
        cfg_options=FER_DATALOADER_OPTIONS,
        reuse=True,
    )


def prepare_data_and_classifier(
    preset_name: str,
    exp_root: str,
    data_root: str | None = None,
    step_prefix: tuple[str, str] = ('', ''),
    train_faces: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """Synthetic faces and the FER classifier pre-trained on them (both cached; the benchmark shares them).

    Args:
        preset_name: ``default`` or ``quick`` (see :data:`PRESETS`).
        exp_root: Folder holding ``datasets/`` and ``experiments/``.
        data_root: Dataset folder (default: ``<exp_root>/datasets/synthetic_fer_<preset_name>[_train<N>]``).
        step_prefix: Text put before the two progress lines.
        train_faces: A smaller training set (:func:`ensure_faces`); the classifier is pre-trained on it alone
            (``experiments/demo_fer_<preset_name>_train<N>``), as a classifier of a small real set would be.

    Returns:
        ``(data_root, fer)``: ``fer`` is :func:`srfer_plugin.fer_pretrain.train_fer`'s result (``fer_final``,
        ``accuracy_top1``, ``classes``).
    """
    data_root = os.path.abspath(data_root or default_data_root(exp_root, preset_name, train_faces))
    ensure_faces(preset_name, data_root, step_prefix[0], train_faces)
    fer_dir = os.path.join(exp_root, 'experiments', f'demo_fer_{preset_name}{train_faces_suffix(train_faces)}')
    fer = pretrain_fer(repo_path(FER_DEMO_CONFIG), fer_dir, data_root, preset_name, step_prefix[1], FER_DEMO_CONFIG)
    return data_root, fer
