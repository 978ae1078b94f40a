"""Real-world degradation steps built on BasicSR's own functions (Real-ESRGAN / GFPGAN style).

:mod:`srfer_plugin.data.degradations` runs the pipeline; this module holds its BasicSR-based step types, their
option checks, and the range helpers every step uses:

- ``kernel_blur``: a kernel of ``basicsr.data.degradations.random_mixed_kernels`` (or, with ``sinc_prob``, a
  ``circular_lowpass_kernel``), applied with ``cv2.filter2D`` as Real-ESRGAN's and GFPGAN's datasets do.
- ``sinc``: ``circular_lowpass_kernel`` (ringing and overshoot), applied with ``cv2.filter2D``.
- ``poisson_noise``: ``random_add_poisson_noise``.
- ``realesrgan_noise``: Real-ESRGAN's either-or of ``random_add_gaussian_noise`` and ``random_add_poisson_noise``.
- ``resize``: a random rescale with ``cv2.resize`` (before the ``bicubic`` step, which then resizes to the LR size).

Every step may have ``prob`` (default 1), the probability that it is applied. BasicSR's functions draw from the
global ``np.random`` and ``random`` states; :func:`basicsr_random_state` seeds both from the step's generator for
the call and restores them afterwards, so test sets stay reproducible per image and data loaders' global states
are untouched.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import cv2
import numpy as np
from basicsr.data.degradations import (
    circular_lowpass_kernel,
    random_add_gaussian_noise,
    random_add_poisson_noise,
    random_mixed_kernels,
)

KERNEL_TYPES = ('iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso')
RESIZE_MODES = {'area': cv2.INTER_AREA, 'bilinear': cv2.INTER_LINEAR, 'bicubic': cv2.INTER_CUBIC}
RESIZE_BASES = ('current', 'lr')
# (required keys, optional keys) of each step type of this module.
STEP_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    'kernel_blur': (
        ('kernel_list', 'sigma_x'),
        ('kernel_prob', 'kernel_size', 'sigma_y', 'rotation', 'betag', 'betap', 'sinc_prob', 'prob'),
    ),
    'sinc': (('cutoff',), ('kernel_size', 'prob')),
    'poisson_noise': (('scale',), ('gray_prob', 'prob')),
    'realesrgan_noise': (('sigma', 'poisson_scale'), ('gaussian_prob', 'gray_prob', 'prob')),
    'resize': (('scale',), ('modes', 'base', 'prob')),
}
DEFAULT_KERNEL_SIZE = 21
DEFAULT_GAUSSIAN_PROB = 0.5  # Real-ESRGAN's gaussian_noise_prob
_DEFAULTS = {'rotation': [-math.pi, math.pi], 'betag': [0.5, 4.0], 'betap': [1.0, 2.0]}  # Real-ESRGAN's ranges
_PI_TOLERANCE = 1e-3  # a cutoff written as 3.1416 counts as pi


def check_range(
    value: Any, where: str, low: float | None = None, high: float | None = None, strict: bool = False
) -> None:
    """Check a number or ``[low, high]`` option, optionally against bounds.

    Args:
        value: The option's value.
        where: Its name for error messages, e.g. ``degradation[2].sigma``.
        low: Smallest allowed value (None: no bound).
        high: Largest allowed value (None: no bound).
        strict: ``low`` itself is not allowed.

    Raises:
        ValueError: If the value is not a number or an ordered pair, or lies outside the bounds.
    """
    values = value if isinstance(value, (list, tuple)) else [value]
    if len(values) not in (1, 2) or not all(isinstance(v, (int, float)) for v in values):
        raise ValueError(f'{where}: expected a number or [low, high], got {value!r}')
    if len(values) == 2 and values[0] > values[1]:
        raise ValueError(f'{where}: low {values[0]} is above high {values[1]}')
    below = low is not None and (values[0] <= low if strict else values[0] < low)
    if below or (high is not None and values[-1] > high):
        bounds = f'{"(" if strict else "["}{"-inf" if low is None else low}, {"inf" if high is None else high}]'
        raise ValueError(f'{where}: {value!r} is outside {bounds}')


def check_probability(value: Any, where: str) -> None:
    """Check that an option is one number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f'{where}: expected a probability in [0, 1], got {value!r}')


def draw(value: Any, rng: np.random.Generator) -> float:
    """A number given as ``x`` (fixed) or ``[low, high]`` (drawn uniformly from ``rng``)."""
    if isinstance(value, (list, tuple)):
        return float(value[0]) if len(value) == 1 else float(rng.uniform(value[0], value[1]))
    return float(value)


def draw_seed(rng: np.random.Generator) -> int:
    """The 32-bit seed :func:`basicsr_random_state` draws from a step's generator."""
    return int(rng.integers(0, 2**32))


