"""SafeSRGANModel and SafeESRGANModel: BasicSR's SRGAN/ESRGAN training on SafeSRModel's safe, device-agnostic steps.

BasicSR's ``SRGANModel``/``ESRGANModel`` train ``network_g`` against ``network_d`` with ``pixel_opt``,
``perceptual_opt`` and ``gan_opt``; these classes keep their options, log keys (``l_g_pix``, ``l_g_percep``,
``l_g_gan``, ``l_d_real``, ``out_d_real``, ``l_d_fake``, ``out_d_fake``) and checkpoint names (``net_d_<iter>.pth``),
and add what SafeSRModel adds to SRModel: safe IO, any ``torch.optim`` optimizer, AMP, non-finite step skipping,
RNG states in the training state, DDP on CPU. ``optimize_parameters`` shows the iteration; ``SRFERGANModel``
(``srfer_gan_model.py``) writes the same one with the SR-FER losses in the generator step.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from basicsr.archs import build_network
from basicsr.utils.registry import MODEL_REGISTRY

from srfer_plugin.models.safe_sr_model import SafeSRModel

GAN_SECTIONS = ('network_d', 'train.gan_opt', 'train.optim_d')


def check_gan_options(opt: dict) -> None:
    """Check the GAN options of a training run before anything is built.

    Raises:
        ValueError: A GAN section is missing, a discriminator schedule is out of range, or an option contradicts
            GAN training (the message names the keys).
    """
    train_opt = opt.get('train') or {}
    present = {
        'network_d': bool(opt.get('network_d')),
        'train.gan_opt': bool(train_opt.get('gan_opt')),
        'train.optim_d': bool(train_opt.get('optim_d')),
    }
    missing = [key for key, here in present.items() if not here]
    if missing:
        given = [key for key, here in present.items() if here]
        raise ValueError(
            f'{opt.get("model_type", "GAN model")}: GAN training needs {", ".join(GAN_SECTIONS)}; missing '
            f'{", ".join(missing)}' + (f' (given: {", ".join(given)})' if given else '')
        )
    for key, low in (('net_d_iters', 1), ('net_d_init_iters', 0)):
        value = train_opt.get(key, low)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
            raise ValueError(f'train.{key} must be an integer >= {low}; got {value!r}')
    total_iter = train_opt.get('total_iter')
    if total_iter is not None and train_opt.get('net_d_init_iters', 0) >= int(total_iter):
        raise ValueError(
            f'train.net_d_init_iters ({train_opt["net_d_init_iters"]}) >= train.total_iter ({int(total_iter)}): '
            'network_g would never train'
        )
    if train_opt.get('train_network_g') is False:
        raise ValueError('train.train_network_g: false: a GAN model trains network_g against network_d; use SRFERModel')


@MODEL_REGISTRY.register()
class SafeSRGANModel(SafeSRModel):
    """BasicSR's SRGANModel (standard GAN loss) on SafeSRModel.

    Options on top of SafeSRModel's:
        network_d: the discriminator (e.g. ``VGGStyleDiscriminator``, ``UNetDiscriminatorSN``);
            ``path.pretrain_network_d``, ``path.strict_load_d`` and ``path.param_key_d`` load it.
        train.gan_opt: ``GANLoss`` (``gan_type``: vanilla, lsgan, wgan, wgan_softplus, hinge; ``loss_weight``).
        train.optim_d: the discriminator's optimizer (any ``torch.optim`` class name).
        train.net_d_iters: the generator trains every ``net_d_iters`` iterations (default 1).
        train.net_d_init_iters: the generator does not train for the first ``net_d_init_iters`` (default 0).

    Each iteration runs a generator step (``net_d`` frozen; skipped as ``net_d_iters``/``net_d_init_iters`` say)
    and a discriminator step on the detached SR output. ``net_d`` is the bare network in the generator step and in
    every discriminator pass but the first, so a DDP-wrapped ``net_d`` runs one synchronised forward per backward.
    """

    LOSS_OPTIONS = SafeSRModel.LOSS_OPTIONS + ('gan_opt',)
    LOSS_PREFIX = 'l_g_'

    def __init__(self, opt: dict):
        if opt.get('is_train'):
            check_gan_options(opt)
        super().__init__(opt)

    # ------------------------------------------------------------------ setup
    def init_training_settings(self) -> None:
        train_opt = self.opt['train']
        self.net_d = self.model_to_device(build_network(self.opt['network_d']))
        self.print_network(self.net_d)
        load_path = self.opt['path'].get('pretrain_network_d')
        if load_path is not None:
            param_key = self.opt['path'].get('param_key_d', 'params')
            self.load_network(self.net_d, load_path, self.opt['path'].get('strict_load_d', True), param_key)
        self.net_d.train()
        self.net_d_iters = train_opt.get('net_d_iters', 1)
        self.net_d_init_iters = train_opt.get('net_d_init_iters', 0)
        super().init_training_settings()

    def build_losses(self, train_opt: dict) -> None:
        super().build_losses(train_opt)
        self.cri_gan = self.build_loss_option(train_opt, 'gan_opt')

    def setup_optimizers(self) -> None:
        super().setup_optimizers()
        self.optimizer_d = self.make_optimizer(self.net_d, 'optim_d')
        self.optimizers.append(self.optimizer_d)

    # --------------------------------------------------------------- training
    def optimize_parameters(self, current_iter: int) -> None:
        """BasicSR's GAN iteration: a generator step (when due), then a discriminator step; then the EMA update."""
        generator_log, generator_stepped = OrderedDict(), False
        self.net_d.requires_grad_(False)
        if self.generator_due(current_iter):
            with self.amp.autocast():
                self.output = self.super_resolve()
                losses = self.sr_losses(self.output, self.gt)
                losses['l_g_gan'] = self.generator_gan_loss()
            generator_stepped = self.backward_and_step(losses, self.generator_optimizers(), current_iter)
            generator_log = self.log_dict
        else:
            self.output = self.super_resolve_for_discriminator()
        self.discriminator_step(current_iter, generator_log, generator_stepped)

    def generator_due(self, current_iter: int) -> bool:
        """Whether the generator trains at ``current_iter`` (``net_d_iters``, ``net_d_init_iters``)."""
        return current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters

    def generator_optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimizer but the discriminator's."""
        return [o for o in self.optimizers if o is not self.optimizer_d]

    def super_resolve_for_discriminator(self) -> torch.Tensor:
        """The SR batch of an iteration without generator step (no gradients)."""
        with torch.no_grad(), self.amp.autocast():
            return self.net_g(self.lq)

    def discriminator_step(self, current_iter: int, generator_log: OrderedDict, generator_stepped: bool) -> None:
        """The discriminator's step on ``self.output``, then the end of the iteration.

        Args:
            current_iter: The iteration.
            generator_log: The generator step's losses (empty without one); they lead ``self.log_dict``.
            generator_stepped: Whether the generator stepped (the EMA follows only then).
        """
        self.net_d.requires_grad_(True)
        with self.amp.autocast():
            l_d_total, losses = self.discriminator_losses()
        discriminator_stepped = self.backward_and_step(losses, [self.optimizer_d], current_iter, total=l_d_total)
        self.log_dict = OrderedDict(**generator_log, **self.log_dict)
        if generator_stepped or discriminator_stepped:
            self.amp.update()
        if generator_stepped:
            self.update_ema()

    def generator_gan_loss(self) -> torch.Tensor:
        """``gan_opt`` on the discriminator's score of the SR output, labelled real (SRGAN)."""
        return self.cri_gan(self.get_bare_model(self.net_d)(self.output), True, is_disc=False)

    def discriminator_losses(self) -> tuple[torch.Tensor, OrderedDict]:
        """``l_d_real`` on HR faces, ``l_d_fake`` on the detached SR output, and the mean scores (SRGAN)."""
        real_d_pred = self.net_d(self.gt)
        fake_d_pred = self.get_bare_model(self.net_d)(self.output.detach())
        l_d_real = self.cri_gan(real_d_pred, True, is_disc=True)
        l_d_fake = self.cri_gan(fake_d_pred, False, is_disc=True)
        return l_d_real + l_d_fake, self._discriminator_log(l_d_real, real_d_pred, l_d_fake, fake_d_pred)

    @staticmethod
    def _discriminator_log(l_d_real, real_d_pred, l_d_fake, fake_d_pred) -> OrderedDict:
        return OrderedDict(
            l_d_real=l_d_real,
            out_d_real=real_d_pred.detach().mean(),
            l_d_fake=l_d_fake,
            out_d_fake=fake_d_pred.detach().mean(),
        )

    def save(self, epoch: int, current_iter: int) -> None:
        """``net_d_<iter>.pth`` beside BasicSR's ``net_g``/training state (written atomically, before the state)."""
        self.save_network(self.net_d, 'net_d', current_iter)
        super().save(epoch, current_iter)


