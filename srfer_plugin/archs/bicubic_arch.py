"""BicubicUpsampler: bicubic interpolation as a ``network_g``, the no-learning baseline of every SR table."""

from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY

from srfer_plugin.data.degradations import upsample_bicubic


@ARCH_REGISTRY.register()
class BicubicUpsampler(torch.nn.Module):
    """Bicubic upsampling by ``upscale`` (no parameters): evaluated like any SR network, it gives the bicubic row.

    It is the same interpolation as the ``acc_bicubic`` column of FER validation (``upsample_bicubic``), so a
    bicubic row's ``acc`` equals the other rows' ``acc_bicubic``.

    Args:
        upscale: The upscale factor.
    """

    def __init__(self, upscale: int = 4):
        super().__init__()
        if int(upscale) != upscale or upscale < 1:
            raise ValueError(f'BicubicUpsampler: upscale must be a positive integer, got {upscale!r}')
        self.upscale = int(upscale)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """Upsample a batch ``NCHW`` in [0, 1] by ``upscale``."""
        return upsample_bicubic(lq, (lq.shape[-2] * self.upscale, lq.shape[-1] * self.upscale))
