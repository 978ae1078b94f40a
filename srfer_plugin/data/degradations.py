"""The one degradation pipeline of the plugin: it makes LR faces for training, testing, the demo and scripts.

A pipeline is a list of steps applied in order to an HR image (``HWC`` float32 in [0, 1], BGR as BasicSR loads
it). Exactly one ``bicubic`` step makes the LR size, HR size / the dataset's ``scale``::

    degradation:
      - {type: blur, sigma: [0.2, 2.0], kernel_size: 21}  # Gaussian blur; sigma in pixels
      - {type: bicubic}                                   # MATLAB-style bicubic downsampling by `scale`
      - {type: noise, sigma: [0, 10]}                     # additive Gaussian noise, sigma on the 0-255 scale
      - {type: jpeg, quality: [30, 95], prob: 0.5}        # JPEG compression, applied to half of the images

A value given as ``[low, high]`` is drawn uniformly per image; a scalar is fixed. ``blur``'s ``kernel_size`` is an odd
size >= 3 or ``[low, high]`` of them (drawn among the odd sizes); without it the kernel spans +-3 sigma.
``{type: bicubic}`` alone (the default) is plain bicubic downsampling. The BasicSR-based steps ``kernel_blur``,
``sinc``, ``poisson_noise``, ``realesrgan_noise`` and ``resize`` live in
:mod:`srfer_plugin.data.realworld_degradations`; ``resize`` steps come before ``bicubic``, which then resizes to the
LR size with cv2 bicubic (MATLAB-style only from the HR size). Any step but ``bicubic`` may have ``prob`` (default
1), the probability that it is applied. A scenario name of :data:`SCENARIOS` may stand for the whole pipeline
(``degradation: blur_noise_jpeg``). Training draws from the data loader's random state; test sets draw from a
generator seeded by the image path (:func:`rng_for_image`), so every run degrades each test image identically.
"""

from __future__ import annotations

import copy
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from basicsr.utils.matlab_functions import imresize

from srfer_plugin.data import realworld_degradations as realworld
from srfer_plugin.data.realworld_degradations import (
    check_kernel_size,
    check_probability,
    check_range,
    draw,
    draw_kernel_size,
)

DegradationSpec = Union[None, str, Mapping[str, Any], Sequence[Mapping[str, Any]]]

# (required keys, optional keys) of each step type.
_STEP_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    'bicubic': ((), ()),
    'blur': (('sigma',), ('kernel_size', 'prob')),
    'noise': (('sigma',), ('prob',)),
    'jpeg': (('quality',), ('prob',)),
    **realworld.STEP_KEYS,
}
_BOUNDS = {('blur', 'sigma'): (0.0, None), ('noise', 'sigma'): (0.0, None), ('jpeg', 'quality'): (0.0, 100.0)}
BLUR_MIN_KERNEL_SIZE = 3  # a 1x1 Gaussian kernel leaves the image as it is
STEP_TYPES = tuple(_STEP_KEYS)
SUPPORTED_SCALES = (2, 3, 4, 8)


def _realesrgan_blur(sigma: list[float], **extra: Any) -> dict[str, Any]:
    """A ``kernel_blur`` step with Real-ESRGAN's kernel types, probabilities, sizes and betas."""
    return {
        'type': 'kernel_blur',
        'kernel_list': list(realworld.KERNEL_TYPES),
        'kernel_prob': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
        'kernel_size': [7, 21],
        'sigma_x': sigma,
        'sigma_y': list(sigma),
        'betag': [0.5, 4.0],
        'betap': [1.0, 2.0],
        'sinc_prob': 0.1,
        **extra,
    }


