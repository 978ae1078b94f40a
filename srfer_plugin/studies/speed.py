"""Training-step time and memory of SRFERModel against its plain twin (SafeSRModel), side by side in one process.

Both models are built from one SR-FER option file; the plain one is its ``plain_variant`` (no classifier, no FER
losses, the same training machinery). They train on the same random batches; steps alternate between the two models
(the order flips every step) so that both see the same machine state. Peak memory of a step: on CUDA the allocator
peak over the memory held before the step; on CPU the peak resident set over the resident set before the step, from
``/proc`` (``srfer benchmark-speed`` fixes glibc's mmap threshold so freed tensors leave the resident set).
"""

from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from typing import Any

import torch
import yaml

from srfer_plugin.studies.benchmark_options import plain_variant
from srfer_plugin.studies.synthetic import DEMO_NETWORK_G, DEMO_SRFER_LOSSES, FER_DEMO_CONFIG, repo_path
from srfer_plugin.utils.shipped_options import resolve_path

HR_SIZE = 112
CACHED = 'SRFERModel+cache'  # the SR-FER model with train.cache_hr_reference
# ``network`` of model_options: the option file's networks, the demo's small RCAN with the option file's classifier,
# or the demo's pairing (small RCAN, slim ResNet-18 classifier and the demo's consistency losses).
NETWORKS = ('recipe', 'demo-small', 'demo')


