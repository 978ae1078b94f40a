"""mmpretrain pipeline transforms of the plugin: FER training on low-resolution faces.

:class:`RandomLowResolution` degrades each training face to a lower resolution with the plugin's degradation
pipeline (:mod:`srfer_plugin.data.degradations`: bicubic by default, or a scenario such as ``blind_face``) and brings
it back to its input size with bicubic upsampling, so a classifier learns on the faces it will see after bicubic
upsampling of an LR face. A config uses it after its ``Resize``::

    custom_imports = dict(imports=['srfer_plugin.data.fer_transforms'], allow_failed_imports=False)
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(112, 112)),
        dict(type='RandomLowResolution', factor_range=(1.0, 8.0)),  # multi-resolution training
        # or dict(type='RandomLowResolution', factors=[4]),          # the test scale only
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs'),
    ]

The transform is registered in mmpretrain's ``TRANSFORMS`` registry (scope ``mmpretrain``, the FER configs'
``default_scope``) when this module is imported; ``custom_imports`` imports it in ``srfer train-fer`` and in
``network_fer`` (MMPretrainFER loads the same config). Shipped configs: ``srfer::fer/*_multires*.py`` and
``srfer::fer/*_lr_x*.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

from srfer_plugin.data.degradations import DegradationSpec, degrade, normalize_pipeline

NAME = 'RandomLowResolution'
DEFAULT_FACTOR_RANGE = (1.0, 8.0)
BICUBIC = {'type': 'bicubic'}


def _check_factor(value: Any, where: str) -> float:
    """A down-sampling factor as a float; ValueError naming ``where`` unless it is a number >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 1:
        raise ValueError(f'{where}: {value!r} is not a down-sampling factor (a number >= 1)')
    return float(value)


def degrade_by_factor(img: np.ndarray, factor: float, steps: list[dict[str, Any]], rng: np.random.Generator):
    """Degrade an HR image by a (possibly fractional) factor with a pipeline's steps; return the LR image.

    An integer factor that divides the image size runs :func:`~srfer_plugin.data.degradations.degrade` itself (the
    LR faces of ``PairedFERDataset``). Any other factor runs the same steps: those before ``bicubic`` at the HR size,
    MATLAB-style bicubic down-sampling by ``factor`` (BasicSR's ``imresize``; ``ceil(size / factor)`` pixels), then
    the steps after ``bicubic`` at the LR size (``degrade`` at scale 1, whose ``bicubic`` step is the identity).

    Args:
        img: HR image, ``HWC`` float32 in [0, 1].
        factor: Down-sampling factor (>= 1).
        steps: A normalized pipeline (:func:`~srfer_plugin.data.degradations.normalize_pipeline`) without
            ``resize`` steps.
        rng: Generator of the ranged values.

    Returns:
        The LR image, ``HWC`` float32 in [0, 1].
    """
    h, w = img.shape[:2]
    if factor == int(factor) and h % int(factor) == 0 and w % int(factor) == 0:
        return degrade(img, int(factor), steps, rng)
    from basicsr.utils.matlab_functions import imresize

    at = next(i for i, step in enumerate(steps) if step['type'] == 'bicubic')
    if steps[:at]:
        img = degrade(img, 1, [*steps[:at], BICUBIC], rng)
    img = np.clip(imresize(img, 1.0 / factor), 0.0, 1.0).astype(np.float32)
    if steps[at + 1 :]:
        img = degrade(img, 1, [BICUBIC, *steps[at + 1 :]], rng)
    return img


