"""Checks on an SR network (``network_g``) that every user of one needs: the model, the predictor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def probe_size(network_opt: Mapping[str, Any] | None, lr_size: int = 16) -> int:
    """The side of a probe input: ``lr_size`` rounded up to a multiple of ``network_g.window_size`` (SwinIR).

    Args:
        network_opt: The ``network_g`` options, or None.
        lr_size: The smallest side wanted.

    Returns:
        The probe side in pixels.
    """
    window = int((network_opt or {}).get('window_size') or 1)
    return -(-int(lr_size) // window) * window


def input_channels(network_opt: Mapping[str, Any] | None) -> int:
    """Input channels of ``network_g`` (``num_in_ch``, SwinIR's ``in_chans``, else 3)."""
    network_opt = network_opt or {}
    return int(network_opt.get('num_in_ch', network_opt.get('in_chans', 3)))


def check_upscale(
    net: torch.nn.Module,
    scale: int,
    network_opt: Mapping[str, Any] | None = None,
    device: str | torch.device = 'cpu',
    lr_size: int = 16,
) -> None:
    """Fail early when ``net`` does not upscale by ``scale`` (e.g. ``upscale`` and ``scale`` disagree).

    One forward of a zero image whose side is a multiple of the network's window. The network's train/eval mode
    is restored afterwards.

    Args:
        net: The SR network (bare, not DDP-wrapped).
        scale: The expected upscale factor.
        network_opt: Its ``network_g`` options (``type``, ``window_size``, ``num_in_ch``/``in_chans``).
        device: Where the network is.
        lr_size: Smallest side of the probe input.

    Raises:
        ValueError: The output is not ``scale`` times the input, or the network rejects the probe.
    """
    side = probe_size(network_opt, lr_size)
    name = (network_opt or {}).get('type', type(net).__name__)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(torch.zeros(1, input_channels(network_opt), side, side, device=device))
    except RuntimeError as err:
        raise ValueError(f'network_g ({name}) fails on a {side}x{side} probe input: {err}') from err
    finally:
        net.train(was_training)
    expected = (side * scale, side * scale)
    if tuple(out.shape[-2:]) != expected:
        raise ValueError(
            f'network_g ({name}) turns a {side}x{side} input into {out.shape[-2]}x{out.shape[-1]}, but scale '
            f"{scale} needs {expected[0]}x{expected[1]}; make network_g's upscale factor match the top-level scale"
        )