@contextmanager
def basicsr_random_state(rng: np.random.Generator) -> Iterator[int]:
    """Seed ``np.random`` and ``random`` with :func:`draw_seed` for a call to BasicSR; restore them afterwards.

    Args:
        rng: The step's generator.

    Yields:
        The seed, so that a call seeded with it by hand repeats BasicSR's draws.
    """
    np_state, py_state = np.random.get_state(), random.getstate()
    seed = draw_seed(rng)
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield seed
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def _pair(value: Any) -> tuple[float, float]:
    values = value if isinstance(value, (list, tuple)) else [value]
    return float(values[0]), float(values[-1])


def _open_pair(value: Any) -> tuple[float, float]:
    """``_pair``, one float step wide when fixed: BasicSR's kernel functions assert ``low < high``."""
    low, high = _pair(value)
    return low, (high if high > low else float(np.nextafter(low, np.inf)))


def check_kernel_size(value: Any, where: str, low: int = 1) -> None:
    """Check a ``kernel_size`` option: an odd whole number, or ``[low, high]`` of them, each at least ``low``.

    Args:
        value: The option's value.
        where: Its name for error messages, e.g. ``degradation[0].kernel_size``.
        low: The smallest allowed size (the plain ``blur`` step needs 3: a 1x1 kernel does not blur).

    Raises:
        ValueError: Naming ``where`` and the value.
    """
    values = value if isinstance(value, (list, tuple)) else [value]
    ok = len(values) in (1, 2) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if not ok or any(v < low or v % 2 == 0 for v in values) or values[0] > values[-1]:
        raise ValueError(f'{where}: expected an odd size or [low, high] of odd sizes (>= {low}), got {value!r}')


