"""SRValidation: the validation of the plugin's SR models (``val.metrics``, ``val.save_img``), batch by batch.

BasicSR's ``SRModel.nondist_validation`` names saved images by their file name alone (``happy/im0.png`` and
``sad/im0.png`` overwrite each other) and writes them with ``cv2.imwrite``, which crashes on paths that are not
UTF-8; it scores a batch as one tiled image (its loaders validate one image at a time). This one names saved images
with :class:`~srfer_plugin.utils.saved_image_names.SavedImageNames`, writes them from Python, and scores every
image of a batch on its own.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch.distributed as torch_dist
from basicsr.metrics import calculate_metric
from basicsr.utils import tensor2img
from tqdm import tqdm

from srfer_plugin.utils.inference_outputs import printable_text
from srfer_plugin.utils.saved_image_names import SavedImageNames


class SRValidation:
    """Validation for a BasicSR ``SRModel`` subclass; subclasses add metrics through two hooks.

    :meth:`record_validation_batch` sees each batch after :meth:`test` (``self.lq``, ``self.output`` and
    ``self.gt`` are set); :meth:`extra_validation_metrics` returns the metrics computed from what it recorded.
    """

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img: bool) -> None:
        """``val.metrics`` (e.g. PSNR, SSIM, NIQE) averaged over every image, plus the hooks' metrics; saved images.

        Args:
            dataloader: The validation set's loader (any batch size).
            current_iter: The training iteration (names the saved images in training).
            tb_logger: BasicSR's tensorboard logger, or None.
            save_img: Save each SR image (``val.save_img``).
        """
        dataset_name = dataloader.dataset.opt['name']
        metrics_opt = self.opt['val'].get('metrics') or {}
        sums = {metric: 0.0 for metric in metrics_opt}
        num_images = 0
        use_pbar = self.opt['val'].get('pbar', False)
        pbar = tqdm(total=len(dataloader), unit='batch', desc=f'Validate {dataset_name}') if use_pbar else None
        for val_data in dataloader:
            self.feed_data(val_data)
            self.test()
            self.record_validation_batch(val_data)
            for i in range(self.output.shape[0]):
                metric_data = {'img': tensor2img([self.output[i].detach().cpu()])}
                if hasattr(self, 'gt'):
                    metric_data['img2'] = tensor2img([self.gt[i].detach().cpu()])
                for name, metric_opt in metrics_opt.items():
                    sums[name] += calculate_metric(metric_data, metric_opt)
                if save_img:
                    self._save_sr_image(metric_data['img'], val_data['lq_path'][i], dataloader.dataset, current_iter)
            num_images += self.output.shape[0]
            del self.lq, self.output
            if hasattr(self, 'gt'):
                del self.gt
            if pbar:
                pbar.update(1)
        if pbar:
            pbar.close()

        self.metric_results = {name: value / max(num_images, 1) for name, value in sums.items()}
        self.metric_results.update(self.extra_validation_metrics(dataset_name))
        if self.metric_results:
            self._initialize_best_metric_results(dataset_name)
            for metric, value in self.metric_results.items():
                self._update_best_metric_result(dataset_name, metric, value, current_iter)
            self._log_validation_metric_values(current_iter, dataset_name, tb_logger)

    def record_validation_batch(self, val_data: dict) -> None:
        """Hook: record what a batch gives beyond ``val.metrics`` (called after :meth:`test`). Default: nothing."""

    def extra_validation_metrics(self, dataset_name: str) -> dict[str, float]:
        """Hook: the metrics of a whole validation set computed from the recorded batches. Default: none."""
        return {}

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img: bool) -> None:
        """Rank 0 validates the whole (unsharded) set with the bare networks; the other ranks wait for it."""
        if self.opt['rank'] == 0:
            wrapped = {name: net for name, net in vars(self).items() if name.startswith('net_')}
            for name, net in wrapped.items():
                setattr(self, name, self.get_bare_model(net))
            try:
                self.nondist_validation(dataloader, current_iter, tb_logger, save_img)
            finally:
                for name, net in wrapped.items():
                    setattr(self, name, net)
        if torch_dist.is_available() and torch_dist.is_initialized():
            torch_dist.barrier()

    def _initialize_best_metric_results(self, dataset_name: str) -> None:
        """BasicSR's best-metric record, for whichever metrics were computed (``better`` from ``val.metrics``)."""
        if hasattr(self, 'best_metric_results') and dataset_name in self.best_metric_results:
            return
        if not hasattr(self, 'best_metric_results'):
            self.best_metric_results = {}
        record = {}
        for metric in self.metric_results:
            better = (self.opt['val'].get('metrics') or {}).get(metric, {}).get('better', 'higher')
            record[metric] = dict(better=better, val=float('-inf') if better == 'higher' else float('inf'), iter=-1)
        self.best_metric_results[dataset_name] = record

    def _save_sr_image(self, img: np.ndarray, lq_path: str, dataset, current_iter: int) -> None:
        """Save an SR image in BasicSR's layout, named by :class:`SavedImageNames`; written by Python (any path).

        Training: ``visualization/<name>/<name>_<iter>.png``; test: ``visualization/<dataset>/<name>_<suffix>.png``.
        """
        folder = '' if self.opt['is_train'] else dataset.opt['name']  # in training all val sets share one folder
        roots = [dataset.opt.get('dataroot_lq'), dataset.opt.get('dataroot_gt')]
        names = self.__dict__.setdefault('sr_image_names', SavedImageNames())  # kept across validations
        img_name = names.name(lq_path, dataset.opt['name'], roots, folder)
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
