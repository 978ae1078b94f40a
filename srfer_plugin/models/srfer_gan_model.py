"""SRFERGANModel and SRFERESRGANModel: SR-FER's classifier guidance in BasicSR's GAN training.

The SR-FER part is :class:`~srfer_plugin.models.fer_guidance.FERGuidance`, the same component as in ``SRFERModel``;
the GAN part is :class:`~srfer_plugin.models.safe_srgan_model.SafeSRGANModel` (SRGAN) or ``SafeESRGANModel``
(ESRGAN's relativistic losses). The consistency and joint-learning losses join the generator step.
"""

from __future__ import annotations

from basicsr.utils.registry import MODEL_REGISTRY

from srfer_plugin.models.fer_guidance import FERGuidance
from srfer_plugin.models.safe_srgan_model import SafeESRGANModel, SafeSRGANModel


@MODEL_REGISTRY.register()
class SRFERGANModel(FERGuidance, SafeSRGANModel):
    """SRGAN training (``network_d``, ``gan_opt``, ``perceptual_opt``, ``optim_d``, ``net_d_iters``,
    ``net_d_init_iters``) plus the SR-FER options (``network_fer``, ``attention_opt``, ``prediction_opt``, joint
    learning) and FER validation.

    Log keys: BasicSR's (``l_g_pix``, ``l_g_percep``, ``l_g_gan``, ``l_d_real``, ``out_d_real``, ``l_d_fake``,
    ``out_d_fake``) plus ``l_att``, ``l_pred`` and ``l_fer`` in generator steps.
    """

    LOSS_OPTIONS = SafeSRGANModel.LOSS_OPTIONS + FERGuidance.FER_LOSS_OPTIONS


@MODEL_REGISTRY.register()
class SRFERESRGANModel(FERGuidance, SafeESRGANModel):
    """:class:`SRFERGANModel` with ESRGAN's relativistic average GAN losses (BasicSR's ``ESRGANModel``)."""

    LOSS_OPTIONS = SafeESRGANModel.LOSS_OPTIONS + FERGuidance.FER_LOSS_OPTIONS