def sub_batch_name(fer_batch_size: int, hr_cache: bool) -> str:
    """The SR-FER model whose classifier reads ``fer_batch_size`` faces of a batch (``train.fer_batch_size``)."""
    return f'{CACHED if hr_cache else "SRFERModel"}+fer{fer_batch_size}'


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda`` for ``auto``, ``cpu`` or ``cuda``; raises RuntimeError for ``cuda`` without a GPU."""
    if device == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('--device cuda: no CUDA device is available')
    return device


def model_options(
    opt_path: str, work_dir: str, device: str, network: str = 'recipe', **train_options: Any
) -> dict[str, dict[str, Any]]:
    """Options (as ``parse_options`` returns them) of the plain twin and the SR-FER model, in that order.

    Args:
        opt_path: SR-FER option file (``model_type: SRFERModel`` with a ``network_fer`` section), or a shipped one
            by name (``srfer::train_RCAN_srfer_x4.yml``).
        work_dir: Folder of the models' experiment paths.
        device: ``cpu`` or ``cuda``.
        network: One of :data:`NETWORKS`.
        **train_options: ``train`` keys set in both models (``use_amp``, ``amp_dtype``, ``channels_last``).

    Returns:
        ``{model_type: options}``.

    Raises:
        ValueError: The file is not SR-FER options, or ``network`` is unknown.
    """
    if network not in NETWORKS:
        raise ValueError(f'network {network!r} not in {NETWORKS}')
    with open(resolve_path(opt_path), encoding='utf-8') as f:
        srfer = yaml.safe_load(f)
    if srfer.get('model_type') != 'SRFERModel' or 'network_fer' not in srfer:
        raise ValueError(f'{opt_path}: needs model_type SRFERModel and a network_fer section')
    if network != 'recipe':
        srfer['network_g'] = copy.deepcopy(DEMO_NETWORK_G)
    if network == 'demo':
        srfer['network_fer'].update(config=repo_path(FER_DEMO_CONFIG), checkpoint=None)
        for key in ('attention_opt', 'prediction_opt'):
            srfer['train'].pop(key, None)
        srfer['train'].update(copy.deepcopy(DEMO_SRFER_LOSSES))
    srfer['network_g']['upscale' if 'upscale' in srfer['network_g'] else 'scale'] = srfer['scale']
    fer = srfer['network_fer']
    fer['config'] = os.path.abspath(resolve_path(fer['config']))
    if fer.get('checkpoint') and not os.path.isfile(fer['checkpoint']):
        print(f'note: {fer["checkpoint"]} not found; the FER classifier is randomly initialised', flush=True)
        fer['checkpoint'] = None
    srfer['train'].update(train_options)
    srfer['path'].update(pretrain_network_g=None, resume_state=None)
    plain = plain_variant(srfer)
    options = {plain['model_type']: plain, srfer['model_type']: srfer}
    for name, opt in options.items():
        exp = os.path.join(work_dir, name)
        opt.pop('datasets', None)
        opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False, root_path=work_dir)
        opt['num_gpu'] = 1 if device == 'cuda' else 0
        opt['path'].update(
            experiments_root=exp,
            models=os.path.join(exp, 'models'),
            training_states=os.path.join(exp, 'training_states'),
            log=exp,
            visualization=os.path.join(exp, 'visualization'),
        )
    return options


def _rss_kib(field: str) -> int | None:
    try:
        with open('/proc/self/status', encoding='ascii') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w', encoding='ascii') as f:
            f.write('5')  # resets VmHWM to the current resident set
        return True
    except OSError:
        return False


def timed_step(model: Any, batch: dict[str, torch.Tensor], step: int, device: str) -> tuple[float, float | None]:
    """One training step; returns ``(seconds, extra peak memory in MiB or None)``."""
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_kib('VmRSS') if _reset_peak_rss() else None
    start = time.perf_counter()
    model.feed_data(batch)
    model.optimize_parameters(step)
    if device == 'cuda':
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if device == 'cuda':
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        hwm = _rss_kib('VmHWM')
        peak = (hwm - base) / 1024 if base is not None and hwm is not None else None
    return seconds, peak


def measure(
    opt_path: str,
    device: str,
    batch_size: int,
    steps: int,
    warmup: int,
    network: str = 'recipe',
    hr_cache: bool = True,
    fer_batch_size: int | None = None,
    **train_options: Any,
) -> dict[str, Any]:
    """Time the models of :func:`model_options` (and the SR-FER one with its HR cache) on the same random batches.

    The cached model sees the same faces at every step, so after its first (warm-up) step every HR face is cached:
    its times are those of a run after its first epoch.

    Args:
        opt_path: SR-FER option file.
        device: ``cpu`` or ``cuda``.
        batch_size: Faces per step (112 px HR, LR by bicubic downsampling).
        steps: Timed steps per model.
        warmup: Untimed steps per model first.
        network: One of :data:`NETWORKS`.
        hr_cache: Also time the SR-FER model with ``train.cache_hr_reference`` (``SRFERModel+cache``).
        fer_batch_size: Also time the SR-FER model (with the cache when ``hr_cache``) whose classifier reads this
            many faces of each batch (``train.fer_batch_size``; :func:`sub_batch_name`).
        **train_options: ``train`` keys of both models (``use_amp``, ``amp_dtype``, ``channels_last``).

    Returns:
        The settings, ``models`` (``{name: median_s, mean_s, peak_step_mib}``, plain twin first),
        ``time_ratio`` and, when memory was measured, ``memory_ratio`` (SR-FER / plain); with ``hr_cache``,
        ``cached_time_ratio`` (cached SR-FER / plain) and ``cache_mib_per_10k_faces`` (one flip of each face);
        with ``fer_batch_size``, ``sub_batch_time_ratio`` (that model / plain).

    Raises:
        ValueError: ``fer_batch_size`` is not below ``batch_size``.
    """
    if fer_batch_size is not None and not 1 <= fer_batch_size < batch_size:
        raise ValueError(f'fer_batch_size must be in [1, batch_size - 1] = [1, {batch_size - 1}]; got {fer_batch_size}')
    from basicsr.models import build_model

    with tempfile.TemporaryDirectory() as work_dir:
        options = model_options(opt_path, work_dir, device, network, **train_options)
        plain_name, srfer_name = list(options)
        if hr_cache:
            cached = copy.deepcopy(options[srfer_name])
            cached['train']['cache_hr_reference'] = True
            options[CACHED] = cached
        if fer_batch_size is not None:
            sub_batch = copy.deepcopy(options[srfer_name])
            sub_batch['train'].update(cache_hr_reference=hr_cache, fer_batch_size=fer_batch_size)
            options[sub_batch_name(fer_batch_size, hr_cache)] = sub_batch
        torch.manual_seed(0)
        models = {name: build_model(opt) for name, opt in options.items()}
    names = list(models)
    srfer_opt = options[srfer_name]
    scale = srfer_opt['scale']
    generator = torch.Generator().manual_seed(0)
    gt = torch.rand(batch_size, 3, HR_SIZE, HR_SIZE, generator=generator)
    batch = {
        'gt': gt,
        'lq': torch.nn.functional.interpolate(gt, scale_factor=1 / scale, mode='bicubic', antialias=True).clamp(0, 1),
        'label': torch.randint(0, srfer_opt['network_fer']['num_classes'], (batch_size,)),
        'gt_path': [f'face_{i}.png' for i in range(batch_size)],
        'hflip': torch.zeros(batch_size, dtype=torch.bool),
    }
    times: dict[str, list[float]] = {name: [] for name in names}
    peaks: dict[str, list[float]] = {name: [] for name in names}
    for step in range(1, warmup + steps + 1):
        for name in names if step % 2 else names[::-1]:
            seconds, peak = timed_step(models[name], batch, step, device)
            if step > warmup:
                times[name].append(seconds)
                if peak is not None:
                    peaks[name].append(peak)
    net_g = models[plain_name].get_bare_model(models[plain_name].net_g)
    results: dict[str, Any] = {
        'device': torch.cuda.get_device_name() if device == 'cuda' else f'cpu, {torch.get_num_threads()} threads',
        'network_g': srfer_opt['network_g']['type'],
        'network_g_params': sum(p.numel() for p in net_g.parameters()),
        'network_fer': os.path.basename(srfer_opt['network_fer']['config']),
        'batch': batch_size,
        'hr_size': HR_SIZE,
        'scale': scale,
        'steps': steps,
        'use_amp': bool(train_options.get('use_amp')),
        'channels_last': bool(train_options.get('channels_last')),
        'models': {},
    }
    for name in names:
        results['models'][name] = {
            'median_s': statistics.median(times[name]),
            'mean_s': statistics.fmean(times[name]),
            'peak_step_mib': max(peaks[name]) if peaks[name] else None,
        }
    plain, srfer = results['models'][plain_name], results['models'][srfer_name]
    results['time_ratio'] = srfer['median_s'] / plain['median_s']
    if plain['peak_step_mib'] and srfer['peak_step_mib']:
        results['memory_ratio'] = srfer['peak_step_mib'] / plain['peak_step_mib']
    if hr_cache:
        results['cached_time_ratio'] = results['models'][CACHED]['median_s'] / plain['median_s']
        results['cache_mib_per_10k_faces'] = models[CACHED].fer.hr_cache.bytes_per_face() * 10_000 / 2**20
    if fer_batch_size is not None:
        sub_batch = results['models'][sub_batch_name(fer_batch_size, hr_cache)]
        results['sub_batch_time_ratio'] = sub_batch['median_s'] / plain['median_s']
    return results


def measure_inference(
    opt_path: str,
    batch_size: int,
    steps: int,
    warmup: int,
    network: str = 'recipe',
    lr_size: int | None = None,
) -> dict[str, Any]:
    """Faces per second of inference (SR + classification) on the CPU: torch against onnxruntime, in one process.

    The networks of the option file (random weights: they do not change the cost) run through
    :class:`~srfer_plugin.predictor.SRFERPredictor` with torch, and through the same predictor on their ONNX export
    (:mod:`srfer_plugin.onnx_io`, onnxruntime with as many threads as torch). Batches alternate between the
    two backends (the order flips every batch) on the same random LR faces.

    Args:
        opt_path: SR-FER option file (``network_g``, ``network_fer``, ``scale``).
        batch_size: Faces per batch.
        steps: Timed batches per backend.
        warmup: Untimed batches per backend first.
        network: One of :data:`NETWORKS`.
        lr_size: LR side (default: the 112 px HR size over the scale).

    Returns:
        The settings, ``backends`` (``{name: median_s, mean_s, faces_per_s}``, torch first), ``speedup``
        (onnxruntime faces/s over torch's), ``max_sr_diff``, ``max_prob_diff`` and ``same_labels`` between the two.
    """
    from basicsr.archs import build_network

    from srfer_plugin.onnx_io import export_predictor, load_onnx_predictor
    from srfer_plugin.predictor import SRFERPredictor, build_fer_network

    with tempfile.TemporaryDirectory() as work_dir:
        opt = model_options(opt_path, work_dir, 'cpu', network)['SRFERModel']
        network_g, network_fer, scale = opt['network_g'], dict(opt['network_fer']), int(opt['scale'])
        torch.manual_seed(0)
        predictor = SRFERPredictor(
            build_network(copy.deepcopy(network_g)),
            build_fer_network(network_fer),
            scale,
            'cpu',
            int(network_g.get('window_size') or 1),
            batch_size=batch_size,
        )
        export = export_predictor(predictor, work_dir, network_g, network_fer)
        predictors = {'torch': predictor, 'onnxruntime': load_onnx_predictor(work_dir, batch_size=batch_size)}
    lr_size = int(lr_size or HR_SIZE // scale)
    lr = torch.rand(batch_size, 3, lr_size, lr_size, generator=torch.Generator().manual_seed(0))
    names = list(predictors)
    times: dict[str, list[float]] = {name: [] for name in names}
    outputs = {}
    for step in range(1, warmup + steps + 1):
        for name in names if step % 2 else names[::-1]:
            start = time.perf_counter()
            outputs[name] = predictors[name].predict(lr)
            if step > warmup:
                times[name].append(time.perf_counter() - start)
    results: dict[str, Any] = {
        'device': f'cpu, {torch.get_num_threads()} threads',
        'network_g': network_g['type'],
        'network_g_params': sum(p.numel() for p in predictor.sr_network.parameters()),
        'network_fer': os.path.basename(str(network_fer.get('config'))),
        'batch': batch_size,
        'lr_size': lr_size,
        'scale': scale,
        'steps': steps,
        'opset': export['opset'],
        'backends': {},
    }
    for name in names:
        median = statistics.median(times[name])
        results['backends'][name] = {
            'median_s': median,
            'mean_s': statistics.fmean(times[name]),
            'faces_per_s': batch_size / median,
        }
    torch_out, ort_out = outputs['torch'], outputs['onnxruntime']
    results['speedup'] = results['backends']['onnxruntime']['faces_per_s'] / results['backends']['torch']['faces_per_s']
    results['max_sr_diff'] = float((torch_out.sr - ort_out.sr).abs().max())
    results['max_prob_diff'] = float((torch_out.probs - ort_out.probs).abs().max())
    results['same_labels'] = bool(torch.equal(torch_out.labels, ort_out.labels))
    return results
