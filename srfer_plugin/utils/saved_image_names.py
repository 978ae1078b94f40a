"""Names of the SR images that validation and test save (``val.save_img``): unique, readable, stable."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

from srfer_plugin.utils.inference_outputs import printable_text


def sr_image_stem(lq_path: str, roots: Sequence[str | None]) -> str:
    """The name of a validation image's SR image: its path relative to its dataset root, ``/`` written ``_``.

    Args:
        lq_path: The LR image's path (or lmdb key) as the dataset gives it.
        roots: The dataset's roots, first match used (``dataroot_lq``, ``dataroot_gt``).

    Returns:
        ``happy_im0`` for ``<root>/happy/im0.png`` (without extension, undecodable bytes as ``\\xHH``); a relative
        path outside every root (an lmdb key) is used as it is; any other path gives its file name alone.
    """
    rel = None
    for root in roots:
        if root:
            try:
                rel = os.path.relpath(os.path.abspath(lq_path), os.path.abspath(root))
            except ValueError:  # another drive
                continue
            if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
                break
            rel = None
    if rel is None:
        rel = os.path.normpath(lq_path)
        if os.path.isabs(rel) or rel == os.pardir or rel.startswith(os.pardir + os.sep):
            rel = os.path.basename(rel)
    parts = [part for part in os.path.splitext(rel)[0].split(os.sep) if part not in ('', os.curdir)]
    return printable_text('_'.join(parts)) or 'image'


class SavedImageNames:
    """The name of each face's saved SR images: unique among the faces saved to one folder, kept across validations.

    :func:`sr_image_stem` gives the name (``test/happy/im0.png`` and ``test/sad/im0.png`` are ``happy_im0`` and
    ``sad_im0``); a name another dataset took in the same folder gets ``<dataset name>_`` before it, and one still
    taken ``_2``, ``_3``... after it (``happy/im0.png`` beside ``happy_im0.png``). Names are compared ignoring case.
    Faces are named in the order they are first saved, so a face keeps its name at every validation.
    """

    def __init__(self):
        self.names: dict[tuple[str, str, str], str] = {}  # (folder, dataset, LR path) -> name
        self.taken: dict[str, dict[str, str]] = {}  # folder -> {name (casefolded): its dataset}

    def name(self, lq_path: str, dataset_name: str, roots: Sequence[str | None], folder: str) -> str:
        """The saved name of the face at ``lq_path``.

        Args:
            lq_path: The LR image's path (or lmdb key) as the dataset gives it.
            dataset_name: The dataset's ``name``.
            roots: The dataset's roots (``dataroot_lq``, ``dataroot_gt``), for :func:`sr_image_stem`.
            folder: The folder the image is saved to (datasets saving to one folder share its names).

        Returns:
            The name, without extension or suffix.
        """
        key = (folder, dataset_name, lq_path)
        if key not in self.names:
            taken = self.taken.setdefault(folder, {})
            stem = sr_image_stem(lq_path, roots)
            owner = taken.get(stem.casefold(), dataset_name)
            base = stem if owner == dataset_name else f'{printable_text(dataset_name)}_{stem}'
            numbered = (f'{base}_{n}' for n in itertools.count(2))
            name = next(c for c in itertools.chain([stem, base], numbered) if c.casefold() not in taken)
            taken[name.casefold()] = dataset_name
            self.names[key] = name
        return self.names[key]
