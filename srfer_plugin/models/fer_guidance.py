"""FERGuidance: the FER classifier of an SR-FER model, and what it adds to the model's training and validation.

An SR-FER model (``SRFERModel`` and its GAN subclasses) holds one as ``self.fer`` and calls it from its training
step: :meth:`FERGuidance.classify` (the SR face), :meth:`~FERGuidance.reference` (the HR face),
:meth:`~FERGuidance.consistency_losses` (``l_att``, ``l_pred``) and :meth:`~FERGuidance.classification_loss`
(``l_fer``, joint learning). The component builds and loads the classifier (``network_fer``) and its losses, runs
joint learning's frozen start and gradient routing, and gives validation its predictions. What every trained network
of a model shares (optimizers, schedulers, checkpoint files, DDP wrapping) stays with the model.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils import get_root_logger
from torch.nn.parallel import DataParallel, DistributedDataParallel

from srfer_plugin.models.consistency_weights import ConsistencyWeights
from srfer_plugin.models.fer_option_checks import check_dataset_classes, classifier_batch_size, hr_cache_enabled
from srfer_plugin.models.hr_reference_cache import HRReferenceCache
from srfer_plugin.models.joint_learning import (
    FER_INPUTS,
    JointOptions,
    frozen_copy,
    route_sr_gradient,
)
from srfer_plugin.utils.checkpoint import weights_fingerprint


class ClassifierOutput(NamedTuple):
    """The classifier's reading of a batch of faces."""

    features: list[torch.Tensor]  # the (N, C, H, W) maps at the classifier's taps, one per stage
    logits: torch.Tensor  # (N, K)


