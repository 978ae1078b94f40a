"""Build the networks of an SR-FER predictor: the SR network with its weights, the classifier, the device."""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from typing import Any

import torch

from srfer_plugin.prediction_types import InferenceError
from srfer_plugin.utils.checkpoint import extract_state_dict, safe_load, strip_key_prefix


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; InferenceError without CUDA."""
    if str(name) == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise InferenceError(f'--device {name}: CUDA is not available')
    return device


def sr_param_key(checkpoint: Any) -> str | None:
    """BasicSR's preferred weights in a checkpoint: ``params_ema``, then ``params``, else None (plain dict)."""
    if isinstance(checkpoint, Mapping):
        for key in ('params_ema', 'params'):
            if isinstance(checkpoint.get(key), Mapping):
                return key
    return None


def load_sr_network(
    network_opt: Mapping[str, Any],
    path: str,
    param_key: str | None = None,
    device: str | torch.device = 'cpu',
    strict: bool = True,
) -> torch.nn.Module:
    """Build an SR network with BasicSR's ``build_network`` and load its weights safely.

    Args:
        network_opt: The ``network_g`` options (``type`` plus the arch's arguments).
        path: Weights file (BasicSR ``params_ema``/``params``, or a plain state dict; ``module.`` keys of
            DDP are accepted).
        param_key: Key of the weights. Default: ``params_ema`` if present, else ``params``.
        device: Target device.
        strict: Require an exact key match.

    Returns:
        The network in eval mode on ``device``.

    Raises:
        InferenceError: The weights do not fit the network.
    """
    from basicsr.archs import build_network

    net = build_network(deepcopy(dict(network_opt)))
    checkpoint = safe_load(path)
    state_dict = strip_key_prefix(extract_state_dict(checkpoint, path, param_key or sr_param_key(checkpoint)))
    try:
        net.load_state_dict(state_dict, strict=strict)
    except RuntimeError as err:
        raise InferenceError(f'SR weights {path!r} do not fit network_g {network_opt.get("type")!r}: {err}') from err
    return net.eval().to(device)


def build_fer_network(fer_opt: Mapping[str, Any], device: str | torch.device = 'cpu') -> torch.nn.Module:
    """Build the FER classifier (``network_fer`` options, e.g. MMPretrainFER) in eval mode on ``device``."""
    from basicsr.archs import build_network

    return build_network(deepcopy(dict(fer_opt))).eval().to(device)
