"""SRFERModel: SR trained so that a FER classifier reads the SR face as it reads the HR face (the SR-FER step).

:meth:`SRFERModel.optimize_parameters` is the whole training step, top to bottom. The classifier and its losses are
the component ``self.fer`` (:class:`~srfer_plugin.models.fer_guidance.FERGuidance`); the generic machinery (AMP,
non-finite steps, EMA, loss logging, checkpoints, DDP) is ``SafeSRModel``'s, called as helpers. The GAN models
(``srfer_gan_model.py``) extend this class with their own step.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch
from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY
from tqdm import tqdm

from srfer_plugin.data.degradations import upsample_bicubic
from srfer_plugin.models.fer_guidance import FERGuidance
from srfer_plugin.models.joint_learning import build_scheduler, check_fer_options
from srfer_plugin.models.safe_sr_model import SafeSRModel
from srfer_plugin.utils.fer_report import top1_accuracy, write_fer_reports
from srfer_plugin.utils.inference_outputs import printable_text
from srfer_plugin.utils.saved_image_names import SavedImageNames

FER_METRICS = ('acc', 'acc_hr', 'acc_bicubic')


@MODEL_REGISTRY.register()
class SRFERModel(SafeSRModel):
    """SafeSRModel (pixel/perceptual losses) plus a FER classifier's consistency losses, joint learning and FER
    validation.

    Options on top of SafeSRModel's: those of :class:`FERGuidance` (``network_fer``, ``attention_opt``,
    ``prediction_opt``, ``fer_opt``, ``fer_inputs``, ``joint_opt``) and, in joint learning
    (``train_network_fer: true``):
        optim_fer: the classifier's optimizer (any ``torch.optim`` class name).
        scheduler_fer: the classifier's scheduler (BasicSR's types); default: ``scheduler``.
        train_network_g: false loads ``net_g`` from ``path.pretrain_network_g`` and keeps it fixed; only the
            classifier trains (``fer_opt``). Default true.

    Log keys: ``l_pix`` (and ``l_percep``/``l_style``), ``l_att``, ``l_pred``, ``l_fer``, ``l_fer_distill``.
    Validation adds ``acc`` (FER accuracy on SR), ``acc_hr`` and ``acc_bicubic`` to the SR metrics; a test run writes
    the per-class reports of ``srfer_plugin/utils/fer_report.py``.
    """

    LOSS_OPTIONS = SafeSRModel.LOSS_OPTIONS + FERGuidance.LOSS_OPTIONS

    def __init__(self, opt: dict):
        self.joint_opt = check_fer_options(opt, self.LOSS_OPTIONS)
        super().__init__(opt)  # builds net_g; in training, init_training_settings builds self.fer
        if not self.is_train:
            self.fer = self.build_fer_guidance()
        self.fer_results: dict[str, dict[str, list]] = {}
        self.sr_image_names = SavedImageNames()

    @property
    def net_fer(self) -> torch.nn.Module:
        """The classifier (DDP-wrapped when it trains under DDP)."""
        return self.fer.net

    def build_fer_guidance(self) -> FERGuidance:
        """The classifier component, on this model's device and DDP rules."""
        return FERGuidance(self.opt, self.device, self.joint_opt, self.model_to_device, self.load_network)

    # ------------------------------------------------------------------ setup
    def init_training_settings(self) -> None:
        self.fer = self.build_fer_guidance()
        super().init_training_settings()
        if not self.joint_opt.train_network_g:
            self.net_g.eval()
        self.fer.set_phase(1)

    def setup_optimizers(self) -> None:
        if not self.joint_opt.train_network_g:
            get_root_logger().info('train.train_network_g: false: network_g is not trained (no optimizer_g)')
        else:
            super().setup_optimizers()
        if self.fer.joint:
            self.optimizer_fer = self.make_optimizer(self.net_fer, 'optim_fer')
            self.optimizers.append(self.optimizer_fer)

    def setup_schedulers(self) -> None:
        """BasicSR's ``train.scheduler`` for every optimizer, except ``train.scheduler_fer`` for the classifier's."""
        if not (self.fer.joint and self.opt['train'].get('scheduler_fer')):
            super().setup_schedulers()
            return
        for optimizer in self.optimizers:  # same order as the optimizers: resume restores them by position
            key = 'scheduler_fer' if optimizer is self.optimizer_fer else 'scheduler'
            self.schedulers.append(build_scheduler(optimizer, self.opt['train'], key))

    # --------------------------------------------------------------- training
    def feed_data(self, data: dict) -> None:
        super().feed_data(data)
        self.label = data['label'].to(self.device) if 'label' in data else None
        flips = data.get('hflip')
        self.hr_keys = None if flips is None else list(zip(data['gt_path'], [bool(f) for f in flips]))

    def optimize_parameters(self, current_iter: int) -> None:
        """One SR-FER training step: SR forward, SR losses, the classifier's losses, backward and step.

        The consistency losses see the SR face with its full gradient to ``net_g`` and the HR face as the target.
        In joint learning the classifier trains on all of them after its frozen start (``joint_opt.fer_frozen_iters``);
        ``l_fer`` reaches ``net_g`` with ``joint_opt.sr_grad_weight`` times its gradient, and ``l_fer_distill``
        (``fer_distill_opt``) keeps the classifier's HR readings near its starting copy's. With
        ``train_network_g: false``, ``net_g`` runs without gradients and only the classifier steps.
        """
        self.fer.begin_step(current_iter)
        with self.amp.autocast():
            self.output = self.super_resolve(frozen=not self.joint_opt.train_network_g)
            losses = self.sr_losses(self.output, self.gt)  # l_pix, l_percep, l_style
            sr_read, hr_read = self.fer.classify(self.output), self.fer.reference(self.gt, self.hr_keys)
            losses.update(self.fer.consistency_losses(sr_read, hr_read))  # l_att, l_pred
            weights = self.fer.weigh_consistency(losses, self.output, current_iter)  # consistency_weights
            losses.update(self.fer.classification_loss(self.output, sr_read, hr_read, self.label, self.gt))  # l_fer
        if self.backward_and_step(losses, self.optimizers, current_iter):
            self.amp.update()
            self.update_ema()
        self.log_dict.update(weights)

    # ------------------------------------------------------------ checkpoints
    def save(self, epoch: int, current_iter: int) -> None:
        self.fer.save(self.save_network, current_iter)  # before the training state: it never points at a missing file
        super().save(epoch, current_iter)

    def extra_training_state(self) -> dict:
        return {**super().extra_training_state(), **self.fer.training_state()}

    def resume_training(self, resume_state: dict) -> None:
        """Resume the SR side; a frozen classifier must be the one the run started with."""
        self.fer.check_resume_state(resume_state)
        super().resume_training(resume_state)

    # ------------------------------------------------------------- validation
    def test(self) -> None:
        super().test()  # BasicSR's test puts net_g back in train mode
        if self.is_train and not self.joint_opt.train_network_g:
            self.net_g.eval()

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img: bool) -> None:
        """SRModel's validation (``val.metrics``, e.g. PSNR, SSIM, NIQE; saved images) plus FER accuracy on SR, HR
        and bicubic images."""
        dataset_name = dataloader.dataset.opt['name']
        metrics_opt = self.opt['val'].get('metrics') or {}
        cached = self.fer.cached_reference_predictions(dataset_name)
        sums = {metric: 0.0 for metric in metrics_opt}
        records: dict[str, list] = {'path': [], 'label': [], 'pred_sr': [], 'pred_hr': [], 'pred_bicubic': []}
        num_images = 0
        use_pbar = self.opt['val'].get('pbar', False)
        pbar = tqdm(total=len(dataloader), unit='batch', desc=f'Validate {dataset_name}') if use_pbar else None
        with self.fer.evaluating():
            for val_data in dataloader:
                self.feed_data(val_data)
                self.test()
                if 'label' in val_data:
                    records['label'] += val_data['label'].tolist()
                    records['pred_sr'] += self.fer.predict(self.output).tolist()
                    if cached is None:
                        records['pred_hr'] += self.fer.predict(self.gt).tolist()
                        bicubic = upsample_bicubic(self.lq, self.gt.shape[-2:])
                        records['pred_bicubic'] += self.fer.predict(bicubic).tolist()
                records['path'] += list(val_data['gt_path'] if 'gt_path' in val_data else val_data['lq_path'])
                for i in range(self.output.shape[0]):
                    metric_data = {'img': tensor2img([self.output[i].detach().cpu()])}
                    if hasattr(self, 'gt'):
                        metric_data['img2'] = tensor2img([self.gt[i].detach().cpu()])
                    for name, opt_ in metrics_opt.items():
                        sums[name] += calculate_metric(metric_data, opt_)
                    if save_img:
                        self._save_sr_image(
                            metric_data['img'], val_data['lq_path'][i], dataloader.dataset, current_iter
                        )
                num_images += self.output.shape[0]
                del self.lq, self.output
                if hasattr(self, 'gt'):
                    del self.gt
                if pbar:
                    pbar.update(1)
        if pbar:
            pbar.close()

        self.metric_results = {name: value / max(num_images, 1) for name, value in sums.items()}
        if records['label']:
            if cached is not None:
                records.update(cached)
            else:
                self.fer.cache_reference_predictions(dataset_name, records)
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
        write_fer_reports(
            self.opt['path']['results_root'],
            dataset_name,
            dict(self.metric_results),
            self.fer_results.get(dataset_name),
            getattr(dataset, 'classes', None) or self.fer.class_names,
            classifier=self.fer.classifier_state,
        )

    def _save_sr_image(self, img: np.ndarray, lq_path: str, dataset, current_iter) -> None:
        """Save an SR image in BasicSR's layout, named by :class:`SavedImageNames`; written by Python (any path).

        Training: ``visualization/<name>/<name>_<iter>.png``; test: ``visualization/<dataset>/<name>_<suffix>.png``.
        """
        folder = '' if self.opt['is_train'] else dataset.opt['name']  # in training all val sets share one folder
        roots = [dataset.opt.get('dataroot_lq'), dataset.opt.get('dataroot_gt')]
        img_name = self.sr_image_names.name(lq_path, dataset.opt['name'], roots, folder)
        if self.opt['is_train']:
            path = os.path.join(self.opt['path']['visualization'], img_name, f'{img_name}_{current_iter}.png')
        else:
            suffix = self.opt['val'].get('suffix') or self.opt['name']
            path = os.path.join(self.opt['path']['visualization'], dataset.opt['name'], f'{img_name}_{suffix}.png')
        ok, buf = cv2.imencode('.png', img)  # cv2.imwrite crashes on a path that is not UTF-8
        if not ok:
            raise OSError(f'cannot encode the SR image of {printable_text(lq_path)!r} as PNG')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(buf.tobytes())
