"""SRFERModel: SR trained so that a FER classifier reads the SR face as it reads the HR face (the SR-FER step).

:meth:`SRFERModel.optimize_parameters` is the whole training step, top to bottom. The classifier and its losses are
the component ``self.fer`` (:class:`~srfer_plugin.models.fer_guidance.FERGuidance`); the generic machinery (AMP,
non-finite steps, EMA, loss logging, checkpoints, DDP) is ``SafeSRModel``'s, called as helpers. The GAN models
(``srfer_gan_model.py``) extend this class with their own step.
"""

from __future__ import annotations

import torch
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from srfer_plugin.data.degradations import upsample_bicubic
from srfer_plugin.models.consistency_weights import TWIN_RULES
from srfer_plugin.models.fer_guidance import FERGuidance
from srfer_plugin.models.joint_learning import build_scheduler, check_fer_options
from srfer_plugin.models.plain_sr_reference import PlainSRReference
from srfer_plugin.models.safe_sr_model import SafeSRModel
from srfer_plugin.utils.fer_report import top1_accuracy, write_fer_reports

FER_METRICS = ('acc', 'acc_hr', 'acc_bicubic')


@MODEL_REGISTRY.register()
class SRFERModel(SafeSRModel):
    """SafeSRModel (pixel/perceptual losses) plus a FER classifier's consistency losses, joint learning and FER
    validation.

    Options on top of SafeSRModel's: those of :class:`FERGuidance` (``network_fer``, ``attention_opt``,
    ``prediction_opt``, ``fer_opt``, ``fer_inputs``, ``fer_batch_size``, ``joint_opt``) and, in joint learning
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
        self._fer_records: dict[str, list] | None = None  # the predictions of the validation under way
        self._fer_cached: dict[str, list] | None = None  # its cached HR and bicubic predictions, if any

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
        self.plain_reference = self.build_plain_reference()

    def build_plain_reference(self) -> PlainSRReference | None:
        """``net_g``'s plain-SR twin for ``consistency_weights`` rules ``psnr_budget`` and ``psnr_pilot``, else None.

        Raises:
            ValueError: The rule is set but the model's step is not this class's (the GAN models), or
                ``psnr_pilot`` with a loss other than the pixel and consistency losses training ``net_g``.
        """
        rule = None if self.fer.auto_weights is None else self.fer.auto_weights.rule
        if rule not in TWIN_RULES:
            return None
        where = f'train.consistency_weights: rule {rule}'
        if type(self).optimize_parameters is not SRFERModel.optimize_parameters:  # consistency losses train net_g
            raise ValueError(f'{where} needs model_type SRFERModel (its plain-SR twin); got {type(self).__name__}')
        train_opt = self.opt['train']
        others = ['train.perceptual_opt'] if train_opt.get('perceptual_opt') else []  # what trains net_g besides
        if self.fer.joint and train_opt.get('fer_opt') and self.joint_opt.sr_grad_weight:
            others.append('train.fer_opt through train.joint_opt.sr_grad_weight')
        if rule == 'psnr_pilot' and others:  # (psnr_budget's twin is a yardstick only)
            raise ValueError(
                f'{where} restarts network_g from a twin trained on the pixel loss alone, so the pilot would drop '
                f'{" and ".join(others)}; remove them or use another rule'
            )
        return PlainSRReference(self.get_bare_model(self.net_g), self.make_optimizer, self.cri_pix)

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
            sr_faces, hr_faces, hr_keys, labels = self.fer.classifier_batch(
                self.output, self.gt, self.hr_keys, self.label
            )
            sr_read, hr_read = self.fer.classify(sr_faces), self.fer.reference(hr_faces, hr_keys)
            losses.update(self.fer.consistency_losses(sr_read, hr_read))  # l_att, l_pred
            gap = None  # psnr_budget, psnr_pilot's pilot: the PSNR gap to the plain-SR twin, which trains on this batch
            if self.plain_reference is not None:
                gap = self.plain_reference.step(self.lq, self.gt, self.output, self.get_current_learning_rate()[0])
            weights = self.fer.weigh_consistency(losses, self.output, current_iter, gap)  # consistency_weights
            losses.update(self.fer.classification_loss(sr_faces, sr_read, hr_read, labels, hr_faces))  # l_fer
        if self.backward_and_step(losses, self.optimizers, current_iter):
            self.amp.update()
            self.update_ema()
        if self.fer.auto_weights is not None and self.fer.auto_weights.pilot_ends(current_iter):  # psnr_pilot
            self.start_from_plain_reference()
        self.log_dict.update(weights)

    def start_from_plain_reference(self) -> None:
        """End ``psnr_pilot``'s pilot: ``net_g`` (and its EMA) and ``optimizer_g`` take the plain-SR twin's state, so
        the run goes on from plain SR with the weights the pilot chose; the twin is dropped."""
        self.get_bare_model(self.net_g).load_state_dict(self.plain_reference.net.state_dict())
        own = self.optimizer_g.state_dict()  # keeps this optimizer's groups (the scheduler's initial_lr)
        self.optimizer_g.load_state_dict({**own, 'state': self.plain_reference.optimizer.state_dict()['state']})
        if hasattr(self, 'net_g_ema'):
            self.model_ema(0)  # the EMA restarts at the twin's weights
        self.plain_reference = None

    # ------------------------------------------------------------ checkpoints
    def save(self, epoch: int, current_iter: int) -> None:
        self.fer.save(self.save_network, current_iter)  # before the training state: it never points at a missing file
        super().save(epoch, current_iter)

    def extra_training_state(self) -> dict:
        state = {**super().extra_training_state(), **self.fer.training_state()}
        if self.plain_reference is not None:
            state['plain_reference'] = self.plain_reference.state_dict()
        return state

    def resume_training(self, resume_state: dict) -> None:
        """Resume the SR side (and the plain-SR twin of psnr_budget, or of psnr_pilot during its pilot); a frozen
        classifier must be the one the run started with.

        Raises:
            ValueError: The classifier differs, or a twin rule resumes a state that holds no twin.
        """
        self.fer.check_resume_state(resume_state)
        super().resume_training(resume_state)
        rule, saved_iter = self.fer.auto_weights, resume_state.get('iter', 0)
        if rule is not None and rule.rule == 'psnr_pilot' and not rule.piloting(saved_iter + 1):
            self._resume_after_pilot(resume_state, saved_iter)
            return
        if self.plain_reference is not None:
            if 'plain_reference' not in resume_state:
                raise ValueError(
                    f'train.consistency_weights: rule {rule.rule}: the training state of iteration '
                    f'{resume_state.get("iter")} holds no plain-SR twin (the run did not use the rule); start a new run'
                )
            self.plain_reference.load_state_dict(resume_state['plain_reference'])

    def _resume_after_pilot(self, resume_state: dict, saved_iter: int) -> None:
        """``psnr_pilot``, resumed after its pilot: no twin from here on, unless the state was saved at the pilot's
        last step before the restart (a stop on non-finite losses), which is then made.

        Raises:
            ValueError: The state holds a pilot still running past ``pilot_iters`` (lowered since).
        """
        saved_twin = resume_state.get('plain_reference')
        if saved_twin is None:
            self.plain_reference = None
            return
        if saved_iter != self.fer.auto_weights.pilot_iters:
            raise ValueError(
                f'train.consistency_weights.pilot_iters ({self.fer.auto_weights.pilot_iters}) ends before the training '
                f'state of iteration {saved_iter}, whose pilot was still running; set it back or start a new run'
            )
        self.plain_reference.load_state_dict(saved_twin)
        self.start_from_plain_reference()

    # ------------------------------------------------------------- validation
    def test(self) -> None:
        super().test()  # BasicSR's test puts net_g back in train mode
        if self.is_train and not self.joint_opt.train_network_g:
            self.net_g.eval()

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img: bool) -> None:
        """SafeSRModel's validation plus FER accuracy on SR, HR and bicubic images (``acc``, ``acc_hr``,
        ``acc_bicubic``); a test run writes the FER reports."""
        dataset_name = dataloader.dataset.opt['name']
        self._fer_cached = self.fer.cached_reference_predictions(dataset_name)
        self._fer_records = {'path': [], 'label': [], 'pred_sr': [], 'pred_hr': [], 'pred_bicubic': []}
        try:
            with self.fer.evaluating():
                super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            self._fer_records = self._fer_cached = None
        if not self.opt['is_train'] and self.opt['rank'] == 0:
            self.write_test_reports(dataset_name, dataloader.dataset)

    def record_validation_batch(self, val_data: dict) -> None:
        """The classifier's predictions on the batch's SR faces (and, unless cached, its HR and bicubic faces)."""
        records = self._fer_records
        if 'label' in val_data:
            records['label'] += val_data['label'].tolist()
            records['pred_sr'] += self.fer.predict(self.output).tolist()
            if self._fer_cached is None:
                records['pred_hr'] += self.fer.predict(self.gt).tolist()
                records['pred_bicubic'] += self.fer.predict(upsample_bicubic(self.lq, self.gt.shape[-2:])).tolist()
        records['path'] += list(val_data['gt_path'] if 'gt_path' in val_data else val_data['lq_path'])

    def extra_validation_metrics(self, dataset_name: str) -> dict[str, float]:
        """Top-1 accuracy on SR, HR and bicubic faces (none for a set without labels); kept in ``fer_results``."""
        records = self._fer_records
        if not records['label']:
            return {}
        if self._fer_cached is not None:
            records.update(self._fer_cached)
        else:
            self.fer.cache_reference_predictions(dataset_name, records)
        self.fer_results[dataset_name] = records
        return {
            metric: top1_accuracy(records['label'], records[key])
            for metric, key in zip(FER_METRICS, ('pred_sr', 'pred_hr', 'pred_bicubic'))
        }

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
