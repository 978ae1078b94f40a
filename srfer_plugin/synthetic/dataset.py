"""The synthetic-face dataset on disk: writing it, and reusing a complete one (the manifest cache).

The dataset is written in the layout of :mod:`srfer_plugin.data.fer_layout`. Image ``i`` of a split has label
``i % 7`` and is drawn from its own random stream ``(seed, split, i)`` (:func:`face_rng`), so a larger dataset
with the same seed extends a smaller one.

The generator only ever deletes or replaces what it wrote itself: its manifest ``synthetic_faces.json`` names
the files of a set (``<split>/<class>/<split>_<index>.png`` below the recorded counts, ``classes.txt`` and the
meta_info files). A folder holding anything else where the generator would write (a real dataset, the user's
notes in ``train/``) is refused with :class:`SyntheticRootError` before anything is written or deleted. The
manifest is written first, marked ``writing``, so an interrupted run is never taken for a complete set and its
files stay the generator's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from srfer_plugin.data.fer_layout import (
    CLASSES_FILE,
    FER7_CLASSES,
    files_under,
    meta_info_name,
    read_classes,
    read_meta_info,
    write_classes,
    write_meta_info,
)
from srfer_plugin.synthetic.render import generate_face
from srfer_plugin.utils.checkpoint import atomic_write_json
from srfer_plugin.utils.formatting import first_of

# Bump whenever the drawing or the parameter distributions change: cached datasets are then regenerated.
GENERATOR_VERSION = 1
MANIFEST_NAME = 'synthetic_faces.json'
# The generator's name in manifests: its first module path, kept so that existing datasets stay valid.
GENERATOR_ID = 'srfer_plugin.data.synthetic_faces'
SPLITS: tuple[str, ...] = ('train', 'val', 'test')
_SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}
_SHOWN_FILES = 10


class SyntheticRootError(ValueError):
    """The dataset folder holds files the generator did not write; nothing was written or deleted.

    Args:
        root: The dataset folder.
        foreign: Those files, relative to ``root`` (``/``-separated); empty when ``root`` is a file.
    """

    def __init__(self, root: str, foreign: list[str]) -> None:
        self.root, self.foreign = root, foreign
        shown = ', '.join(first_of(foreign, _SHOWN_FILES))
        what = (
            f'holds {len(foreign)} file(s) the synthetic-face generator did not write (no {MANIFEST_NAME} of the '
            f'generator lists them): {shown}. Generating there would delete or mix with them; nothing was written or '
            'deleted. Move them out, or choose'
            if foreign
            else 'is a file, not a folder; nothing was written. Choose'
        )
        super().__init__(f'{root!r} {what} another (new or empty) folder for the synthetic faces')


def face_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Return the random stream of image ``index`` of ``split`` (independent of every other image)."""
    return np.random.default_rng([int(seed), _SPLIT_IDS.get(split, 3), int(index), GENERATOR_VERSION])


def _image_path(split: str, class_name: str, index: int) -> str:
    """The path of image ``index`` of ``split`` relative to the dataset root."""
    return f'{split}/{class_name}/{split}_{index:06d}.png'


def _settings(seed: int, size: int, counts: Mapping[str, int]) -> dict[str, Any]:
    return {
        'generator': GENERATOR_ID,
        'version': GENERATOR_VERSION,
        'seed': int(seed),
        'size': int(size),
        'per_class': {split: int(counts[split]) for split in SPLITS},
        'classes': list(FER7_CLASSES),
    }


