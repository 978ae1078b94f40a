"""calculate_face_niqe: BasicSR's NIQE with a block size that fits face crops."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from basicsr.metrics import calculate_metric
from basicsr.metrics.niqe import calculate_niqe


def _natural_image(size: int) -> np.ndarray:
    """A smooth textured BGR image in [0, 255] (NIQE needs structure, not flat colour)."""
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 255, (size // 4, size // 4, 3)).astype(np.float32)
    return cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 255)


def test_block_96_is_basicsrs_niqe():
    img = _natural_image(288)
    ours = calculate_metric({'img': img}, {'type': 'calculate_face_niqe', 'crop_border': 4, 'block_size': 96})
    assert ours == pytest.approx(calculate_niqe(img, crop_border=4), rel=1e-6)


def test_small_faces_get_a_finite_score_that_tracks_blur():
    sharp = _natural_image(112)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.0)
    opt = {'type': 'calculate_face_niqe', 'crop_border': 4, 'block_size': 32, 'better': 'lower'}
    scores = [calculate_metric({'img': img, 'img2': sharp}, opt) for img in (sharp, blurred)]
    assert all(np.isfinite(scores)) and scores[0] != scores[1]


def test_too_small_for_the_blocks_is_named():
    with pytest.raises(ValueError, match='fewer than 2x2 blocks of 96 px'):
        calculate_metric(
            {'img': _natural_image(112)}, {'type': 'calculate_face_niqe', 'crop_border': 4, 'block_size': 96}
        )
    with pytest.raises(ValueError, match='block_size must be even'):
        calculate_metric(
            {'img': _natural_image(112)}, {'type': 'calculate_face_niqe', 'crop_border': 0, 'block_size': 33}
        )
