"""``calculate_face_niqe``: BasicSR's NIQE on blocks small enough for face crops (``val.metrics`` type)."""

from __future__ import annotations

import os

import numpy as np
from basicsr.metrics import niqe as basicsr_niqe
from basicsr.utils.registry import METRIC_REGISTRY

_PRISTINE = None  # BasicSR's pristine model (mu, cov, window), read once


def _pristine_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    global _PRISTINE
    if _PRISTINE is None:
        params = np.load(os.path.join(os.path.dirname(basicsr_niqe.__file__), 'niqe_pris_params.npz'))
        _PRISTINE = (params['mu_pris_param'], params['cov_pris_param'], params['gaussian_window'])
    return _PRISTINE


@METRIC_REGISTRY.register()
def calculate_face_niqe(
    img: np.ndarray, crop_border: int, block_size: int = 32, input_order: str = 'HWC', convert_to: str = 'y', **kwargs
) -> float:
    """NIQE of an image with BasicSR's features and pristine model, on ``block_size`` blocks.

    BasicSR's ``calculate_niqe`` uses 96 px blocks: a 112 or 128 px face holds one, and NIQE's covariance needs
    several (with one it fails to converge). Smaller blocks give several per face; the values compare methods within
    one table, not with NIQE figures measured on 96 px blocks.

    Args:
        img: ``HWC`` BGR image in [0, 255] (as ``tensor2img`` returns it).
        crop_border: Pixels cropped at each edge before the measure.
        block_size: Side of the blocks at the full scale (even; the half scale uses half of it).
        input_order: ``HWC``, ``CHW`` or ``HW``.
        convert_to: ``y`` (MATLAB YCbCr luma) or ``gray``.
        **kwargs: Other ``val.metrics`` keys (``better``), ignored.

    Returns:
        The NIQE score (lower looks more natural).

    Raises:
        ValueError: ``block_size`` is odd or the cropped image holds fewer than 2x2 blocks.
    """
    if block_size % 2 or block_size < 8:
        raise ValueError(f'calculate_face_niqe: block_size must be even and >= 8, got {block_size}')
    img = img.astype(np.float32)
    if input_order != 'HW':
        img = basicsr_niqe.reorder_image(img, input_order=input_order)
        img = (
            basicsr_niqe.to_y_channel(img)
            if convert_to == 'y'
            else basicsr_niqe.cv2.cvtColor(img / 255.0, basicsr_niqe.cv2.COLOR_BGR2GRAY) * 255.0
        )
        img = np.squeeze(img)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    if min(img.shape[:2]) < 2 * block_size:
        raise ValueError(
            f'calculate_face_niqe: a {img.shape[0]}x{img.shape[1]} image (after crop_border {crop_border}) holds fewer '
            f'than 2x2 blocks of {block_size} px; lower block_size'
        )
    mu, cov, window = _pristine_model()
    return float(basicsr_niqe.niqe(img.round(), mu, cov, window, block_size, block_size))
