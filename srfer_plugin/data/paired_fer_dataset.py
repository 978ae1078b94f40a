"""PairedFERDataset: whole HR faces with an expression label, and their LR counterparts."""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np
import torch
from basicsr.data.transforms import augment
from basicsr.utils import FileClient, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from srfer_plugin.data.degradations import check_scale, degrade, normalize_pipeline, rng_for_image
from srfer_plugin.data.fer_layout import read_meta_info, resolve_classes, scan_class_folders

README_DATASETS_HINT = 'see README.md, section "Preparing datasets"'


def _where(opt: dict, key: str) -> str:
    return f'datasets.{opt.get("name", opt.get("phase", "?"))}.{key}'


@DATASET_REGISTRY.register()
class PairedFERDataset(data.Dataset):
    """HR face images with expression labels, paired with LR images read from disk or degraded on the fly.

    HR images are used whole (the classifier needs the whole face); ``gt_size`` optionally resizes them to one
    square size. Labels come from class sub-folders of ``dataroot_gt`` or from ``meta_info_file`` lines
    ``relative/path label``.

    Args:
        opt: Dataset options:
            dataroot_gt (str): HR root folder (disk) or lmdb folder.
            meta_info_file (str, optional): Lines ``relative/path label``; paths relative to dataroot_gt
                (for lmdb, the key is the path without extension).
            dataroot_lq (str, optional): LR root with the same relative paths. ``~``: degrade HR on the fly.
            classes (list | str, optional): Class names or a classes.txt path (default: found beside the data).
            num_classes (int, optional): Number of classes the labels must fit (default: ``len(classes)``).
            scale (int): 2, 3, 4 or 8 (BasicSR copies the top-level ``scale`` here).
            gt_size (int, optional): Resize HR to ``gt_size`` x ``gt_size`` (must be divisible by scale).
            degradation (dict | list, optional): See ``srfer_plugin.data.degradations``; default bicubic.
            degradation_seed (int): Seed of the per-image deterministic degradation of val/test sets. Default 0.
            use_hflip (bool): Random horizontal flips (train phase only). Default False.
            io_backend (dict): ``{type: disk}`` or ``{type: lmdb}``.
            phase (str): ``train``, ``val`` or ``test`` (set by BasicSR).
    """

    def __init__(self, opt: dict):
        super().__init__()
        self.opt = opt
        self.phase = opt.get('phase', 'train')
        self.scale = check_scale(opt.get('scale', 4), _where(opt, 'scale'))
        self.io_backend_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        self.backend = self.io_backend_opt.get('type', 'disk')
        if self.backend not in ('disk', 'lmdb'):
            raise ValueError(f'{_where(opt, "io_backend.type")}: {self.backend!r} is not supported; use disk or lmdb')
        self.file_client = None
        self.gt_folder = self._require_path(opt, 'dataroot_gt')
        self.lq_folder = self._require_path(opt, 'dataroot_lq') if opt.get('dataroot_lq') else None
        self.degradation = normalize_pipeline(opt.get('degradation'), _where(opt, 'degradation'))
        self.degradation_seed = int(opt.get('degradation_seed', 0))
        self.gt_size = opt.get('gt_size')
        if self.gt_size is not None and int(self.gt_size) % self.scale:
            raise ValueError(f'{_where(opt, "gt_size")}: {self.gt_size} is not divisible by scale {self.scale}')

        self.classes = resolve_classes(opt)
        self.num_classes = int(opt.get('num_classes') or (len(self.classes) if self.classes else 0)) or None
        if opt.get('meta_info_file'):
            self.items = read_meta_info(opt['meta_info_file'], self.num_classes)
        elif self.backend == 'lmdb':
            raise ValueError(f'{_where(opt, "meta_info_file")}: the lmdb backend needs a meta_info_file with labels')
        else:
            self.classes, self.items = scan_class_folders(self.gt_folder, self.classes)
            self.num_classes = self.num_classes or len(self.classes)
            bad = [(p, label) for p, label in self.items if label >= self.num_classes]
            if bad:
                raise ValueError(
                    f'{_where(opt, "num_classes")}: {bad[0][0]!r} has label {bad[0][1]}, outside '
                    f'[0, {self.num_classes})'
                )
        if self.num_classes is None:
            self.num_classes = max(label for _, label in self.items) + 1
        self.labels = [label for _, label in self.items]
        if self.backend == 'disk':
            self._check_files_exist()
        self._check_first_item()

    @staticmethod
    def _require_path(opt: dict, key: str) -> str:
        path = opt.get(key)
        if not path:
            raise ValueError(f'{_where(opt, key)} is required')
        if not os.path.exists(path):
            raise FileNotFoundError(f'{_where(opt, key)}: {path!r} does not exist ({README_DATASETS_HINT})')
        return path

    def _check_files_exist(self) -> None:
        folders = [self.gt_folder] + ([self.lq_folder] if self.lq_folder else [])
        for folder in folders:
            missing = [p for p, _ in self.items if not os.path.isfile(os.path.join(folder, p))]
            if missing:
                raise FileNotFoundError(
                    f'{len(missing)} image(s) listed for {_where(self.opt, "dataroot_gt")} are '
                    f'missing under {folder!r}, e.g. {missing[:3]}'
                )

    def _check_first_item(self) -> None:
        """Read one sample now, so a wrong scale or an unreadable image fails before training starts."""
        self[0]

    def __len__(self) -> int:
        return len(self.items)

    def _read(self, folder: str, rel_path: str, client_key: str) -> tuple[np.ndarray, str]:
        if self.file_client is None:
            if self.backend == 'lmdb':
                db_paths = [self.gt_folder] + ([self.lq_folder] if self.lq_folder else [])
                client_keys = ['gt'] + (['lq'] if self.lq_folder else [])
                self.file_client = FileClient('lmdb', db_paths=db_paths, client_keys=client_keys)
            else:
                self.file_client = FileClient('disk')
        if self.backend == 'lmdb':
            path = os.path.splitext(rel_path)[0]
        else:
            path = os.path.join(folder, rel_path)
        try:
            img_bytes = self.file_client.get(path, client_key)
        except Exception as err:
            raise OSError(f'cannot read image {path!r} ({client_key}) from {folder!r}: {err}') from err
        if img_bytes is None:
            raise OSError(f'image {path!r} is not in {folder!r}')
        img = cv2.imdecode(np.frombuffer(img_bytes, np.uint8), cv2.IMREAD_COLOR)  # grayscale -> 3 channels
        if img is None:
            raise OSError(f'unreadable image {path!r} in {folder!r}')
        return img.astype(np.float32) / 255.0, path

    def __getitem__(self, index: int) -> dict[str, Any]:
        rel_path, label = self.items[index]
        img_gt, gt_path = self._read(self.gt_folder, rel_path, 'gt')
        if self.gt_size is not None:
            size = int(self.gt_size)
            if img_gt.shape[:2] != (size, size):
                interp = cv2.INTER_AREA if min(img_gt.shape[:2]) > size else cv2.INTER_CUBIC
                img_gt = np.clip(cv2.resize(img_gt, (size, size), interpolation=interp), 0.0, 1.0)
        h, w = img_gt.shape[:2]
        if h % self.scale or w % self.scale:
            raise ValueError(
                f'HR image {gt_path!r} is {h}x{w}, not divisible by scale {self.scale}; set '
                f'{_where(self.opt, "gt_size")} or crop the images'
            )
        if self.lq_folder:
            img_lq, lq_path = self._read(self.lq_folder, rel_path, 'lq')
            if img_lq.shape[:2] != (h // self.scale, w // self.scale):
                raise ValueError(
                    f'LR image {lq_path!r} is {img_lq.shape[0]}x{img_lq.shape[1]}, expected '
                    f'{h // self.scale}x{w // self.scale} (HR {gt_path!r} / scale {self.scale})'
                )
        else:
            if self.phase == 'train':
                rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
            else:
                rng = rng_for_image(rel_path, self.degradation_seed)
            img_lq, lq_path = degrade(img_gt, self.scale, self.degradation, rng), gt_path
        if self.phase == 'train' and self.opt.get('use_hflip', False):
            # contiguous copies: OpenCV >= 5 refuses to flip strided arrays in place
            img_gt, img_lq = augment(
                [np.ascontiguousarray(img_gt), np.ascontiguousarray(img_lq)], hflip=True, rotation=False
            )
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        return {
            'lq': img_lq,
            'gt': img_gt,
            'label': torch.tensor(label, dtype=torch.long),
            'lq_path': lq_path,
            'gt_path': gt_path,
        }
