"""Classification loss for joint learning of the FER classifier (``train.fer_opt``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

from srfer_plugin.losses.consistency_loss import check_loss_weight


@LOSS_REGISTRY.register()
class FERCrossEntropyLoss(nn.Module):
    """Cross-entropy of FER logits against expression labels.

    Args:
        loss_weight: Weight of the loss. Default 1.0.
        label_smoothing: Label smoothing in [0, 1). Default 0.
        reduction: ``mean``, ``sum`` or ``none``. Default ``mean``.
    """

    def __init__(self, loss_weight: float = 1.0, label_smoothing: float = 0.0, reduction: str = 'mean'):
        super().__init__()
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f'Unsupported reduction {reduction!r}; choose from none, mean, sum')
        self.loss_weight = check_loss_weight(loss_weight, 'FERCrossEntropyLoss')
        number = isinstance(label_smoothing, (int, float)) and not isinstance(label_smoothing, bool)
        if not (number and 0 <= label_smoothing < 1):
            raise ValueError(f'FERCrossEntropyLoss: label_smoothing must be in [0, 1); got {label_smoothing!r}')
        self.label_smoothing = float(label_smoothing)
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits: ``(N, K)`` class logits.
            labels: ``(N,)`` integer labels in ``[0, K)``.

        Returns:
            The weighted loss.
        """
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing, reduction=self.reduction)
        return self.loss_weight * loss