def _realesrgan_noise(sigma: list[float], poisson_scale: list[float]) -> dict[str, Any]:
    """A ``realesrgan_noise`` step with Real-ESRGAN's Gaussian and grey-noise probabilities."""
    return {
        'type': 'realesrgan_noise',
        'gaussian_prob': 0.5,
        'sigma': sigma,
        'poisson_scale': poisson_scale,
        'gray_prob': 0.4,
    }


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
    # GFPGAN's blind face degradation at a fixed scale (no random down-scaling or colour jitter). GFPGAN blurs
    # 512-px faces with sigma [0.1, 10]; FER faces are ~100-128 px, so sigma is scaled down to [0.2, 3.0] HR pixels.
    'blind_face': (
        {
            'type': 'kernel_blur',
            'kernel_list': ['iso', 'aniso'],
            'kernel_prob': [0.5, 0.5],
            'kernel_size': 21,
            'sigma_x': [0.2, 3.0],
            'sigma_y': [0.2, 3.0],
            'rotation': [-math.pi, math.pi],
        },
        {'type': 'bicubic'},
        {'type': 'noise', 'sigma': [0.0, 20.0]},
        {'type': 'jpeg', 'quality': [60, 100]},
    ),
    # Real-ESRGAN's second-order degradation (its default options). Real-ESRGAN picks the final order of
    # "resize + sinc" and JPEG at random; here it is fixed: resize (bicubic) > sinc > JPEG.
    'realesrgan': (
        _realesrgan_blur(sigma=[0.2, 3.0]),
        {'type': 'resize', 'scale': [0.15, 1.5]},
        _realesrgan_noise(sigma=[1.0, 30.0], poisson_scale=[0.05, 3.0]),
        {'type': 'jpeg', 'quality': [30, 95]},
        _realesrgan_blur(sigma=[0.2, 1.5], prob=0.8),
        {'type': 'resize', 'scale': [0.3, 1.2], 'base': 'lr'},  # Real-ESRGAN: relative to the LR size
        _realesrgan_noise(sigma=[1.0, 25.0], poisson_scale=[0.05, 2.5]),
        {'type': 'bicubic'},
        {'type': 'sinc', 'cutoff': [math.pi / 3, math.pi], 'kernel_size': 21, 'prob': 0.8},
        {'type': 'jpeg', 'quality': [30, 95]},
    ),
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
        kind = step['type']
        required, optional = _STEP_KEYS[kind]
        unknown = set(step) - {'type'} - set(required) - set(optional)
        if unknown:
            raise ValueError(
                f'{where}[{i}] ({kind}): unknown keys {sorted(unknown)}; allowed: {sorted(required + optional)}'
            )
        for key in required:
            if key not in step:
                raise ValueError(f'{where}[{i}] ({kind}): missing key {key!r}')
        if kind in realworld.STEP_KEYS:
            realworld.check_step(step, f'{where}[{i}]')
        else:
            for key in required:
                check_range(step[key], f'{where}[{i}].{key}', *_BOUNDS.get((kind, key), (None, None)))
            if 'prob' in step:
                check_probability(step['prob'], f'{where}[{i}].prob')
            if 'kernel_size' in step:
                check_kernel_size(step['kernel_size'], f'{where}[{i}].kernel_size', BLUR_MIN_KERNEL_SIZE)
        out.append(step)
    kinds = [step['type'] for step in out]
    if kinds.count('bicubic') != 1:
        raise ValueError(
            f'{where}: the pipeline needs exactly one {{type: bicubic}} step, found {kinds.count("bicubic")}'
        )
    for i in range(kinds.index('bicubic') + 1, len(kinds)):
        if kinds[i] == 'resize':
            raise ValueError(f'{where}[{i}] (resize): resize steps must come before the {{type: bicubic}} step')
    return out


def describe_pipeline(spec: DegradationSpec) -> str:
    """A one-line description of a pipeline, e.g. ``blur(sigma=[0.2, 2.0]) > bicubic > jpeg(quality=[30, 95])``."""
    parts = []
    for step in normalize_pipeline(spec):
        args = ', '.join(f'{k}={v}' for k, v in step.items() if k != 'type')
        parts.append(f'{step["type"]}({args})' if args else step['type'])
    return ' > '.join(parts)


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
        scale: Downsampling factor: the ``bicubic`` step makes ``HR size / scale``.
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
    lr_size = (h // scale, w // scale)
    for step in steps:
        kind = step['type']
        if 'prob' in step and not rng.uniform() < step['prob']:  # no draw without `prob`: old pipelines unchanged
            continue
        if kind == 'bicubic':
            if img.shape[:2] == (h, w):
                img = downsample_bicubic(img, scale)
            else:  # after resize steps
                img = realworld.resize_image(img, lr_size, cv2.INTER_CUBIC)
        elif kind in realworld.STEP_KEYS:
            img = realworld.apply_step(img, step, rng, lr_size)
        elif kind == 'blur':
            sigma = draw(step['sigma'], rng)
            if sigma > 0:
                if 'kernel_size' in step:  # a range draws only then: fixed sizes keep the draws of old pipelines
                    ksize = draw_kernel_size(step['kernel_size'], rng)
                else:
                    ksize = 2 * int(np.ceil(3 * sigma)) + 1
                img = cv2.GaussianBlur(img, (ksize, ksize), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        elif kind == 'noise':
            sigma = draw(step['sigma'], rng) / 255.0
            if sigma > 0:
                img = np.clip(img + rng.normal(0.0, sigma, img.shape).astype(np.float32), 0.0, 1.0)
        elif kind == 'jpeg':
            quality = int(round(draw(step['quality'], rng)))
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
    return np.random.default_rng([zlib.crc32(os.fsencode(key)), int(seed)])  # a name's own bytes (any encoding)


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
