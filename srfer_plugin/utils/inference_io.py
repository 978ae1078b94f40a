"""What inference reads besides the networks: LR images, options files and class names.

Used by :class:`~srfer_plugin.predictor.SRFERPredictor` (image conversion), ``srfer-infer`` and
``srfer visualize-attention``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
import yaml

from srfer_plugin.data.fer_layout import CLASSES_FILE, read_classes, resolve_classes
from srfer_plugin.data.image_check import DECODE_FLAGS, NotRegularFileError, read_regular_file
from srfer_plugin.utils.shipped_options import resolve_path


def load_yaml(text_or_path: str) -> Any:
    """Parse YAML text, or the YAML file it names.

    Args:
        text_or_path: A path to a YAML file, a shipped one by name (``srfer::test_RCAN_srfer_x4.yml``), or YAML
            text.

    Returns:
        The parsed object.

    Raises:
        FileNotFoundError: A ``srfer::`` name that is not shipped.
    """
    path = resolve_path(text_or_path)
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            return yaml.safe_load(f)
    return yaml.safe_load(text_or_path)


# ------------------------------------------------------------------------------------------------ images
def as_float_image(img: np.ndarray) -> np.ndarray:
    """Bring an image of any depth and channel count to float32 in [0, 1], colour order unchanged.

    Args:
        img: ``HW``, ``HW1``, ``HW3`` or ``HW4`` (alpha last) image, uint8, uint16 or float.

    Returns:
        ``HW`` (grayscale) or ``HW3`` float32 in [0, 1]; an alpha channel is dropped.

    Raises:
        ValueError: Unsupported pixel type or channel count, or an empty image.
    """
    img = np.asarray(img)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        img = img.astype(np.float32) / 65535.0
    elif img.dtype in (np.float16, np.float32, np.float64):
        img = np.clip(img.astype(np.float32), 0.0, 1.0)
    else:
        raise ValueError(f'unsupported pixel type {img.dtype}')
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    elif img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f'unsupported image shape {img.shape} (HW, or HWC with 1, 3 or 4 channels)')
    if min(img.shape[:2]) < 1:
        raise ValueError(f'empty image {img.shape[0]}x{img.shape[1]}')
    return np.ascontiguousarray(img)


def read_lr_image(path: str) -> np.ndarray:
    """Read an image file of any depth and channel count (any path, including non-ASCII).

    Args:
        path: Image file.

    Returns:
        ``HW`` (grayscale) or ``HW3`` BGR float32 in [0, 1], alpha dropped (see :func:`as_float_image`).

    Raises:
        ValueError: The file is empty, not a regular file (a FIFO, device or folder: never read), not an image, or of an
            unsupported kind.
    """
    try:
        data = np.frombuffer(read_regular_file(path), np.uint8)
    except NotRegularFileError as err:  # a FIFO would block a plain open() forever
        raise ValueError(f'not a regular file ({err.kind}): not read') from None
    if data.size == 0:
        raise ValueError('empty file')
    img = cv2.imdecode(data, DECODE_FLAGS)  # the EXIF orientation applied, as the datasets and `srfer web` do
    if img is None:
        raise ValueError('not a readable image (OpenCV cannot decode it)')
    return as_float_image(img)


def images_to_tensor(images: Sequence[np.ndarray], rgb: bool = False) -> torch.Tensor:
    """Stack same-size float images into an ``NCHW`` RGB tensor (grayscale repeated over 3 channels).

    Args:
        images: ``HW`` or ``HW3`` float images from :func:`as_float_image`, all of one size.
        rgb: The colour images are RGB (default: BGR, as OpenCV reads them).

    Returns:
        A float32 CPU tensor in [0, 1].
    """
    planes = []
    for img in images:
        img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
        planes.append((img if rgb else img[..., ::-1]).transpose(2, 0, 1))
    return torch.from_numpy(np.ascontiguousarray(np.stack(planes)))


def tensor_to_image(image: torch.Tensor, rgb: bool = False, gray: bool = False) -> np.ndarray:
    """Turn one ``CHW`` RGB tensor in [0, 1] into an 8-bit image.

    Args:
        image: The tensor (any device).
        rgb: Return RGB (default: BGR, as OpenCV writes them).
        gray: Return a ``HW`` grayscale image.

    Returns:
        ``HW3`` or ``HW`` uint8.
    """
    img = image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
    img = np.ascontiguousarray((img if rgb else img[..., ::-1]) * 255.0).round().astype(np.uint8)
    if gray:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY if rgb else cv2.COLOR_BGR2GRAY)
    return img


# ------------------------------------------------------------------------------------------- class names
def dataset_classes(opt: dict) -> list[str] | None:
    """Class names of the first dataset of an options dict that names them.

    Args:
        opt: BasicSR options with a ``datasets`` section.

    Returns:
        The names, or None when no dataset names its classes.
    """
    for dataset_opt in (opt.get('datasets') or {}).values():
        try:
            classes = resolve_classes(dataset_opt)
        except (OSError, ValueError):
            continue
        if classes:
            return classes
    return None


def resolve_class_names(
    num_classes: int,
    classes_arg: str | None = None,
    fer: torch.nn.Module | None = None,
    fer_checkpoint: str | None = None,
    opt: dict | None = None,
) -> list[str]:
    """The class names of a classifier, from the first source that names ``num_classes`` classes.

    Sources in order: ``classes_arg`` (a classes.txt file or a comma-separated list), ``classes.txt`` beside
    the FER checkpoint, the checkpoint's ``dataset_meta`` (``fer.class_names``), the options' datasets. A source
    of another length is skipped with a warning on stderr.

    Args:
        num_classes: Outputs of the classifier.
        classes_arg: File or comma list (``--classes``).
        fer: The classifier.
        fer_checkpoint: Its weights file.
        opt: BasicSR options with datasets.

    Returns:
        ``num_classes`` names; ``class_<i>`` when no source fits.
    """
    candidates: list[tuple[str, Sequence[str] | None]] = []
    if classes_arg:
        names = read_classes(classes_arg) if os.path.isfile(classes_arg) else classes_arg.split(',')
        candidates.append(('--classes', [n.strip() for n in names if n.strip()]))
    if fer_checkpoint:
        beside = os.path.join(os.path.dirname(os.path.abspath(fer_checkpoint)), CLASSES_FILE)
        candidates.append((beside, read_classes(beside) if os.path.isfile(beside) else None))
    candidates.append(('FER checkpoint meta', getattr(fer, 'class_names', None)))
    candidates.append(('datasets', dataset_classes(opt) if opt else None))
    for source, names in candidates:
        if names and len(names) == num_classes:
            return list(names)
        if names:
            print(f'warning: {source} names {len(names)} classes, the classifier has {num_classes}', file=sys.stderr)
    return [f'class_{i}' for i in range(num_classes)]
