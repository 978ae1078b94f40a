"""Writing the plugin's layout: images, ``classes.txt``, ``meta_info_<split>.txt`` and optional lmdb files."""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2

from srfer_plugin.converters.image_io import to_square_bgr
from srfer_plugin.converters.records import REPORT_FILE, PrepareError, PrepareReport, Sample
from srfer_plugin.converters.splits import split_order
from srfer_plugin.data.fer_layout import (
    CLASSES_FILE,
    files_under,
    meta_info_name,
    read_meta_info,
    read_text_lines,
    write_classes,
    write_meta_info,
)
from srfer_plugin.utils.formatting import first_of

_UNSAFE = re.compile(r'[^A-Za-z0-9_-]+')
# What BasicSR's make_lmdb_from_imgs writes into ``lmdb/<split>.lmdb``.
_LMDB_FILE = re.compile(r'lmdb/[^/]+\.lmdb/(data\.mdb|lock\.mdb|meta_info\.txt)')
_SHOWN_FILES = 20


def _reported_splits(dst: str) -> set[str]:
    """The splits the earlier conversion's ``prepare_report.json`` lists (its ``counts``); none if it cannot say."""
    try:
        with open(os.path.join(dst, REPORT_FILE), encoding='utf-8-sig') as f:
            counts = json.load(f).get('counts')
    except (OSError, ValueError, AttributeError):
        return set()
    return {str(split) for split in counts} if isinstance(counts, dict) else set()


def previous_output_paths(dst: str) -> list[str]:
    """Paths in ``dst`` that an earlier conversion wrote (and a new one replaces); other files are the user's.

    A folder is an earlier split only when the earlier conversion wrote it: it is a real folder (not a link) and
    its ``meta_info_<split>.txt`` lies beside it or the earlier ``prepare_report.json`` lists it. A folder that is
    merely named like a split (``test/`` holding the user's notes) is the user's and is kept.

    Args:
        dst: An existing output folder.

    Returns:
        ``classes.txt``, the report, ``lmdb``, ``meta_info_*.txt`` and the split folders, sorted by name.
    """
    reported = _reported_splits(dst)
    out = []
    for name in sorted(os.listdir(dst)):
        path = os.path.join(dst, name)
        if name in (CLASSES_FILE, REPORT_FILE, 'lmdb') or (name.startswith('meta_info_') and name.endswith('.txt')):
            out.append(path)
        elif (
            not name.startswith('.')
            and os.path.isdir(path)
            and not os.path.islink(path)
            and (name in reported or os.path.isfile(os.path.join(dst, meta_info_name(name))))
        ):
            out.append(path)
    return out


def _listed_files(dst: str, split: str) -> set[str]:
    """The paths ``meta_info_<split>.txt`` lists (normalised, ``/``); empty when it is missing."""
    path = os.path.join(dst, meta_info_name(split))
    if not os.path.isfile(path):
        return set()
    listed = set()
    for line in read_text_lines(path, 'meta_info_file'):
        parts = line.strip().rsplit(maxsplit=1)
        if parts:
            listed.add(posixpath.normpath(parts[0].replace('\\', '/')))
    return listed


def unlisted_files(dst: str, previous: Iterable[str]) -> list[str]:
    """Files inside the earlier output's folders that the earlier conversion did not write.

    A file of ``<split>/`` is the converter's when ``meta_info_<split>.txt`` lists it (so none is when that file is
    missing); a file of ``lmdb/`` when it is one of the files BasicSR writes into ``lmdb/<split>.lmdb``.

    Args:
        dst: The output folder.
        previous: Paths from :func:`previous_output_paths`.

    Returns:
        Their paths relative to ``dst`` (``/``-separated), sorted.

    Raises:
        PrepareError: A folder cannot be listed or a meta_info file cannot be read, so nothing can be told apart.
    """
    out = []
    for path in previous:
        name = os.path.basename(path)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        try:
            files = files_under(dst, path)
            if name == 'lmdb':
                out += [f for f in files if not _LMDB_FILE.fullmatch(f)]
            else:
                listed = _listed_files(dst, name)
                out += [f for f in files if f not in listed]
        except (OSError, ValueError) as err:
            raise PrepareError(
                f'--dst {dst!r}: cannot tell the files the earlier conversion wrote in {path!r} from others ({err}); '
                'nothing was written or deleted'
            ) from None
    return sorted(out)


