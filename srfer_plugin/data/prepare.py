"""Convert FER datasets from their distributed layouts into the plugin's layout (see ``fer_layout.py``).

One reader per format turns a source folder/file into :class:`Sample` records (canonical class name,
official split if any, subject id if any, and a lazy image loader). :func:`assign_splits` applies a
:class:`SplitSpec`, and :func:`write_dataset` writes ``DST/<split>/<class>/<name>.png``, ``classes.txt``,
``meta_info_<split>.txt``, an optional lmdb per split and ``prepare_report.json``.
:func:`prepare_dataset` runs the whole pipeline; ``scripts/prepare_dataset.py`` is its command line.

Bad rows (unreadable images, unknown labels, malformed csv rows) are recorded in a :class:`PrepareReport`
with their file name or csv line and never reach the output. Rows dropped on purpose (contempt, AffectNet
none/uncertain/non-face, FER+ unknown/NF, unlabelled CK+ sequences) are counted as *skipped*.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

import srfer_plugin.compat  # noqa: F401  (before basicsr, which write_lmdb imports)
from srfer_plugin.data.fer_layout import (
    CLASSES_FILE,
    FER7_CLASSES,
    FER8_CLASSES,
    IMAGE_EXTENSIONS,
    meta_info_name,
    read_meta_info,
    write_classes,
    write_meta_info,
)

FORMATS: tuple[str, ...] = ('rafdb', 'fer2013', 'ferplus', 'affectnet', 'ckplus', 'jaffe', 'imagefolder')
REPORT_FILE = 'prepare_report.json'
SPLIT_NAMES: tuple[str, ...] = ('train', 'val', 'test')

# Label ids of each dataset mapped to the canonical class names of FER8_CLASSES.
RAFDB_LABELS = {1: 'surprise', 2: 'fear', 3: 'disgust', 4: 'happy', 5: 'sad', 6: 'angry', 7: 'neutral'}
FER2013_LABELS = {0: 'angry', 1: 'disgust', 2: 'fear', 3: 'happy', 4: 'sad', 5: 'surprise', 6: 'neutral'}
FERPLUS_COLUMNS = (
    'neutral',
    'happiness',
    'surprise',
    'sadness',
    'anger',
    'disgust',
    'fear',
    'contempt',
    'unknown',
    'NF',
)
FERPLUS_LABELS = ('neutral', 'happy', 'surprise', 'sad', 'angry', 'disgust', 'fear', 'contempt', None, None)
AFFECTNET_LABELS = dict(enumerate(FER8_CLASSES))  # 0-7 are already in the canonical order
AFFECTNET_DROPPED = {8: 'none', 9: 'uncertain', 10: 'non-face'}
CKPLUS_LABELS = {0: 'neutral', 1: 'angry', 2: 'contempt', 3: 'disgust', 4: 'fear', 5: 'happy', 6: 'sad', 7: 'surprise'}
JAFFE_CODES = {
    'NE': 'neutral',
    'HA': 'happy',
    'SA': 'sad',
    'SU': 'surprise',
    'AN': 'angry',
    'DI': 'disgust',
    'FE': 'fear',
}

# Folder-name synonyms (lower case) for class-folder trees.
CLASS_SYNONYMS: dict[str, str] = {}
for _canonical, _names in {
    'neutral': ('neutral', 'neutrality', 'neu', 'ne', 'calm'),
    'happy': ('happy', 'happiness', 'happ', 'joy', 'ha', 'hap'),
    'sad': ('sad', 'sadness', 'sa'),
    'surprise': ('surprise', 'surprised', 'surprize', 'su', 'sur'),
    'fear': ('fear', 'fearful', 'afraid', 'scared', 'fe'),
    'disgust': ('disgust', 'disgusted', 'disgusting', 'di', 'dis'),
    'angry': ('angry', 'anger', 'an', 'ang'),
    'contempt': ('contempt', 'contemptuous', 'co', 'con'),
}.items():
    for _name in _names:
        CLASS_SYNONYMS[_name] = _canonical

SPLIT_SYNONYMS = {
    'train': 'train',
    'training': 'train',
    'train_set': 'train',
    'trainset': 'train',
    'val': 'val',
    'valid': 'val',
    'validation': 'val',
    'val_set': 'val',
    'publictest': 'val',
    'test': 'test',
    'testing': 'test',
    'test_set': 'test',
    'privatetest': 'test',
}


class PrepareError(ValueError):
    """The source is missing, is not in the format's layout, or an option is invalid."""


@dataclass
class Sample:
    """One image found by a reader.

    Attributes:
        name: Output file stem, unique within its class (made file- and lmdb-key-safe by the writer).
        label: Canonical class name (one of ``FER8_CLASSES``).
        load: Returns the image (HxW or HxWxC uint8); may raise or return None for unreadable data.
        source: Where the sample came from, for reports (file path or ``file.csv:line N``).
        split: Official split (``train``/``val``/``test``) or None.
        subject: Subject id (CK+, JAFFE) or None.
    """

    name: str
    label: str
    load: Callable[[], np.ndarray | None]
    source: str
    split: str | None = None
    subject: str | None = None


