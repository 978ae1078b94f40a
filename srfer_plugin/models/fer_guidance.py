"""FERGuidance: the FER half of SR-FER, one component for every SR model that trains with a classifier.

It holds what is SR-FER and nothing of how the SR network trains: building the classifier (``network_fer``), the
consistency and joint-learning losses (:meth:`FERGuidance.additional_losses`), the classifier's optimizer, warm-up
and checkpoints, and FER accuracy in validation. A model class mixes it in before its SR base, which must provide
SafeSRModel's hooks (``build_losses``, ``setup_optimizers``, ``forward_losses``, ``additional_losses``):
``SRFERModel(FERGuidance, SafeSRModel)`` (L1 training) and ``SRFERGANModel(FERGuidance, SafeSRGANModel)`` (GAN
training).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import torch
from basicsr.archs import build_network
from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger, imwrite, tensor2img
from tqdm import tqdm

from srfer_plugin.data.degradations import upsample_bicubic
from srfer_plugin.data.fer_layout import read_meta_info, resolve_classes
from srfer_plugin.models.joint_learning import FER_INPUTS, build_scheduler, check_fer_options, route_sr_gradient
from srfer_plugin.utils.checkpoint import weights_fingerprint
from srfer_plugin.utils.fer_report import top1_accuracy, write_fer_reports

FER_METRICS = ('acc', 'acc_hr', 'acc_bicubic')


class FERGuidance:
    """Mixin: a frozen (or jointly trained) FER classifier must read the SR output as it reads the HR face.

    Options on top of the SR model's (``train:`` keys; training needs at least one loss of ``LOSS_OPTIONS``):
        network_fer: the classifier (e.g. ``MMPretrainFER``); ``freeze: false`` trains it too (joint learning).
        attention_opt: ``AttentionConsistencyLoss`` on ``network_fer`` stage features (``l_att``).
        prediction_opt: ``PredictionConsistencyLoss`` on ``network_fer`` logits (``l_pred``).
        fer_opt: classification loss (e.g. ``FERCrossEntropyLoss``) for joint learning (``l_fer``); needs
            ``network_fer.freeze: false`` and ``optim_fer``.
        fer_inputs: images the classification loss sees, ``[sr, hr]`` (default) or ``[sr]``.
        optim_fer: the classifier's optimizer in joint learning (any ``torch.optim`` class name).
        scheduler_fer: the classifier's scheduler (BasicSR's types); default: ``scheduler``.
        joint_opt: ``sr_grad_weight`` (share of ``fer_opt``'s gradient reaching ``net_g`` through the SR face,
            default 0) and ``warmup_iter`` (iterations with the classifier frozen, default 0).
        freeze_network_g: ``net_g`` is loaded from ``path.pretrain_network_g`` and kept fixed; only the
            classifier trains (``fer_opt``).
    Checks and gradient routing: ``srfer_plugin/models/joint_learning.py``.

    A frozen ``net_fer`` is never wrapped in DDP and never saved; a trained one is saved as ``net_fer_<iter>.pth``
    before each training state and resumed with it.

    Validation adds ``acc`` (FER accuracy on SR), ``acc_hr`` and ``acc_bicubic`` to the SR metrics; a test run
    writes the per-class reports of ``srfer_plugin/utils/fer_report.py``.
    """

    FER_LOSS_OPTIONS: tuple[str, ...] = ('attention_opt', 'prediction_opt', 'fer_opt')

    def __init__(self, opt: dict):
        self.joint = check_fer_options(opt, self.LOSS_OPTIONS)
        super().__init__(opt)  # builds net_g; in training, init_training_settings builds net_fer and losses
        if not hasattr(self, 'net_fer'):
            self._build_fer()
        fer_classes = getattr(self.get_bare_model(self.net_fer), 'num_classes', None)
        if fer_classes is not None:
            self._check_dataset_classes(opt, int(fer_classes))
        self._check_fer_input()
        self._fer_reference_cache: dict[str, dict[str, Any]] = {}
        self.fer_results: dict[str, dict[str, list]] = {}

    # ------------------------------------------------------------------ setup
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
                    read_meta_info(
                        meta_info, num_classes, allow_duplicates=dataset_opt.get('meta_info_duplicates') == 'keep'
                    )
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
            self.net_fer = self.memory_format_net(net_fer.to(self.device))
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
        self.fer_trains = self.fer_joint and self.is_train  # see _set_fer_phase
        self.net_fer.train(self.fer_trains)
        self.fer_fingerprint = None if self.fer_joint else weights_fingerprint(self.net_fer)

    def extra_training_state(self) -> dict:
        state = super().extra_training_state()
        if self.fer_fingerprint is not None:  # the frozen classifier is not saved: record which one it is
            state['fer_fingerprint'] = self.fer_fingerprint
        return state

    def resume_training(self, resume_state: dict) -> None:
        """Resume the SR side; a frozen classifier must be the one the run started with."""
        saved = resume_state.get('fer_fingerprint')
        if saved is not None and self.fer_fingerprint is not None and saved != self.fer_fingerprint:
            source = self.opt['path'].get('pretrain_network_fer') or self.opt['network_fer'].get('checkpoint')
            raise ValueError(
                f'The frozen classifier loaded now ({source!r}) is not the one this run started with: its weights '
                'differ from those recorded in the training state. Restore the original classifier file, or start '
                'a new run (another name) with this one.'
            )
        super().resume_training(resume_state)

    def init_training_settings(self) -> None:
        self._build_fer()
        super().init_training_settings()
        if self.joint.freeze_network_g:
            self.net_g.eval()
        self._set_fer_phase(1)

    def _set_fer_phase(self, current_iter: int) -> None:
        """Joint learning: the classifier is frozen (eval mode, no gradient, no ``fer_opt``) for iterations
        ``1..joint_opt.warmup_iter`` and trained after; a function of ``current_iter`` only, so resume needs no state.
        """
        trains = self.fer_joint and current_iter > self.joint.warmup_iter
        if trains == self.fer_trains:
            return
        self.fer_trains = trains
        for group in self.optimizer_fer.param_groups:  # the trainable parameters (mmpretrain may freeze some)
            for param in group['params']:
                param.requires_grad_(trains)
        self.net_fer.train(trains)
        get_root_logger().info(
            f'iter {current_iter}: network_fer '
            + ('trains from now on' if trains else f'frozen up to iteration {self.joint.warmup_iter}')
            + ' (train.joint_opt.warmup_iter)'
        )

    def build_losses(self, train_opt: dict) -> None:
        super().build_losses(train_opt)
        self.cri_att = self.build_loss_option(train_opt, 'attention_opt')
        self.cri_pred = self.build_loss_option(train_opt, 'prediction_opt')
        self.cri_fer = self.build_loss_option(train_opt, 'fer_opt')
        self.fer_inputs = tuple(train_opt.get('fer_inputs', FER_INPUTS))

    def setup_optimizers(self) -> None:
        if self.joint.freeze_network_g:
            get_root_logger().info('train.freeze_network_g: network_g is not trained (no optimizer_g)')
        else:
            super().setup_optimizers()
        if self.fer_joint:
            self.optimizer_fer = self.make_optimizer(self.net_fer, 'optim_fer')
            self.optimizers.append(self.optimizer_fer)

    def setup_schedulers(self) -> None:
        """BasicSR's ``train.scheduler`` for every optimizer, except ``train.scheduler_fer`` for the classifier's."""
        if not (self.fer_joint and self.opt['train'].get('scheduler_fer')):
            super().setup_schedulers()
            return
        for optimizer in self.optimizers:  # same order as the optimizers: resume restores them by position
            key = 'scheduler_fer' if optimizer is self.optimizer_fer else 'scheduler'
            self.schedulers.append(build_scheduler(optimizer, self.opt['train'], key))

    # --------------------------------------------------------------- training
    def feed_data(self, data: dict) -> None:
        super().feed_data(data)
        if 'label' in data:
            self.label = data['label'].to(self.device)

    def optimize_parameters(self, current_iter: int) -> None:
        self._set_fer_phase(current_iter)
        super().optimize_parameters(current_iter)

    def forward_losses(self) -> tuple[torch.Tensor, OrderedDict]:
        """SafeSRModel's step; with ``train.freeze_network_g`` ``net_g`` runs without gradients and only the
        classifier's losses remain."""
        if not self.joint.freeze_network_g:
            return super().forward_losses()
        with torch.no_grad():
            self.output = self.get_bare_model(self.net_g)(self.lq)
        losses = self.additional_losses()
        return sum(losses.values()), losses

    def additional_losses(self) -> OrderedDict:
        """The SR-FER losses on ``self.output`` (SR) and ``self.gt`` (HR): ``l_att``, ``l_pred`` and ``l_fer``.

        The consistency losses see the SR face with its full gradient to ``net_g`` and the HR face as the reference
        (without gradients, unless joint learning classifies HR faces too). ``l_fer`` on SR reaches ``net_g`` with
        ``joint_opt.sr_grad_weight`` times its gradient (a second classifier pass on the routed SR face when the
        weight is not 1). During the warm-up (``joint_opt.warmup_iter``) there is no ``l_fer``.
        """
        losses = super().additional_losses()
        consistency = self.cri_att is not None or self.cri_pred is not None
        fer_on = self.cri_fer is not None and self.fer_trains
        fer_sr, fer_hr = fer_on and 'sr' in self.fer_inputs, fer_on and 'hr' in self.fer_inputs
        if not (consistency or fer_on):
            return losses
        if fer_on and not hasattr(self, 'label'):
            raise KeyError('train.fer_opt needs labels: the training dataset must return "label"')
        # A DDP-wrapped classifier (joint learning) must run one DDP forward per backward: the first pass with
        # gradients goes through the wrapper, the others through the bare network (their gradients still reach its
        # parameters and DDP's hooks).
        bare = self.get_bare_model(self.net_fer)
        wrapped = [self.net_fer] if self.fer_trains else []

        def classify(images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
            return (wrapped.pop() if wrapped else bare)(images)

        weight = self.joint.sr_grad_weight
        if consistency or (fer_sr and weight == 1):
            feats_sr, logits_sr = classify(self.output)
        if consistency or fer_hr:
            if fer_hr:  # joint learning on HR needs its graph
                feats_hr, logits_hr = classify(self.gt)
            else:
                with torch.no_grad():
                    feats_hr, logits_hr = bare(self.gt)
        if self.cri_att:
            losses['l_att'] = self.cri_att(feats_sr, feats_hr)
        if self.cri_pred:
            losses['l_pred'] = self.cri_pred(logits_sr, logits_hr)
        if fer_on:
            l_fer = 0
            if fer_sr:
                logits_fer = logits_sr if weight == 1 else classify(route_sr_gradient(self.output, weight))[1]
                l_fer = self.cri_fer(logits_fer, self.label)
            if fer_hr:
                l_fer = l_fer + self.cri_fer(logits_hr, self.label)
            losses['l_fer'] = l_fer
        return losses

    def save(self, epoch: int, current_iter: int) -> None:
        if self.fer_joint:  # before the training state, so a state never points at a missing net_fer
            self.save_network(self.net_fer, 'net_fer', current_iter)
        super().save(epoch, current_iter)

    # ------------------------------------------------------------- validation
    def test(self) -> None:
        super().test()  # BasicSR's test puts net_g back in train mode
        if self.is_train and self.joint.freeze_network_g:
            self.net_g.eval()

    @property
    def classifier_state(self) -> str:
        """``'adapted'`` for a classifier trained by joint learning (in training, or loaded in a test run from
        ``path.pretrain_network_fer``, a joint run's ``net_fer_*.pth``), else ``'frozen'``."""
        if self.is_train:
            return 'adapted' if self.fer_joint else 'frozen'
        return 'adapted' if self.opt['path'].get('pretrain_network_fer') else 'frozen'

    def _fer_predict(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net_fer(images.clamp(0, 1))[1].argmax(dim=1)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img: bool) -> None:
        """SRModel's validation (``val.metrics``, e.g. PSNR, SSIM, NIQE; saved images) plus FER accuracy on SR, HR
        and bicubic images."""
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
            for metric, key in zip(FER_METRICS, ('pred_sr', 'pred_hr', 'pred_bicubic')):
                self.metric_results[metric] = top1_accuracy(records['label'], records[key])
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
        fer = self.get_bare_model(self.net_fer)
        class_names = getattr(dataset, 'classes', None) or getattr(fer, 'class_names', None)
        write_fer_reports(
            self.opt['path']['results_root'],
            dataset_name,
            dict(self.metric_results),
            self.fer_results.get(dataset_name),
            class_names,
            classifier=self.classifier_state,
        )

    def _save_sr_image(self, img, lq_path: str, dataset_name: str, current_iter) -> None:
        img_name = os.path.splitext(os.path.basename(lq_path))[0]
        if self.opt['is_train']:
            path = os.path.join(self.opt['path']['visualization'], img_name, f'{img_name}_{current_iter}.png')
        else:
            suffix = self.opt['val'].get('suffix') or self.opt['name']
            path = os.path.join(self.opt['path']['visualization'], dataset_name, f'{img_name}_{suffix}.png')
        imwrite(img, path)
