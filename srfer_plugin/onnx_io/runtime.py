"""The onnxruntime backend: an export of ``srfer export`` as the networks of an :class:`SRFERPredictor`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srfer_plugin.onnx_io.common import FER_FILE, FORMAT, FORMAT_VERSION, METADATA_FILE, open_session, require
from srfer_plugin.predictor import InferenceError, SRFERPredictor


def read_metadata(path: str) -> tuple[dict[str, Any], str]:
    """The metadata of an export and its folder.

    Args:
        path: The export folder, or its ``srfer_onnx.json``.

    Returns:
        ``(metadata, folder)``.

    Raises:
        InferenceError: No metadata file, or not one that ``srfer export`` wrote.
    """
    json_path = os.path.join(path, METADATA_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(json_path):
        raise InferenceError(
            f'{json_path}: no ONNX export metadata there (srfer export writes {METADATA_FILE} beside the .onnx files)'
        )
    try:
        with open(json_path, encoding='utf-8') as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise InferenceError(f'{json_path}: unreadable export metadata: {err}') from err
    if not isinstance(meta, dict) or meta.get('format') != FORMAT or not isinstance(meta.get('sr'), dict):
        raise InferenceError(f'{json_path}: not the metadata of srfer export (format {FORMAT!r} with an "sr" entry)')
    if int(meta.get('format_version', 0)) > FORMAT_VERSION:
        raise InferenceError(
            f'{json_path}: written by a newer srfer_plugin (format version {meta["format_version"]}); upgrade'
        )
    return meta, os.path.dirname(os.path.abspath(json_path))


class OnnxNetwork(nn.Module):
    """One exported graph as a module of the predictor: torch tensors in and out, onnxruntime in between.

    Args:
        path: The .onnx file.
        role: ``sr`` or ``fer``.
        export_id: The id the file must carry (from ``srfer_onnx.json``).
        device: ``cpu`` or ``cuda[:N]`` (onnxruntime's CUDA provider).
        threads: onnxruntime's intra-op threads (default: torch's thread count).

    Raises:
        InferenceError: The file is missing, unreadable, or not the one the metadata describes.
    """

    def __init__(self, path: str, role: str, export_id: str, device: str = 'cpu', threads: int | None = None):
        super().__init__()
        if not os.path.isfile(path):
            raise InferenceError(f'{path}: the ONNX file that {METADATA_FILE} names does not exist')
        self.path, self.role = path, role
        self.session = open_session(path, device, threads)
        found = self.session.get_modelmeta().custom_metadata_map
        if found.get('srfer_role') != role or found.get('srfer_export_id') != export_id:
            raise InferenceError(
                f'{path}: does not belong to its {METADATA_FILE} (export id {found.get("srfer_export_id")!r}, role '
                f'{found.get("srfer_role")!r}; the metadata expects {export_id!r}, {role!r}): export again with srfer '
                'export, or keep each export in its own folder'
            )
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All outputs of the graph for ``x`` (``NCHW`` float), on ``x``'s device."""
        arrays = self.session.run(self.output_names, {self.input_name: x.detach().float().cpu().contiguous().numpy()})
        return [torch.from_numpy(a).to(x.device) for a in arrays]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]


class OnnxClassifier(OnnxNetwork):
    """``fer.onnx`` as the predictor's classifier: ``(taps, logits)`` like MMPretrainFER.

    When the classifier resized faces by itself (``network_fer.input_size``) it does here too, the same way, and
    sets ``input_size`` so that the predictor does not resize them again.
    """

    def __init__(
        self, path: str, entry: Mapping[str, Any], export_id: str, device: str = 'cpu', threads: int | None = None
    ):
        super().__init__(path, 'fer', export_id, device, threads)
        self.num_classes = int(entry.get('num_classes') or 0) or None
        self.class_names = list(entry.get('class_names') or []) or None
        resize = entry.get('resize') or {}
        own = resize.get('source') == 'network_fer.input_size' and entry.get('input_size')
        self.input_size = tuple(entry['input_size']) if own else None

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:  # MMPretrainFER.resize
            shrink = x.shape[-2] > self.input_size[0] or x.shape[-1] > self.input_size[1]
            x = F.interpolate(x, size=self.input_size, mode='bilinear', align_corners=False, antialias=shrink)
        logits, *taps = self.run(x)
        return taps, logits


