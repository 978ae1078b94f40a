"""Class-folder trees (``root/<class>/**``, optionally inside train/val/test folders), shared by several readers."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Optional

from srfer_plugin.converters.image_io import file_loader, rel_path, safe_stem, walk_images
from srfer_plugin.converters.records import SPLIT_SYNONYMS, PrepareError, PrepareReport, Sample, canonical_class

# Maps a class folder name to ``(label, skip_reason)``: label None and no reason make its images bad rows; a
# reason makes them skipped on purpose.
FolderLabel = Callable[[str], tuple[Optional[str], Optional[str]]]


def synonym_label(folder: str) -> tuple[str | None, str | None]:
    """The default :data:`FolderLabel`: the folder name through the synonym table, never skipped."""
    return canonical_class(folder), None


def split_folders(src: str) -> list[tuple[str, str]]:
    """Sub-folders of ``src`` named like splits (train/val/test, training, ...).

    Args:
        src: The folder to look in.

    Returns:
        ``(folder, split)`` pairs, sorted by folder name.
    """
    out = []
    for d in sorted(os.listdir(src)):
        split = SPLIT_SYNONYMS.get(d.lower())
        if split and os.path.isdir(os.path.join(src, d)):
            out.append((os.path.join(src, d), split))
    return out


def read_class_tree(
    root: str,
    split: str | None,
    report: PrepareReport,
    src: str,
    expected: str,
    folder_label: FolderLabel = synonym_label,
    subject_of: Callable[[str], str | None] | None = None,
) -> list[Sample]:
    """Images under ``root/<class folder>/**``.

    Args:
        root: Folder holding one sub-folder per class.
        split: Official split of these images, or None.
        report: Receives unknown class folders and unparsable subject ids as bad rows.
        src: The ``--src`` root that report names are relative to.
        expected: The expected layout, for the error when ``root`` has no sub-folders.
        folder_label: Label (or skip reason) of a class folder's name.
        subject_of: Subject id from a file name (None: a bad row); None when the format has no subjects.

    Returns:
        One sample per image, named after its path inside the class folder.
    """
    folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith('.'))
    if not folders:
        raise PrepareError(f'{root!r} has no class sub-folders; expected {expected}')
    samples = []
    for folder in folders:
        label, skip = folder_label(folder)
        for path in walk_images(os.path.join(root, folder)):
            where = rel_path(path, src)
            if skip:
                report.skip(skip)
                continue
            if label is None:
                report.bad_row(where, f'unknown class folder {folder!r}')
                continue
            subject = None
            if subject_of is not None:
                subject = subject_of(os.path.basename(path))
                if subject is None:
                    report.bad_row(where, 'cannot parse the subject id from the file name')
                    continue
            rel = os.path.relpath(path, os.path.join(root, folder))
            samples.append(Sample(safe_stem(rel), label, file_loader(path), where, split=split, subject=subject))
    return samples
