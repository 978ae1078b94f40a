"""SRFERModel: SR trained so that a FER classifier reads the SR face as it reads the HR face (the SR-FER step).

Everything generic (safe checkpoints, optimizers, AMP, non-finite steps, DDP) is in ``SafeSRModel``; everything
SR-FER (the classifier, its losses, FER validation) in ``FERGuidance`` (``fer_guidance.py``), which the GAN model
``SRFERGANModel`` shares. This class is their union.
"""

from __future__ import annotations

from basicsr.utils.registry import MODEL_REGISTRY

from srfer_plugin.models.fer_guidance import FERGuidance
from srfer_plugin.models.safe_sr_model import SafeSRModel


@MODEL_REGISTRY.register()
class SRFERModel(FERGuidance, SafeSRModel):
    """SafeSRModel (pixel/perceptual losses) plus the SR-FER losses and FER validation of :class:`FERGuidance`.

    See :class:`FERGuidance` for the options (``network_fer``, ``attention_opt``, ``prediction_opt``, joint
    learning) and :class:`SafeSRModel` for the rest.
    """

    LOSS_OPTIONS = SafeSRModel.LOSS_OPTIONS + FERGuidance.FER_LOSS_OPTIONS
