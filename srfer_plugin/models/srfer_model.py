"""SRFERModel: BasicSR's SRModel trained with FER attention and prediction consistency."""

from __future__ import annotations

import math
import os
import random
import time
from collections import OrderedDict
from copy import deepcopy
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.metrics import calculate_metric
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn.parallel import DataParallel, DistributedDataParallel
from tqdm import tqdm

from srfer_plugin.data.degradations import upsample_bicubic
from srfer_plugin.data.fer_layout import read_meta_info
from srfer_plugin.data.paired_fer_dataset import resolve_classes
from srfer_plugin.utils.checkpoint import atomic_torch_save, safe_load

FER_METRICS = ('acc', 'acc_hr', 'acc_bicubic')
FER_LOSS_KEYS = ('attention_opt', 'prediction_opt', 'fer_opt')
FER_INPUTS = ('sr', 'hr')
AMP_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16, 'fp16': torch.float16, 'float16': torch.float16}


class NonFiniteLossError(RuntimeError):
    """Raised after ``train.max_nonfinite_steps`` consecutive steps with a NaN/inf loss."""


def get_rng_states() -> dict[str, Any]:
    """The python, numpy and torch (CPU and CUDA) RNG states as plain data and tensors (weights-only loadable)."""
    np_state = np.random.get_state()
    states: dict[str, Any] = {
        'python': [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        'numpy': {
            'keys': torch.from_numpy(np_state[1].astype(np.int64)),
            'pos': int(np_state[2]),
            'has_gauss': int(np_state[3]),
            'cached_gaussian': float(np_state[4]),
        },
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_states` returned."""
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    npst = states['numpy']
    keys = npst['keys'].cpu().numpy().astype(np.uint32)
    np.random.set_state(('MT19937', keys, npst['pos'], npst['has_gauss'], npst['cached_gaussian']))
    torch.set_rng_state(states['torch'].cpu())
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states['cuda']])


@MODEL_REGISTRY.register()
class SRFERModel(SRModel):
    """SR model whose output a frozen (or jointly trained) FER classifier must read as it reads the HR face.

    Train options (``train:``), each optional but at least one of the first three required:
        pixel_opt: pixel loss of SR vs HR (``l_pix``), as in SRModel.
        attention_opt: ``AttentionConsistencyLoss`` on ``network_fer`` stage features (``l_att``).
        prediction_opt: ``PredictionConsistencyLoss`` on ``network_fer`` logits (``l_pred``).
        fer_opt: classification loss (e.g. ``FERCrossEntropyLoss``) for joint learning (``l_fer``); needs
            ``network_fer.freeze: false`` and ``optim_fer``.
        fer_inputs: images the classification loss sees, ``[sr, hr]`` (default) or ``[sr]``.
        optim_g / optim_fer: optimizers (any ``torch.optim`` class name).
        use_amp: mixed precision (``torch.autocast``; GradScaler for fp16 on CUDA). Default False.
        amp_dtype: ``bf16`` (default) or ``fp16`` (CUDA only).
        channels_last: NHWC memory format for the networks and batches (helps convs on recent GPUs). Default False.
        max_nonfinite_steps: a NaN/inf loss skips its step (no optimizer step, no EMA update); this many
            consecutive skipped steps save a checkpoint and stop training. Default 10; 0 never stops.
        seed_per_iter: reseed the RNGs before each batch from (manual_seed, rank, iteration), so a resumed run
            reproduces an uninterrupted one (see ``srfer_plugin/compat.py``). Default True.

    Checkpoints and training states are written atomically (temporary file + rename) under BasicSR's names and
    formats; training states also hold the RNG states, the GradScaler state and ``iters_per_epoch``. Every
    checkpoint is read with ``safe_load`` (no pickled code runs). Under DDP, a CPU model is wrapped without
    ``device_ids``, a frozen ``net_fer`` is not wrapped, and validation runs on rank 0 with the bare networks
    while the other ranks wait at a barrier.

    Validation adds ``acc`` (FER accuracy on SR), ``acc_hr`` and ``acc_bicubic`` to PSNR/SSIM.
    """

    def __init__(self, opt: dict):
        self._check_fer_options(opt)
        super().__init__(opt)  # builds net_g; in training, init_training_settings builds net_fer and losses
        if not hasattr(self, 'net_fer'):
            self._build_fer()
        fer_classes = getattr(self.get_bare_model(self.net_fer), 'num_classes', None)
        if fer_classes is not None:
            self._check_dataset_classes(opt, int(fer_classes))
        self._check_fer_input()
        self._check_sr_output_size()
        self._fer_reference_cache: dict[str, dict[str, Any]] = {}
        self.fer_results: dict[str, dict[str, list]] = {}

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _check_fer_options(opt: dict) -> None:
        if not opt.get('network_fer'):
            raise ValueError('SRFERModel needs a network_fer section (an MMPretrainFER classifier)')
        train_opt = opt.get('train') or {}
        joint = not opt['network_fer'].get('freeze', True)
        if opt.get('is_train'):
            if not any(train_opt.get(k) for k in ('pixel_opt', 'attention_opt', 'prediction_opt')):
                raise ValueError('train: set at least one of pixel_opt, attention_opt and prediction_opt')
            if train_opt.get('fer_opt') and not joint:
                raise ValueError(
                    'train.fer_opt trains the classifier: set network_fer.freeze: false and train.optim_fer'
                )
            if joint and not (train_opt.get('fer_opt') and train_opt.get('optim_fer')):
                raise ValueError('network_fer.freeze: false needs train.fer_opt and train.optim_fer (joint learning)')
            bad_inputs = set(train_opt.get('fer_inputs', FER_INPUTS)) - set(FER_INPUTS)
            if bad_inputs:
                raise ValueError(f'train.fer_inputs: {sorted(bad_inputs)} not in {FER_INPUTS}')

    @staticmethod
    def _check_dataset_classes(opt: dict, num_classes: int) -> None:
        """Every FER dataset names ``num_classes`` classes, or (naming none) has labels in ``[0, num_classes)``."""
        for phase, dataset_opt in (opt.get('datasets') or {}).items():
            if dataset_opt.get('type') != 'PairedFERDataset':
                continue
            try:
                classes = resolve_classes(dataset_opt)
            except (OSError, ValueError):
                continue  # the dataset reports its own path errors
            if classes is not None and len(classes) != num_classes:
                raise ValueError(
                    f'datasets.{phase} has {len(classes)} classes {classes}, but network_fer.num_classes is '
                    f'{num_classes}'
                )
            meta_info = dataset_opt.get('meta_info_file')
            if classes is None and meta_info and os.path.isfile(meta_info):
                try:
                    read_meta_info(meta_info, num_classes)
                except ValueError as err:
                    raise ValueError(
                        f'datasets.{phase}.meta_info_file: {err}, the classes of network_fer (num_classes '
                        f'{num_classes}); with no classes.txt beside it, labels must fit the classifier'
                    ) from err

    def _check_fer_input(self) -> None:
        """Fail before training if the classifier cannot take the faces (``network_fer.input_size``)."""
        net_fer = self.get_bare_model(self.net_fer)
        if not hasattr(net_fer, 'check_input_size'):
            return
        sizes = {}  # one probe per size, named by the first dataset that uses it
        for phase, dataset_opt in (self.opt.get('datasets') or {}).items():
            if dataset_opt.get('gt_size'):
                sizes.setdefault(int(dataset_opt['gt_size']), phase)
        for size, phase in sizes.items():
            net_fer.check_input_size(size, size, where=f'datasets.{phase}.gt_size')

    def _build_fer(self) -> None:
        self.fer_joint = not self.opt['network_fer'].get('freeze', True)
        net_fer = build_network(self.opt['network_fer'])
        # A frozen classifier has no gradients to synchronise: it is never wrapped in DDP/DataParallel.
        if self.fer_joint:
            self.net_fer = self.model_to_device(net_fer)
        else:
            self.net_fer = self._memory_format_net(net_fer.to(self.device))
        load_path = self.opt['path'].get('pretrain_network_fer')
        resume_path = self.opt['path'].get('resume_state')
        ignored = self.opt['path'].get('ignore_resume_networks') or []
        if self.fer_joint and self.is_train and resume_path and 'network_fer' in ignored:
            # a trained classifier is part of the training state: resume it even when listed as ignored
            resume_iter = os.path.basename(resume_path).split('.state')[0]
            load_path = os.path.join(self.opt['path']['models'], f'net_fer_{resume_iter}.pth')
            get_root_logger().info(f'Joint learning: resuming network_fer from {load_path}')
        if load_path is not None:
            models_dir = self.opt['path'].get('models')
            resumed_frozen = (
                not self.fer_joint
                and models_dir is not None
                and not os.path.exists(load_path)
                and os.path.abspath(load_path).startswith(os.path.abspath(models_dir))
            )
            if resumed_frozen:  # check_resume points every network at experiments/; a frozen net_fer is not saved
                get_root_logger().info(f'Frozen network_fer: not resuming it from {load_path}')
            else:
                param_key = self.opt['path'].get('param_key_fer', 'params')
                self.load_network(self.net_fer, load_path, self.opt['path'].get('strict_load_fer', True), param_key)
        self.net_fer.train(self.fer_joint and self.is_train)

    def _check_sr_output_size(self, lr_size: int = 16) -> None:
        """Fail early when network_g does not upscale by ``scale`` (e.g. ``upscale`` and ``scale`` disagree).

        Args:
            lr_size: Side of the probe input; rounded up to a multiple of ``network_g.window_size`` (SwinIR).
        """
        window = int(self.opt['network_g'].get('window_size', 1))
        lr_size = -(-lr_size // window) * window
        net = self.get_bare_model(self.net_g)
        scale = int(self.opt.get('scale', 1))
        in_ch = int(self.opt['network_g'].get('num_in_ch', self.opt['network_g'].get('in_chans', 3)))
        was_training = net.training
        net.eval()
        with torch.no_grad():
            out = net(torch.zeros(1, in_ch, lr_size, lr_size, device=self.device))
        net.train(was_training)
        expected = (lr_size * scale, lr_size * scale)
        if tuple(out.shape[-2:]) != expected:
            raise ValueError(
                f'network_g ({self.opt["network_g"]["type"]}) turns a {lr_size}x{lr_size} input into '
                f'{out.shape[-2]}x{out.shape[-1]}, but scale {scale} needs {expected[0]}x{expected[1]}; '
                "make network_g's upscale factor match the top-level scale"
            )

    # ------------------------------------------------------------ device / io
    def _memory_format_net(self, net: torch.nn.Module) -> torch.nn.Module:
        if (self.opt.get('train') or {}).get('channels_last') and self.is_train:
            net = net.to(memory_format=torch.channels_last)
        return net

    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        """BasicSR's ``model_to_device``, with DDP on CPU (no ``device_ids``) and the channels_last option."""
        net = self._memory_format_net(net.to(self.device))
        if self.opt['dist']:
            find_unused = self.opt.get('find_unused_parameters', False)
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
        elif self.opt['num_gpu'] > 1:
            net = DataParallel(net)
        return net

    def load_network(self, net: torch.nn.Module, load_path: str, strict: bool = True, param_key='params') -> None:
        """BasicSR's ``load_network`` (param_key fallback, ``module.`` stripping, key report), read by safe_load.

        Raises:
            UnsafeCheckpointError: The file references code outside the allow-list of safe globals.
        """
        logger = get_root_logger()
        net = self.get_bare_model(net)
        load_net = safe_load(load_path)
        if param_key is not None:
            if param_key not in load_net and 'params' in load_net:
                param_key = 'params'
                logger.info('Loading: params_ema does not exist, use params.')
            if param_key not in load_net:
                raise KeyError(f'checkpoint {load_path!r} has no key {param_key!r}; keys: {list(load_net)[:10]}')
            load_net = load_net[param_key]
        logger.info(f'Loading {net.__class__.__name__} model from {load_path}, with param key: [{param_key}].')
        load_net = OrderedDict((k[7:] if k.startswith('module.') else k, v) for k, v in load_net.items())
        self._print_different_keys_loading(net, load_net, strict)
        net.load_state_dict(load_net, strict=strict)

    @staticmethod
    def _save_with_retry(obj: Any, path: str) -> None:
        for attempt in range(3):
            try:
                atomic_torch_save(obj, path)
                return
            except OSError as err:
                get_root_logger().warning(f'Save error: {err}, remaining retry times: {2 - attempt}')
                if attempt < 2:
                    time.sleep(1)
        raise OSError(f'cannot save {path} after 3 attempts; the previous checkpoint (if any) is intact')

    @master_only
    def save_network(self, net, net_label: str, current_iter: int, param_key='params') -> None:
        """BasicSR's ``save_network`` (same file name and ``params``/``params_ema`` format), written atomically."""
        save_path = os.path.join(
            self.opt['path']['models'], f'{net_label}_{"latest" if current_iter == -1 else current_iter}.pth'
        )
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError('The lengths of net and param_key should be the same.')
        save_dict = {}
        for net_, key_ in zip(nets, keys):
            state_dict = self.get_bare_model(net_).state_dict()
            save_dict[key_] = OrderedDict(
                (k[7:] if k.startswith('module.') else k, v.cpu()) for k, v in state_dict.items()
            )
        self._save_with_retry(save_dict, save_path)

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
        }
        if getattr(self, 'grad_scaler', None) is not None:
            state['grad_scaler'] = self.grad_scaler.state_dict()
        self._save_with_retry(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def resume_training(self, resume_state: dict) -> None:
        """Restore optimizers and schedulers (BasicSR), then RNG states and GradScaler when saved."""
        super().resume_training(resume_state)
        if resume_state.get('rng_states') is not None:
            set_rng_states(resume_state['rng_states'])
        if resume_state.get('grad_scaler') is not None and getattr(self, 'grad_scaler', None) is not None:
            self.grad_scaler.load_state_dict(resume_state['grad_scaler'])

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

    def init_training_settings(self) -> None:
        self._build_fer()
        self.net_g.train()
        train_opt = self.opt['train']
        self.use_amp = bool(train_opt.get('use_amp', False))
        amp_name = str(train_opt.get('amp_dtype', 'bf16')).lower()
        if amp_name not in AMP_DTYPES:
            raise ValueError(f'train.amp_dtype: {amp_name!r} is not one of {sorted(AMP_DTYPES)}')
        self.amp_dtype = AMP_DTYPES[amp_name]
        if self.use_amp and self.amp_dtype == torch.float16 and self.device.type != 'cuda':
            raise ValueError('train.amp_dtype fp16 needs CUDA; use bf16 on CPU')
        use_scaler = self.use_amp and self.amp_dtype == torch.float16
        self.grad_scaler = torch.amp.GradScaler('cuda') if use_scaler else None
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

        def build(key: str):
            return build_loss(train_opt[key]).to(self.device) if train_opt.get(key) else None

        self.cri_pix = build('pixel_opt')
        self.cri_perceptual = build('perceptual_opt')
        self.cri_att = build('attention_opt')
        self.cri_pred = build('prediction_opt')
        self.cri_fer = build('fer_opt')
        self.fer_inputs = tuple(train_opt.get('fer_inputs', FER_INPUTS))
        self._checked_output_size = False
        self.setup_optimizers()
        self.setup_schedulers()

    def get_optimizer(self, optim_type: str, params, lr: float, **kwargs) -> torch.optim.Optimizer:
        """Build any ``torch.optim`` optimizer by class name (BasicSR 1.4.2 knows only Adam)."""
        optim_cls = getattr(torch.optim, optim_type, None)
        if not (isinstance(optim_cls, type) and issubclass(optim_cls, torch.optim.Optimizer)):
            raise ValueError(f'optimizer type {optim_type!r} is not a torch.optim optimizer')
        return optim_cls(params, lr, **kwargs)

    def _make_optimizer(self, net: torch.nn.Module, key: str) -> torch.optim.Optimizer:
        params = []
        for name, param in net.named_parameters():
            if param.requires_grad:
                params.append(param)
            else:
                get_root_logger().warning(f'Params {name} will not be optimized.')
        optim_opt = deepcopy(self.opt['train'][key])  # BasicSR pops 'type' in place; keep the options intact
        return self.get_optimizer(optim_opt.pop('type'), params, **optim_opt)

    def setup_optimizers(self) -> None:
        self.optimizer_g = self._make_optimizer(self.net_g, 'optim_g')
        self.optimizers.append(self.optimizer_g)
        if self.fer_joint:
            self.optimizer_fer = self._make_optimizer(self.net_fer, 'optim_fer')
            self.optimizers.append(self.optimizer_fer)

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
        if 'label' in data:
            self.label = data['label'].to(self.device)
        if self.is_train and getattr(self, 'channels_last', False):
            self.lq = self.lq.contiguous(memory_format=torch.channels_last)
            if hasattr(self, 'gt'):
                self.gt = self.gt.contiguous(memory_format=torch.channels_last)

    def optimize_parameters(self, current_iter: int) -> None:
        """One training step; a NaN/inf loss skips it (see ``max_nonfinite_steps``).

        Backward is queued before the losses are read, so the finiteness check reuses the one host
        synchronisation BasicSR's logging makes anyway (``reduce_loss_dict``), and every DDP rank runs backward.
        """
        self.optimizer_g.zero_grad(set_to_none=True)
        if self.fer_joint:
            self.optimizer_fer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            l_total, loss_dict = self._forward_losses()
        if self.grad_scaler is not None:
            self.grad_scaler.scale(l_total).backward()
        else:
            l_total.backward()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        bad = [name for name, value in self.log_dict.items() if not math.isfinite(value)]
        if bad or not math.isfinite(sum(self.log_dict.values())):
            self._skip_nonfinite_step(current_iter, bad or list(self.log_dict))
            return
        self._nonfinite_steps = 0
        optimizers = [self.optimizer_g] + ([self.optimizer_fer] if self.fer_joint else [])
        for optimizer in optimizers:
            if self.grad_scaler is not None:
                self.grad_scaler.step(optimizer)
            else:
                optimizer.step()
        if self.grad_scaler is not None:
            self.grad_scaler.update()
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def _skip_nonfinite_step(self, current_iter: int, bad: list[str]) -> None:
        self._nonfinite_steps += 1
        self.output = self.output.detach()
        for optimizer in [self.optimizer_g] + ([self.optimizer_fer] if self.fer_joint else []):
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

    def _forward_losses(self) -> tuple[torch.Tensor, OrderedDict]:
        self.output = self.net_g(self.lq)
        if not self._checked_output_size:
            if self.output.shape != self.gt.shape:
                raise ValueError(
                    f'network_g ({self.opt["network_g"]["type"]}) output {tuple(self.output.shape)} '
                    f'differs from the HR batch {tuple(self.gt.shape)}'
                )
            self._checked_output_size = True

        l_total = 0
        loss_dict = OrderedDict()
        if self.cri_pix:
            loss_dict['l_pix'] = self.cri_pix(self.output, self.gt)
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(self.output, self.gt)
            if l_percep is not None:
                loss_dict['l_percep'] = l_percep
            if l_style is not None:
                loss_dict['l_style'] = l_style
        loss_dict.update(self._fer_losses())
        for value in loss_dict.values():
            l_total = l_total + value
        return l_total, loss_dict

    def _fer_losses(self) -> OrderedDict:
        losses = OrderedDict()
        need_hr = self.cri_att or self.cri_pred or (self.cri_fer and 'hr' in self.fer_inputs)
        if not (need_hr or self.cri_fer):
            return losses
        feats_sr, logits_sr = self.net_fer(self.output)
        if need_hr:
            # The bare network: a DDP-wrapped classifier (joint learning) must run one DDP forward per backward;
            # gradients of both passes still reach its parameters and DDP's hooks.
            net_fer_hr = self.get_bare_model(self.net_fer)
            if self.cri_fer and 'hr' in self.fer_inputs:  # joint learning on HR needs its graph
                feats_hr, logits_hr = net_fer_hr(self.gt)
            else:
                with torch.no_grad():
                    feats_hr, logits_hr = net_fer_hr(self.gt)
        if self.cri_att:
            losses['l_att'] = self.cri_att(feats_sr, feats_hr)
        if self.cri_pred:
            losses['l_pred'] = self.cri_pred(logits_sr, logits_hr)
        if self.cri_fer:
            if not hasattr(self, 'label'):
                raise KeyError('train.fer_opt needs labels: the training dataset must return "label"')
            l_fer = self.cri_fer(logits_sr, self.label) if 'sr' in self.fer_inputs else 0
            if 'hr' in self.fer_inputs:
                l_fer = l_fer + self.cri_fer(logits_hr, self.label)
            losses['l_fer'] = l_fer
        return losses

    def save(self, epoch: int, current_iter: int) -> None:
        if self.fer_joint:  # before the training state, so a state never points at a missing net_fer
            self.save_network(self.net_fer, 'net_fer', current_iter)
        super().save(epoch, current_iter)

    # ------------------------------------------------------------- validation
    def dist_validation(self, dataloader, current_iter, tb_logger, save_img: bool) -> None:
        """Rank 0 validates the whole (unsharded) set with the bare networks; the other ranks wait for it."""
        if self.opt['rank'] == 0:
            wrapped = self.net_g, self.net_fer
            self.net_g, self.net_fer = self.get_bare_model(self.net_g), self.get_bare_model(self.net_fer)
            try:
                self.nondist_validation(dataloader, current_iter, tb_logger, save_img)
            finally:
                self.net_g, self.net_fer = wrapped
        if torch_dist.is_available() and torch_dist.is_initialized():
            torch_dist.barrier()

    def _initialize_best_metric_results(self, dataset_name: str) -> None:
        if hasattr(self, 'best_metric_results') and dataset_name in self.best_metric_results:
            return
        if not hasattr(self, 'best_metric_results'):
            self.best_metric_results = {}
        record = {}
        for metric in self.metric_results:
            better = (self.opt['val'].get('metrics') or {}).get(metric, {}).get('better', 'higher')
            record[metric] = dict(better=better, val=float('-inf') if better == 'higher' else float('inf'), iter=-1)
        self.best_metric_results[dataset_name] = record

    def _fer_predict(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net_fer(images.clamp(0, 1))[1].argmax(dim=1)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img: bool) -> None:
        """SRModel's validation (PSNR/SSIM, saved images) plus FER accuracy on SR, HR and bicubic images."""
        dataset_name = dataloader.dataset.opt['name']
        metrics_opt = self.opt['val'].get('metrics') or {}
        use_pbar = self.opt['val'].get('pbar', False)
        fer_was_training = self.net_fer.training
        self.net_fer.eval()
        # With a frozen classifier, HR and bicubic predictions never change: compute them once per dataset.
        cached = self._fer_reference_cache.get(dataset_name) if not self.fer_joint else None
        sums = {metric: 0.0 for metric in metrics_opt}
        records: dict[str, list] = {'path': [], 'label': [], 'pred_sr': [], 'pred_hr': [], 'pred_bicubic': []}
        num_images = 0
        pbar = tqdm(total=len(dataloader), unit='batch', desc=f'Validate {dataset_name}') if use_pbar else None
        for val_data in dataloader:
            self.feed_data(val_data)
            self.test()
            has_label = 'label' in val_data
            if has_label:
                records['label'] += val_data['label'].tolist()
                records['pred_sr'] += self._fer_predict(self.output).tolist()
                if cached is None:
                    records['pred_hr'] += self._fer_predict(self.gt).tolist()
                    bicubic = upsample_bicubic(self.lq, self.gt.shape[-2:])
                    records['pred_bicubic'] += self._fer_predict(bicubic).tolist()
            records['path'] += list(val_data['gt_path'] if 'gt_path' in val_data else val_data['lq_path'])
            for i in range(self.output.shape[0]):
                metric_data = {'img': tensor2img([self.output[i].detach().cpu()])}
                if hasattr(self, 'gt'):
                    metric_data['img2'] = tensor2img([self.gt[i].detach().cpu()])
                for name, opt_ in metrics_opt.items():
                    sums[name] += calculate_metric(metric_data, opt_)
                if save_img:
                    self._save_sr_image(metric_data['img'], val_data['lq_path'][i], dataset_name, current_iter)
            num_images += self.output.shape[0]
            del self.lq, self.output
            if hasattr(self, 'gt'):
                del self.gt
            if pbar:
                pbar.update(1)
        if pbar:
            pbar.close()
        self.net_fer.train(fer_was_training)

        self.metric_results = {name: value / max(num_images, 1) for name, value in sums.items()}
        if records['label']:
            if cached is not None:
                records['pred_hr'], records['pred_bicubic'] = cached['pred_hr'], cached['pred_bicubic']
            elif not self.fer_joint:
                self._fer_reference_cache[dataset_name] = {k: records[k] for k in ('pred_hr', 'pred_bicubic')}
            labels = torch.tensor(records['label'])
            for metric, key in zip(FER_METRICS, ('pred_sr', 'pred_hr', 'pred_bicubic')):
                self.metric_results[metric] = (torch.tensor(records[key]) == labels).float().mean().item() * 100
            self.fer_results[dataset_name] = records
        if self.metric_results:
            self._initialize_best_metric_results(dataset_name)
            for metric, value in self.metric_results.items():
                self._update_best_metric_result(dataset_name, metric, value, current_iter)
            self._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        if not self.opt['is_train'] and self.opt['rank'] == 0:
            self.write_test_reports(dataset_name, dataloader.dataset)

    def write_test_reports(self, dataset_name: str, dataset) -> None:
        """Write the evaluation reports of a test set under ``results/<name>/`` (see ``utils/fer_report.py``)."""
        from srfer_plugin.utils.fer_report import write_fer_reports

        fer = self.get_bare_model(self.net_fer)
        class_names = getattr(dataset, 'classes', None) or getattr(fer, 'class_names', None)
        write_fer_reports(
            self.opt['path']['results_root'],
            dataset_name,
            dict(self.metric_results),
            self.fer_results.get(dataset_name),
            class_names,
        )

    def _save_sr_image(self, img, lq_path: str, dataset_name: str, current_iter) -> None:
        img_name = os.path.splitext(os.path.basename(lq_path))[0]
        if self.opt['is_train']:
            path = os.path.join(self.opt['path']['visualization'], img_name, f'{img_name}_{current_iter}.png')
        else:
            suffix = self.opt['val'].get('suffix') or self.opt['name']
            path = os.path.join(self.opt['path']['visualization'], dataset_name, f'{img_name}_{suffix}.png')
        imwrite(img, path)
