"""SR-FER consistency losses: multi-stage attention consistency and prediction consistency."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

_REDUCTIONS = ('none', 'mean', 'sum')


def _check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f'Unsupported reduction {reduction!r}; choose from {_REDUCTIONS}')
    return reduction


def check_loss_weight(loss_weight: float, loss_name: str) -> float:
    """Return ``loss_weight`` as a float; refuse a negative or non-finite one (it would train the wrong way).

    Args:
        loss_weight: The loss' ``loss_weight``.
        loss_name: The loss class, for the error.

    Returns:
        The weight.
    """
    weight = float(loss_weight)
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f'{loss_name}: loss_weight must be a number >= 0; got {loss_weight!r}')
    return weight


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == 'mean':
        return per_sample.mean()
    if reduction == 'sum':
        return per_sample.sum()
    return per_sample


def attention_map(feat: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Spatial attention of a feature map (attention transfer, Zagoruyko & Komodakis 2017).

    Args:
        feat: ``NCHW`` feature map.
        p: Exponent of ``|F|``.

    Returns:
        ``(N, H*W)``: the channel mean of ``|F|^p``, flattened and L2-normalised per sample.
    """
    if feat.dim() != 4:
        raise ValueError(f'attention_map expects an NCHW feature map, got shape {tuple(feat.shape)}')
    return F.normalize(feat.abs().pow(p).mean(dim=1).flatten(1), p=2, dim=1)


def check_stage_weights(stage_weights: Any, where: str = 'AttentionConsistencyLoss: stage_weights') -> list[float]:
    """``stage_weights`` as floats: a list of finite numbers >= 0, not all 0 (a negative one reverses its stage).

    Raises:
        ValueError: Anything else (the message starts with ``where`` and shows the value).
    """
    numbers = list(stage_weights) if isinstance(stage_weights, (list, tuple)) else None
    valid = bool(numbers) and all(
        isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0 for w in numbers
    )
    if not valid or not any(numbers):
        raise ValueError(f'{where} must be a list of numbers >= 0 (one per stage, not all 0); got {stage_weights!r}')
    return [float(w) for w in numbers]


@LOSS_REGISTRY.register()
class AttentionConsistencyLoss(nn.Module):
    """Multi-stage attention-aware consistency between the classifier's features on SR and on HR faces.

    For each stage, the stage loss is the mean over positions of ``(A(F_sr) - A(F_hr))^2`` with
    ``A = attention_map``; the total is ``loss_weight * sum_s stage_weight_s * stage_loss_s``. The HR side is
    detached.

    Args:
        loss_weight: Weight of the whole loss. Default 1.0.
        p: Exponent of the attention map. Default 2.
        stage_weights: One weight per stage. Default: 1 for every stage.
        reduction: ``mean`` (over the batch), ``sum`` or ``none`` (per sample). Default ``mean``.
    """

    def __init__(
        self,
        loss_weight: float = 1.0,
        p: float = 2.0,
        stage_weights: Sequence[float] | None = None,
        reduction: str = 'mean',
    ):
        super().__init__()
        self.loss_weight = check_loss_weight(loss_weight, 'AttentionConsistencyLoss')
        self.p = float(p)
        if not (math.isfinite(self.p) and self.p > 0):
            raise ValueError(f'AttentionConsistencyLoss: p (the exponent of |F|) must be a number > 0; got {p!r}')
        self.stage_weights = None if stage_weights is None else check_stage_weights(stage_weights)
        self.reduction = _check_reduction(reduction)

    def forward(self, feats_sr: Sequence[torch.Tensor], feats_hr: Sequence[torch.Tensor]) -> torch.Tensor:
        """Compute the loss.

        Args:
            feats_sr: Feature maps of the SR images, one per stage.
            feats_hr: Feature maps of the HR images, same stages and shapes; or their attention maps
                (``(N, H*W)``, as the HR reference cache keeps them).

        Returns:
            The weighted loss (a scalar unless ``reduction='none'``).
        """
        if len(feats_sr) != len(feats_hr):
            raise ValueError(f'AttentionConsistencyLoss: {len(feats_sr)} SR stages vs {len(feats_hr)} HR stages')
        weights = self.stage_weights if self.stage_weights is not None else [1.0] * len(feats_sr)
        if len(weights) != len(feats_sr):
            raise ValueError(
                f'AttentionConsistencyLoss: stage_weights has {len(weights)} entries for {len(feats_sr)} stages'
            )
        total = 0.0
        for weight, f_sr, f_hr in zip(weights, feats_sr, feats_hr):
            hr_is_map = f_hr.dim() == 2
            expected = (f_sr.shape[0], f_sr.shape[-2] * f_sr.shape[-1]) if hr_is_map else tuple(f_sr.shape)
            if tuple(f_hr.shape) != expected:
                raise ValueError(
                    f'AttentionConsistencyLoss: SR features {tuple(f_sr.shape)} and HR features '
                    f'{tuple(f_hr.shape)} differ; SR and HR images must have the same size'
                )
            target = f_hr.detach() if hr_is_map else attention_map(f_hr.detach(), self.p)
            diff = attention_map(f_sr, self.p) - target
            total = total + weight * diff.pow(2).mean(dim=1)
        return self.loss_weight * _reduce(total, self.reduction)


@LOSS_REGISTRY.register()
class PredictionConsistencyLoss(nn.Module):
    """Prediction consistency: ``KL(softmax(z_hr / T) || softmax(z_sr / T)) * T^2`` (HR side detached).

    Args:
        loss_weight: Weight of the loss. Default 1.0.
        temperature: Softmax temperature ``T``. Default 1.0.
        reduction: ``mean`` (KL's batchmean), ``sum`` or ``none`` (per sample). Default ``mean``.
    """

    def __init__(self, loss_weight: float = 1.0, temperature: float = 1.0, reduction: str = 'mean'):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'PredictionConsistencyLoss: temperature must be positive, got {temperature}')
        self.loss_weight = check_loss_weight(loss_weight, 'PredictionConsistencyLoss')
        self.temperature = float(temperature)
        self.reduction = _check_reduction(reduction)

    def forward(self, logits_sr: torch.Tensor, logits_hr: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits_sr: ``(N, K)`` logits on the SR images.
            logits_hr: ``(N, K)`` logits on the HR images.

        Returns:
            The weighted loss (a scalar unless ``reduction='none'``).
        """
        if logits_sr.shape != logits_hr.shape:
            raise ValueError(
                f'PredictionConsistencyLoss: logits shapes differ: {tuple(logits_sr.shape)} vs {tuple(logits_hr.shape)}'
            )
        t = self.temperature
        log_p_sr = F.log_softmax(logits_sr / t, dim=1)
        log_p_hr = F.log_softmax(logits_hr.detach() / t, dim=1)
        per_sample = (log_p_hr.exp() * (log_p_hr - log_p_sr)).sum(dim=1) * (t * t)
        return self.loss_weight * _reduce(per_sample, self.reduction)
