"""``srfer export``: trace the predictor's networks to ONNX, tag the files, check onnxruntime against torch."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from srfer_plugin.onnx_io.common import (
    FER_FILE,
    FORMAT,
    FORMAT_VERSION,
    METADATA_FILE,
    SR_FILE,
    open_session,
    require,
)
from srfer_plugin.onnx_io.graphs import FERGraph, SRGraph, traceable_archs
from srfer_plugin.predictor import InferenceError, SRFERPredictor

DEFAULT_OPSET = 17
# Largest torch/onnxruntime differences accepted at export (float32, CPU): SR in [0, 1], logits, tap maps (relative
# to the map's largest magnitude).
SR_TOLERANCE = 1e-4
LOGITS_TOLERANCE = 1e-3
TAPS_TOLERANCE = 1e-3


class OnnxExportError(InferenceError):
    """The network cannot be exported, or onnxruntime does not reproduce torch within the tolerance."""


def _export(
    module: nn.Module,
    sample: torch.Tensor,
    path: str,
    input_name: str,
    output_names: Sequence[str],
    dynamic_hw: bool,
    opset: int,
) -> None:
    """Trace ``module`` on ``sample`` into ``path`` (dynamic batch, and height/width with ``dynamic_hw``)."""
    axes = {0: 'batch', 2: 'height', 3: 'width'} if dynamic_hw else {0: 'batch'}
    dynamic_axes = {input_name: axes, **{name: {0: 'batch'} for name in output_names}}
    if dynamic_hw and output_names[0] == 'sr':
        dynamic_axes['sr'] = {0: 'batch', 2: 'sr_height', 3: 'sr_width'}
    with warnings.catch_warnings(), traceable_archs(), torch.no_grad():
        warnings.simplefilter('ignore')  # TracerWarnings of the archs' shape arithmetic (checked after export)
        try:
            torch.onnx.export(
                module,
                (sample,),
                path,
                dynamo=False,  # the TorchScript tracer keeps the archs' shape arithmetic dynamic
                opset_version=opset,
                input_names=[input_name],
                output_names=list(output_names),
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )
        except Exception as err:  # noqa: BLE001  (reported with the network that failed)
            raise OnnxExportError(f'cannot export {os.path.basename(path)}: {type(err).__name__}: {err}') from err


def _tag(path: str, export_id: str, role: str) -> None:
    """Write the export id and role into the ONNX file's metadata (read back by the backend)."""
    onnx = require('onnx', 'srfer export')
    model = onnx.load(path)
    for key, value in (('srfer_export_id', export_id), ('srfer_role', role), ('srfer_format', FORMAT)):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = 'srfer_plugin'
    onnx.save(model, path)


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    """The largest absolute difference of two arrays (0 when empty)."""
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0


def _check_sr(graph: SRGraph, session: Any, samples: Sequence[torch.Tensor]) -> float:
    """The largest torch/onnxruntime difference of ``sr.onnx`` over ``samples``."""
    worst = 0.0
    for x in samples:
        with torch.no_grad():
            expected = graph(x).numpy()
        try:
            (got,) = session.run(['sr'], {'lr': x.numpy()})
        except Exception as err:  # noqa: BLE001
            raise OnnxExportError(
                f'sr.onnx fails on a {tuple(x.shape)} input (dynamic batch/height/width): {type(err).__name__}: {err}'
            ) from err
        if got.shape != expected.shape:
            raise OnnxExportError(f'sr.onnx gives {got.shape} for a {tuple(x.shape)} input, torch {expected.shape}')
        worst = max(worst, _max_abs(got, expected))
    return worst


def _check_fer(
    graph: FERGraph, session: Any, outputs: Sequence[str], samples: Sequence[torch.Tensor]
) -> tuple[float, float]:
    """The largest torch/onnxruntime differences of ``fer.onnx``: logits (absolute), taps (relative)."""
    worst_logits = worst_taps = 0.0
    for x in samples:
        with torch.no_grad():
            expected = graph(x)
        expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
        try:
            got = session.run(list(outputs), {'image': x.numpy()})
        except Exception as err:  # noqa: BLE001
            raise OnnxExportError(f'fer.onnx fails on a {tuple(x.shape)} input: {type(err).__name__}: {err}') from err
        worst_logits = max(worst_logits, _max_abs(got[0], expected[0]))
        for g, e in zip(got[1:], expected[1:]):
            if g.shape != e.shape:
                raise OnnxExportError(f'fer.onnx gives a {g.shape} tap for a {tuple(x.shape)} input, torch {e.shape}')
            worst_taps = max(worst_taps, _max_abs(g, e) / max(float(np.abs(e).max()), 1e-6))
    return worst_logits, worst_taps


