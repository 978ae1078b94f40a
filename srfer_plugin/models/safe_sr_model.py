"""SafeSRModel: BasicSR's SRModel with the training fixes every SR run of the plugin needs, and nothing of SR-FER.

The plain-SR baseline of the demo and the benchmark runs on this class, and ``SRFERModel`` extends it, so the two
differ in their losses only.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from copy import deepcopy

import torch
import torch.distributed as torch_dist
from basicsr.archs import build_network, vgg_arch
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn.parallel import DataParallel, DistributedDataParallel

from srfer_plugin.models.checkpoint_io import network_file_contents, read_network_weights, save_with_retry
from srfer_plugin.models.mixed_precision import MixedPrecision
from srfer_plugin.models.sr_validation import SRValidation
from srfer_plugin.utils.rng import get_rng_states, set_rng_states
from srfer_plugin.utils.sr_network import check_upscale


def check_vgg_weights(where: str) -> None:
    """Fail early when BasicSR's ``VGGFeatureExtractor`` would download torchvision's VGG19 weights.

    BasicSR reads ``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` (relative to the working folder) when it
    exists, else torchvision downloads the weights into the torch hub cache; offline, that fails deep in training
    setup. Either file present is enough.

    Raises:
        FileNotFoundError: Neither file exists (the message names ``where`` and both places).
    """
    local = os.path.abspath(vgg_arch.VGG_PRETRAIN_PATH)
    cached = os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(vgg_arch.VGG_PRETRAIN_PATH))
    if not (os.path.isfile(local) or os.path.isfile(cached)):
        raise FileNotFoundError(
            f'{where} uses VGG19 features, whose weights are in neither {local} nor {cached}. Download '
            f'https://download.pytorch.org/models/{os.path.basename(local)} to one of them, or remove {where}'
        )


class NonFiniteLossError(RuntimeError):
    """Raised after ``train.max_nonfinite_steps`` consecutive steps with a NaN/inf loss."""


@MODEL_REGISTRY.register()
class SafeSRModel(SRValidation, SRModel):
    """SRModel (same options, file names and checkpoint formats) with safe IO and robust training steps.

    Train options (``train:``) on top of SRModel's (``pixel_opt``, ``perceptual_opt``, ``optim_g``, ``ema_decay``):
        optim_g: any ``torch.optim`` optimizer by class name (BasicSR 1.4.2 knows only Adam).
        use_amp: mixed precision (``torch.autocast``; GradScaler for fp16 on CUDA). Default False.
        amp_dtype: ``bf16`` (default) or ``fp16`` (CUDA only).
        channels_last: NHWC memory format for the networks and batches (helps convs on recent GPUs). Default False.
        max_nonfinite_steps: a NaN/inf loss skips its step (no optimizer step, no EMA update); this many
            consecutive skipped steps save a checkpoint and stop training. Default 10; 0 never stops.
        seed_per_iter: reseed the RNGs before each batch (see ``srfer_plugin/train_loop``). Default True.

    Checkpoints and training states are written atomically (temporary file + rename); training states also hold
    the RNG states, the GradScaler state and ``iters_per_epoch``. Every checkpoint is read with ``safe_load`` (no
    pickled code runs). Under DDP, a CPU model is wrapped without ``device_ids``, and validation runs on rank 0
    with the bare networks while the other ranks wait at a barrier; it scores every image of a batch and saves
    SR images under unique names (:class:`SRValidation`). ``network_g`` is checked to upscale by ``scale`` when
    the model is built.

    :meth:`optimize_parameters` reads top to bottom: SR forward, losses, backward and step. A subclass with other
    losses writes its own from the same helpers (``self.amp``, :meth:`super_resolve`, :meth:`sr_losses`,
    :meth:`backward_and_step`, :meth:`update_ema`), and adds the optimizers of other trained networks in
    :meth:`setup_optimizers`; every optimizer in ``self.optimizers`` is stepped and saved.
    """

    # Loss options of which training needs at least one (subclasses add theirs).
    LOSS_OPTIONS: tuple[str, ...] = ('pixel_opt', 'perceptual_opt')
    # Log-key prefix of net_g's losses (BasicSR: ``l_pix`` in SRModel, ``l_g_pix`` in its GAN models).
    LOSS_PREFIX = 'l_'

    def __init__(self, opt: dict):
        if opt.get('is_train') and not any((opt.get('train') or {}).get(key) for key in self.LOSS_OPTIONS):
            raise ValueError(f'train: set at least one of {", ".join(self.LOSS_OPTIONS)}')
        super().__init__(opt)
        check_upscale(self.get_bare_model(self.net_g), int(opt.get('scale', 1)), opt['network_g'], self.device)

    # ------------------------------------------------------------ device / io
    def model_to_device(self, net: torch.nn.Module, wrap: bool = True) -> torch.nn.Module:
        """BasicSR's ``model_to_device``, with DDP on CPU (no ``device_ids``) and the channels_last option.

        ``wrap=False`` moves ``net`` but never wraps it in DDP/DataParallel: a network that is not trained has no
        gradients to synchronise.
        """
        net = net.to(self.device)
        if (self.opt.get('train') or {}).get('channels_last') and self.is_train:
            net = net.to(memory_format=torch.channels_last)
        if wrap and self.opt['dist']:
            find_unused = self.opt.get('find_unused_parameters', False)
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
        elif wrap and self.opt['num_gpu'] > 1:
            net = DataParallel(net)
        return net

    def load_network(self, net: torch.nn.Module, load_path: str, strict: bool = True, param_key='params') -> None:
        """BasicSR's ``load_network`` (param_key fallback, ``module.`` stripping, key report), read by safe_load."""
        net = self.get_bare_model(net)
        load_net, param_key = read_network_weights(load_path, param_key)
        get_root_logger().info(
            f'Loading {net.__class__.__name__} model from {load_path}, with param key: [{param_key}].'
        )
        self._print_different_keys_loading(net, load_net, strict)
        net.load_state_dict(load_net, strict=strict)

    @master_only
    def save_network(
        self, net, net_label: str, current_iter: int, param_key='params', meta: dict | None = None
    ) -> None:
        """BasicSR's ``save_network`` (same file name and ``params``/``params_ema`` format), written atomically;
        ``meta`` (plain data) is stored beside the weights, as mmengine checkpoints store theirs."""
        save_path = os.path.join(
            self.opt['path']['models'], f'{net_label}_{"latest" if current_iter == -1 else current_iter}.pth'
        )
        nets = [self.get_bare_model(n) for n in (net if isinstance(net, list) else [net])]
        contents = network_file_contents(nets, param_key if isinstance(param_key, list) else [param_key])
        save_with_retry({**contents, 'meta': meta} if meta else contents, save_path)

    @master_only
    def save_training_state(self, epoch: int, current_iter: int) -> None:
        """BasicSR's training state plus RNG states, GradScaler and ``iters_per_epoch``, written atomically."""
        if current_iter == -1:
            return
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
            'rng_states': get_rng_states(),
            'iters_per_epoch': self.opt.get('iters_per_epoch'),
            **self.extra_training_state(),
        }
        if self.amp.scaler is not None:
            state['grad_scaler'] = self.amp.scaler.state_dict()
        save_with_retry(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def extra_training_state(self) -> dict:
        """What a subclass adds to the training state (tensors and plain data only)."""
        return {}

    def resume_training(self, resume_state: dict) -> None:
        """Restore optimizers and schedulers (BasicSR), then RNG states and GradScaler when saved."""
        super().resume_training(resume_state)
        if resume_state.get('rng_states') is not None:
            set_rng_states(resume_state['rng_states'])
        if resume_state.get('grad_scaler') is not None and self.amp.scaler is not None:
            self.amp.scaler.load_state_dict(resume_state['grad_scaler'])

    def reduce_loss_dict(self, loss_dict: OrderedDict) -> OrderedDict:
        """Average the losses over ranks and read them as floats in one host transfer.

        BasicSR reads each loss with its own ``.item()``; here all losses go in one stacked tensor (one all-reduce
        under DDP, so every rank takes the same non-finite decision).
        """
        with torch.no_grad():
            keys = list(loss_dict)
            losses = torch.stack([torch.as_tensor(loss_dict[k], device=self.device).float().mean() for k in keys])
            if self.opt['dist']:
                torch_dist.all_reduce(losses)
                losses /= self.opt['world_size']
            return OrderedDict(zip(keys, losses.tolist()))

    # ------------------------------------------------------------------ setup
    def init_training_settings(self) -> None:
        self.net_g.train()
        train_opt = self.opt['train']
        self.amp = MixedPrecision(train_opt, self.device)
        self.channels_last = bool(train_opt.get('channels_last', False))
        self.max_nonfinite_steps = int(train_opt.get('max_nonfinite_steps', 10) or 0)
        self._nonfinite_steps = 0
        self.ema_decay = train_opt.get('ema_decay', 0)
        if self.ema_decay > 0:
            get_root_logger().info(f'Use Exponential Moving Average with decay: {self.ema_decay}')
            self.net_g_ema = build_network(self.opt['network_g']).to(self.device)
            load_path = self.opt['path'].get('pretrain_network_g')
            if load_path is not None:
                self.load_network(self.net_g_ema, load_path, self.opt['path'].get('strict_load_g', True), 'params_ema')
            else:
                self.model_ema(0)
            self.net_g_ema.eval()
        self.build_losses(train_opt)
        self._checked_output_size = False
        self.setup_optimizers()
        self.setup_schedulers()

    def build_losses(self, train_opt: dict) -> None:
        """SRModel's losses: ``pixel_opt`` (``cri_pix``) and ``perceptual_opt`` (``cri_perceptual``), each optional."""
        self.cri_pix = self.build_loss_option(train_opt, 'pixel_opt')
        if train_opt.get('perceptual_opt'):
            check_vgg_weights('train.perceptual_opt')
        self.cri_perceptual = self.build_loss_option(train_opt, 'perceptual_opt')

    def build_loss_option(self, train_opt: dict, key: str) -> torch.nn.Module | None:
        """The registered loss of ``train.<key>`` on the model's device, or None when the key is unset."""
        return build_loss(train_opt[key]).to(self.device) if train_opt.get(key) else None

    def get_optimizer(self, optim_type: str, params, lr: float, **kwargs) -> torch.optim.Optimizer:
        """Build any ``torch.optim`` optimizer by class name (BasicSR 1.4.2 knows only Adam)."""
        optim_cls = getattr(torch.optim, optim_type, None)
        if not (isinstance(optim_cls, type) and issubclass(optim_cls, torch.optim.Optimizer)):
            raise ValueError(f'optimizer type {optim_type!r} is not a torch.optim optimizer')
        return optim_cls(params, lr, **kwargs)

    def make_optimizer(self, net: torch.nn.Module, key: str) -> torch.optim.Optimizer:
        """The optimizer of ``train.<key>`` over the trainable parameters of ``net`` (the options stay intact)."""
        params = []
        for name, param in net.named_parameters():
            if param.requires_grad:
                params.append(param)
            else:
                get_root_logger().warning(f'Params {name} will not be optimized.')
        optim_opt = deepcopy(self.opt['train'][key])  # BasicSR pops 'type' in place; keep the options intact
        return self.get_optimizer(optim_opt.pop('type'), params, **optim_opt)

    def setup_optimizers(self) -> None:
        self.optimizer_g = self.make_optimizer(self.net_g, 'optim_g')
        self.optimizers.append(self.optimizer_g)

    def setup_schedulers(self) -> None:
        scheduler_opt = self.opt['train']['scheduler']
        self.opt['train']['scheduler'] = deepcopy(scheduler_opt)  # BaseModel pops 'type'
        try:
            super().setup_schedulers()
        finally:
            self.opt['train']['scheduler'] = scheduler_opt

    # --------------------------------------------------------------- training
    def feed_data(self, data: dict) -> None:
        super().feed_data(data)
        if self.is_train and getattr(self, 'channels_last', False):
            self.lq = self.lq.contiguous(memory_format=torch.channels_last)
            if hasattr(self, 'gt'):
                self.gt = self.gt.contiguous(memory_format=torch.channels_last)

    def optimize_parameters(self, current_iter: int) -> None:
        """One training step: SR forward, pixel/perceptual losses, backward and step, EMA update."""
        with self.amp.autocast():
            self.output = self.super_resolve()
            losses = self.sr_losses(self.output, self.gt)
        if self.backward_and_step(losses, self.optimizers, current_iter):
            self.amp.update()
            self.update_ema()

    def super_resolve(self, frozen: bool = False) -> torch.Tensor:
        """``net_g`` on the LQ batch (the first output is checked against the HR batch's size); ``frozen``: the
        bare ``net_g`` without gradients, for a run that does not train it."""
        if frozen:
            with torch.no_grad():
                return self.get_bare_model(self.net_g)(self.lq)
        output = self.net_g(self.lq)
        if not self._checked_output_size:
            if output.shape != self.gt.shape:
                raise ValueError(
                    f'network_g ({self.opt["network_g"]["type"]}) output {tuple(output.shape)} '
                    f'differs from the HR batch {tuple(self.gt.shape)}'
                )
            self._checked_output_size = True
        return output

    def sr_losses(self, output: torch.Tensor, gt: torch.Tensor) -> OrderedDict:
        """SRModel's losses of ``output`` against ``gt`` (``pixel_opt``, ``perceptual_opt``, where set), named
        ``pix``, ``percep`` and ``style`` after ``LOSS_PREFIX``."""
        losses = OrderedDict()
        if self.cri_pix:
            losses[f'{self.LOSS_PREFIX}pix'] = self.cri_pix(output, gt)
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(output, gt)
            if l_percep is not None:
                losses[f'{self.LOSS_PREFIX}percep'] = l_percep
            if l_style is not None:
                losses[f'{self.LOSS_PREFIX}style'] = l_style
        return losses

    def backward_and_step(
        self,
        losses: OrderedDict,
        optimizers: list[torch.optim.Optimizer],
        current_iter: int,
        total: torch.Tensor | None = None,
    ) -> bool:
        """Back-propagate the sum of ``losses`` into freshly zeroed ``optimizers``, log the losses, and step.

        The losses are read after backward is queued (one host synchronisation, as BasicSR's logging makes anyway,
        and every DDP rank runs backward); a NaN/inf loss skips the step (``max_nonfinite_steps``).

        Args:
            losses: The named losses of the step, summed in their order; read into ``self.log_dict``.
            optimizers: The optimizers these losses train.
            current_iter: The iteration (for messages and the stop checkpoint).
            total: The loss to back-propagate when it is not the sum of ``losses`` (then only logged).

        Returns:
            Whether the optimizers stepped (False: a non-finite loss skipped the step).
        """
        if total is None:
            total = 0
            for value in losses.values():
                total = total + value
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        self.amp.backward(total)
        self.log_dict = self.reduce_loss_dict(losses)
        bad = [name for name, value in self.log_dict.items() if not math.isfinite(value)]
        if bad or not math.isfinite(sum(self.log_dict.values())):
            self._skip_nonfinite_step(current_iter, bad or list(self.log_dict), optimizers)
            return False
        self._nonfinite_steps = 0
        for optimizer in optimizers:
            self.amp.step(optimizer)
        return True

    def update_ema(self) -> None:
        """Move ``net_g_ema`` towards ``net_g`` (``train.ema_decay``; nothing when 0)."""
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def _skip_nonfinite_step(self, current_iter: int, bad: list[str], optimizers: list) -> None:
        self._nonfinite_steps += 1
        self.output = self.output.detach()
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)  # drop the non-finite gradients now, not at the next step
        get_root_logger().warning(
            f'iter {current_iter}: non-finite loss in {", ".join(bad)}; step skipped (no optimizer step, no EMA '
            f'update); {self._nonfinite_steps} consecutive'
        )
        if 0 < self.max_nonfinite_steps <= self._nonfinite_steps:
            iters_per_epoch = self.opt.get('iters_per_epoch') or 0
            epoch = (current_iter - 1) // iters_per_epoch if iters_per_epoch else 0
            self.save(epoch, current_iter)
            raise NonFiniteLossError(
                f'{self._nonfinite_steps} consecutive steps with a non-finite loss ({", ".join(bad)}) up to iter '
                f'{current_iter}: training stopped (train.max_nonfinite_steps = {self.max_nonfinite_steps}). '
                f'Saved net_g_{current_iter}.pth and {current_iter}.state (weights of the last finite step) in '
                f'{os.path.dirname(self.opt["path"]["models"])}; check the data and the learning rate, then '
                'resume with --auto_resume'
            )
