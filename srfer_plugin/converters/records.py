"""Records shared by the readers, the split assignment and the writer: samples, options, report, result."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from srfer_plugin.converters.splits import SplitSpec

REPORT_FILE = 'prepare_report.json'
SPLIT_NAMES: tuple[str, ...] = ('train', 'val', 'test')

# Folder-name synonyms (lower case) for class-folder trees.
CLASS_SYNONYMS: dict[str, str] = {
    name: canonical
    for canonical, names in {
        'neutral': ('neutral', 'neutrality', 'neu', 'ne', 'calm'),
        'happy': ('happy', 'happiness', 'happ', 'joy', 'ha', 'hap'),
        'sad': ('sad', 'sadness', 'sa'),
        'surprise': ('surprise', 'surprised', 'surprize', 'su', 'sur'),
        'fear': ('fear', 'fearful', 'afraid', 'scared', 'fe'),
        'disgust': ('disgust', 'disgusted', 'disgusting', 'di', 'dis'),
        'angry': ('angry', 'anger', 'an', 'ang'),
        'contempt': ('contempt', 'contemptuous', 'co', 'con'),
    }.items()
    for name in names
}

# Split-name synonyms (lower case) of split folders, csv Usage/split columns.
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
        key: The image file when a label file lists it (normalised path): samples with one key are one image
            listed more than once (see :func:`drop_repeated_listings`); None for images found on disk or in a csv
            of pixels.
        row: The label-file row that listed it (``file:line N (name)``), for reports; empty: ``source``.
    """

    name: str
    label: str
    load: Callable[[], np.ndarray | None]
    source: str
    split: str | None = None
    subject: str | None = None
    key: str | None = None
    row: str = ''


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


# A reader turns ``src`` (folder or file in the format's distributed layout) into samples; it records bad rows
# and rows skipped on purpose in the report, and raises PrepareError when ``src`` is not in its layout.
Reader = Callable[[str, PrepareReport, ReaderOptions], list[Sample]]


@dataclass
class PrepareResult:
    """What :func:`~srfer_plugin.converters.prepare_dataset` wrote."""

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


def drop_repeated_listings(samples: Sequence[Sample], report: PrepareReport) -> list[Sample]:
    """Keep each listed image once; report the rows that list an image again.

    Rows listing one image (same :attr:`Sample.key`) with the same label and split: the first is kept, each later
    one is a bad row naming the first. With different labels (or splits) every one of them is a bad row naming all
    of them, and the image is left out: the label file does not say which one is right.

    Args:
        samples: A reader's samples, in label-file order.
        report: Receives the repeated rows.

    Returns:
        The samples without the repeated rows.
    """
    rows: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        if sample.key is not None:
            rows.setdefault(sample.key, []).append(index)
    dropped: set[int] = set()
    for indices in rows.values():
        if len(indices) < 2:
            continue
        listed = [samples[i] for i in indices]
        first = listed[0].row or listed[0].source
        if len({(s.label, s.split) for s in listed}) == 1:
            for sample in listed[1:]:
                reason = f'duplicate of {first} (same image, same label): the image is written once'
                report.bad_row(sample.row or sample.source, reason)
            dropped.update(indices[1:])
            continue
        what = 'labels' if len({s.label for s in listed}) > 1 else 'splits'
        given = '; '.join(
            f'{s.row or s.source}: {s.label}' + (f' ({s.split})' if what == 'splits' else '') for s in listed
        )
        for sample in listed:
            report.bad_row(
                sample.row or sample.source, f'conflicting {what} for one image ({given}); the image is left out'
            )
        dropped.update(indices)
    return [sample for index, sample in enumerate(samples) if index not in dropped]


def canonical_class(name: str) -> str | None:
    """Map a folder/class name through the synonym table.

    Args:
        name: Folder or class name (any case, surrounding spaces ignored).

    Returns:
        The canonical class name, or None when the name is unknown.
    """
    return CLASS_SYNONYMS.get(name.strip().lower())


def format_counts_table(counts: dict[str, dict[str, int]], classes: Sequence[str]) -> str:
    """A text table of images per class (rows) and split (columns), with totals.

    Args:
        counts: ``counts[split][class]``, as in :attr:`PrepareResult.counts`.
        classes: Row order.

    Returns:
        The table, one line per class plus a header and a total line.
    """
    splits = list(counts)
    width = max([len(c) for c in classes] + [5])
    cols = [max(len(s), 6) for s in splits] + [6]

    def line(first: str, values: Sequence[object]) -> str:
        return ' '.join([f'{first:<{width}}'] + [f'{v:>{w}}' for v, w in zip(values, cols)])

    lines = [line('class', splits + ['total'])]
    for c in classes:
        row = [counts[s].get(c, 0) for s in splits]
        lines.append(line(c, row + [sum(row)]))
    totals = [sum(counts[s].values()) for s in splits]
    lines.append(line('total', totals + [sum(totals)]))
    return '\n'.join(lines)


def format_report(report: PrepareReport, limit: int = 20) -> str:
    """A text summary of bad rows (first ``limit`` by name) and skipped rows.

    Args:
        report: The report to summarise.
        limit: Bad rows listed by name; the rest are counted.

    Returns:
        The summary, several lines.
    """
    lines = [f'bad rows: {len(report.bad)}']
    lines += [f'  {source}: {reason}' for source, reason in report.bad[:limit]]
    if len(report.bad) > limit:
        lines.append(f'  ... and {len(report.bad) - limit} more (see {REPORT_FILE})')
    lines.append(f'skipped on purpose: {sum(report.skipped.values())}')
    lines += [f'  {reason}: {n}' for reason, n in sorted(report.skipped.items())]
    return '\n'.join(lines)
