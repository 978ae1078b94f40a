"""Reading sources: image decoding, FER2013 pixel strings, square BGR output, file listing and csv opening."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import cv2
import numpy as np

from srfer_plugin.converters.records import PrepareError
from srfer_plugin.data.fer_layout import IMAGE_EXTENSIONS
from srfer_plugin.data.image_check import DECODE_FLAGS


def read_image_file(path: str) -> np.ndarray | None:
    """Read an image file (any path, including non-ASCII) as uint8.

    Args:
        path: Image file; 16-bit images keep their high byte, other depths are min-max scaled; the EXIF
            orientation is applied.

    Returns:
        The decoded image, or None when the file is empty or cannot be decoded.
    """
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        return None
    img = cv2.imdecode(data, DECODE_FLAGS)
    if img is None:
        return None
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return img


def parse_pixels(text: str) -> np.ndarray:
    """Parse FER2013's space-separated grayscale pixels into a square uint8 image.

    Args:
        text: The ``pixels`` field of a fer2013.csv row.

    Returns:
        The HxW image.

    Raises:
        ValueError: The text is not a square number of integers in [0, 255].
    """
    values = text.split()
    side = int(round(len(values) ** 0.5))
    if not values or side * side != len(values):
        raise ValueError(f'expected a square number of pixels (48*48=2304), got {len(values)}')
    try:
        arr = np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        raise ValueError('pixels are not all integers') from None
    if arr.min() < 0 or arr.max() > 255:
        raise ValueError('pixel values outside [0, 255]')
    return arr.astype(np.uint8).reshape(side, side)


def to_square_bgr(img: np.ndarray, size: int, mode: str = 'crop') -> np.ndarray:
    """Make a ``size`` x ``size`` 3-channel BGR uint8 image.

    Args:
        img: HxW (grayscale), HxWx1, HxWx3 (BGR) or HxWx4 (BGRA) uint8 image.
        size: Output side length.
        mode: ``crop`` centre-crops to a square first; ``stretch`` resizes without keeping the aspect ratio.

    Returns:
        The resized image; INTER_AREA when shrinking, INTER_CUBIC when enlarging.
    """
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    elif img.shape[2] != 3:
        raise ValueError(f'unsupported number of channels {img.shape[2]}')
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise ValueError('empty image')
    if mode == 'crop' and h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        img = img[top : top + side, left : left + side]
    elif mode not in ('crop', 'stretch'):
        raise ValueError(f'resize mode must be "crop" or "stretch", got {mode!r}')
    if img.shape[:2] != (size, size):
        shrink = img.shape[0] * img.shape[1] > size * size
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return np.ascontiguousarray(img)


def file_loader(path: str) -> Callable[[], np.ndarray | None]:
    """A lazy loader of ``path`` for :attr:`Sample.load <srfer_plugin.converters.records.Sample.load>`."""
    return lambda: read_image_file(path)


def is_image_name(fname: str) -> bool:
    """Whether ``fname`` has an image extension and is not hidden (dot file)."""
    return fname.lower().endswith(IMAGE_EXTENSIONS) and not fname.startswith('.')


def list_images(folder: str) -> list[str]:
    """Sorted image file names directly inside ``folder``."""
    return sorted(f for f in os.listdir(folder) if is_image_name(f))


def walk_images(folder: str) -> Iterator[str]:
    """Paths of the image files under ``folder`` (recursive), sub-folders and files in sorted order."""
    for dirpath, dirnames, files in os.walk(folder):
        dirnames.sort()
        for fname in sorted(files):
            if is_image_name(fname):
                yield os.path.join(dirpath, fname)


def rel_path(path: str, root: str) -> str:
    """``path`` relative to ``root`` (for reports); ``path`` itself when ``root`` is empty."""
    return os.path.relpath(path, root) if root else path


def safe_stem(rel: str) -> str:
    """A flat file stem of a relative path: extension dropped, folder separators become ``_``."""
    return os.path.splitext(rel.replace('\\', '/'))[0].replace('/', '_')


def require_dir(path: str, what: str) -> None:
    """Raise :class:`PrepareError` unless ``--src`` ``path`` is an existing folder.

    Args:
        path: The ``--src`` path.
        what: The expected layout, for the message.
    """
    if not os.path.exists(path):
        raise PrepareError(f'--src {path!r} does not exist; expected {what}')
    if not os.path.isdir(path):
        raise PrepareError(f'--src {path!r} is not a folder; expected {what}')


def find_file(src: str, candidates: Sequence[str], expected: str) -> str:
    """The source file: ``src`` itself when it is a file, else the first candidate found inside it.

    Args:
        src: The ``--src`` file or folder.
        candidates: File paths relative to ``src`` tried in order.
        expected: The expected layout, for the message.

    Returns:
        The path of the file.
    """
    if not os.path.exists(src):
        raise PrepareError(f'--src {src!r} does not exist; expected {expected}')
    if os.path.isfile(src):
        return src
    for name in candidates:
        path = os.path.join(src, name)
        if os.path.isfile(path):
            return path
    raise PrepareError(f'--src {src!r} holds none of {list(candidates)}; expected {expected}')


@contextmanager
def open_csv(path: str) -> Iterator[tuple[Any, list[str]]]:
    """Open a csv file (utf-8, optional BOM) and read its header.

    Args:
        path: The csv file.

    Returns:
        A context manager giving ``(reader, header)``; the header cells are stripped and ``reader.line_num``
        is the file line of the last row read. The file is closed on exit.
    """
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise PrepareError(f'csv {path!r} is empty') from None
        yield reader, header
