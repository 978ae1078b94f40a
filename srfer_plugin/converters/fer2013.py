"""FER2013: ``fer2013.csv`` with columns emotion, pixels (48x48 grayscale) and Usage."""

from __future__ import annotations

import os

from srfer_plugin.converters.image_io import find_file, open_csv, parse_pixels
from srfer_plugin.converters.records import SPLIT_SYNONYMS, PrepareError, PrepareReport, ReaderOptions, Sample

# FER2013 emotion ids mapped to the canonical class names of FER8_CLASSES.
FER2013_LABELS = {0: 'angry', 1: 'disgust', 2: 'fear', 3: 'happy', 4: 'sad', 5: 'surprise', 6: 'neutral'}


def read_fer2013_rows(csv_path: str) -> list[tuple[int, int, list[str], dict[str, int]]]:
    """Read the rows of fer2013.csv (also used by the FER+ reader for the pixels).

    Args:
        csv_path: The fer2013.csv file.

    Returns:
        ``(row_index, line_no, fields, column_index)`` per data row; ``row_index`` counts data rows and
        ``column_index`` maps lower-case column names to field positions.
    """
    with open_csv(csv_path) as (reader, header):
        cols = {h.lower(): i for i, h in enumerate(header)}
        missing = [c for c in ('emotion', 'pixels') if c not in cols]
        if missing:
            raise PrepareError(
                f'{csv_path!r} has no column(s) {missing}; expected fer2013.csv with header '
                f'"emotion,pixels,Usage", got {header}'
            )
        return [(index, reader.line_num, row, cols) for index, row in enumerate(reader)]


def usage_split(usage: str, where: str, report: PrepareReport) -> str | None:
    """Split of a Usage value (Training/PublicTest/PrivateTest, also used by FER+).

    Args:
        usage: The Usage field.
        where: The row, for the report.
        report: Receives an unknown value as a bad row.

    Returns:
        ``train``/``val``/``test``, or None when the value is unknown.
    """
    usage = usage.strip()
    split = SPLIT_SYNONYMS.get(usage.lower())
    if split is None:
        report.bad_row(where, f'unknown Usage {usage!r} (expected Training/PublicTest/PrivateTest)')
    return split


def read_fer2013(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """Read FER2013; the split is the Usage column (Training/PublicTest/PrivateTest) when there is one.

    Args:
        src: fer2013.csv or a folder holding it.
        report: Receives malformed rows, unknown emotions and unknown Usage values.
        opts: Not used.

    Returns:
        One sample per row, named ``fer<data row index>``; pixels are parsed when the image is loaded.
    """
    csv_path = find_file(
        src,
        ('fer2013.csv', 'fer2013/fer2013.csv', 'icml_face_data.csv'),
        'fer2013.csv (columns emotion,pixels,Usage) or a folder holding it',
    )
    base = os.path.basename(csv_path)
    samples = []
    for index, line_no, row, cols in read_fer2013_rows(csv_path):
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
            split = usage_split(row[cols['usage']], where, report)
            if split is None:
                continue
        pixels = row[cols['pixels']]
        samples.append(Sample(f'fer{index:07d}', label, lambda p=pixels: parse_pixels(p), where, split=split))
    return samples
