"""The one degradation pipeline of the plugin: it makes LR faces for training, testing, the demo and scripts.

A pipeline is a list of steps applied in order to an HR image (``HWC`` float32 in [0, 1], BGR as BasicSR loads
it). Exactly one ``bicubic`` step changes the resolution by the dataset's ``scale``::

    degradation:
      - {type: blur, sigma: [0.2, 2.0], kernel_size: 21}  # Gaussian blur; sigma in pixels
      - {type: bicubic}                                   # MATLAB-style bicubic downsampling by `scale`
      - {type: noise, sigma: [0, 10]}                     # additive Gaussian noise, sigma on the 0-255 scale
      - {type: jpeg, quality: [30, 95]}                   # JPEG compression

A value given as ``[low, high]`` is drawn uniformly per image; a scalar is fixed. ``{type: bicubic}`` alone (the
default) is plain bicubic downsampling. A scenario name of :data:`SCENARIOS` may stand for the whole pipeline
(``degradation: blur_noise_jpeg``). Training draws from the data loader's random state; test sets draw from a
generator seeded by the image path (:func:`rng_for_image`), so every run degrades each test image identically.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from basicsr.utils.matlab_functions import imresize

DegradationSpec = Union[None, str, Mapping[str, Any], Sequence[Mapping[str, Any]]]

STEP_TYPES = ('bicubic', 'blur', 'noise', 'jpeg')
SUPPORTED_SCALES = (2, 3, 4, 8)
# Named degradation scenarios: ``degradation: NAME`` in a dataset option, ``--scenario NAME`` in the scripts.
# Ranged values are drawn per image (randomly in training, from the image's path and seed for test sets).
SCENARIOS: dict[str, tuple[dict[str, Any], ...]] = {
    'bicubic': ({'type': 'bicubic'},),
    'blur': ({'type': 'blur', 'sigma': [0.2, 2.0]}, {'type': 'bicubic'}),
    'noise': ({'type': 'bicubic'}, {'type': 'noise', 'sigma': [1.0, 10.0]}),
    'jpeg': ({'type': 'bicubic'}, {'type': 'jpeg', 'quality': [30, 95]}),
    'blur_noise_jpeg': (
        {'type': 'blur', 'sigma': [0.2, 2.0]},
        {'type': 'bicubic'},
        {'type': 'noise', 'sigma': [1.0, 10.0]},
        {'type': 'jpeg', 'quality': [30, 95]},
    ),
}
_STEP_KEYS = {
    'bicubic': set(),
    'blur': {'sigma', 'kernel_size'},
    'noise': {'sigma'},
    'jpeg': {'quality'},
}


def normalize_pipeline(spec: DegradationSpec, where: str = 'degradation') -> list[dict[str, Any]]:
    """Validate a degradation spec and return it as a list of steps.

    Args:
        spec: ``None`` (plain bicubic), a scenario name of :data:`SCENARIOS`, one step (a dict) or a list of steps.
        where: The option's name for error messages, e.g. ``datasets.train.degradation``.

    Returns:
        The list of steps (copies; the caller's dicts are not changed).
    """
    if spec is None:
        return [{'type': 'bicubic'}]
    if isinstance(spec, str):
        if spec not in SCENARIOS:
            raise ValueError(
                f'{where}: unknown scenario {spec!r}; choose from {sorted(SCENARIOS)} or give a list of steps'
            )
        spec = copy.deepcopy(list(SCENARIOS[spec]))
    steps = [spec] if isinstance(spec, Mapping) else list(spec)
    out = []
    for i, step in enumerate(steps):
        if not isinstance(step, Mapping) or 'type' not in step:
            raise ValueError(f'{where}[{i}]: each step needs a "type" (one of {STEP_TYPES}), got {step!r}')
        step = dict(step)
        if step['type'] not in STEP_TYPES:
            raise ValueError(f'{where}[{i}]: unknown type {step["type"]!r}; choose from {STEP_TYPES}')
        unknown = set(step) - {'type'} - _STEP_KEYS[step['type']]
        if unknown:
            raise ValueError(
                f'{where}[{i}] ({step["type"]}): unknown keys {sorted(unknown)}; '
                f'allowed: {sorted(_STEP_KEYS[step["type"]])}'
            )
        for key in _STEP_KEYS[step['type']] - {'kernel_size'}:
            if key not in step:
                raise ValueError(f'{where}[{i}] ({step["type"]}): missing key {key!r}')
            _check_range(step[key], f'{where}[{i}].{key}')
        out.append(step)
    n_bicubic = sum(step['type'] == 'bicubic' for step in out)
    if n_bicubic != 1:
        raise ValueError(f'{where}: the pipeline needs exactly one {{type: bicubic}} step, found {n_bicubic}')
    return out


def describe_pipeline(spec: DegradationSpec) -> str:
    """A one-line description of a pipeline, e.g. ``blur(sigma=[0.2, 2.0]) > bicubic > jpeg(quality=[30, 95])``."""
    parts = []
    for step in normalize_pipeline(spec):
        args = ', '.join(f'{k}={v}' for k, v in step.items() if k != 'type')
        parts.append(f'{step["type"]}({args})' if args else step['type'])
    return ' > '.join(parts)


def _check_range(value: Any, where: str) -> None:
    values = value if isinstance(value, (list, tuple)) else [value]
    if len(values) not in (1, 2) or not all(isinstance(v, (int, float)) for v in values):
        raise ValueError(f'{where}: expected a number or [low, high], got {value!r}')
    if len(values) == 2 and values[0] > values[1]:
        raise ValueError(f'{where}: low {values[0]} is above high {values[1]}')


def _draw(value: Any, rng: np.random.Generator) -> float:
    if isinstance(value, (list, tuple)):
        return float(value[0]) if len(value) == 1 else float(rng.uniform(value[0], value[1]))
    return float(value)


def check_scale(scale: int, where: str = 'scale') -> int:
    """Return ``scale`` as an int after checking that it is one of the supported factors."""
    if int(scale) != scale or int(scale) not in SUPPORTED_SCALES:
        raise ValueError(f'{where}: {scale!r} is not a supported scale; choose from {SUPPORTED_SCALES}')
    return int(scale)


def downsample_bicubic(img: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-style bicubic downsampling (BasicSR's ``imresize``), clipped to [0, 1]."""
    return np.clip(imresize(img, 1.0 / scale), 0.0, 1.0).astype(np.float32)


def degrade(
    img_gt: np.ndarray, scale: int, pipeline: DegradationSpec = None, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Make an LR image from an HR image.

    Args:
        img_gt: HR image, ``HWC`` float32 in [0, 1] (BGR), height and width divisible by ``scale``.
        scale: Downsampling factor of the ``bicubic`` step.
        pipeline: Degradation spec (see the module docstring); ``None`` is plain bicubic.
        rng: Random generator for ranged values. Default: a fresh unseeded one.

    Returns:
        The LR image, ``HWC`` float32 in [0, 1], ``scale`` times smaller.
    """
    steps = normalize_pipeline(pipeline)
    if rng is None:
        rng = np.random.default_rng()
    h, w = img_gt.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f'HR size {h}x{w} is not divisible by scale {scale}')
    img = img_gt.astype(np.float32)
    for step in steps:
        kind = step['type']
        if kind == 'bicubic':
            img = downsample_bicubic(img, scale)
        elif kind == 'blur':
            sigma = _draw(step['sigma'], rng)
            if sigma > 0:
                ksize = int(step.get('kernel_size', 2 * int(np.ceil(3 * sigma)) + 1)) | 1
                img = cv2.GaussianBlur(img, (ksize, ksize), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        elif kind == 'noise':
            sigma = _draw(step['sigma'], rng) / 255.0
            if sigma > 0:
                img = np.clip(img + rng.normal(0.0, sigma, img.shape).astype(np.float32), 0.0, 1.0)
        elif kind == 'jpeg':
            quality = int(round(_draw(step['quality'], rng)))
            img_u8 = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
            ok, buf = cv2.imencode('.jpg', img_u8, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
            if not ok:
                raise RuntimeError(f'JPEG encoding failed at quality {quality}')
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
            if img.ndim == 2:
                img = img[..., None]
    return img.astype(np.float32)


def rng_for_image(key: str, seed: int = 0) -> np.random.Generator:
    """A generator determined by an image's path (or key) and a seed: test sets degrade reproducibly."""
    return np.random.default_rng([zlib.crc32(key.encode('utf-8')), int(seed)])


def upsample_bicubic(lq: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bicubic upsampling of a batch of LR tensors (the ``bicubic`` baseline of FER accuracy).

    Args:
        lq: ``NCHW`` tensor in [0, 1].
        size: Output ``(height, width)``.

    Returns:
        ``NCHW`` tensor in [0, 1].
    """
    return F.interpolate(lq, size=tuple(size), mode='bicubic', align_corners=False).clamp_(0.0, 1.0)


def bicubic_roundtrip(img: np.ndarray, scale: int = 4) -> np.ndarray:
    """Degrade an image the way the FER calibration does: :func:`downsample_bicubic` by ``scale``, cv2 bicubic up.

    Args:
        img: ``uint8`` or float ``[0, 1]`` image, ``(H, W, C)``; H and W divisible by ``scale``.
        scale: Down-sampling factor.

    Returns:
        Float32 ``[0, 1]`` image of the input size.
    """
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    lr = downsample_bicubic(img.astype(np.float32), scale)
    up = cv2.resize(lr, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(up, 0, 1).astype(np.float32)