@dataclass
class PrepareReport:
    """Bad rows (with their names) and rows skipped on purpose (counted per reason)."""

    bad: list[tuple[str, str]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def bad_row(self, source: str, reason: str) -> None:
        """Record a row that cannot be used (unreadable, unknown label, malformed)."""
        self.bad.append((source, reason))

    def skip(self, reason: str, n: int = 1) -> None:
        """Count a row that is dropped on purpose (e.g. contempt, non-face)."""
        self.skipped[reason] += n


@dataclass
class ReaderOptions:
    """Format-specific options of the readers.

    Attributes:
        keep_contempt: Keep contempt (FER+, AffectNet, CK+, imagefolder) and write ``FER8_CLASSES``.
        ckplus_last_frames: Number of last (peak) frames taken from each labelled CK+ sequence.
        ckplus_neutral_first: Also take the first frame of each labelled CK+ sequence as neutral.
        ferplus_csv: Path of ``fer2013new.csv`` when it is not inside ``src``.
        image_root: AffectNet csv manifests: folder the image paths are relative to.
    """

    keep_contempt: bool = False
    ckplus_last_frames: int = 3
    ckplus_neutral_first: bool = False
    ferplus_csv: str | None = None
    image_root: str | None = None


@dataclass
class SplitSpec:
    """How samples are assigned to splits.

    Attributes:
        mode: ``official`` (the dataset's own split), ``subject`` (subject-independent, seeded),
            ``random`` (stratified per class, seeded) or ``all`` (every sample in one split).
        ratios: ``(split_name, fraction)`` pairs for ``subject``/``random``; ``((name, 1.0),)`` for ``all``.
    """

    mode: str
    ratios: tuple[tuple[str, float], ...] = ()


@dataclass
class PrepareResult:
    """What :func:`prepare_dataset` wrote."""

    dst: str
    classes: list[str]
    counts: dict[str, dict[str, int]]
    report: PrepareReport
    split: SplitSpec
    lmdb_paths: dict[str, str] = field(default_factory=dict)
    report_path: str = ''

    @property
    def total(self) -> int:
        """Number of images written."""
        return sum(sum(c.values()) for c in self.counts.values())


# ----------------------------------------------------------------------------------------------------------------
# Image helpers


def read_image_file(path: str) -> np.ndarray | None:
    """Read an image file (any path, including non-ASCII) as uint8; None when it cannot be decoded."""
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return img


def parse_pixels(text: str) -> np.ndarray:
    """Parse FER2013's space-separated grayscale pixels into a square uint8 image.

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


def _file_loader(path: str) -> Callable[[], np.ndarray | None]:
    return lambda: read_image_file(path)


def _list_images(folder: str) -> list[str]:
    """Sorted image file names directly inside ``folder``."""
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith('.'))


def _require_dir(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise PrepareError(f'--src {path!r} does not exist; expected {what}')
    if not os.path.isdir(path):
        raise PrepareError(f'--src {path!r} is not a folder; expected {what}')


def _rel(path: str, root: str) -> str:
    return os.path.relpath(path, root) if root else path


def canonical_class(name: str) -> str | None:
    """Map a folder/class name through the synonym table (case-insensitive); None when unknown."""
    return CLASS_SYNONYMS.get(name.strip().lower())


# ----------------------------------------------------------------------------------------------------------------
# Readers: (src, report, options) -> list[Sample]


def read_rafdb(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` + ``Image/aligned/<stem>_aligned.jpg``.

    ``src`` is the ``basic`` folder (or its parent). The split is the file-name prefix (train/test).
    """
    expected = 'the RAF-DB "basic" folder with EmoLabel/list_patition_label.txt and Image/aligned/'
    _require_dir(src, expected)
    root = src if os.path.isdir(os.path.join(src, 'EmoLabel')) else os.path.join(src, 'basic')
    label_file = os.path.join(root, 'EmoLabel', 'list_patition_label.txt')
    image_dir = os.path.join(root, 'Image', 'aligned')
    for path in (label_file, image_dir):
        if not os.path.exists(path):
            raise PrepareError(f'{path!r} does not exist; --src {src!r} should be {expected}')
    samples = []
    with open(label_file, encoding='utf-8') as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f'list_patition_label.txt:line {line_no}'
            parts = line.split()
            if len(parts) != 2:
                report.bad_row(where, f'malformed line {line.strip()!r} (expected "name.jpg label")')
                continue
            fname, label_text = parts
            label = RAFDB_LABELS.get(int(label_text)) if label_text.isdigit() else None
            if label is None:
                report.bad_row(f'{where} ({fname})', f'unknown label {label_text!r} (expected 1-7)')
                continue
            stem = os.path.splitext(fname)[0]
            split = 'train' if stem.startswith('train') else 'test' if stem.startswith('test') else None
            if split is None:
                report.bad_row(f'{where} ({fname})', 'file name does not start with train/test')
                continue
            path = os.path.join(image_dir, f'{stem}_aligned.jpg')
            samples.append(Sample(stem, label, _file_loader(path), _rel(path, src), split=split))
    return samples


def _open_csv(path: str) -> tuple[csv.reader, list[str], object]:
    f = open(path, newline='', encoding='utf-8-sig')
    reader = csv.reader(f)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        f.close()
        raise PrepareError(f'csv {path!r} is empty') from None
    return reader, header, f


def _read_fer2013_rows(csv_path: str, report: PrepareReport) -> list[tuple[int, int, list[str], dict[str, int]]]:
    """Rows of fer2013.csv as ``(row_index, line_no, fields, column_index)``; row_index counts data rows."""
    reader, header, f = _open_csv(csv_path)
    cols = {h.lower(): i for i, h in enumerate(header)}
    missing = [c for c in ('emotion', 'pixels') if c not in cols]
    if missing:
        f.close()
        raise PrepareError(
            f'{csv_path!r} has no column(s) {missing}; expected fer2013.csv with header '
            f'"emotion,pixels,Usage", got {header}'
        )
    rows = []
    with f:
        for index, row in enumerate(reader):
            rows.append((index, reader.line_num, row, cols))
    return rows


def read_fer2013(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """FER2013: ``fer2013.csv`` (emotion,pixels,Usage); ``src`` is the csv or a folder holding it."""
    csv_path = _find_file(
        src,
        ('fer2013.csv', 'fer2013/fer2013.csv', 'icml_face_data.csv'),
        'fer2013.csv (columns emotion,pixels,Usage) or a folder holding it',
    )
    base = os.path.basename(csv_path)
    samples = []
    for index, line_no, row, cols in _read_fer2013_rows(csv_path, report):
        where = f'{base}:line {line_no}'
        if len(row) != len(cols):
            report.bad_row(where, f'malformed row: {len(row)} fields, expected {len(cols)}')
            continue
        emotion = row[cols['emotion']].strip()
        label = FER2013_LABELS.get(int(emotion)) if emotion.isdigit() else None
        if label is None:
            report.bad_row(where, f'unknown emotion {emotion!r} (expected 0-6)')
            continue
        split = None
        if 'usage' in cols:
            usage = row[cols['usage']].strip()
            split = SPLIT_SYNONYMS.get(usage.lower())
            if split is None:
                report.bad_row(where, f'unknown Usage {usage!r} (expected Training/PublicTest/PrivateTest)')
                continue
        pixels = row[cols['pixels']]
        samples.append(Sample(f'fer{index:07d}', label, lambda p=pixels: parse_pixels(p), where, split=split))
    return samples


def _find_file(src: str, candidates: Sequence[str], expected: str) -> str:
    if not os.path.exists(src):
        raise PrepareError(f'--src {src!r} does not exist; expected {expected}')
    if os.path.isfile(src):
        return src
    for name in candidates:
        path = os.path.join(src, name)
        if os.path.isfile(path):
            return path
    raise PrepareError(f'--src {src!r} holds none of {list(candidates)}; expected {expected}')


def ferplus_majority(votes: Sequence[float]) -> int | None:
    """FER+ majority label as in Microsoft's FERPlus reference code.

    Single votes are treated as outliers and removed; the label is the class with more than half of the
    remaining votes, else None (no majority, counted like unknown).

    Args:
        votes: The ten vote counts in ``FERPLUS_COLUMNS`` order.

    Returns:
        Index into ``FERPLUS_COLUMNS`` or None.
    """
    kept = [v if v > 1 else 0 for v in votes]
    total = sum(kept)
    if total <= 0:
        return None
    best = int(np.argmax(kept))
    return best if kept[best] > 0.5 * total else None


def read_ferplus(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """FER+: ``fer2013new.csv`` votes + ``fer2013.csv`` pixels, majority-vote label (see :func:`ferplus_majority`)."""
    expected = 'a folder holding fer2013new.csv and fer2013.csv (or --src fer2013.csv with --ferplus-csv)'
    fer_csv = _find_file(src, ('fer2013.csv', 'fer2013/fer2013.csv'), expected)
    if opts.ferplus_csv:
        new_csv = opts.ferplus_csv
        if not os.path.isfile(new_csv):
            raise PrepareError(f'--ferplus-csv {new_csv!r} does not exist; expected fer2013new.csv')
    else:
        folders = [src] if os.path.isdir(src) else [os.path.dirname(os.path.abspath(src))]
        cands = [os.path.join(d, n) for d in folders for n in ('fer2013new.csv', 'FERPlus/fer2013new.csv')]
        new_csv = next((c for c in cands if os.path.isfile(c)), '')
        if not new_csv:
            raise PrepareError(f'no fer2013new.csv found next to {src!r}; expected {expected}')
    pixel_rows = _read_fer2013_rows(fer_csv, report)
    fer_base, new_base = os.path.basename(fer_csv), os.path.basename(new_csv)
    reader, header, f = _open_csv(new_csv)
    cols = {h: i for i, h in enumerate(header)}
    missing = [c for c in ('Usage', 'Image name') + FERPLUS_COLUMNS if c not in cols]
    if missing:
        f.close()
        raise PrepareError(f'{new_csv!r} has no column(s) {missing}; expected the FER+ fer2013new.csv')
    samples = []
    with f:
        for index, row in enumerate(reader):
            where = f'{new_base}:line {reader.line_num}'
            if len(row) != len(header):
                report.bad_row(where, f'malformed row: {len(row)} fields, expected {len(header)}')
                continue
            try:
                votes = [float(row[cols[c]]) for c in FERPLUS_COLUMNS]
            except ValueError:
                report.bad_row(where, 'vote counts are not numbers')
                continue
            best = ferplus_majority(votes)
            label = None if best is None else FERPLUS_LABELS[best]
            if label is None:
                reason = 'no majority' if best is None else FERPLUS_COLUMNS[best]
                report.skip(f'ferplus {reason}')
                continue
            usage = row[cols['Usage']].strip()
            split = SPLIT_SYNONYMS.get(usage.lower())
            if split is None:
                report.bad_row(where, f'unknown Usage {usage!r} (expected Training/PublicTest/PrivateTest)')
                continue
            if index >= len(pixel_rows):
                report.bad_row(where, f'no matching row {index + 2} in {fer_base}')
                continue
            _, pix_line, pix_row, pix_cols = pixel_rows[index]
            if len(pix_row) != len(pix_cols):
                report.bad_row(f'{fer_base}:line {pix_line}', 'malformed row (pixels for FER+ label)')
                continue
            image_name = row[cols['Image name']].strip()
            name = os.path.splitext(image_name)[0] if image_name else f'fer{index:07d}'
            pixels = pix_row[pix_cols['pixels']]
            samples.append(
                Sample(name, label, lambda p=pixels: parse_pixels(p), f'{fer_base}:line {pix_line}', split=split)
            )
    return samples


def _affectnet_label(text: str, where: str, report: PrepareReport) -> str | None:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        name = canonical_class(text)
        if name is None:
            report.bad_row(where, f'unknown expression {text!r} (expected AffectNet id 0-10)')
        return name
    if value != int(value) or value < 0 or value > 10:
        report.bad_row(where, f'unknown expression {text!r} (expected AffectNet id 0-10)')
        return None
    value = int(value)
    if value in AFFECTNET_DROPPED:
        report.skip(f'affectnet {AFFECTNET_DROPPED[value]}')
        return None
    return AFFECTNET_LABELS[value]


def _safe_stem(rel_path: str) -> str:
    return os.path.splitext(rel_path.replace('\\', '/'))[0].replace('/', '_')


def _read_affectnet_csv(csv_path: str, report: PrepareReport, opts: ReaderOptions, split: str | None) -> list[Sample]:
    reader, header, f = _open_csv(csv_path)
    lower = [h.lower() for h in header]
    path_col = next(
        (
            lower.index(c)
            for c in ('subdirectory_filepath', 'path', 'image', 'filepath', 'file', 'filename', 'image_path', 'pth')
            if c in lower
        ),
        None,
    )
    label_col = next((lower.index(c) for c in ('expression', 'label', 'emotion', 'class') if c in lower), None)
    split_col = next((lower.index(c) for c in ('split', 'usage', 'set', 'subset') if c in lower), None)
    if path_col is None or label_col is None:
        f.close()
        raise PrepareError(
            f'{csv_path!r} needs an image path column (subDirectory_filePath/path) and an '
            f'expression column (expression/label); got {header}'
        )
    csv_dir = os.path.dirname(os.path.abspath(csv_path))
    roots = (
        [opts.image_root]
        if opts.image_root
        else [
            os.path.join(csv_dir, 'Manually_Annotated_Images'),
            os.path.join(csv_dir, '..', 'Manually_Annotated_Images'),
            os.path.join(csv_dir, '..', 'Manually_Annotated', 'Manually_Annotated_Images'),
            csv_dir,
        ]
    )
    root = next((r for r in roots if os.path.isdir(r)), roots[-1])
    base = os.path.basename(csv_path)
    samples = []
    with f:
        for row in reader:
            where = f'{base}:line {reader.line_num}'
            if len(row) != len(header):
                report.bad_row(where, f'malformed row: {len(row)} fields, expected {len(header)}')
                continue
            label = _affectnet_label(row[label_col], where, report)
            if label is None:
                continue
            row_split = split
            if split_col is not None:
                row_split = SPLIT_SYNONYMS.get(row[split_col].strip().lower())
                if row_split is None:
                    report.bad_row(where, f'unknown split {row[split_col]!r}')
                    continue
            rel = row[path_col].strip()
            path = os.path.join(root, rel)
            samples.append(
                Sample(
                    _safe_stem(rel),
                    label,
                    _file_loader(path),
                    f'{base}:line {reader.line_num} ({rel})',
                    split=row_split,
                )
            )
    return samples


def _read_affectnet_npy(folder: str, split: str, report: PrepareReport, src: str) -> list[Sample]:
    image_dir, ann_dir = os.path.join(folder, 'images'), os.path.join(folder, 'annotations')
    samples = []
    for fname in _list_images(image_dir):
        stem = os.path.splitext(fname)[0]
        path = os.path.join(image_dir, fname)
        ann = os.path.join(ann_dir, f'{stem}_exp.npy')
        where = _rel(path, src)
        if not os.path.isfile(ann):
            report.bad_row(where, f'no annotation {_rel(ann, src)}')
            continue
        try:
            text = str(np.load(ann, allow_pickle=False).reshape(-1)[0])
        except Exception as err:  # noqa: BLE001 (any unreadable annotation is a bad row)
            report.bad_row(_rel(ann, src), f'unreadable annotation ({err})')
            continue
        label = _affectnet_label(text, where, report)
        if label is not None:
            samples.append(Sample(stem, label, _file_loader(path), where, split=split))
    return samples


def read_affectnet(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """AffectNet from a csv manifest or a folder tree.

    Accepted layouts: a csv file (``subDirectory_filePath``/``path`` + ``expression``/``label`` columns, optional
    ``split`` column); a folder with the official ``training.csv``/``validation.csv`` (also under
    ``Manually_Annotated_file_lists/``); ``train_set``/``val_set`` folders with ``images/`` and
    ``annotations/<id>_exp.npy``; or ``train``/``val`` folders whose sub-folders are expression ids or names.
    Ids 8-10 (none, uncertain, non-face) are skipped.
    """
    expected = (
        'an AffectNet csv manifest, a folder with training.csv/validation.csv, train_set/val_set folders '
        'with images/ and annotations/, or train/val folders with one sub-folder per expression id'
    )
    if os.path.isfile(src):
        name = os.path.basename(src).lower()
        split = 'train' if name.startswith('train') else 'val' if name.startswith(('val', 'test')) else None
        return _read_affectnet_csv(src, report, opts, split)
    _require_dir(src, expected)
    for lists in (src, os.path.join(src, 'Manually_Annotated_file_lists')):
        csvs = [(os.path.join(lists, n), s) for n, s in (('training.csv', 'train'), ('validation.csv', 'val'))]
        if any(os.path.isfile(p) for p, _ in csvs):
            return [s for p, sp in csvs if os.path.isfile(p) for s in _read_affectnet_csv(p, report, opts, sp)]
    npy_sets = [(os.path.join(src, n), s) for n, s in (('train_set', 'train'), ('val_set', 'val'))]
    if any(os.path.isdir(os.path.join(p, 'images')) for p, _ in npy_sets):
        return [s for p, sp in npy_sets if os.path.isdir(p) for s in _read_affectnet_npy(p, sp, report, src)]
    split_dirs = _split_folders(src)
    if split_dirs:
        samples = []
        for folder, split in split_dirs:
            samples += _read_class_tree(folder, split, report, src, expected, id_labels=True)
        return samples
    raise PrepareError(f'--src {src!r} is not an AffectNet layout; expected {expected}')


def _split_folders(src: str) -> list[tuple[str, str]]:
    """``(folder, split)`` for sub-folders of ``src`` named like splits (train/val/test, training, ...)."""
    out = []
    for d in sorted(os.listdir(src)):
        split = SPLIT_SYNONYMS.get(d.lower())
        if split and os.path.isdir(os.path.join(src, d)):
            out.append((os.path.join(src, d), split))
    return out


def _read_class_tree(
    root: str,
    split: str | None,
    report: PrepareReport,
    src: str,
    expected: str,
    id_labels: bool = False,
    subject_of: Callable[[str], str | None] | None = None,
) -> list[Sample]:
    """Images under ``root/<class folder>/**``; folder names go through the synonym table (or AffectNet ids)."""
    folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith('.'))
    if not folders:
        raise PrepareError(f'{root!r} has no class sub-folders; expected {expected}')
    samples = []
    for folder in folders:
        if id_labels and folder.isdigit():
            value = int(folder)
            label = AFFECTNET_LABELS.get(value)
            skip = AFFECTNET_DROPPED.get(value)
        else:
            label, skip = canonical_class(folder), None
        for dirpath, dirnames, files in os.walk(os.path.join(root, folder)):
            dirnames.sort()
            for fname in sorted(files):
                if not fname.lower().endswith(IMAGE_EXTENSIONS) or fname.startswith('.'):
                    continue
                path = os.path.join(dirpath, fname)
                where = _rel(path, src)
                if skip:
                    report.skip(f'affectnet {skip}')
                    continue
                if label is None:
                    report.bad_row(where, f'unknown class folder {folder!r}')
                    continue
                subject = None
                if subject_of is not None:
                    subject = subject_of(fname)
                    if subject is None:
                        report.bad_row(where, 'cannot parse the subject id from the file name')
                        continue
                rel = os.path.relpath(path, os.path.join(root, folder))
                samples.append(Sample(_safe_stem(rel), label, _file_loader(path), where, split=split, subject=subject))
    return samples


_CK_SUBJECT = re.compile(r'^(S\d+)')


def _ckplus_subject(fname: str) -> str | None:
    m = _CK_SUBJECT.match(fname)
    return m.group(1) if m else None


def read_ckplus(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """CK+: the original tree or the 48x48 class-folder variant; subject = ``Sxxx``.

    Original tree: ``cohn-kanade-images/Sxxx/yyy/*.png`` + ``Emotion/Sxxx/yyy/*_emotion.txt``; the last
    ``ckplus_last_frames`` frames of each labelled sequence get its label, and with ``ckplus_neutral_first``
    the first frame is added as neutral. Unlabelled sequences are skipped.
    """
    expected = (
        'the CK+ root with cohn-kanade-images/ and Emotion/, or the 48x48 variant with class folders '
        '(anger, contempt, disgust, fear, happy, sadness, surprise)'
    )
    _require_dir(src, expected)
    img_root = next(
        (
            p
            for p in (
                os.path.join(src, 'cohn-kanade-images'),
                os.path.join(src, 'extended-cohn-kanade-images', 'cohn-kanade-images'),
            )
            if os.path.isdir(p)
        ),
        None,
    )
    if img_root is None:
        if any(canonical_class(d) for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))):
            return _read_class_tree(src, None, report, src, expected, subject_of=_ckplus_subject)
        raise PrepareError(f'--src {src!r} is not a CK+ layout; expected {expected}')
    emo_root = next(
        (p for p in (os.path.join(src, 'Emotion'), os.path.join(src, 'Emotion_labels', 'Emotion')) if os.path.isdir(p)),
        None,
    )
    if emo_root is None:
        raise PrepareError(f'{src!r} has cohn-kanade-images/ but no Emotion/ label folder; expected {expected}')
    if opts.ckplus_last_frames < 1:
        raise PrepareError(f'--ckplus-last-frames must be >= 1, got {opts.ckplus_last_frames}')
    samples = []
    for subject in sorted(os.listdir(img_root)):
        subject_dir = os.path.join(img_root, subject)
        if not os.path.isdir(subject_dir):
            continue
        for seq in sorted(os.listdir(subject_dir)):
            seq_dir = os.path.join(subject_dir, seq)
            if not os.path.isdir(seq_dir):
                continue
            emo_dir = os.path.join(emo_root, subject, seq)
            emo_files = (
                sorted(f for f in os.listdir(emo_dir) if f.endswith('_emotion.txt')) if os.path.isdir(emo_dir) else []
            )
            if not emo_files:
                report.skip('ckplus unlabelled sequence')
                continue
            emo_path = os.path.join(emo_dir, emo_files[-1])
            label = _ckplus_label(emo_path, report, src)
            if label is None:
                continue
            frames = _list_images(seq_dir)
            if not frames:
                report.bad_row(_rel(seq_dir, src), 'labelled sequence has no frames')
                continue
            last = frames[-opts.ckplus_last_frames :]
            picks = [(f, label) for f in last]
            if opts.ckplus_neutral_first and label != 'neutral':
                picks = [(frames[0], 'neutral')] + [(f, lab) for f, lab in picks if f != frames[0]]
            for fname, lab in picks:
                path = os.path.join(seq_dir, fname)
                samples.append(
                    Sample(os.path.splitext(fname)[0], lab, _file_loader(path), _rel(path, src), subject=subject)
                )
    return samples


def _ckplus_label(path: str, report: PrepareReport, src: str) -> str | None:
    where = _rel(path, src)
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read().strip()
        value = float(text)
    except (OSError, UnicodeDecodeError, ValueError):
        report.bad_row(where, 'unreadable emotion file (expected one number 0-7)')
        return None
    label = CKPLUS_LABELS.get(int(value)) if value == int(value) else None
    if label is None:
        report.bad_row(where, f'unknown emotion {text!r} (expected 0-7)')
    return label


_JAFFE_NAME = re.compile(r'^([A-Za-z]+)\.([A-Za-z]{2})\d*\.\d+', re.ASCII)


def read_jaffe(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """JAFFE: ``<subject>.<code><n>.<id>.tiff`` anywhere under ``src``; codes NE HA SA SU AN DI FE."""
    _require_dir(src, 'the JAFFE folder with images named like KA.AN1.39.tiff')
    samples = []
    for dirpath, dirnames, files in os.walk(src):
        dirnames.sort()
        for fname in sorted(files):
            if not fname.lower().endswith(IMAGE_EXTENSIONS) or fname.startswith('.'):
                continue
            path = os.path.join(dirpath, fname)
            m = _JAFFE_NAME.match(fname)
            label = JAFFE_CODES.get(m.group(2).upper()) if m else None
            if label is None:
                report.bad_row(
                    _rel(path, src),
                    'unknown expression code in file name (expected e.g. KA.AN1.39.tiff with NE/HA/SA/SU/AN/DI/FE)',
                )
                continue
            samples.append(
                Sample(
                    os.path.splitext(fname)[0], label, _file_loader(path), _rel(path, src), subject=m.group(1).upper()
                )
            )
    if not samples and not report.bad:
        raise PrepareError(f'--src {src!r} holds no JAFFE images (expected names like KA.AN1.39.tiff)')
    return samples


def read_imagefolder(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """Any class-folder tree ``src/<class>/**``, or ``src/<split>/<class>/**`` with train/val/test folders."""
    expected = 'a folder with one sub-folder per class (e.g. angry/, happy/), optionally inside train/val/test/'
    _require_dir(src, expected)
    split_dirs = _split_folders(src)
    if split_dirs:
        return [s for folder, split in split_dirs for s in _read_class_tree(folder, split, report, src, expected)]
    return _read_class_tree(src, None, report, src, expected)


READERS: dict[str, Callable[[str, PrepareReport, ReaderOptions], list[Sample]]] = {
    'rafdb': read_rafdb,
    'fer2013': read_fer2013,
    'ferplus': read_ferplus,
    'affectnet': read_affectnet,
    'ckplus': read_ckplus,
    'jaffe': read_jaffe,
    'imagefolder': read_imagefolder,
}
CONTEMPT_FORMATS = ('ferplus', 'affectnet', 'ckplus', 'imagefolder')
DEFAULT_SPLITS = {
    'rafdb': 'official',
    'fer2013': 'official',
    'ferplus': 'official',
    'affectnet': 'official',
    'ckplus': 'subject:0.8,0.1,0.1',
    'jaffe': 'subject:0.8,0.1,0.1',
    'imagefolder': 'random:0.8,0.1,0.1',
}


# ----------------------------------------------------------------------------------------------------------------
# Splits


def parse_split_spec(spec: str) -> SplitSpec:
    """Parse ``--split``.

    Syntax: ``official``; ``all:<split>`` (e.g. ``all:test``); ``subject:<fractions>`` or ``random:<fractions>``
    where fractions are ``0.8,0.1,0.1`` (train,val,test), ``0.9,0.1`` (train,test) or named
    ``train=0.7,val=0.3``. Fractions are normalised to sum to 1.
    """
    mode, _, rest = spec.strip().partition(':')
    mode = mode.lower()
    if mode == 'official' and not rest:
        return SplitSpec('official')
    if mode == 'all':
        name = rest.strip() or 'train'
        if not re.fullmatch(r'[A-Za-z0-9_]+', name):
            raise PrepareError(f'--split {spec!r}: bad split name {name!r}')
        return SplitSpec('all', ((name, 1.0),))
    if mode not in ('subject', 'random') or not rest:
        raise PrepareError(
            f'--split {spec!r}: expected official, all:<split>, subject:<fractions> or '
            f'random:<fractions> (e.g. subject:0.8,0.1,0.1)'
        )
    parts = [p.strip() for p in rest.split(',') if p.strip()]
    named = all('=' in p for p in parts)
    if not named and any('=' in p for p in parts):
        raise PrepareError(f'--split {spec!r}: name all fractions or none')
    if named:
        pairs = [tuple(p.split('=', 1)) for p in parts]
    elif len(parts) == 3:
        pairs = list(zip(SPLIT_NAMES, parts))
    elif len(parts) == 2:
        pairs = list(zip(('train', 'test'), parts))
    else:
        raise PrepareError(f'--split {spec!r}: give 2 (train,test) or 3 (train,val,test) fractions')
    try:
        ratios = [(name.strip(), float(v)) for name, v in pairs]
    except ValueError:
        raise PrepareError(f'--split {spec!r}: fractions must be numbers') from None
    names = [n for n, _ in ratios]
    if (
        any(v < 0 for _, v in ratios)
        or sum(v for _, v in ratios) <= 0
        or len(set(names)) != len(names)
        or not all(re.fullmatch(r'[A-Za-z0-9_]+', n) for n in names)
    ):
        raise PrepareError(f'--split {spec!r}: fractions must be >= 0, sum > 0, with distinct split names')
    total = sum(v for _, v in ratios)
    return SplitSpec(mode, tuple((n, v / total) for n, v in ratios))


def _allocate(n: int, ratios: Sequence[float], at_least_one: bool) -> list[int]:
    """Largest-remainder split of ``n`` items by ``ratios``; optionally >= 1 per positive ratio when possible."""
    exact = [n * r for r in ratios]
    counts = [int(x) for x in exact]
    order = sorted(range(len(ratios)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    if at_least_one and n >= sum(r > 0 for r in ratios):
        for i, r in enumerate(ratios):
            if r > 0 and counts[i] == 0:
                donor = max(range(len(counts)), key=lambda j: counts[j])
                counts[donor] -= 1
                counts[i] += 1
    return counts


def assign_splits(samples: Sequence[Sample], spec: SplitSpec, seed: int = 0) -> list[tuple[str, Sample]]:
    """Assign every sample a split.

    Args:
        samples: Samples from a reader.
        spec: ``official`` keeps ``Sample.split``; ``subject`` shuffles the subject ids with ``seed`` and
            gives each split a share of subjects (no subject in two splits); ``random`` shuffles each class
            with ``seed`` and splits it by the fractions (stratified); ``all`` puts everything in one split.
        seed: Seed of the shuffles.

    Returns:
        ``(split, sample)`` pairs, sorted by split order then source order.
    """
    samples = sorted(samples, key=lambda s: (s.source, s.name))
    if spec.mode == 'official':
        missing = [s.source for s in samples if s.split is None]
        if missing:
            raise PrepareError(
                f'this source has no official split (e.g. {missing[0]!r}); '
                'use --split subject:0.8,0.1,0.1, random:0.8,0.1,0.1 or all:test'
            )
        order = {n: i for i, n in enumerate(SPLIT_NAMES)}
        return sorted(((s.split, s) for s in samples), key=lambda p: (order[p[0]], p[1].label, p[1].name))
    if spec.mode == 'all':
        return sorted(((spec.ratios[0][0], s) for s in samples), key=lambda p: (p[1].label, p[1].name))
    names = [n for n, _ in spec.ratios]
    fractions = [r for _, r in spec.ratios]
    rng = random.Random(seed)
    out: list[tuple[str, Sample]] = []
    if spec.mode == 'subject':
        missing = [s.source for s in samples if s.subject is None]
        if missing:
            raise PrepareError(
                f'--split subject needs subject ids, which this format does not have (e.g. '
                f'{missing[0]!r}); use --split random:... instead'
            )
        subjects = sorted({s.subject for s in samples})
        rng.shuffle(subjects)
        counts = _allocate(len(subjects), fractions, at_least_one=True)
        split_of, start = {}, 0
        for name, count in zip(names, counts):
            for subject in subjects[start : start + count]:
                split_of[subject] = name
            start += count
        out = [(split_of[s.subject], s) for s in samples]
    else:
        by_class: dict[str, list[Sample]] = {}
        for s in samples:
            by_class.setdefault(s.label, []).append(s)
        for label in sorted(by_class):
            group = by_class[label]
            rng.shuffle(group)
            start = 0
            for name, count in zip(names, _allocate(len(group), fractions, at_least_one=False)):
                out += [(name, s) for s in group[start : start + count]]
                start += count
    order = {n: i for i, n in enumerate(names)}
    return sorted(out, key=lambda p: (order[p[0]], p[1].label, p[1].name))


# ----------------------------------------------------------------------------------------------------------------
# Writer


def _split_order(splits: Iterable[str]) -> list[str]:
    known = {n: i for i, n in enumerate(SPLIT_NAMES)}
    return sorted(set(splits), key=lambda s: (known.get(s, len(known)), s))


def _output_paths(dst: str) -> list[str]:
    """Things of ``dst`` that a previous run wrote."""
    out = []
    for name in sorted(os.listdir(dst)):
        path = os.path.join(dst, name)
        if name in (CLASSES_FILE, REPORT_FILE, 'lmdb') or (name.startswith('meta_info_') and name.endswith('.txt')):
            out.append(path)
        elif os.path.isfile(os.path.join(dst, meta_info_name(name))) or name in SPLIT_NAMES:
            out.append(path)
    return out


def _check_dst(dst: str, overwrite: bool) -> list[str]:
    """Paths of a previous output in ``dst`` (to remove); raises unless ``overwrite`` when there are any."""
    if os.path.isfile(dst):
        raise PrepareError(f'--dst {dst!r} is a file; expected a folder')
    if not os.path.isdir(dst):
        return []
    previous = _output_paths(dst)
    if previous and not overwrite:
        raise PrepareError(
            f'--dst {dst!r} already holds a prepared dataset ({os.path.basename(previous[0])}); '
            'pass --overwrite or choose another folder'
        )
    return previous


_UNSAFE = re.compile(r'[^A-Za-z0-9_-]+')


def safe_name(name: str) -> str:
    """An ASCII file stem usable as part of an lmdb key (other characters become ``_``)."""
    return _UNSAFE.sub('_', name).strip('_') or 'img'


def write_dataset(
    assigned: Sequence[tuple[str, Sample]],
    dst: str,
    classes: Sequence[str],
    report: PrepareReport,
    size: int = 112,
    resize_mode: str = 'crop',
    workers: int = 1,
    progress: bool = True,
) -> dict[str, dict[str, int]]:
    """Write images, ``classes.txt`` and ``meta_info_<split>.txt``.

    Args:
        assigned: ``(split, sample)`` pairs (see :func:`assign_splits`); labels must be in ``classes``.
        dst: Output root.
        classes: Class order; line i of ``classes.txt`` is label i.
        report: Unreadable images are recorded here and left out.
        size: Output side length.
        resize_mode: ``crop`` (centre square crop, then resize) or ``stretch``.
        workers: Threads that decode and encode images.
        progress: Show a tqdm progress bar.

    Returns:
        ``counts[split][class]`` of the images written.
    """
    from tqdm import tqdm

    label_of = {c: i for i, c in enumerate(classes)}
    used: set[str] = set()
    jobs = []
    for split, sample in assigned:
        stem = base = safe_name(sample.name)
        n = 1
        while f'{split}/{sample.label}/{stem}' in used:
            stem, n = f'{base}_{n}', n + 1
        used.add(f'{split}/{sample.label}/{stem}')
        jobs.append((split, sample, f'{split}/{sample.label}/{stem}.png'))

    def work(job: tuple[str, Sample, str]) -> str | None:
        _, sample, rel = job
        try:
            img = sample.load()
            if img is None or img.size == 0:
                return 'unreadable image'
            img = to_square_bgr(img, size, resize_mode)
        except Exception as err:  # noqa: BLE001 (any failure to decode is a bad row, not a crash)
            return f'unreadable image ({err})'
        path = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not cv2.imwrite(path, img):
            return f'could not write {path}'
        return None

    meta: dict[str, list[tuple[str, int]]] = {}
    counts: dict[str, dict[str, int]] = {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = pool.map(work, jobs)
        for (split, sample, rel), error in tqdm(
            zip(jobs, results), total=len(jobs), desc='write', unit='img', disable=not progress
        ):
            if error:
                report.bad_row(sample.source, error)
                continue
            meta.setdefault(split, []).append((rel, label_of[sample.label]))
            counts.setdefault(split, dict.fromkeys(classes, 0))[sample.label] += 1
    write_classes(os.path.join(dst, CLASSES_FILE), classes)
    for split in _split_order(meta):
        write_meta_info(os.path.join(dst, meta_info_name(split)), meta[split])
    return {split: counts[split] for split in _split_order(counts)}


def write_lmdb(dst: str, splits: Iterable[str]) -> dict[str, str]:
    """Write ``dst/lmdb/<split>.lmdb`` from ``meta_info_<split>.txt`` with BasicSR's ``make_lmdb_from_imgs``.

    Keys are the meta_info paths without extension (``train/happy/fer0000001``).

    Returns:
        ``{split: lmdb_path}``.
    """
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs  # srfer_plugin.compat is imported at the top

    paths = {}
    for split in splits:
        rel_paths = [p for p, _ in read_meta_info(os.path.join(dst, meta_info_name(split)))]
        lmdb_path = os.path.join(dst, 'lmdb', f'{split}.lmdb')
        os.makedirs(os.path.dirname(lmdb_path), exist_ok=True)
        total = sum(os.path.getsize(os.path.join(dst, p)) for p in rel_paths)
        make_lmdb_from_imgs(
            dst,
            lmdb_path,
            rel_paths,
            [os.path.splitext(p)[0] for p in rel_paths],
            map_size=max(64 << 20, 4 * total + (16 << 20)),
        )
        paths[split] = lmdb_path
    return paths


def format_counts_table(counts: dict[str, dict[str, int]], classes: Sequence[str]) -> str:
    """A text table of images per class (rows) and split (columns), with totals."""
    splits = list(counts)
    width = max([len(c) for c in classes] + [5])
    cols = [max(len(s), 6) for s in splits] + [6]
    lines = [' '.join([f'{"class":<{width}}'] + [f'{s:>{w}}' for s, w in zip(splits + ['total'], cols)])]
    for c in classes:
        row = [counts[s].get(c, 0) for s in splits]
        lines.append(' '.join([f'{c:<{width}}'] + [f'{v:>{w}}' for v, w in zip(row + [sum(row)], cols)]))
    totals = [sum(counts[s].values()) for s in splits]
    lines.append(' '.join([f'{"total":<{width}}'] + [f'{v:>{w}}' for v, w in zip(totals + [sum(totals)], cols)]))
    return '\n'.join(lines)


def format_report(report: PrepareReport, limit: int = 20) -> str:
    """A text summary of bad rows (first ``limit`` by name) and skipped rows."""
    lines = [f'bad rows: {len(report.bad)}']
    lines += [f'  {source}: {reason}' for source, reason in report.bad[:limit]]
    if len(report.bad) > limit:
        lines.append(f'  ... and {len(report.bad) - limit} more (see {REPORT_FILE})')
    lines.append(f'skipped on purpose: {sum(report.skipped.values())}')
    lines += [f'  {reason}: {n}' for reason, n in sorted(report.skipped.items())]
    return '\n'.join(lines)


def prepare_dataset(
    fmt: str,
    src: str,
    dst: str,
    size: int = 112,
    split: str | None = None,
    lmdb: bool = False,
    seed: int = 0,
    options: ReaderOptions | None = None,
    resize_mode: str = 'crop',
    overwrite: bool = False,
    workers: int = 1,
    progress: bool = True,
) -> PrepareResult:
    """Read ``src`` in format ``fmt`` and write the plugin's layout to ``dst``.

    Args:
        fmt: One of :data:`FORMATS`.
        src: Source folder or file in the format's distributed layout.
        dst: Output root (created; must not hold a prepared dataset unless ``overwrite``).
        size: Output side length in pixels.
        split: ``--split`` spec (see :func:`parse_split_spec`); None for the format's default
            (:data:`DEFAULT_SPLITS`; imagefolder uses its train/val/test folders when it has them).
        lmdb: Also write ``dst/lmdb/<split>.lmdb``.
        seed: Seed of subject/random splits.
        options: Format-specific :class:`ReaderOptions`.
        resize_mode: ``crop`` or ``stretch`` (see :func:`to_square_bgr`).
        overwrite: Remove a previous output in ``dst`` first.
        workers: Image threads.
        progress: Show tqdm progress bars.

    Returns:
        A :class:`PrepareResult`; the report is also written to ``dst/prepare_report.json``.

    Raises:
        PrepareError: Bad source, options or destination, or no usable image at all.
    """
    if fmt not in READERS:
        raise PrepareError(f'unknown format {fmt!r}; expected one of {list(FORMATS)}')
    options = options or ReaderOptions()
    if size < 1:
        raise PrepareError(f'--size must be >= 1, got {size}')
    if options.keep_contempt and fmt not in CONTEMPT_FORMATS:
        raise PrepareError(f'--keep-contempt: {fmt} has no contempt class (only {list(CONTEMPT_FORMATS)})')
    previous = _check_dst(dst, overwrite)
    report = PrepareReport()
    samples = READERS[fmt](src, report, options)
    classes = list(FER8_CLASSES if options.keep_contempt else FER7_CLASSES)
    kept = []
    for s in samples:
        if s.label in classes:
            kept.append(s)
        else:
            report.skip(s.label)
    if split is None:
        split = DEFAULT_SPLITS[fmt]
        if fmt == 'imagefolder' and kept and all(s.split for s in kept):
            split = 'official'
    spec = parse_split_spec(split)
    if not kept:
        raise PrepareError(
            f'no usable image in {src!r} ({len(report.bad)} bad rows, '
            f'{sum(report.skipped.values())} skipped)\n{format_report(report)}'
        )
    assigned = assign_splits(kept, spec, seed)
    for path in previous:  # only now that the source proved readable
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    os.makedirs(dst, exist_ok=True)
    counts = write_dataset(assigned, dst, classes, report, size, resize_mode, workers, progress)
    if not counts:
        raise PrepareError(f'every image of {src!r} was unreadable\n{format_report(report)}')
    result = PrepareResult(os.path.abspath(dst), classes, counts, report, spec)
    if lmdb:
        result.lmdb_paths = write_lmdb(dst, counts)
    result.report_path = os.path.join(dst, REPORT_FILE)
    with open(result.report_path, 'w', encoding='utf-8') as f:
        json.dump(
            {
                'format': fmt,
                'src': os.path.abspath(src),
                'size': size,
                'split': split,
                'seed': seed,
                'classes': classes,
                'counts': counts,
                'total': result.total,
                'lmdb': {k: os.path.relpath(v, dst) for k, v in result.lmdb_paths.items()},
                'bad_rows': [{'source': s, 'reason': r} for s, r in report.bad],
                'skipped': dict(sorted(report.skipped.items())),
            },
            f,
            indent=2,
        )
    return result