@MODEL_REGISTRY.register()
class SafeESRGANModel(SafeSRGANModel):
    """BasicSR's ESRGANModel on SafeSRModel: the relativistic average GAN losses of ESRGAN, all else as SRGAN."""

    def generator_gan_loss(self) -> torch.Tensor:
        net_d = self.get_bare_model(self.net_d)
        real_d_pred = net_d(self.gt).detach()
        fake_g_pred = net_d(self.output)
        l_g_real = self.cri_gan(real_d_pred - torch.mean(fake_g_pred), False, is_disc=False)
        l_g_fake = self.cri_gan(fake_g_pred - torch.mean(real_d_pred), True, is_disc=False)
        return (l_g_real + l_g_fake) / 2

    def discriminator_losses(self) -> tuple[torch.Tensor, OrderedDict]:
        net_d = self.get_bare_model(self.net_d)
        with torch.no_grad():
            fake_reference = net_d(self.output)
        real_d_pred = self.net_d(self.gt)
        fake_d_pred = net_d(self.output.detach())
        l_d_real = self.cri_gan(real_d_pred - torch.mean(fake_reference), True, is_disc=True) * 0.5
        l_d_fake = self.cri_gan(fake_d_pred - torch.mean(real_d_pred.detach()), False, is_disc=True) * 0.5
        return l_d_real + l_d_fake, self._discriminator_log(l_d_real, real_d_pred, l_d_fake, fake_d_pred)