def draw_kernel_size(value: Any, rng: np.random.Generator) -> int:
    """An odd kernel size: ``value`` itself, or drawn uniformly among the odd sizes of ``[low, high]``."""
    low, high = (int(v) for v in _pair(value))
    return low + 2 * int(rng.integers(0, (high - low) // 2 + 1)) if high > low else low


def _check_choices(value: Any, allowed: Any, where: str, what: str) -> None:
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f'{where}: expected a non-empty list of {what}s from {tuple(allowed)}, got {value!r}')
    for item in value:
        if item not in allowed:
            raise ValueError(f'{where}: unknown {what} {item!r}; choose from {tuple(allowed)}')


def _check_beta(value: Any, where: str) -> None:
    check_range(value, where, 0.0, strict=True)
    low, high = _pair(value)
    if low > 1 or high < 1:
        raise ValueError(f'{where}: {value!r} must hold 1 (BasicSR draws beta from [low, 1] or [1, high])')


def check_step(step: Mapping[str, Any], where: str) -> None:
    """Check the values of a step of this module (its keys are already known to be allowed and complete).

    Args:
        step: The step.
        where: The step's name for error messages, e.g. ``datasets.train.degradation[0]``.

    Raises:
        ValueError: Naming the step and the key of a wrong value.
    """
    kind = step['type']
    for key in ('prob', 'sinc_prob', 'gray_prob', 'gaussian_prob'):
        if key in step:
            check_probability(step[key], f'{where}.{key}')
    if 'kernel_size' in step:
        check_kernel_size(step['kernel_size'], f'{where}.kernel_size')
    if kind == 'kernel_blur':
        _check_choices(step['kernel_list'], KERNEL_TYPES, f'{where}.kernel_list', 'kernel type')
        probs = step.get('kernel_prob', [1.0] * len(step['kernel_list']))
        if (
            not isinstance(probs, (list, tuple))
            or len(probs) != len(step['kernel_list'])
            or not all(isinstance(p, (int, float)) and p >= 0 for p in probs)
            or sum(probs) <= 0
        ):
            raise ValueError(
                f'{where}.kernel_prob: expected {len(step["kernel_list"])} non-negative weights (one per '
                f'kernel_list entry) with a positive sum, got {probs!r}'
            )
        for key in ('sigma_x', 'sigma_y'):
            if key in step:
                check_range(step[key], f'{where}.{key}', 0.0, strict=True)
        if 'rotation' in step:
            check_range(step['rotation'], f'{where}.rotation')
        for key in ('betag', 'betap'):
            if key in step:
                _check_beta(step[key], f'{where}.{key}')
    elif kind == 'sinc':
        check_range(step['cutoff'], f'{where}.cutoff', 0.0, math.pi + _PI_TOLERANCE, strict=True)
    elif kind == 'poisson_noise':
        check_range(step['scale'], f'{where}.scale', 0.0)
    elif kind == 'realesrgan_noise':
        check_range(step['sigma'], f'{where}.sigma', 0.0)
        check_range(step['poisson_scale'], f'{where}.poisson_scale', 0.0)
    elif kind == 'resize':
        check_range(step['scale'], f'{where}.scale', 0.0, strict=True)
        if 'modes' in step:
            _check_choices(step['modes'], RESIZE_MODES, f'{where}.modes', 'mode')
        if step.get('base', 'current') not in RESIZE_BASES:
            raise ValueError(f'{where}.base: {step["base"]!r} is not one of {RESIZE_BASES}')


def random_kernel(step: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    """The kernel of a ``kernel_blur`` step, drawn as Real-ESRGAN's dataset does.

    Draws from ``rng``, in order: the kernel size (if a range), the sinc choice and cutoff (if ``sinc_prob``),
    then the seed of ``random_mixed_kernels``.

    Args:
        step: A normalized ``kernel_blur`` step.
        rng: The generator of the image.

    Returns:
        A square float64 kernel that sums to 1.
    """
    size = draw_kernel_size(step.get('kernel_size', DEFAULT_KERNEL_SIZE), rng)
    if 'sinc_prob' in step and rng.uniform() < step['sinc_prob']:
        cutoff = rng.uniform(math.pi / 3 if size < 13 else math.pi / 5, math.pi)  # Real-ESRGAN's cutoffs
        return circular_lowpass_kernel(cutoff, size)
    kernel_list = list(step['kernel_list'])
    sigma_x = _open_pair(step['sigma_x'])
    with basicsr_random_state(rng):
        return random_mixed_kernels(
            kernel_list,
            list(step.get('kernel_prob', [1.0] * len(kernel_list))),
            size,
            sigma_x_range=sigma_x,
            sigma_y_range=_open_pair(step.get('sigma_y', step['sigma_x'])),
            rotation_range=_open_pair(step.get('rotation', _DEFAULTS['rotation'])),
            betag_range=_pair(step.get('betag', _DEFAULTS['betag'])),
            betap_range=_pair(step.get('betap', _DEFAULTS['betap'])),
        )


def filter_image(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``cv2.filter2D`` with ``BORDER_REFLECT_101`` (as Real-ESRGAN's dataset), clipped to [0, 1]."""
    out = cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return _as_image(out, img.ndim)


def resize_image(img: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """``cv2.resize`` to ``size = (height, width)``, clipped to [0, 1]."""
    out = cv2.resize(img, (int(size[1]), int(size[0])), interpolation=interpolation)
    return _as_image(out, img.ndim)


def _as_image(out: np.ndarray, ndim: int) -> np.ndarray:
    if out.ndim < ndim:  # OpenCV drops a single channel
        out = out[..., None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def apply_step(
    img: np.ndarray, step: Mapping[str, Any], rng: np.random.Generator, lr_size: tuple[int, int]
) -> np.ndarray:
    """Apply one step of this module (its ``prob`` is handled by the caller).

    Args:
        img: The current image, ``HWC`` float32 in [0, 1], BGR (three channels for grey noise).
        step: A normalized step of a type in :data:`STEP_KEYS`.
        rng: The generator of the image.
        lr_size: ``(height, width)`` of the final LR image (the base of ``resize`` with ``base: lr``).

    Returns:
        The degraded image, ``HWC`` float32 in [0, 1].
    """
    kind = step['type']
    if kind == 'kernel_blur':
        return filter_image(img, random_kernel(step, rng))
    if kind == 'sinc':
        size = draw_kernel_size(step.get('kernel_size', DEFAULT_KERNEL_SIZE), rng)
        return filter_image(img, circular_lowpass_kernel(draw(step['cutoff'], rng), size))
    if kind == 'resize':
        factor = draw(step['scale'], rng)
        modes = list(step.get('modes', RESIZE_MODES))
        mode = modes[int(rng.integers(len(modes)))]
        base = img.shape[:2] if step.get('base', 'current') == 'current' else lr_size
        size = (max(1, int(round(base[0] * factor))), max(1, int(round(base[1] * factor))))
        return resize_image(img, size, RESIZE_MODES[mode])
    gray_prob = step.get('gray_prob', 0.0)
    if kind == 'realesrgan_noise' and rng.uniform() < step.get('gaussian_prob', DEFAULT_GAUSSIAN_PROB):
        with basicsr_random_state(rng):  # BasicSR's sigma is on the 0-255 scale (it divides by 255 itself)
            out = random_add_gaussian_noise(img, sigma_range=_pair(step['sigma']), gray_prob=gray_prob)
    elif kind in ('realesrgan_noise', 'poisson_noise'):
        scale = step['poisson_scale'] if kind == 'realesrgan_noise' else step['scale']
        with basicsr_random_state(rng):
            out = random_add_poisson_noise(img, scale_range=_pair(scale), gray_prob=gray_prob)
    else:
        raise ValueError(f'unknown real-world degradation step {kind!r}')
    return out.astype(np.float32)
