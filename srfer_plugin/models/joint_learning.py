"""Joint learning of SR-FER: option checks, the gradient routing of ``fer_opt``, the classifier's scheduler and the
frozen copy ``fer_distill_opt`` distils from.

An SR-FER model (``SRFERModel``) trains the classifier (``train.train_network_fer: true``) with ``train.fer_opt``.
The classification loss on the SR face also reaches ``network_g`` through the SR image;
``train.joint_opt.sr_grad_weight`` scales that gradient (default :data:`DEFAULT_SR_GRAD_WEIGHT`: none of it, the
classifier alone learns from ``fer_opt``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import dataclass

import torch
from basicsr.models.lr_scheduler import CosineAnnealingRestartLR, MultiStepRestartLR
from basicsr.utils import get_root_logger

from srfer_plugin.utils.renamed_options import check_renamed_options

FER_INPUTS = ('sr', 'hr')
CLASSIFIER_LOSSES = ('fer_opt', 'fer_distill_opt')  # the losses that train the classifier only
JOINT_OPT_KEYS = ('sr_grad_weight', 'fer_frozen_iters')
# Share of fer_opt's gradient that reaches network_g through the SR face: 0 = the classifier alone learns from it
# (a classification loss outweighs the pixel loss by far and costs PSNR when it steers network_g).
DEFAULT_SR_GRAD_WEIGHT = 0.0
# BasicSR's scheduler types (BaseModel.setup_schedulers), by option name.
SCHEDULERS = {
    'MultiStepLR': MultiStepRestartLR,
    'MultiStepRestartLR': MultiStepRestartLR,
    'CosineAnnealingRestartLR': CosineAnnealingRestartLR,
}


@dataclass(frozen=True)
class JointOptions:
    """The joint-learning settings of one run (``train.joint_opt`` and ``train.train_network_g``).

    Attributes:
        sr_grad_weight: Scale of ``fer_opt``'s gradient that reaches ``network_g`` through the SR face.
        fer_frozen_iters: Iterations ``1..fer_frozen_iters`` keep the classifier frozen; it trains from the next.
        train_network_g: False: ``network_g`` is loaded and kept fixed; only the classifier trains.
        train_network_fer: The classifier trains (joint learning); False in a test run.
    """

    sr_grad_weight: float = DEFAULT_SR_GRAD_WEIGHT
    fer_frozen_iters: int = 0
    train_network_g: bool = True
    train_network_fer: bool = False


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by a constant."""

    @staticmethod
    def forward(ctx, image: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return image.view_as(image)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.weight, None


def route_sr_gradient(image: torch.Tensor, weight: float) -> torch.Tensor:
    """``image`` unchanged, with its gradient scaled by ``weight`` (0: detached, 1: the image itself).

    Args:
        image: The SR batch.
        weight: ``train.joint_opt.sr_grad_weight`` (>= 0).

    Returns:
        The same values; what flows back through it is ``weight`` times the incoming gradient.
    """
    if weight == 0:
        return image.detach()
    if weight == 1:
        return image
    return _ScaleGradient.apply(image, float(weight))


def frozen_copy(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` without gradients that reads a batch as the training ``net`` does (the teacher of
    ``fer_distill_opt``): in training mode, so BatchNorm normalises by the batch's statistics as the student's
    does, without tracking them, so its buffers stay those of the copied weights."""
    teacher = deepcopy(net).train()
    for param in teacher.parameters():
        param.requires_grad_(False)
    for module in teacher.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.track_running_stats = False
    return teacher


def build_scheduler(
    optimizer: torch.optim.Optimizer, train_opt: dict, key: str
) -> torch.optim.lr_scheduler.LRScheduler:
    """BasicSR's scheduler of ``train.<key>`` for one optimizer (the options stay intact).

    Raises:
        ValueError: ``train.<key>`` is missing or its ``type`` is not one of BasicSR's.
    """
    scheduler_opt = deepcopy(train_opt.get(key) or {})
    scheduler_type = scheduler_opt.pop('type', None)
    if scheduler_type not in SCHEDULERS:
        raise ValueError(f'train.{key}.type: {scheduler_type!r} is not one of {sorted(SCHEDULERS)}')
    return SCHEDULERS[scheduler_type](optimizer, **scheduler_opt)


def check_fer_options(opt: dict, loss_options: Sequence[str]) -> JointOptions:
    """Check the classifier and joint-learning options before anything is built; return the joint settings.

    Args:
        opt: The run's options.
        loss_options: The ``train`` loss keys of the model (``fer_opt`` and those on SR vs HR).

    Returns:
        The settings; the defaults when the classifier is frozen or the run is not training.

    Raises:
        ValueError: An option is missing, unknown, out of range or contradicts another (the message names them).
    """
    check_renamed_options(opt, resumed=bool((opt.get('path') or {}).get('resume_state')))
    if not opt.get('network_fer'):
        raise ValueError(
            f'{opt.get("model_type", "SRFERModel")} needs a network_fer section (an MMPretrainFER classifier)'
        )
    if not opt.get('is_train'):
        return JointOptions()
    train_opt = opt.get('train') or {}
    bad_inputs = set(train_opt.get('fer_inputs', FER_INPUTS)) - set(FER_INPUTS)
    if bad_inputs:
        raise ValueError(f'train.fer_inputs: {sorted(bad_inputs)} not in {FER_INPUTS}')
    train_network_g = read_bool(train_opt, 'train_network_g', True)
    if not read_bool(train_opt, 'train_network_fer', False):
        for key in CLASSIFIER_LOSSES:
            if train_opt.get(key):
                raise ValueError(
                    f'train.{key} trains the classifier: set train.train_network_fer: true, train.fer_opt and '
                    'train.optim_fer'
                )
        joint_keys = [
            f'train.{key}' for key in ('joint_opt', 'optim_fer', 'scheduler_fer') if train_opt.get(key) is not None
        ]
        joint_keys += [] if train_network_g else ['train.train_network_g']
        if joint_keys:
            raise ValueError(
                f'{", ".join(joint_keys)}: joint learning only; set train.train_network_fer: true, train.fer_opt and '
                'train.optim_fer, or remove them'
            )
        return JointOptions()
    if not (train_opt.get('fer_opt') and train_opt.get('optim_fer')):
        raise ValueError('train.train_network_fer: true needs train.fer_opt and train.optim_fer (joint learning)')
    joint = _read_joint_opt(train_opt)
    other_losses = [f'train.{key}' for key in loss_options if key not in CLASSIFIER_LOSSES and train_opt.get(key)]
    total_iter = train_opt.get('total_iter')
    if total_iter is not None and joint.fer_frozen_iters >= int(total_iter):
        raise ValueError(
            f'train.joint_opt.fer_frozen_iters ({joint.fer_frozen_iters}) >= train.total_iter ({int(total_iter)}): '
            'the classifier would never train'
        )
    if joint.fer_frozen_iters > 0 and not other_losses:
        raise ValueError(
            f'train.joint_opt.fer_frozen_iters ({joint.fer_frozen_iters}): nothing trains while the classifier is '
            f'frozen (fer_opt is off then, and no other loss of '
            f'{", ".join(k for k in loss_options if k not in CLASSIFIER_LOSSES)} '
            'is set)'
        )
    if not joint.train_network_g:
        _check_frozen_network_g(opt, joint, other_losses)
    elif joint.sr_grad_weight == 0 and not other_losses:
        get_root_logger().warning(
            'train: fer_opt is the only loss and train.joint_opt.sr_grad_weight is 0, so network_g gets no '
            'gradient; train.train_network_g: false is the way to train the classifier alone'
        )
    return joint


def _read_joint_opt(train_opt: dict) -> JointOptions:
    joint_opt = train_opt.get('joint_opt') or {}
    if not isinstance(joint_opt, dict):
        raise ValueError(f'train.joint_opt must be a mapping with keys {", ".join(JOINT_OPT_KEYS)}; got {joint_opt!r}')
    unknown = sorted(set(joint_opt) - set(JOINT_OPT_KEYS))
    if unknown:
        raise ValueError(f'train.joint_opt: unknown key(s) {unknown}; known: {", ".join(JOINT_OPT_KEYS)}')
    weight = joint_opt.get('sr_grad_weight', DEFAULT_SR_GRAD_WEIGHT)
    if not (_is_number(weight) and weight >= 0):
        raise ValueError(
            f'train.joint_opt.sr_grad_weight must be a number >= 0 (0: the classifier alone learns from fer_opt, '
            f'1: network_g gets its full gradient too); got {weight!r}'
        )
    frozen_iters = joint_opt.get('fer_frozen_iters', 0)
    if not (_is_number(frozen_iters) and frozen_iters >= 0 and frozen_iters == int(frozen_iters)):
        raise ValueError(f'train.joint_opt.fer_frozen_iters must be an integer >= 0; got {frozen_iters!r}')
    return JointOptions(float(weight), int(frozen_iters), read_bool(train_opt, 'train_network_g', True), True)


def read_bool(train_opt: dict, key: str, default: bool) -> bool:
    """``train.<key>``, which must be true or false (``default`` when unset).

    Raises:
        ValueError: The value is not a boolean (the message names the key and value).
    """
    value = train_opt.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f'train.{key} must be true or false; got {value!r}')
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_frozen_network_g(opt: dict, joint: JointOptions, other_losses: list[str]) -> None:
    """``train.train_network_g: false``: a loaded ``network_g`` run without gradients; classifier losses only."""
    if other_losses:
        raise ValueError(
            f'train.train_network_g: false keeps network_g fixed, so {", ".join(other_losses)} cannot train it; '
            'remove them (fer_opt trains the classifier)'
        )
    if not (opt.get('path') or {}).get('pretrain_network_g'):
        raise ValueError('train.train_network_g: false needs path.pretrain_network_g (the trained SR network to keep)')
    if (opt['train'].get('ema_decay') or 0) > 0:
        raise ValueError(
            'train.train_network_g: false keeps network_g fixed; set train.ema_decay: 0 (to start from EMA weights, '
            'set path.param_key_g: params_ema)'
        )
    if joint.sr_grad_weight != 0:
        raise ValueError(
            f'train.joint_opt.sr_grad_weight ({joint.sr_grad_weight}) has no effect with train.train_network_g: '
            'false (network_g runs without gradients); remove it'
        )
