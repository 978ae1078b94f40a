"""The whole conversion: read a source, keep the wanted classes, assign splits, write images and the report."""

from __future__ import annotations

import json
import os

from srfer_plugin.converters.formats import CONTEMPT_FORMATS, FORMATS
from srfer_plugin.converters.records import (
    REPORT_FILE,
    PrepareError,
    PrepareReport,
    PrepareResult,
    ReaderOptions,
    drop_repeated_listings,
    format_report,
)
from srfer_plugin.converters.splits import assign_splits, parse_split_spec
from srfer_plugin.converters.staging import check_sources_apart, staged_output
from srfer_plugin.converters.writer import check_dst, check_split_folders, write_dataset, write_lmdb
from srfer_plugin.data.fer_layout import FER7_CLASSES, FER8_CLASSES


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

    Nothing is lost on failure: ``dst`` may not overlap the source, the output is built in a working folder beside
    ``dst`` and swapped in only when complete (see :mod:`~srfer_plugin.converters.staging`), and files in ``dst``
    that a conversion does not write are kept: a folder named like a split that no conversion wrote is never
    written into or replaced, and an earlier output whose folders hold files it did not write is not replaced.

    Args:
        fmt: One of :data:`~srfer_plugin.converters.formats.FORMATS`.
        src: Source folder or file in the format's distributed layout.
        dst: Output root (created; must not hold a prepared dataset unless ``overwrite``, nor be, contain or
            lie inside ``src``, ``options.ferplus_csv`` or ``options.image_root``).
        size: Output side length in pixels.
        split: ``--split`` spec (see :func:`~srfer_plugin.converters.splits.parse_split_spec`); None for the
            format's default (imagefolder uses its train/val/test folders when it has them).
        lmdb: Also write ``dst/lmdb/<split>.lmdb``.
        seed: Seed of subject/random splits.
        options: Format-specific :class:`~srfer_plugin.converters.records.ReaderOptions`.
        resize_mode: ``crop`` or ``stretch`` (see :func:`~srfer_plugin.converters.image_io.to_square_bgr`).
        overwrite: Replace a previous output in ``dst`` (once the new one is complete).
        workers: Image threads.
        progress: Show tqdm progress bars.

    Returns:
        A :class:`~srfer_plugin.converters.records.PrepareResult`; the report is also written to
        ``dst/prepare_report.json``.

    Raises:
        PrepareError: Bad source, options (e.g. ``--split`` fractions that do not sum to 1) or destination, or no
            usable image at all; ``dst`` is then unchanged.
    """
    if fmt not in FORMATS:
        raise PrepareError(f'unknown format {fmt!r}; expected one of {list(FORMATS)}')
    options = options or ReaderOptions()
    if size < 1:
        raise PrepareError(f'--size must be >= 1, got {size}')
    if options.keep_contempt and fmt not in CONTEMPT_FORMATS:
        raise PrepareError(f'--keep-contempt: {fmt} has no contempt class (only {list(CONTEMPT_FORMATS)})')
    check_sources_apart({'--src': src, '--ferplus-csv': options.ferplus_csv, '--image-root': options.image_root}, dst)
    spec = parse_split_spec(split) if split is not None else None  # a bad --split fails before the source is read
    check_dst(dst, overwrite)
    report = PrepareReport()
    samples = drop_repeated_listings(FORMATS[fmt].read(src, report, options), report)
    classes = list(FER8_CLASSES if options.keep_contempt else FER7_CLASSES)
    kept = []
    for s in samples:
        if s.label in classes:
            kept.append(s)
        else:
            report.skip(s.label)
    if split is None:
        split = FORMATS[fmt].default_split
        if FORMATS[fmt].official_if_present and kept and all(s.split for s in kept):
            split = 'official'
        spec = parse_split_spec(split)
    if not kept:
        raise PrepareError(
            f'no usable image in {src!r} ({len(report.bad)} bad rows, '
            f'{sum(report.skipped.values())} skipped)\n{format_report(report)}'
        )
    assigned = assign_splits(kept, spec, seed)
    check_split_folders(dst, {s for s, _ in assigned})
    with staged_output(dst, overwrite) as work:
        counts = write_dataset(assigned, work, classes, report, size, resize_mode, workers, progress)
        if not counts:
            raise PrepareError(f'every image of {src!r} was unreadable\n{format_report(report)}')
        result = PrepareResult(os.path.abspath(dst), classes, counts, report, spec)
        if lmdb:
            written = write_lmdb(work, counts)
            result.lmdb_paths = {s: os.path.join(dst, os.path.relpath(p, work)) for s, p in written.items()}
        result.report_path = os.path.join(dst, REPORT_FILE)
        _write_report_json(result, work, fmt, src, size, split, seed)
    return result


def _write_report_json(result: PrepareResult, work: str, fmt: str, src: str, size: int, split: str, seed: int) -> None:
    """Write the report into ``work``: options, counts, lmdb paths, bad rows (with names) and skipped counts."""
    with open(os.path.join(work, REPORT_FILE), 'w', encoding='utf-8') as f:
        json.dump(
            {
                'format': fmt,
                'src': os.path.abspath(src),
                'size': size,
                'split': split,
                'seed': seed,
                'classes': result.classes,
                'counts': result.counts,
                'total': result.total,
                'lmdb': {k: os.path.relpath(v, result.dst) for k, v in result.lmdb_paths.items()},
                'bad_rows': [{'source': s, 'reason': r} for s, r in result.report.bad],
                'skipped': dict(sorted(result.report.skipped.items())),
            },
            f,
            indent=2,
        )
