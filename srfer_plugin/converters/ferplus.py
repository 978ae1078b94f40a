"""FER+: ``fer2013new.csv`` (ten vote columns per FER2013 row) with the pixels of ``fer2013.csv``."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from srfer_plugin.converters.fer2013 import read_fer2013_rows, usage_split
from srfer_plugin.converters.image_io import find_file, open_csv, parse_pixels
from srfer_plugin.converters.records import PrepareError, PrepareReport, ReaderOptions, Sample

# The vote columns of fer2013new.csv and the canonical class of each (None: skipped, never a class).
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


def _find_votes_csv(src: str, opts: ReaderOptions, expected: str) -> str:
    """``--ferplus-csv`` when given, else fer2013new.csv next to (or inside) ``src``."""
    if opts.ferplus_csv:
        if not os.path.isfile(opts.ferplus_csv):
            raise PrepareError(f'--ferplus-csv {opts.ferplus_csv!r} does not exist; expected fer2013new.csv')
        return opts.ferplus_csv
    folders = [src] if os.path.isdir(src) else [os.path.dirname(os.path.abspath(src))]
    cands = [os.path.join(d, n) for d in folders for n in ('fer2013new.csv', 'FERPlus/fer2013new.csv')]
    new_csv = next((c for c in cands if os.path.isfile(c)), '')
    if not new_csv:
        raise PrepareError(f'no fer2013new.csv found next to {src!r}; expected {expected}')
    return new_csv


def read_ferplus(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """Read FER+ with the majority-vote label (see :func:`ferplus_majority`); the split is the Usage column.

    Args:
        src: A folder holding fer2013new.csv and fer2013.csv, or fer2013.csv itself.
        report: Receives malformed rows, bad votes and unknown Usage values; counts unknown, NF and
            no-majority rows as skipped.
        opts: ``ferplus_csv`` locates fer2013new.csv when it is not next to ``src``.

    Returns:
        One sample per labelled row, named after the ``Image name`` column (else ``fer<row index>``).
    """
    expected = 'a folder holding fer2013new.csv and fer2013.csv (or --src fer2013.csv with --ferplus-csv)'
    fer_csv = find_file(src, ('fer2013.csv', 'fer2013/fer2013.csv'), expected)
    new_csv = _find_votes_csv(src, opts, expected)
    pixel_rows = read_fer2013_rows(fer_csv)
    fer_base, new_base = os.path.basename(fer_csv), os.path.basename(new_csv)
    samples = []
    with open_csv(new_csv) as (reader, header):
        cols = {h: i for i, h in enumerate(header)}
        missing = [c for c in ('Usage', 'Image name') + FERPLUS_COLUMNS if c not in cols]
        if missing:
            raise PrepareError(f'{new_csv!r} has no column(s) {missing}; expected the FER+ fer2013new.csv')
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
            split = usage_split(row[cols['Usage']], where, report)
            if split is None:
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
