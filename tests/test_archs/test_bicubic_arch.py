"""BicubicUpsampler: the bicubic baseline as a network_g, equal to FER validation's acc_bicubic interpolation."""

from __future__ import annotations

import pytest
import torch
from basicsr.archs import build_network

from srfer_plugin.data.degradations import upsample_bicubic


@pytest.mark.parametrize('scale', [2, 4, 8])
def test_bicubic_upsampler_is_the_validation_interpolation(scale):
    net = build_network({'type': 'BicubicUpsampler', 'upscale': scale})
    lq = torch.rand(2, 3, 7, 5)
    out = net(lq)
    assert out.shape == (2, 3, 7 * scale, 5 * scale) and not list(net.parameters())
    assert torch.equal(out, upsample_bicubic(lq, (7 * scale, 5 * scale)))
    assert 0 <= float(out.min()) and float(out.max()) <= 1


def test_bicubic_upsampler_rejects_a_bad_scale():
    with pytest.raises(ValueError, match='upscale'):
        build_network({'type': 'BicubicUpsampler', 'upscale': 0})