class FERGuidance:
    """A frozen (or jointly trained) FER classifier that must read the SR face as it reads the HR face.

    Options (``train:`` keys; training needs at least one loss of the model's ``LOSS_OPTIONS``):
        network_fer: the classifier (e.g. ``MMPretrainFER``); its weights come from ``network_fer.checkpoint``.
        train_network_fer: true trains the classifier too (joint learning); default false (frozen).
        attention_opt: ``AttentionConsistencyLoss`` on ``network_fer`` stage features (``l_att``);
            ``stage_weights`` needs one weight per tap of the classifier.
        prediction_opt: ``PredictionConsistencyLoss`` on ``network_fer`` logits (``l_pred``).
        fer_opt: classification loss (e.g. ``FERCrossEntropyLoss``) for joint learning (``l_fer``); needs
            ``train_network_fer: true`` and ``optim_fer``.
        fer_distill_opt: joint learning: keeps the adapted classifier's reading of HR faces close to the starting
            classifier's (``l_fer_distill``: e.g. ``PredictionConsistencyLoss`` between the trained classifier's
            and a frozen copy's logits on the HR batch), so that a small training set is not overfit and HR faces
            not forgotten; needs ``fer_opt``.
        fer_inputs: images the classification loss sees, ``[sr, hr]`` (default) or ``[sr]``.
        fer_batch_size: the classifier reads only the first N faces of each training batch (the loader shuffles,
            so a random N), for all its losses; the pixel losses still see every face. Cuts the classifier's
            share of the step; default: every face.
        joint_opt: ``sr_grad_weight`` (share of ``fer_opt``'s gradient reaching ``net_g`` through the SR face,
            default 0) and ``fer_frozen_iters`` (iterations with the classifier frozen, default 0).
    The model owns ``optim_fer``, ``scheduler_fer`` and ``train_network_g``; checks and gradient routing are in
    ``srfer_plugin/models/joint_learning.py``.

    A frozen classifier is never wrapped in DDP and never saved (its weights' fingerprint goes in the training
    state instead); a trained one is wrapped, and saved as ``net_fer_<iter>.pth``. In each training step only
    the first classifier pass with gradients goes through the DDP wrapper (one DDP forward per backward); the
    other passes use the bare network, whose gradients still reach DDP's hooks.

    Args:
        opt: The run's options.
        device: The model's device.
        joint_opt: The checked joint-learning settings (``check_fer_options``).
        model_to_device: The model's ``model_to_device(net, wrap)`` (device, memory format, DDP).
        load_network: The model's ``load_network(net, path, strict, param_key)``.
    """

    LOSS_OPTIONS: tuple[str, ...] = ('attention_opt', 'prediction_opt', 'fer_opt', 'fer_distill_opt')

    def __init__(
        self,
        opt: dict,
        device: torch.device,
        joint_opt: JointOptions,
        model_to_device: Callable[..., torch.nn.Module],
        load_network: Callable[..., None],
    ):
        self.opt = opt
        self.joint_opt = joint_opt
        self.is_train = bool(opt.get('is_train'))
        self.joint = joint_opt.train_network_fer
        self.net = model_to_device(build_network({**opt['network_fer'], 'freeze': not self.joint}), wrap=self.joint)
        self.bare = self.net.module if isinstance(self.net, (DataParallel, DistributedDataParallel)) else self.net
        train_opt = opt['train'] if self.is_train else {}
        # fer_distill_opt's teacher: the classifier as network_fer.checkpoint gives it, copied before a resume
        # loads the adapted weights
        self.teacher = frozen_copy(self.bare) if self.joint and train_opt.get('fer_distill_opt') else None
        self._load_resumed_weights(load_network)
        self.trains = self.joint and self.is_train  # see set_phase
        self.net.train(self.trains)
        self.trained_parameters = [param for param in self.bare.parameters() if param.requires_grad]
        self.fingerprint = None if self.joint else weights_fingerprint(self.net)
        self.cri_att, self.cri_pred, self.cri_fer, self.cri_distill = (
            build_loss(train_opt[key]).to(device) if train_opt.get(key) else None for key in self.LOSS_OPTIONS
        )
        self.fer_inputs = tuple(train_opt.get('fer_inputs', FER_INPUTS))
        self._check_stage_weights(train_opt)
        num_classes = getattr(self.bare, 'num_classes', None)
        if num_classes is not None:
            check_dataset_classes(opt, int(num_classes), getattr(self.bare, 'class_names', None))
        self._check_input_sizes()
        self.hr_cache = self._build_hr_cache(train_opt)
        self.batch_size = classifier_batch_size(opt, train_opt) if self.is_train else None
        auto = train_opt.get('consistency_weights')
        self.auto_weights = ConsistencyWeights(auto, train_opt) if auto is not None else None
        self.reference_predictions: dict[str, dict[str, list]] = {}
        self._wrapper_unused = False

    # ------------------------------------------------------------------ setup
    def _load_resumed_weights(self, load_network: Callable[..., None]) -> None:
        """A resumed run's trained classifier from its ``net_fer_<iter>.pth`` (a frozen one is never saved).

        The classifier's own weights are ``network_fer.checkpoint``, loaded when it is built. A trained classifier
        is part of the training state: it resumes from where ``check_resume`` pointed ``path.pretrain_network_fer``
        (a user's option file cannot set it), else from the state's iteration, even when ``network_fer`` is in
        ``path.ignore_resume_networks``.
        """
        resume_path = self.opt['path'].get('resume_state')
        if not resume_path:
            return
        load_path = self.opt['path'].get('pretrain_network_fer')
        if not self.joint:
            if load_path:  # check_resume points every network at experiments/
                get_root_logger().info(f'Frozen network_fer: not resuming it from {load_path}')
            return
        if not load_path or 'network_fer' in (self.opt['path'].get('ignore_resume_networks') or []):
            resume_iter = os.path.basename(resume_path).split('.state')[0]
            load_path = os.path.join(self.opt['path']['models'], f'net_fer_{resume_iter}.pth')
        get_root_logger().info(f'Joint learning: resuming network_fer from {load_path}')
        load_network(self.net, load_path, True, 'params')

    def _build_hr_cache(self, train_opt: dict) -> HRReferenceCache | None:
        """``train.cache_hr_reference: true``: the frozen classifier's reading of each HR face, kept."""
        if not hr_cache_enabled(self.opt, train_opt):
            return None
        return HRReferenceCache(self.cri_att.p if self.cri_att else None)

    def _check_stage_weights(self, train_opt: dict) -> None:
        """``attention_opt.stage_weights`` has one weight per tap of the classifier."""
        stage_weights = (train_opt.get('attention_opt') or {}).get('stage_weights')
        taps = getattr(self.bare, 'taps', None)
        if stage_weights is not None and taps is not None and len(stage_weights) != len(taps):
            raise ValueError(
                f'train.attention_opt.stage_weights has {len(stage_weights)} weight(s), but network_fer has '
                f'{len(taps)} tap(s) ({", ".join(map(str, taps))}); give one weight per tap, or change '
                'network_fer.stages'
            )

    def _check_input_sizes(self) -> None:
        """Fail before training if the classifier cannot take the faces (``network_fer.input_size``)."""
        if not hasattr(self.bare, 'check_input_size'):
            return
        sizes = {}  # one probe per size, named by the first dataset that uses it
        for phase, dataset_opt in (self.opt.get('datasets') or {}).items():
            if dataset_opt.get('gt_size'):
                sizes.setdefault(int(dataset_opt['gt_size']), phase)
        for size, phase in sizes.items():
            self.bare.check_input_size(size, size, where=f'datasets.{phase}.gt_size')

    def set_phase(self, current_iter: int) -> None:
        """Joint learning: the classifier is frozen (eval mode, no gradient, no ``fer_opt``) for iterations
        ``1..joint_opt.fer_frozen_iters`` and trained after; a function of ``current_iter`` only, so resume needs
        no state.
        """
        trains = self.joint and current_iter > self.joint_opt.fer_frozen_iters
        if trains == self.trains:
            return
        self.trains = trains
        for param in self.trained_parameters:  # those of optim_fer (mmpretrain may freeze some)
            param.requires_grad_(trains)
        self.net.train(trains)
        get_root_logger().info(
            f'iter {current_iter}: network_fer '
            + ('trains from now on' if trains else f'frozen up to iteration {self.joint_opt.fer_frozen_iters}')
            + ' (train.joint_opt.fer_frozen_iters)'
        )

    # --------------------------------------------------------------- training
    def begin_step(self, current_iter: int) -> None:
        """Start a training step: the classifier's phase (frozen or trained) at ``current_iter``; the step's first
        classifier pass with gradients goes through the DDP wrapper."""
        self.set_phase(current_iter)
        self._wrapper_unused = self.trains

    def classifier_batch(self, *batches: Any) -> tuple[Any, ...]:
        """The faces of a training batch that the classifier reads: the first ``train.fer_batch_size`` of each of
        ``batches`` (tensors, lists or None, one entry per face, in the same order), or all of them without it."""
        if self.batch_size is None:
            return batches
        return tuple(None if batch is None else batch[: self.batch_size] for batch in batches)

    def classify(self, sr: torch.Tensor) -> ClassifierOutput | None:
        """The classifier on the SR batch, with the full gradient to ``net_g``; None when no loss needs it."""
        sr_logits_needed = self._classifies('sr') and self.joint_opt.sr_grad_weight == 1
        return self._forward(sr) if self.consistency or sr_logits_needed else None

    def reference(self, hr: torch.Tensor, keys: list[tuple] | None = None) -> ClassifierOutput | None:
        """The classifier on the HR batch: the consistency target, without gradients unless joint learning
        classifies HR faces too (``fer_inputs``); None when no loss needs it. With ``train.cache_hr_reference``
        and ``keys`` (one per face: path, flipped), cached faces are not read again and ``features`` holds their
        attention maps."""
        if self._classifies('hr'):
            return self._forward(hr)
        if not self.consistency:
            return None
        if self.hr_cache is not None:
            if keys is None:
                raise ValueError('train.cache_hr_reference: the batch has no gt_path and hflip to key its HR faces')
            return ClassifierOutput(*self.hr_cache.read(hr, keys, self.bare))
        with torch.no_grad():
            return ClassifierOutput(*self.bare(hr))

    def consistency_losses(self, sr: ClassifierOutput | None, hr: ClassifierOutput | None) -> OrderedDict:
        """``l_att`` (attention maps at the taps) and ``l_pred`` (softened predictions), SR against HR, where set.

        With ``train.consistency_weights`` they come at weight 1 here and :meth:`weigh_consistency` weighs them.

        Args:
            sr: :meth:`classify` of the SR batch.
            hr: :meth:`reference` of the HR batch.

        Returns:
            The losses of ``attention_opt`` and ``prediction_opt`` (empty when neither is set).
        """
        losses = OrderedDict()
        if self.cri_att:
            losses['l_att'] = self.cri_att(sr.features, hr.features)
        if self.cri_pred:
            losses['l_pred'] = self.cri_pred(sr.logits, hr.logits)
        return losses

    def weigh_consistency(
        self, losses: OrderedDict, sr: torch.Tensor, current_iter: int, gap_db: float | None = None
    ) -> dict[str, float]:
        """``train.consistency_weights``: weigh ``l_att`` and ``l_pred`` in ``losses`` by their gradient shares
        (rules ``psnr_budget`` and ``psnr_pilot``: scaled by the PSNR gap ``gap_db`` to the plain-SR twin).

        Returns:
            The weights as log entries (``w_att``, ``w_pred``); empty with the hand-set weights.
        """
        if self.auto_weights is None:
            return {}
        self.auto_weights.weigh(losses, sr, current_iter, gap_db)
        return self.auto_weights.log()

    def classification_loss(
        self,
        sr_images: torch.Tensor,
        sr: ClassifierOutput | None,
        hr: ClassifierOutput | None,
        labels: torch.Tensor | None,
        hr_images: torch.Tensor | None = None,
    ) -> OrderedDict:
        """Joint learning's ``l_fer`` on the faces of ``fer_inputs`` and ``l_fer_distill`` (``fer_distill_opt``);
        nothing without ``fer_opt`` or in the warm-up.

        On SR faces ``l_fer`` reaches ``net_g`` with ``joint_opt.sr_grad_weight`` times its gradient: unless the
        weight is 1, the classifier reads the SR batch again through :func:`route_sr_gradient`. ``l_fer_distill``
        compares the trained classifier's logits on the HR batch with its frozen starting copy's.

        Args:
            sr_images: The SR batch.
            sr: :meth:`classify` of the SR batch.
            hr: :meth:`reference` of the HR batch.
            labels: The expression labels of the batch.
            hr_images: The HR batch (needed by ``fer_distill_opt``).

        Returns:
            ``l_fer`` (and ``l_fer_distill``), or nothing.
        """
        if not self.classification_due:
            return OrderedDict()
        if labels is None:
            raise KeyError('train.fer_opt needs labels: the training dataset must return "label"')
        losses = OrderedDict(l_fer=0)
        if 'sr' in self.fer_inputs:
            weight = self.joint_opt.sr_grad_weight
            logits = sr.logits if weight == 1 else self._forward(route_sr_gradient(sr_images, weight)).logits
            losses['l_fer'] = self.cri_fer(logits, labels)
        if 'hr' in self.fer_inputs:
            losses['l_fer'] = losses['l_fer'] + self.cri_fer(hr.logits, labels)
        if self.cri_distill is not None:
            if hr_images is None:
                raise ValueError('train.fer_distill_opt: classification_loss needs the HR batch (hr_images)')
            student = hr.logits if 'hr' in self.fer_inputs else self._forward(hr_images).logits
            with torch.no_grad():
                _, teacher = self.teacher(hr_images)
            losses['l_fer_distill'] = self.cri_distill(student, teacher)
        return losses

    @property
    def consistency(self) -> bool:
        """Whether a consistency loss (``attention_opt``, ``prediction_opt``) is set."""
        return self.cri_att is not None or self.cri_pred is not None

    @property
    def classification_due(self) -> bool:
        """Whether ``fer_opt`` trains the classifier now (set, and past the warm-up)."""
        return self.cri_fer is not None and self.trains

    def _classifies(self, face: str) -> bool:
        return self.classification_due and face in self.fer_inputs

    def _forward(self, images: torch.Tensor) -> ClassifierOutput:
        net = self.net if self._wrapper_unused else self.bare
        self._wrapper_unused = False
        return ClassifierOutput(*net(images))

    # ------------------------------------------------------------ checkpoints
    def save(self, save_network: Callable[..., None], current_iter: int) -> None:
        """Save a trained classifier as ``net_fer_<iter>.pth`` with the model's ``save_network``; the file records
        that joint learning adapted it (``meta.srfer``, read back by ``MMPretrainFER.load_checkpoint``)."""
        if self.joint:
            meta = {
                'srfer': {
                    'adapted': True,
                    'run': self.opt.get('name'),
                    'iter': self.opt['train'].get('total_iter') if current_iter == -1 else current_iter,  # -1: latest
                    'initial_checkpoint': self.opt['network_fer'].get('checkpoint'),
                }
            }
            if self.class_names:
                meta['dataset_meta'] = {'classes': list(self.class_names)}
            save_network(self.net, 'net_fer', current_iter, meta=meta)

    def training_state(self) -> dict:
        """What the classifier adds to the training state: the fingerprint of a frozen one (it is not saved) and
        the running norms of ``consistency_weights``."""
        state = {} if self.fingerprint is None else {'fer_fingerprint': self.fingerprint}
        if self.auto_weights is not None:
            state['consistency_weights'] = self.auto_weights.state_dict()
        return state

    def check_resume_state(self, resume_state: dict) -> None:
        """A frozen classifier must be the one the resumed run started with.

        Raises:
            ValueError: Its weights differ from those the training state records.
        """
        if self.auto_weights is not None:
            saved_norms = resume_state.get('consistency_weights') or {}
            self.auto_weights.load_state_dict(saved_norms)
            calibration = self.auto_weights.calibration_iters
            if not saved_norms.get('norms') and calibration is not None and resume_state.get('iter', 0) >= calibration:
                get_root_logger().warning(
                    f'train.consistency_weights: the training state of iteration {resume_state.get("iter")} holds no '
                    f'gradient norms (the run did not use the rule), and calibration_iters ({calibration}) is past: '
                    'the weights are measured on the first resumed step and held from there'
                )
        saved = resume_state.get('fer_fingerprint')
        if saved is not None and self.fingerprint is not None and saved != self.fingerprint:
            source = self.opt['network_fer'].get('checkpoint')
            raise ValueError(
                f'The frozen classifier loaded now ({source!r}) is not the one this run started with: its weights '
                'differ from those recorded in the training state. Restore the original classifier file, or start '
                'a new run (another name) with this one.'
            )

    # ------------------------------------------------------------- validation
    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """The classifier in eval mode for a validation, then back in its training mode."""
        was_training = self.net.training
        self.net.eval()
        try:
            yield
        finally:
            self.net.train(was_training)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """The predicted class of each image (clamped to ``[0, 1]``), by the bare classifier without gradients."""
        with torch.no_grad():
            return self.bare(images.clamp(0, 1))[1].argmax(dim=1)

    def cached_reference_predictions(self, dataset_name: str) -> dict[str, list] | None:
        """``pred_hr`` and ``pred_bicubic`` of an earlier validation of the set (a frozen classifier's never
        change); None for a trained classifier or a new set."""
        return None if self.joint else self.reference_predictions.get(dataset_name)

    def cache_reference_predictions(self, dataset_name: str, records: dict[str, list]) -> None:
        """Keep ``pred_hr`` and ``pred_bicubic`` of a validation for the next ones (frozen classifier only)."""
        if not self.joint:
            self.reference_predictions[dataset_name] = {k: records[k] for k in ('pred_hr', 'pred_bicubic')}

    @property
    def class_names(self) -> list[str] | None:
        """The classifier's class names, when it has them."""
        return getattr(self.bare, 'class_names', None)

    @property
    def classifier_state(self) -> str:
        """``'adapted'`` for a classifier that joint learning trains (in training) or trained (its weights file says
        so), else ``'frozen'``."""
        if self.is_train:
            return 'adapted' if self.joint else 'frozen'
        return 'adapted' if getattr(self.bare, 'adapted', False) else 'frozen'
