"""SRFERGANModel and SRFERESRGANModel: the SR-FER step in BasicSR's GAN training.

Each is an :class:`~srfer_plugin.models.srfer_model.SRFERModel` (the classifier component ``self.fer``, its
optimizer, checkpoints and FER validation) and a GAN model of ``safe_srgan_model.py`` (``network_d``, the
adversarial losses, the discriminator step). Their :meth:`~SRFERGANModel.optimize_parameters` shows the iteration:
a generator step with the SR-FER losses, then the discriminator step.
"""

from __future__ import annotations

from collections import OrderedDict

from basicsr.utils.registry import MODEL_REGISTRY

from srfer_plugin.models.fer_guidance import FERGuidance
from srfer_plugin.models.safe_srgan_model import SafeESRGANModel, SafeSRGANModel
from srfer_plugin.models.srfer_model import SRFERModel


@MODEL_REGISTRY.register()
class SRFERGANModel(SRFERModel, SafeSRGANModel):
    """SRGAN training (``network_d``, ``gan_opt``, ``perceptual_opt``, ``optim_d``, ``net_d_iters``,
    ``net_d_init_iters``) plus the SR-FER options of :class:`SRFERModel` (``train.train_network_g: false`` excepted)
    and FER validation.

    Log keys: BasicSR's (``l_g_pix``, ``l_g_percep``, ``l_g_gan``, ``l_d_real``, ``out_d_real``, ``l_d_fake``,
    ``out_d_fake``) plus ``l_att``, ``l_pred`` and ``l_fer`` in generator steps.
    """

    LOSS_OPTIONS = SafeSRGANModel.LOSS_OPTIONS + FERGuidance.LOSS_OPTIONS

    def optimize_parameters(self, current_iter: int) -> None:
        """A generator step (when due: ``net_d_iters``, ``net_d_init_iters``) with the SR-FER losses, then a
        discriminator step; then the EMA update.

        The generator step trains ``net_g`` and, in joint learning, the classifier, with ``net_d`` frozen; the
        discriminator step trains ``net_d`` on the detached SR batch.
        """
        self.fer.begin_step(current_iter)
        generator_log, generator_stepped = OrderedDict(), False
        self.net_d.requires_grad_(False)
        if self.generator_due(current_iter):
            with self.amp.autocast():
                self.output = self.super_resolve()
                losses = self.sr_losses(self.output, self.gt)  # l_g_pix, l_g_percep, l_g_style
                losses['l_g_gan'] = self.generator_gan_loss()
                sr_faces, hr_faces, hr_keys, labels = self.fer.classifier_batch(
                    self.output, self.gt, self.hr_keys, self.label
                )
                sr_read, hr_read = self.fer.classify(sr_faces), self.fer.reference(hr_faces, hr_keys)
                losses.update(self.fer.consistency_losses(sr_read, hr_read))  # l_att, l_pred
                weights = self.fer.weigh_consistency(losses, self.output, current_iter)  # consistency_weights
                losses.update(  # l_fer, l_fer_distill
                    self.fer.classification_loss(sr_faces, sr_read, hr_read, labels, hr_faces)
                )
            generator_stepped = self.backward_and_step(losses, self.generator_optimizers(), current_iter)
            generator_log = OrderedDict(self.log_dict, **weights)
        else:
            self.output = self.super_resolve_for_discriminator()
        self.discriminator_step(current_iter, generator_log, generator_stepped)


@MODEL_REGISTRY.register()
class SRFERESRGANModel(SRFERGANModel, SafeESRGANModel):
    """:class:`SRFERGANModel` with ESRGAN's relativistic average GAN losses (BasicSR's ``ESRGANModel``)."""