def check_replaceable(dst: str, previous: Sequence[str]) -> None:
    """Refuse to replace an earlier output whose folders hold files the earlier conversion did not write.

    Replacing the output deletes its folders as a whole, so such files (the user's notes in ``train/``, an image
    added by hand or one whose meta_info line was removed) would be lost; they are named instead.

    Args:
        dst: The output folder.
        previous: Paths from :func:`previous_output_paths`.

    Raises:
        PrepareError: Such files exist (the first ones are named).
    """
    extra = unlisted_files(dst, previous)
    if not extra:
        return
    shown = first_of(extra, _SHOWN_FILES)
    folders = sorted({f.split('/', 1)[0] for f in extra})
    no_meta = [d for d in folders if d != 'lmdb' and not os.path.isfile(os.path.join(dst, meta_info_name(d)))]
    why = f'; {", ".join(meta_info_name(d) for d in no_meta)} is missing' if no_meta else ''
    raise PrepareError(
        f"--dst {dst!r}: {len(extra)} file(s) in the earlier output's folders {folders} are not listed as its "
        f'output (meta_info_<split>.txt lists what a conversion wrote){why}, and replacing the output would delete '
        'them:\n  ' + '\n  '.join(shown) + f'\nMove them out of {dst!r} and run again (nothing was written or deleted)'
    )


def check_dst(dst: str, overwrite: bool) -> list[str]:
    """Check the output folder before anything is read or written.

    Args:
        dst: The ``--dst`` folder (may not exist yet).
        overwrite: Whether a previous output may be replaced.

    Returns:
        Paths of a previous output in ``dst``, replaced only once the new output is complete.

    Raises:
        PrepareError: ``dst`` is a file, holds a previous output and ``overwrite`` is False, or the previous
            output's folders hold files it did not write (see :func:`check_replaceable`).
    """
    if os.path.isfile(dst):
        raise PrepareError(f'--dst {dst!r} is a file; expected a folder')
    if not os.path.isdir(dst):
        return []
    previous = previous_output_paths(dst)
    if previous and not overwrite:
        raise PrepareError(
            f'--dst {dst!r} already holds a prepared dataset ({os.path.basename(previous[0])}); '
            'pass --overwrite or choose another folder'
        )
    check_replaceable(dst, previous)
    return previous


def check_split_folders(dst: str, splits: Iterable[str]) -> None:
    """Refuse split names whose folder in ``dst`` exists but was not written by a conversion (with or without
    ``--overwrite``).

    Writing into such a folder would mix the user's files with the output; replacing it would delete them.

    Args:
        dst: The ``--dst`` folder (may not exist yet).
        splits: Names of the splits about to be written.

    Raises:
        PrepareError: ``dst/<split>`` is a folder or file of the user's.
    """
    if not os.path.isdir(dst):
        return
    previous = set(previous_output_paths(dst))
    paths = {s: os.path.join(dst, s) for s in sorted(splits)}
    taken = [s for s, path in paths.items() if os.path.lexists(path) and path not in previous]
    if taken:
        raise PrepareError(
            f'--dst {dst!r} already has {[paths[s] for s in taken]} that no conversion wrote (no '
            f'meta_info_<split>.txt beside it, not listed in {REPORT_FILE}); move them away or choose other split '
            'names in --split (nothing was written or deleted)'
        )


def safe_name(name: str) -> str:
    """An ASCII file stem usable as part of an lmdb key (other characters become ``_``; ``img`` if none is left)."""
    return _UNSAFE.sub('_', name).strip('_') or 'img'


def _output_names(assigned: Sequence[tuple[str, Sample]]) -> list[tuple[str, Sample, str]]:
    """``(split, sample, relative .png path)`` with safe names, numbered when two fall on one path."""
    used: set[str] = set()
    jobs = []
    for split, sample in assigned:
        stem = base = safe_name(sample.name)
        n = 1
        while f'{split}/{sample.label}/{stem}' in used:
            stem, n = f'{base}_{n}', n + 1
        used.add(f'{split}/{sample.label}/{stem}')
        jobs.append((split, sample, f'{split}/{sample.label}/{stem}.png'))
    return jobs


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
        assigned: ``(split, sample)`` pairs (see :func:`~srfer_plugin.converters.splits.assign_splits`); labels
            must be in ``classes``.
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
    jobs = _output_names(assigned)

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
    for split in split_order(meta):
        write_meta_info(os.path.join(dst, meta_info_name(split)), meta[split])
    return {split: counts[split] for split in split_order(counts)}


def write_lmdb(dst: str, splits: Iterable[str]) -> dict[str, str]:
    """Write ``dst/lmdb/<split>.lmdb`` from ``meta_info_<split>.txt`` with BasicSR's ``make_lmdb_from_imgs``.

    Keys are the meta_info paths without extension (``train/happy/fer0000001``).

    Args:
        dst: Output root written by :func:`write_dataset`.
        splits: The splits to convert.

    Returns:
        ``{split: lmdb_path}``.
    """
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs  # importing srfer_plugin installed the shim basicsr needs

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