@TRANSFORMS.register_module()
class RandomLowResolution(BaseTransform):
    """Down-sample a face by a random factor with the plugin's degradation, then bicubic-upsample it back.

    Required keys: ``img``. Modified keys: ``img`` (same size and dtype). Added keys: ``lowres_factor`` (the factor
    drawn; 1 for an image left unchanged).

    Args:
        factor_range: ``(low, high)``: the factor is drawn uniformly from it (default ``(1, 8)``). A fixed factor
            is ``(4, 4)`` or ``factors=[4]``.
        factors: Factors to choose from, uniformly (e.g. ``[1, 2, 4, 8]``; ``[4]`` trains at x4 only). Give
            ``factor_range`` or ``factors``, not both.
        degradation: The degradation pipeline of the LR face, as a dataset's ``degradation`` option: a scenario
            name of :data:`~srfer_plugin.data.degradations.SCENARIOS` (``bicubic``, ``blind_face``, ...) or a list
            of steps. Its ``bicubic`` step down-samples by the drawn factor. Pipelines with ``resize`` steps (the
            ``realesrgan`` scenario) are not supported (they size the image from an integer scale).
        prob: Probability that an image is degraded at all (default 1); the others are left unchanged.

    Factor 1 with the ``bicubic`` degradation leaves the image unchanged; with another pipeline it applies the
    pipeline's other steps (blur, noise, JPEG) at the full size. Random draws come from ``numpy``'s global state,
    which mmengine seeds per data-loader worker (``randomness.seed``), so a seeded training draws the same factors.
    Integer factors that divide the image size give exactly ``PairedFERDataset``'s LR faces (bicubic by default)
    upsampled with cv2's bicubic interpolation.
    """

    def __init__(
        self,
        factor_range: Sequence[float] | None = None,
        factors: Sequence[float] | None = None,
        degradation: DegradationSpec = 'bicubic',
        prob: float = 1.0,
    ) -> None:
        super().__init__()
        if factor_range is not None and factors is not None:
            raise ValueError(
                f'{NAME}: give factor_range or factors, not both (got factor_range={factor_range!r}, '
                f'factors={factors!r})'
            )
        if factors is not None:
            if isinstance(factors, (str, bytes)) or not isinstance(factors, Sequence) or not factors:
                raise ValueError(f'{NAME}.factors: {factors!r} is not a non-empty list of factors')
            self.factors: tuple[float, ...] | None = tuple(
                _check_factor(f, f'{NAME}.factors[{i}]') for i, f in enumerate(factors)
            )
            self.factor_range: tuple[float, float] | None = None
        else:
            factor_range = DEFAULT_FACTOR_RANGE if factor_range is None else factor_range
            if (
                isinstance(factor_range, (str, bytes))
                or not isinstance(factor_range, Sequence)
                or len(factor_range) != 2
            ):
                raise ValueError(f'{NAME}.factor_range: {factor_range!r} is not a pair (low, high)')
            low, high = (_check_factor(f, f'{NAME}.factor_range') for f in factor_range)
            if low > high:
                raise ValueError(f'{NAME}.factor_range: low {low:g} is above high {high:g} in {factor_range!r}')
            self.factor_range, self.factors = (low, high), None
        self.steps = normalize_pipeline(degradation, f'{NAME}.degradation')
        resize = [i for i, step in enumerate(self.steps) if step['type'] == 'resize']
        if resize:
            raise ValueError(
                f'{NAME}.degradation[{resize[0]}] (resize): pipelines with resize steps are not supported (they size '
                'the image from an integer scale); use bicubic, blind_face or steps without resize'
            )
        self.degradation = degradation
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
            raise ValueError(f'{NAME}.prob: {prob!r} is not a probability in [0, 1]')
        self.prob = float(prob)
        self.plain_bicubic = [step['type'] for step in self.steps] == ['bicubic']

    def draw_factor(self) -> float:
        """One factor from ``factors`` or ``factor_range`` (numpy's global random state); 1 when not degraded."""
        if self.prob < 1.0 and not np.random.rand() < self.prob:
            return 1.0
        if self.factors is not None:
            return self.factors[np.random.randint(len(self.factors))] if len(self.factors) > 1 else self.factors[0]
        low, high = self.factor_range
        return float(np.random.uniform(low, high)) if high > low else low

    def degrade_image(self, img: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
        """``img`` (``HW`` or ``HWC``, uint8 or float on the 0-255 scale) degraded by ``factor`` and upsampled back.

        Args:
            img: The face.
            factor: Down-sampling factor (>= 1).
            rng: Generator of the degradation's ranged values.

        Returns:
            An image of the same shape and dtype.
        """
        if factor == 1.0 and self.plain_bicubic:
            return img
        h, w = img.shape[:2]
        x = img.astype(np.float32) / 255.0
        gray = x.ndim == 2
        if gray:
            x = x[..., None]
        lr = degrade_by_factor(x, factor, self.steps, rng)
        up = cv2.resize(lr, (w, h), interpolation=cv2.INTER_CUBIC) if lr.shape[:2] != (h, w) else lr
        up = np.clip(up, 0.0, 1.0).reshape(h, w, -1)
        out = up[..., 0] if gray else up
        if img.dtype == np.uint8:
            return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
        return (out * 255.0).astype(img.dtype)

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        """Degrade ``results['img']`` by a drawn factor; record it as ``results['lowres_factor']``."""
        factor = self.draw_factor()
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        results['img'] = self.degrade_image(results['img'], factor, rng)
        results['lowres_factor'] = factor
        return results

    def __repr__(self) -> str:
        drawn = f'factors={list(self.factors)}' if self.factors is not None else f'factor_range={self.factor_range}'
        return f'{self.__class__.__name__}({drawn}, degradation={self.degradation!r}, prob={self.prob})'
