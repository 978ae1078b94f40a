"""RAF-DB basic: ``EmoLabel/list_patition_label.txt`` and ``Image/aligned/<stem>_aligned.jpg``."""

from __future__ import annotations

import os

from srfer_plugin.converters.image_io import file_loader, rel_path, require_dir
from srfer_plugin.converters.records import PrepareError, PrepareReport, ReaderOptions, Sample

# RAF-DB label ids mapped to the canonical class names of FER8_CLASSES.
RAFDB_LABELS = {1: 'surprise', 2: 'fear', 3: 'disgust', 4: 'happy', 5: 'sad', 6: 'angry', 7: 'neutral'}


def read_rafdb(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """Read RAF-DB basic; the split is the file-name prefix (train/test).

    Args:
        src: The ``basic`` folder (or its parent).
        report: Receives malformed lines, unknown labels and names without a train/test prefix (an image listed
            twice is reported by :func:`~srfer_plugin.converters.records.drop_repeated_listings`).
        opts: Not used.

    Returns:
        One sample per label line, named after the image stem.
    """
    expected = 'the RAF-DB "basic" folder with EmoLabel/list_patition_label.txt and Image/aligned/'
    require_dir(src, expected)
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
            listing = {'key': os.path.normpath(path), 'row': f'{where} ({fname})'}
            samples.append(Sample(stem, label, file_loader(path), rel_path(path, src), split=split, **listing))
    return samples
