"""AffectNet: csv manifests, ``train_set``/``val_set`` folders with ``.npy`` annotations, or id class folders."""

from __future__ import annotations

import os

import numpy as np

from srfer_plugin.converters.class_tree import read_class_tree, split_folders
from srfer_plugin.converters.image_io import file_loader, list_images, open_csv, rel_path, require_dir, safe_stem
from srfer_plugin.converters.records import (
    SPLIT_SYNONYMS,
    PrepareError,
    PrepareReport,
    ReaderOptions,
    Sample,
    canonical_class,
)
from srfer_plugin.data.fer_layout import FER8_CLASSES

AFFECTNET_LABELS = dict(enumerate(FER8_CLASSES))  # 0-7 are already in the canonical order
AFFECTNET_DROPPED = {8: 'none', 9: 'uncertain', 10: 'non-face'}

# Lower-case csv column names tried in order for the image path, the expression and the split.
_PATH_COLUMNS = ('subdirectory_filepath', 'path', 'image', 'filepath', 'file', 'filename', 'image_path', 'pth')
_LABEL_COLUMNS = ('expression', 'label', 'emotion', 'class')
_SPLIT_COLUMNS = ('split', 'usage', 'set', 'subset')


def _affectnet_label(text: str, where: str, report: PrepareReport) -> str | None:
    """Label of an expression id (0-10) or name; ids 8-10 are skipped, unknown values are bad rows."""
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


def _folder_label(folder: str) -> tuple[str | None, str | None]:
    """Class folders named by expression id (ids 8-10 skipped) or by class name."""
    if not folder.isdigit():
        return canonical_class(folder), None
    dropped = AFFECTNET_DROPPED.get(int(folder))
    return AFFECTNET_LABELS.get(int(folder)), f'affectnet {dropped}' if dropped else None


def _column(lower: list[str], names: tuple[str, ...]) -> int | None:
    """Index of the first of ``names`` found in the lower-case header."""
    return next((lower.index(c) for c in names if c in lower), None)


def _image_root(csv_path: str, opts: ReaderOptions) -> str:
    """``--image-root``, else the first existing usual image folder near the csv (else the csv's folder)."""
    if opts.image_root:
        return opts.image_root
    csv_dir = os.path.dirname(os.path.abspath(csv_path))
    roots = [
        os.path.join(csv_dir, 'Manually_Annotated_Images'),
        os.path.join(csv_dir, '..', 'Manually_Annotated_Images'),
        os.path.join(csv_dir, '..', 'Manually_Annotated', 'Manually_Annotated_Images'),
        csv_dir,
    ]
    return next((r for r in roots if os.path.isdir(r)), roots[-1])


def _read_affectnet_csv(csv_path: str, report: PrepareReport, opts: ReaderOptions, split: str | None) -> list[Sample]:
    """Samples of a csv manifest; a split column, when present, overrides ``split``."""
    samples = []
    base = os.path.basename(csv_path)
    with open_csv(csv_path) as (reader, header):
        lower = [h.lower() for h in header]
        path_col, label_col = _column(lower, _PATH_COLUMNS), _column(lower, _LABEL_COLUMNS)
        split_col = _column(lower, _SPLIT_COLUMNS)
        if path_col is None or label_col is None:
            raise PrepareError(
                f'{csv_path!r} needs an image path column (subDirectory_filePath/path) and an '
                f'expression column (expression/label); got {header}'
            )
        root = _image_root(csv_path, opts)
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
            loader = file_loader(os.path.join(root, rel))
            key = os.path.normpath(os.path.join(root, rel))
            samples.append(Sample(safe_stem(rel), label, loader, f'{where} ({rel})', split=row_split, key=key))
    return samples


def _read_affectnet_npy(folder: str, split: str, report: PrepareReport, src: str) -> list[Sample]:
    """Samples of ``folder/images/<id>.jpg`` labelled by ``folder/annotations/<id>_exp.npy``."""
    image_dir, ann_dir = os.path.join(folder, 'images'), os.path.join(folder, 'annotations')
    samples = []
    for fname in list_images(image_dir):
        stem = os.path.splitext(fname)[0]
        path = os.path.join(image_dir, fname)
        ann = os.path.join(ann_dir, f'{stem}_exp.npy')
        where = rel_path(path, src)
        if not os.path.isfile(ann):
            report.bad_row(where, f'no annotation {rel_path(ann, src)}')
            continue
        try:
            text = str(np.load(ann, allow_pickle=False).reshape(-1)[0])
        except Exception as err:  # noqa: BLE001 (any unreadable annotation is a bad row)
            report.bad_row(rel_path(ann, src), f'unreadable annotation ({err})')
            continue
        label = _affectnet_label(text, where, report)
        if label is not None:
            samples.append(Sample(stem, label, file_loader(path), where, split=split))
    return samples


def read_affectnet(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """Read AffectNet from a csv manifest or a folder tree; ids 8-10 (none, uncertain, non-face) are skipped.

    Accepted layouts: a csv file (``subDirectory_filePath``/``path`` + ``expression``/``label`` columns, optional
    ``split`` column); a folder with the official ``training.csv``/``validation.csv`` (also under
    ``Manually_Annotated_file_lists/``); ``train_set``/``val_set`` folders with ``images/`` and
    ``annotations/<id>_exp.npy``; or ``train``/``val`` folders whose sub-folders are expression ids or names.

    Args:
        src: A csv manifest (split from its name: train*, val*/test*) or a folder in one of the layouts.
        report: Receives malformed rows, unknown expressions and missing annotations; counts ids 8-10 as skipped.
        opts: ``image_root`` is the folder the csv image paths are relative to.

    Returns:
        One sample per labelled image, named after its path (csv) or id (npy annotations).
    """
    expected = (
        'an AffectNet csv manifest, a folder with training.csv/validation.csv, train_set/val_set folders '
        'with images/ and annotations/, or train/val folders with one sub-folder per expression id'
    )
    if os.path.isfile(src):
        name = os.path.basename(src).lower()
        split = 'train' if name.startswith('train') else 'val' if name.startswith(('val', 'test')) else None
        return _read_affectnet_csv(src, report, opts, split)
    require_dir(src, expected)
    for lists in (src, os.path.join(src, 'Manually_Annotated_file_lists')):
        csvs = [(os.path.join(lists, n), s) for n, s in (('training.csv', 'train'), ('validation.csv', 'val'))]
        if any(os.path.isfile(p) for p, _ in csvs):
            return [s for p, sp in csvs if os.path.isfile(p) for s in _read_affectnet_csv(p, report, opts, sp)]
    npy_sets = [(os.path.join(src, n), s) for n, s in (('train_set', 'train'), ('val_set', 'val'))]
    if any(os.path.isdir(os.path.join(p, 'images')) for p, _ in npy_sets):
        return [s for p, sp in npy_sets if os.path.isdir(p) for s in _read_affectnet_npy(p, sp, report, src)]
    split_dirs = split_folders(src)
    if split_dirs:
        return [
            s
            for folder, split in split_dirs
            for s in read_class_tree(folder, split, report, src, expected, folder_label=_folder_label)
        ]
    raise PrepareError(f'--src {src!r} is not an AffectNet layout; expected {expected}')
