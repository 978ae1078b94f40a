"""Evaluation of a trained ``network_g`` by a test-mode SRFERModel, as the demo and the benchmark report it.

On the test split: PSNR/SSIM (Y channel, ``scale`` border pixels cropped) and the accuracy of one FER classifier
(the frozen one, or the one a joint training fine-tuned) on SR (``acc``), HR (``acc_hr``) and bicubic
(``acc_bicubic``) faces; the srfer-test reports (per-class accuracy, confusion matrices) go to a results folder.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.metrics import calculate_metric
from basicsr.models import build_model
from basicsr.utils import tensor2img

from srfer_plugin.data.degradations import upsample_bicubic
from srfer_plugin.studies.synthetic import DEMO_NETWORK_G, FER_DEMO_CONFIG, dataset_options
from srfer_plugin.utils.shipped_options import resolve_path

# Metrics a study may add to PSNR/SSIM: BasicSR's no-reference NIQE (lower is better) on the SR output alone, on
# 32 px blocks (calculate_face_niqe: BasicSR's 96 px blocks do not fit twice in a 112 px face).
EXTRA_METRICS = {'niqe': {'type': 'calculate_face_niqe', 'block_size': 32, 'better': 'lower'}}  # + crop_border


def metric_options(scale: int = 4, extra: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """PSNR/SSIM options (Y channel, ``scale`` border pixels cropped) of the demo and the benchmark.

    Args:
        scale: Upscale factor (the cropped border).
        extra: Names of :data:`EXTRA_METRICS` to add (their border is ``scale`` too).

    Returns:
        BasicSR's ``val.metrics`` section.

    Raises:
        ValueError: An unknown extra metric.
    """
    unknown = sorted(set(extra) - set(EXTRA_METRICS))
    if unknown:
        raise ValueError(f'metrics {unknown} not in {sorted(EXTRA_METRICS)}')
    metrics = {
        'psnr': {'type': 'calculate_psnr', 'crop_border': scale, 'test_y_channel': True},
        'ssim': {'type': 'calculate_ssim', 'crop_border': scale, 'test_y_channel': True},
    }
    for name in extra:
        metrics[name] = dict(EXTRA_METRICS[name], crop_border=scale)
    return metrics


def evaluation_options(
    data_root: str,
    fer_checkpoint: str,
    net_g_path: str | None,
    results_root: str,
    network_g: dict[str, Any] | None = None,
    scale: int = 4,
    fer_config: str = FER_DEMO_CONFIG,
    fer_weights: str | None = None,
    degradation: str | None = None,
    extra_metrics: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Options of an SRFERModel in test mode (as ``parse_options`` returns them).

    Args:
        data_root: Dataset in the plugin's FER layout (its ``test`` split is evaluated).
        fer_checkpoint: Weights of the frozen FER classifier.
        net_g_path: Trained ``net_g`` (``params``), or None.
        results_root: Folder of the srfer-test reports.
        network_g: SR network options (default: the demo's RCAN).
        scale: Upscale factor of ``network_g``.
        fer_config: mmpretrain config of the classifier: a path, or a shipped one by name (``srfer::fer/...``,
            or its clone path ``options/fer/...``).
        fer_weights: A classifier fine-tuned by a joint training (its ``net_fer_latest.pth``), used as
            ``network_fer.checkpoint`` instead of ``fer_checkpoint``; the file says it was adapted, and the model
            reports it so.
        degradation: The test set's degradation scenario (default: bicubic), deterministic per image.
        extra_metrics: Metrics of :data:`EXTRA_METRICS` to add to PSNR/SSIM.

    Returns:
        The options for ``basicsr.models.build_model``.
    """
    opt = {
        'name': 'demo_eval',
        'model_type': 'SRFERModel',
        'scale': scale,
        'num_gpu': 1 if torch.cuda.is_available() else 0,
        'is_train': False,
        'dist': False,
        'rank': 0,
        'world_size': 1,
        'datasets': {'test': dict(dataset_options(data_root, 'test', 'test', degradation), phase='test', scale=scale)},
        'network_g': copy.deepcopy(network_g or DEMO_NETWORK_G),
        'network_fer': {
            'type': 'MMPretrainFER',
            'config': os.path.abspath(resolve_path(fer_config)),
            'checkpoint': fer_weights or fer_checkpoint,
            'num_classes': 7,
            'stages': [0, 1, 2, 3],
        },
        'path': {
            'pretrain_network_g': net_g_path,
            'strict_load_g': True,
            'param_key_g': 'params',
            'results_root': results_root,
        },
        'val': {'save_img': False, 'metrics': metric_options(scale, tuple(extra_metrics))},
    }
    return opt


def run_evaluation(opt: dict[str, Any]) -> tuple[dict[str, float], Any]:
    """Build the test-mode SRFERModel of ``opt`` (:func:`evaluation_options`) and validate it on its test split.

    Args:
        opt: Options of :func:`evaluation_options` (possibly edited).

    Returns:
        ``(metrics, model)``.
    """
    model = build_model(opt)
    dataset = build_dataset(opt['datasets']['test'])
    loader = build_dataloader(dataset, opt['datasets']['test'], num_gpu=0, dist=False)
    model.nondist_validation(loader, current_iter=0, tb_logger=None, save_img=False)
    return dict(model.metric_results), model


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
        **eval_kwargs: ``network_g``, ``scale``, ``fer_config`` and ``fer_weights`` of :func:`evaluation_options`.

    Returns:
        ``(metrics, model)``; ``model.fer_results`` holds the per-image predictions.
    """
    return run_evaluation(evaluation_options(data_root, fer_checkpoint, net_g_path, results_root, **eval_kwargs))


def evaluate_bicubic(dataset: Any, scale: int = 4) -> dict[str, float]:
    """PSNR and SSIM of bicubic upsampling on a dataset, with :func:`metric_options`.

    Args:
        dataset: Items with ``lq`` and ``gt`` tensors (e.g. a PairedFERDataset).
        scale: Upscale factor (the cropped border).

    Returns:
        ``{'psnr': ..., 'ssim': ...}``, averaged over the dataset.
    """
    metrics = metric_options(scale)
    sums = dict.fromkeys(metrics, 0.0)
    for i in range(len(dataset)):
        sample = dataset[i]
        up = upsample_bicubic(sample['lq'][None], sample['gt'].shape[-2:])[0]
        data = {'img': tensor2img([up]), 'img2': tensor2img([sample['gt']])}
        for name, metric_opt in metrics.items():
            sums[name] += calculate_metric(data, metric_opt)
    return {name: value / len(dataset) for name, value in sums.items()}