def write_synthetic_dataset(
    root: str, seed: int = 0, size: int = 112, num_train: int = 400, num_val: int = 50, num_test: int = 100
) -> dict[str, Any]:
    """Generate the dataset into ``root`` (layout of :mod:`srfer_plugin.data.fer_layout`).

    An earlier set of the generator in ``root`` (any settings or version) is replaced; nothing else is touched.

    Args:
        root: Dataset root.
        seed: Random seed; the same seed gives byte-identical files.
        size: Image height and width.
        num_train: Images per class in the train split (likewise ``num_val``, ``num_test``).

    Returns:
        The manifest written to ``root/synthetic_faces.json``.

    Raises:
        ValueError: Invalid settings.
        SyntheticRootError: ``root`` holds files the generator did not write where it would write (see
            :func:`generated_files`); nothing was written or deleted.
    """
    counts = {'train': num_train, 'val': num_val, 'test': num_test}
    if min(counts.values()) < 0 or size < 16:
        raise ValueError(f'invalid dataset settings: size={size}, per-class counts={counts}')
    earlier = generated_files(root)
    os.makedirs(root, exist_ok=True)
    _remove_generated(root, earlier)
    manifest = _settings(seed, size, counts)
    _write_manifest(root, {**manifest, 'writing': True})  # before any image: these files are the generator's
    num_classes = len(FER7_CLASSES)
    write_classes(os.path.join(root, CLASSES_FILE), FER7_CLASSES)
    for split in SPLITS:
        items = []
        for name in FER7_CLASSES:
            os.makedirs(os.path.join(root, split, name), exist_ok=True)
        for index in range(counts[split] * num_classes):
            label = index % num_classes
            image, _, _ = generate_face(label, face_rng(seed, split, index), size)
            rel_path = _image_path(split, FER7_CLASSES[label], index)
            if not cv2.imwrite(os.path.join(root, rel_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
                raise OSError(f'could not write {os.path.join(root, rel_path)}')
            items.append((rel_path, label))
        write_meta_info(os.path.join(root, meta_info_name(split)), items)
    manifest['num_images'] = {split: counts[split] * num_classes for split in SPLITS}
    _write_manifest(root, manifest)
    return manifest


def _write_manifest(root: str, manifest: Mapping[str, Any]) -> None:
    """Write ``root/synthetic_faces.json`` in one step (a crash leaves the old one or the new one)."""
    atomic_write_json(manifest, os.path.join(root, MANIFEST_NAME))


def _read_manifest(root: str) -> dict[str, Any] | None:
    """The generator's manifest in ``root``; None when there is none (a file of another kind is foreign)."""
    path = os.path.join(root, MANIFEST_NAME)
    if not os.path.lexists(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        manifest = None
    if os.path.islink(path) or not isinstance(manifest, dict) or manifest.get('generator') != GENERATOR_ID:
        raise SyntheticRootError(root, [MANIFEST_NAME])
    return manifest


def _image_names(manifest: Mapping[str, Any]) -> set[str]:
    """The image paths a manifest's settings give (relative, ``/``); none when it does not say."""
    classes, per_class = manifest.get('classes'), manifest.get('per_class')
    if not isinstance(classes, list) or not classes or not isinstance(per_class, dict):
        return set()
    names = set()
    for split in SPLITS:
        count = per_class.get(split)
        if isinstance(count, int):
            names.update(_image_path(split, str(classes[i % len(classes)]), i) for i in range(count * len(classes)))
    return names


def generated_files(root: str) -> list[str]:
    """The files in ``root`` that an earlier run of the generator wrote, which a new run replaces.

    Args:
        root: The dataset folder (may not exist yet).

    Returns:
        Paths relative to ``root``: the manifest, ``classes.txt``, the meta_info files and the images its
        manifest names; empty when ``root`` holds no set of the generator.

    Raises:
        SyntheticRootError: Where the generator writes (``train/``, ``val/``, ``test/``, ``classes.txt``, the
            meta_info files, the manifest) lies something it did not write (all of it when there is no manifest
            of the generator; links too).
    """
    if not os.path.isdir(root):
        if os.path.lexists(root):
            raise SyntheticRootError(root, [])
        return []
    manifest = _read_manifest(root)
    images = _image_names(manifest) if manifest is not None else set()
    owned, foreign = [MANIFEST_NAME] if manifest is not None else [], []
    for name in [CLASSES_FILE] + [meta_info_name(split) for split in SPLITS]:
        path = os.path.join(root, name)
        if os.path.lexists(path):
            mine = manifest is not None and os.path.isfile(path) and not os.path.islink(path)
            (owned if mine else foreign).append(name)
    for split in SPLITS:
        path = os.path.join(root, split)
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            foreign.append(split)
        elif os.path.isdir(path):
            for rel in sorted(files_under(root, os.path.join(root, split))):
                (owned if rel in images else foreign).append(rel)
    if foreign:
        raise SyntheticRootError(root, foreign)
    return owned


def _remove_generated(root: str, files: list[str]) -> None:
    """Delete the earlier set's ``files`` (from :func:`generated_files`) and the split folders left empty."""
    manifest = _read_manifest(root) if MANIFEST_NAME in files else None
    if manifest is not None:  # first, so an interrupted rewrite is never taken for a complete dataset
        _write_manifest(root, {**manifest, 'writing': True})
    for rel in files:
        if rel != MANIFEST_NAME:
            os.remove(os.path.join(root, rel))
    for split in SPLITS:
        for dirpath, _, _ in sorted(os.walk(os.path.join(root, split)), reverse=True):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass  # not empty: a file appeared meanwhile, and it is kept


def _is_complete(root: str, settings: Mapping[str, Any]) -> bool:
    try:
        with open(os.path.join(root, MANIFEST_NAME), encoding='utf-8') as f:
            manifest = json.load(f)
        if not isinstance(manifest, dict) or manifest.get('writing'):
            return False
        if any(manifest.get(key) != value for key, value in settings.items()):
            return False
        if read_classes(os.path.join(root, CLASSES_FILE)) != list(FER7_CLASSES):
            return False
        for split in SPLITS:
            expected = settings['per_class'][split] * len(FER7_CLASSES)
            if expected == 0:
                continue
            items = read_meta_info(os.path.join(root, meta_info_name(split)), len(FER7_CLASSES))
            if len(items) != expected or not all(os.path.isfile(os.path.join(root, p)) for p, _ in items):
                return False
    except (OSError, ValueError):
        return False
    return True


def ensure_synthetic_dataset(
    root: str, seed: int = 0, size: int = 112, num_train: int = 400, num_val: int = 50, num_test: int = 100
) -> str:
    """Return ``root``, generating the dataset unless a complete one with the same settings is already there.

    The manifest ``root/synthetic_faces.json`` records the generator version and settings; a dataset from another
    version or with other settings (seed, size, counts) is regenerated.

    Args:
        root: Dataset root.
        seed: Random seed.
        size: Image height and width.
        num_train: Images per class in the train split (likewise ``num_val``, ``num_test``).

    Returns:
        ``root``.

    Raises:
        SyntheticRootError: ``root`` must be (re)generated but holds files the generator did not write.
    """
    counts = {'train': num_train, 'val': num_val, 'test': num_test}
    if not _is_complete(root, _settings(seed, size, counts)):
        write_synthetic_dataset(root, seed, size, num_train, num_val, num_test)
    return root
