"""What the export and the onnxruntime backend share: file names, format, the optional imports, sessions."""

from __future__ import annotations

import importlib
from typing import Any

import torch

from srfer_plugin.predictor import InferenceError

METADATA_FILE = 'srfer_onnx.json'
SR_FILE = 'sr.onnx'
FER_FILE = 'fer.onnx'
FORMAT = 'srfer-onnx'
FORMAT_VERSION = 1
INSTALL_HINT = "pip install 'srfer_plugin[onnx]'  (the onnx extra: onnx and onnxruntime)"


def require(module: str, what: str) -> Any:
    """Import ``onnx`` or ``onnxruntime``; an InferenceError naming the extra to install when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise InferenceError(f'{what} needs the {module} package, which is not installed: {INSTALL_HINT}') from err


def open_session(path: str, device: str = 'cpu', threads: int | None = None) -> Any:
    """An onnxruntime session of ``path`` on ``cpu`` or ``cuda[:N]`` (threads: default torch's thread count)."""
    ort = require('onnxruntime', 'the onnxruntime backend')
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.log_severity_level = 3
    providers = ['CPUExecutionProvider']
    if str(device).startswith('cuda'):
        if 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise InferenceError(
                f'--device {device}: this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu, or use '
                '--device cpu)'
            )
        providers.insert(0, 'CUDAExecutionProvider')
    try:
        return ort.InferenceSession(path, options, providers=providers)
    except Exception as err:  # noqa: BLE001  (onnxruntime raises its own exception types)
        raise InferenceError(f'{path}: onnxruntime cannot load it: {err}') from err
