"""Any class-folder tree: ``src/<class>/**``, or ``src/<split>/<class>/**`` with train/val/test folders."""

from __future__ import annotations

from srfer_plugin.converters.class_tree import read_class_tree, split_folders
from srfer_plugin.converters.image_io import require_dir
from srfer_plugin.converters.records import PrepareReport, ReaderOptions, Sample


def read_imagefolder(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """Read a class-folder tree; folder names go through the synonym table (e.g. ``Anger`` is angry).

    Args:
        src: A folder with one sub-folder per class, optionally inside train/val/test folders (the official split).
        report: Receives images in unknown class folders.
        opts: Not used (contempt is kept or dropped by the pipeline).

    Returns:
        One sample per image, named after its path inside the class folder.
    """
    expected = 'a folder with one sub-folder per class (e.g. angry/, happy/), optionally inside train/val/test/'
    require_dir(src, expected)
    split_dirs = split_folders(src)
    if split_dirs:
        return [s for folder, split in split_dirs for s in read_class_tree(folder, split, report, src, expected)]
    return read_class_tree(src, None, report, src, expected)
