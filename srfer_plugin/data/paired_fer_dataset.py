"""PairedFERDataset: whole HR faces with an expression label, and their LR counterparts."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import cv2
import numpy as np
import torch
from basicsr.data.transforms import augment
from basicsr.utils import FileClient, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from srfer_plugin.data.bad_images import BAD_IMAGE_MODES, BadImage, DatasetContext, handle_bad_images
from srfer_plugin.data.degradations import check_scale, degrade, normalize_pipeline, rng_for_image
from srfer_plugin.data.fer_layout import read_meta_info, resolve_classes, scan_class_folders
from srfer_plugin.data.image_check import ImageCheck, check_disk_images, check_lmdb_images, read_regular_file
from srfer_plugin.utils.formatting import first_of

README_DATASETS_HINT = 'see README.md, section "Preparing datasets"'
META_INFO_DUPLICATE_MODES: tuple[str, ...] = ('error', 'keep')
_SHOWN_SIZE_ERRORS = 10


@DATASET_REGISTRY.register()
class PairedFERDataset(data.Dataset):
    """HR face images with expression labels, paired with LR images read from disk or degraded on the fly.

    HR images are used whole (the classifier needs the whole face); ``gt_size`` optionally resizes them to one
    square size. Labels come from class sub-folders of ``dataroot_gt`` or from ``meta_info_file`` lines
    ``relative/path label``.

    Every HR (and LR) image is decoded once when the dataset is built (train, val and test alike; threads, cached
    in ``$SRFER_CACHE_DIR``, else ``$XDG_CACHE_HOME/srfer_plugin``, else ``~/.cache/srfer_plugin``, by path, size,
    mtime, ctime and inode), so a truncated, empty, missing or non-image file, or one that is not a regular file
    (a FIFO, device or socket, never opened), is found before the first step, and the sizes of all images are
    checked against ``scale``, ``gt_size`` and the LR folder. The full list of bad images is written to
    ``bad_images_<key>.txt`` in the run's log folder (outside a BasicSR run: ``<cache>/bad_images/``).

    A set that is batched (``batch_size_per_gpu`` > 1) without ``gt_size`` must hold HR images of one size (torch
    cannot stack others into a batch): the build fails listing the images whose size differs from the most common
    one. ``bad_images: skip`` does not leave them out: a size is not a bad image; set ``gt_size`` or resize them.

    Args:
        opt: Dataset options:
            dataroot_gt (str): HR root folder (disk) or lmdb folder.
            meta_info_file (str, optional): Lines ``relative/path label``; paths relative to dataroot_gt
                (for lmdb, the key is the path without extension).
            dataroot_lq (str, optional): LR root with the same relative paths. ``~``: degrade HR on the fly.
            classes (list | str, optional): Class names or a classes.txt path (default: found beside the data).
            num_classes (int, optional): Number of classes the labels must fit (default: ``len(classes)``).
            scale (int): 2, 3, 4 or 8 (BasicSR copies the top-level ``scale`` here).
            gt_size (int, optional): Resize HR to ``gt_size`` x ``gt_size`` (must be divisible by scale). Without
                it, a batched set (``batch_size_per_gpu`` > 1) must hold images of one size.
            batch_size_per_gpu (int, optional): Images per batch (BasicSR's option); above 1, all HR images must
                be one size unless ``gt_size`` is set.
            degradation (dict | list, optional): See ``srfer_plugin.data.degradations``; default bicubic.
            degradation_seed (int): Seed of the per-image deterministic degradation of val/test sets, a whole
                number >= 0. Default 0.
            use_hflip (bool): Random horizontal flips (train phase only). Default False.
            io_backend (dict): ``{type: disk}`` or ``{type: lmdb}``.
            bad_images (str): What to do with images that are missing, cannot be decoded or are not regular files:
                ``error`` (default) stops with the list of all of them; ``skip`` leaves them out, logs how many, and
                uses the rest. Images of the wrong size are always an error, never skipped.
            meta_info_duplicates (str): A path listed twice in ``meta_info_file``: ``error`` (default) or ``keep``
                (e.g. to oversample it). Absolute paths and paths leaving ``dataroot_gt`` are always errors.
            phase (str): ``train``, ``val`` or ``test`` (set by BasicSR).
    """

    def __init__(self, opt: dict):
        super().__init__()
        self.opt = opt
        self.context = DatasetContext.of(opt)
        self.phase = opt.get('phase', 'train')
        self.scale = check_scale(opt.get('scale', 4), self._where('scale'))
        self.io_backend_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        self.backend = self.io_backend_opt.get('type', 'disk')
        if self.backend not in ('disk', 'lmdb'):
            raise ValueError(f'{self._where("io_backend.type")}: {self.backend!r} is not supported; use disk or lmdb')
        self.bad_images_mode = self._choice('bad_images', BAD_IMAGE_MODES)
        self.file_client = None
        self.gt_folder = self._require_path('dataroot_gt')
        self.lq_folder = self._require_path('dataroot_lq') if opt.get('dataroot_lq') else None
        self.degradation = normalize_pipeline(opt.get('degradation'), self._where('degradation'))
        self.degradation_seed = self._seed('degradation_seed')
        self.gt_size = opt.get('gt_size')
        if self.gt_size is not None and int(self.gt_size) % self.scale:
            raise ValueError(f'{self._where("gt_size")}: {self.gt_size} is not divisible by scale {self.scale}')

        self.classes = resolve_classes(opt)
        self.num_classes = int(opt.get('num_classes') or (len(self.classes) if self.classes else 0)) or None
        if opt.get('meta_info_file'):
            keep_duplicates = self._choice('meta_info_duplicates', META_INFO_DUPLICATE_MODES) == 'keep'
            self.items = read_meta_info(opt['meta_info_file'], self.num_classes, allow_duplicates=keep_duplicates)
        elif self.backend == 'lmdb':
            raise ValueError(f'{self._where("meta_info_file")}: the lmdb backend needs a meta_info_file with labels')
        else:
            self.classes, self.items = scan_class_folders(self.gt_folder, self.classes)
            self.num_classes = self.num_classes or len(self.classes)
            bad = [(p, label) for p, label in self.items if label >= self.num_classes]
            if bad:
                raise ValueError(
                    f'{self._where("num_classes")}: {bad[0][0]!r} has label {bad[0][1]}, outside '
                    f'[0, {self.num_classes})'
                )
        if self.num_classes is None:
            self.num_classes = max(label for _, label in self.items) + 1
        self.left_out: list[BadImage] = []  # images left out by ``bad_images: skip``
        self.bad_images_file: str | None = None
        self._check_images()
        self.labels = [label for _, label in self.items]

    def _where(self, key: str) -> str:
        return self.context.where(key)

    def _choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = str(self.opt.get(key) or choices[0])
        if value not in choices:
            raise ValueError(f'{self._where(key)}: {value!r} is not one of {list(choices)}')
        return value

    def _seed(self, key: str) -> int:
        """A seed option, a whole number >= 0 (default 0), checked now: the generator would refuse it mid-run."""
        value = self.opt.get(key)
        if value is None:
            return 0
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole or value < 0:
            raise ValueError(f'{self._where(key)}: {value!r} is not a whole number >= 0')
        return int(value)

    def _require_path(self, key: str) -> str:
        path = self.opt.get(key)
        if not path:
            raise ValueError(f'{self._where(key)} is required')
        if not os.path.exists(path):
            raise FileNotFoundError(f'{self._where(key)}: {path!r} does not exist ({README_DATASETS_HINT})')
        return path

    def _image_location(self, folder: str, rel_path: str) -> str:
        """The path ``_read`` reads: ``folder/rel_path`` on disk, the key (path without extension) in an lmdb."""
        return os.path.join(folder, os.path.splitext(rel_path)[0] if self.backend == 'lmdb' else rel_path)

    def _check_images(self) -> None:
        """Decode every HR (and LR) image; stop on bad ones or leave them out (``bad_images``); check sizes."""
        rel_paths = [p for p, _ in self.items]
        folders = {'HR': self.gt_folder, **({'LR': self.lq_folder} if self.lq_folder else {})}
        checks: dict[str, list[ImageCheck]] = {}
        for role, folder in folders.items():
            desc = f'Checking {self.context.yaml_key or self.context.name} {role} images'
            if self.backend == 'lmdb':
                checks[role] = check_lmdb_images(folder, [os.path.splitext(p)[0] for p in rel_paths], desc)
            else:
                checks[role] = check_disk_images(folder, rel_paths, desc)
        bad: list[BadImage] = []
        kept: list[int] = []
        for index, rel_path in enumerate(rel_paths):
            problems = [
                BadImage(
                    self._image_location(folder, rel_path), checks[role][index].problem, checks[role][index].missing
                )
                for role, folder in folders.items()
                if not checks[role][index].ok
            ]
            bad.extend(problems)
            if not problems:
                kept.append(index)
        uses_meta_info = bool(self.opt.get('meta_info_file'))
        self.bad_images_file = handle_bad_images(
            bad, len(rel_paths), self.context, self.bad_images_mode, uses_meta_info
        )
        if not kept:
            raise ValueError(
                f'{self.context.label}: none of its {len(rel_paths)} image(s) can be used; full list: '
                f'{self.bad_images_file}'
            )
        self.left_out = bad
        self.items = [self.items[i] for i in kept]
        self._check_sizes([checks['HR'][i] for i in kept], [checks['LR'][i] for i in kept] if self.lq_folder else None)

    def _check_sizes(self, gt_checks: list[ImageCheck], lq_checks: list[ImageCheck] | None) -> None:
        """Fail when HR sizes do not divide by ``scale`` (without ``gt_size``) or LR sizes are not HR / scale."""
        wrong = []
        for index, (rel_path, _) in enumerate(self.items):
            gt_path = self._image_location(self.gt_folder, rel_path)
            if self.gt_size is not None:
                h = w = int(self.gt_size)
            else:
                h, w = gt_checks[index].height, gt_checks[index].width
                if h % self.scale or w % self.scale:
                    wrong.append(
                        f'HR image {gt_path!r} is {h}x{w}, not divisible by scale {self.scale}; set '
                        f'{self._where("gt_size")} or crop the images'
                    )
                    continue
            if lq_checks is not None:
                lq = lq_checks[index]
                if (lq.height, lq.width) != (h // self.scale, w // self.scale):
                    wrong.append(
                        f'LR image {self._image_location(self.lq_folder, rel_path)!r} is {lq.height}x{lq.width}, '
                        f'expected {h // self.scale}x{w // self.scale} (HR {gt_path!r} / scale {self.scale})'
                    )
        if len(wrong) == 1:
            raise ValueError(wrong[0])
        if wrong:
            raise ValueError(
                f'{self.context.label}: {len(wrong)} image(s) do not fit scale {self.scale}:\n  ' + _shown(wrong)
            )
        if self.gt_size is None:
            self._check_one_size(gt_checks)

    def _check_one_size(self, gt_checks: list[ImageCheck]) -> None:
        """Fail when a batched set (``batch_size_per_gpu`` > 1) without ``gt_size`` holds HR images of several sizes.

        torch would fail to stack them at the first batch that mixes sizes, naming no file. Such images are not bad
        images, so ``bad_images: skip`` does not leave them out.
        """
        batch_size = self.opt.get('batch_size_per_gpu')
        if not isinstance(batch_size, int) or batch_size <= 1 or not gt_checks:
            return
        sizes = [(c.height, c.width) for c in gt_checks]
        (common, count), *_ = Counter(sizes).most_common(1)
        if count == len(sizes):
            return
        odd = [
            f'HR image {self._image_location(self.gt_folder, rel_path)!r} is {h}x{w}'
            for (rel_path, _), (h, w) in zip(self.items, sizes)
            if (h, w) != common
        ]
        raise ValueError(
            f'{self.context.label}: {len(odd)} of {len(sizes)} HR image(s) are not {common[0]}x{common[1]} (the most '
            f'common size), and {self._where("batch_size_per_gpu")}: {batch_size} stacks images into batches, which '
            f'needs one size:\n  {_shown(odd)}\nSet {self._where("gt_size")} (e.g. {common[0]}) to resize every '
            f'image to one square size, or resize these images ({self._where("bad_images")}: skip does not leave '
            'them out: a size is not a bad image)'
        )

    def __len__(self) -> int:
        return len(self.items)

    def _read(self, folder: str, rel_path: str, client_key: str) -> tuple[np.ndarray, str]:
        if self.file_client is None and self.backend == 'lmdb':
            db_paths = [self.gt_folder] + ([self.lq_folder] if self.lq_folder else [])
            client_keys = ['gt'] + (['lq'] if self.lq_folder else [])
            self.file_client = FileClient('lmdb', db_paths=db_paths, client_keys=client_keys)
        try:
            if self.backend == 'lmdb':
                path = os.path.splitext(rel_path)[0]
                img_bytes = self.file_client.get(path, client_key)
            else:  # opened non-blocking: a file swapped for a FIFO since the build is reported, never waited on
                path = os.path.join(folder, rel_path)
                img_bytes = read_regular_file(path)
        except Exception as err:
            raise OSError(f'cannot read image {path!r} ({client_key}) from {folder!r}: {err}') from err
        if img_bytes is None:
            raise OSError(f'image {path!r} is not in {folder!r}')
        if not img_bytes:
            raise OSError(f'unreadable image {path!r} in {folder!r}: empty file (0 bytes)')
        try:
            img = cv2.imdecode(np.frombuffer(img_bytes, np.uint8), cv2.IMREAD_COLOR)  # grayscale -> 3 channels
        except cv2.error as err:
            raise OSError(f'unreadable image {path!r} in {folder!r}: {err}') from err
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
                f'{self._where("gt_size")} or crop the images'
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
        flipped = False
        if self.phase == 'train' and self.opt.get('use_hflip', False):
            # contiguous copies: OpenCV >= 5 refuses to flip strided arrays in place
            (img_gt, img_lq), (flipped, _, _) = augment(
                [np.ascontiguousarray(img_gt), np.ascontiguousarray(img_lq)],
                hflip=True,
                rotation=False,
                return_status=True,
            )
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        return {
            'lq': img_lq,
            'gt': img_gt,
            'label': torch.tensor(label, dtype=torch.long),
            'lq_path': lq_path,
            'gt_path': gt_path,
            'hflip': bool(flipped),  # with gt_path, the key of the HR face (train.cache_hr_reference)
        }


def _shown(lines: list[str]) -> str:
    """The first lines of a list of problems, one per line (indented), with a count of the rest."""
    return '\n  '.join(first_of(lines, _SHOWN_SIZE_ERRORS))