def load_onnx_predictor(
    path: str,
    device: str = 'cpu',
    batch_size: int = 8,
    class_names: Sequence[str] | None = None,
    threads: int | None = None,
    with_fer: bool = True,
) -> SRFERPredictor:
    """An :class:`SRFERPredictor` that runs an export of ``srfer export`` with onnxruntime.

    Args:
        path: The export folder, or its ``srfer_onnx.json``.
        device: ``cpu`` or ``cuda[:N]`` for onnxruntime (the predictor's own tensors stay on the CPU).
        batch_size: Images per batch.
        class_names: Replace the class names of the metadata.
        threads: onnxruntime's intra-op threads (default: torch's thread count).
        with_fer: Load the classifier (when the export has one).

    Raises:
        InferenceError: onnxruntime is missing, or the metadata or a file is missing or does not match.
    """
    require('onnxruntime', 'the onnxruntime backend')
    meta, folder = read_metadata(path)
    export_id = str(meta.get('export_id'))
    sr = meta['sr']
    try:
        scale, pad_multiple = int(sr['scale']), int(sr.get('pad_multiple') or 1)
        sr_path = os.path.join(folder, sr['file'])
    except (KeyError, TypeError, ValueError) as err:
        raise InferenceError(f'{os.path.join(folder, METADATA_FILE)}: incomplete "sr" entry ({err})') from err
    sr_network = OnnxNetwork(sr_path, 'sr', export_id, device, threads)
    fer_network, fer_size = None, None
    fer = meta.get('fer')
    if with_fer and isinstance(fer, dict):
        fer_network = OnnxClassifier(os.path.join(folder, fer.get('file', FER_FILE)), fer, export_id, device, threads)
        if fer_network.input_size is None and fer.get('input_size'):
            fer_size = tuple(fer['input_size'])
    return SRFERPredictor(
        sr_network,
        fer_network,
        scale,
        'cpu',
        pad_multiple,  # faces smaller than the window are padded here (replicate), as by the torch backend
        fer_size=fer_size,
        batch_size=batch_size,
        class_names=class_names or (fer_network.class_names if fer_network is not None else None),
    )


def predictor_from_args(args: Any, device: Any = 'auto') -> SRFERPredictor:
    """The predictor of ``srfer-infer --backend onnxruntime --onnx DIR`` (``--batch-size``, ``--classes``,
    ``--no-fer``, ``--device``); the network options of the torch backend do not apply and are reported."""
    import sys

    from srfer_plugin.utils.inference_io import resolve_class_names

    if not getattr(args, 'onnx', None):
        raise InferenceError('--backend onnxruntime needs --onnx DIR, a folder written by srfer export')
    ignored = [
        f'--{name.replace("_", "-")}'
        for name in ('opt', 'sr_model', 'network_g', 'param_key', 'scale', 'fer_config', 'fer_checkpoint', 'fer_size')
        if getattr(args, name, None) is not None
    ]
    if ignored:
        print(
            f'note: --backend onnxruntime reads the networks from --onnx: {", ".join(ignored)} ignored', file=sys.stderr
        )
    ort_device = str(device)
    if ort_device.startswith('cuda') and str(getattr(args, 'device', '')) == 'auto':
        ort = require('onnxruntime', 'the onnxruntime backend')
        ort_device = ort_device if 'CUDAExecutionProvider' in ort.get_available_providers() else 'cpu'
    predictor = load_onnx_predictor(
        args.onnx, ort_device, max(1, int(args.batch_size)), with_fer=not getattr(args, 'no_fer', False)
    )
    if predictor.fer_network is None:
        print('note: no classifier in the export (or --no-fer): SR only', file=sys.stderr)
    else:
        predictor.class_names = resolve_class_names(predictor.num_classes, args.classes, predictor.fer_network)
    return predictor