def _trace_lr_size(pad_multiple: int, img_size: Any) -> tuple[int, int]:
    """A non-square LR size, a multiple of ``pad_multiple``, unlike the network's ``img_size`` (SwinIR keeps a
    precomputed mask for that size only, which a traced graph would freeze)."""
    m = max(1, int(pad_multiple))
    h, w = m * (-(-12 // m) + 1), m * -(-12 // m)
    if isinstance(img_size, int) and img_size in (h, w):
        h += m
    return h, w


def export_predictor(
    predictor: SRFERPredictor,
    out_dir: str,
    network_g: Mapping[str, Any] | None = None,
    network_fer: Mapping[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
    with_taps: bool = False,
    check: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Export the predictor's networks to ``out_dir`` (``sr.onnx``, ``fer.onnx``, ``srfer_onnx.json``).

    Args:
        predictor: A torch predictor (its scale, padding, classifier size and class names are recorded).
        out_dir: Output folder (created; files of an earlier export are replaced).
        network_g: The SR network's options, recorded in the metadata.
        network_fer: The classifier's options, recorded in the metadata.
        opset: ONNX opset.
        with_taps: Also output the classifier's attention taps (feature maps).
        check: Run torch and onnxruntime on random inputs (other batch and sizes than the traced ones) and raise
            OnnxExportError beyond :data:`SR_TOLERANCE` / :data:`LOGITS_TOLERANCE` / :data:`TAPS_TOLERANCE`.
        seed: Seed of the random inputs.

    Returns:
        The metadata written to ``srfer_onnx.json`` (``check`` holds the measured differences).
    """
    require('onnx', 'srfer export')
    if check:
        require('onnxruntime', 'srfer export (its torch/onnxruntime check; --no-check skips it)')
    if predictor.device.type != 'cpu':
        raise InferenceError('srfer export runs on the CPU (--device cpu)')
    os.makedirs(out_dir, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):  # written last: a failed export leaves no metadata behind
        os.remove(os.path.join(out_dir, METADATA_FILE))
    export_id = uuid.uuid4().hex
    generator = torch.Generator().manual_seed(seed)
    network_g = dict(network_g or {})
    m = predictor.pad_multiple
    lr_hw = _trace_lr_size(m, network_g.get('img_size'))
    meta: dict[str, Any] = {
        'format': FORMAT,
        'format_version': FORMAT_VERSION,
        'export_id': export_id,
        'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'opset': int(opset),
        'versions': _versions(),
        'sr': {
            'file': SR_FILE,
            'network_g': network_g,
            'type': network_g.get('type', type(predictor.sr_network).__name__),
            'scale': predictor.scale,
            'pad_multiple': m,
            'input': {'name': 'lr', 'layout': 'NCHW', 'dtype': 'float32', 'channels': 'RGB', 'range': [0, 1]},
            'output': {'name': 'sr', 'layout': 'NCHW', 'range': [0, 1], 'clamped': True},
            'dynamic': ['batch', 'height', 'width'],
            'padding': 'inside the graph: sides reflect-padded to a multiple of pad_multiple (sides of at least '
            'pad_multiple pixels), output cropped back to scale x the input',
            'traced_lr_size': list(lr_hw),
        },
        'fer': None,
        'check': {'tolerances': {'sr': SR_TOLERANCE, 'logits': LOGITS_TOLERANCE, 'taps_relative': TAPS_TOLERANCE}},
    }
    sr_graph = SRGraph(predictor.sr_network, predictor.scale, m).eval()
    sr_path = os.path.join(out_dir, SR_FILE)
    _export(sr_graph, torch.rand(1, 3, *lr_hw, generator=generator), sr_path, 'lr', ['sr'], True, opset)
    _tag(sr_path, export_id, 'sr')
    if check:
        session = open_session(sr_path)
        samples = [torch.rand(1, 3, *lr_hw, generator=generator)]
        side = max(m, 5)  # another size that the window does not divide (padded inside the graph), batch 3
        samples.append(torch.rand(3, 3, lr_hw[0] + side + (1 if m > 1 else 0), lr_hw[1] - 1 + m, generator=generator))
        diff = _check_sr(sr_graph, session, samples)
        meta['check']['sr_max_abs_diff'] = diff
        if diff > SR_TOLERANCE:
            raise OnnxExportError(
                f'sr.onnx differs from torch by up to {diff:.2e} on [0, 1] outputs (tolerance {SR_TOLERANCE:.0e}); '
                f'{meta["sr"]["type"]} does not export faithfully'
            )

    if predictor.fer_network is not None:
        meta['fer'] = _export_fer(
            predictor, out_dir, dict(network_fer or {}), export_id, opset, with_taps, check, lr_hw
        )
        meta['check'].update(meta['fer'].pop('check', {}))
    with open(os.path.join(out_dir, METADATA_FILE), 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=2)
    return meta


def _export_fer(
    predictor: SRFERPredictor,
    out_dir: str,
    network_fer: dict[str, Any],
    export_id: str,
    opset: int,
    with_taps: bool,
    check: bool,
    lr_hw: tuple[int, int],
) -> dict[str, Any]:
    """Export (and check) ``fer.onnx``; its entry of the metadata, with the measured differences under ``check``."""
    fer = predictor.fer_network
    own_size = getattr(fer, 'input_size', None) or None  # MMPretrainFER resizes by itself (before the graph here)
    graph_hw = tuple(own_size) if own_size else predictor.fer_size
    dynamic_hw = graph_hw is None
    sample_hw = graph_hw or (lr_hw[0] * predictor.scale, lr_hw[1] * predictor.scale)
    generator = torch.Generator().manual_seed(1)
    graph = FERGraph(fer, with_taps).eval()
    with torch.no_grad():
        out = graph(torch.rand(1, 3, *sample_hw, generator=generator))
    taps = [] if not with_taps else list(getattr(fer, 'taps', None) or [f'tap_{i}' for i in range(len(out) - 1)])
    if with_taps and len(out) < 2:
        raise OnnxExportError('--with-taps: the classifier returns no feature maps (only logits)')
    outputs = ['logits', *[f'tap_{i}' for i in range(len(taps))]]
    path = os.path.join(out_dir, FER_FILE)
    _export(graph, torch.rand(1, 3, *sample_hw, generator=generator), path, 'image', outputs, dynamic_hw, opset)
    _tag(path, export_id, 'fer')
    entry: dict[str, Any] = {
        'file': FER_FILE,
        'network_fer': {k: v for k, v in network_fer.items() if k != 'freeze'},
        'num_classes': int(predictor.num_classes or 0),
        'class_names': predictor.label_names,
        'input': {'name': 'image', 'layout': 'NCHW', 'dtype': 'float32', 'channels': 'RGB', 'range': [0, 1]},
        'input_size': list(graph_hw) if graph_hw else None,
        'dynamic': ['batch'] + (['height', 'width'] if dynamic_hw else []),
        'resize': None
        if dynamic_hw
        else {
            'where': 'outside the graph, before it',
            'mode': 'bilinear, align_corners=False',
            'antialias': 'when shrinking' if own_size else 'always',
            'source': 'network_fer.input_size' if own_size else 'fer_size',
        },
        'normalisation': 'inside the graph (the classifier mean/std and channel order; input RGB in [0, 1])',
        'outputs': outputs,
        'taps': taps,
    }
    if check:
        session = open_session(path)
        samples = [torch.rand(1, 3, *sample_hw, generator=generator)]
        other = sample_hw if graph_hw else (sample_hw[0] + 4, sample_hw[1] + 8)
        samples.append(torch.rand(3, 3, *other, generator=generator))
        try:
            logits_diff, taps_diff = _check_fer(graph, session, outputs, samples)
        except OnnxExportError as err:
            if not dynamic_hw:
                raise
            raise OnnxExportError(
                f'{err}: this classifier does not export with a dynamic image size (ViT-like token grids); give it '
                'a fixed one: --fer-size N (or network_fer.input_size)'
            ) from err
        entry['check'] = {'logits_max_abs_diff': logits_diff}
        if with_taps:
            entry['check']['taps_max_rel_diff'] = taps_diff
        if logits_diff > LOGITS_TOLERANCE or taps_diff > TAPS_TOLERANCE:
            raise OnnxExportError(
                f'fer.onnx differs from torch: logits by up to {logits_diff:.2e} (tolerance {LOGITS_TOLERANCE:.0e}), '
                f'tap maps by {taps_diff:.2e} of their range (tolerance {TAPS_TOLERANCE:.0e})'
                + ('; give the classifier a fixed size: --fer-size N (or network_fer.input_size)' if dynamic_hw else '')
            )
    return entry


def _versions() -> dict[str, str]:
    """The versions of srfer_plugin, torch, onnx and onnxruntime (those installed)."""
    from srfer_plugin.version import __version__

    versions = {'srfer_plugin': __version__, 'torch': torch.__version__}
    for name in ('onnx', 'onnxruntime'):
        with contextlib.suppress(ImportError):
            versions[name] = __import__(name).__version__
    return versions
