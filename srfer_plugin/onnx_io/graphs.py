"""The modules that ``srfer export`` traces: what ``sr.onnx`` and ``fer.onnx`` compute."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn


class SRGraph(nn.Module):
    """What ``sr.onnx`` computes: reflect-pad to ``pad_multiple``, super-resolve, crop back, clamp to [0, 1]."""

    def __init__(self, net: nn.Module, scale: int, pad_multiple: int = 1):
        super().__init__()
        self.net, self.scale, self.pad_multiple = net, int(scale), int(pad_multiple)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        if self.pad_multiple > 1:
            m = self.pad_multiple
            x = F.pad(x, (0, (m - w % m) % m, 0, (m - h % m) % m), mode='reflect')
        return self.net(x)[..., : h * self.scale, : w * self.scale].clamp(0, 1)


class FERGraph(nn.Module):
    """What ``fer.onnx`` computes: the classifier's logits, and its tap maps with ``with_taps``."""

    def __init__(self, net: nn.Module, with_taps: bool = False):
        super().__init__()
        self.net, self.with_taps = net, bool(with_taps)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        out = self.net(x)
        feats, logits = (out[0], out[1]) if isinstance(out, (tuple, list)) else ([], out)
        return (logits.float(), *feats) if self.with_taps else logits.float()


def _window_reverse(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    # BasicSR's SwinIR computes the batch with int(), which the tracer freezes: a graph traced at batch 1 would then
    # fold the other images of a batch into the channels. The same result with the batch left to view(-1).
    x = windows.view(-1, h // window_size, w // window_size, window_size, window_size, windows.shape[-1])
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, h, w, windows.shape[-1])


@contextlib.contextmanager
def traceable_archs() -> Iterator[None]:
    """Swap arch helpers that freeze shapes when traced for equivalent traceable ones while exporting."""
    from basicsr.archs import swinir_arch

    original = swinir_arch.window_reverse
    swinir_arch.window_reverse = _window_reverse
    try:
        yield
    finally:
        swinir_arch.window_reverse = original
