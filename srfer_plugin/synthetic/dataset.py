"""The synthetic-face dataset on disk: writing it, and reusing a complete one (the manifest cache).

The dataset is written in the layout of :mod:`srfer_plugin.data.fer_layout`. Image ``i`` of a split has label
``i % 7`` and is drawn from its own random stream ``(seed, split, i)`` (:func:`face_rng`), so a larger dataset
with the same seed extends a smaller one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from srfer_plugin.data.fer_layout import (
    CLASSES_FILE,
    FER7_CLASSES,
    meta_info_name,
    read_classes,
    read_meta_info,
    write_classes,
    write_meta_info,
)
from srfer_plugin.synthetic.render import generate_face

# Bump whenever the drawing or the parameter distributions change: cached datasets are then regenerated.
GENERATOR_VERSION = 1
MANIFEST_NAME = 'synthetic_faces.json'
# The generator's name in manifests: its first module path, kept so that existing datasets stay valid.
GENERATOR_ID = 'srfer_plugin.data.synthetic_faces'
SPLITS: tuple[str, ...] = ('train', 'val', 'test')
_SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}


def face_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Return the random stream of image ``index`` of ``split`` (independent of every other image)."""
    return np.random.default_rng([int(seed), _SPLIT_IDS.get(split, 3), int(index), GENERATOR_VERSION])


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

    Existing split folders, meta_info files and the manifest in ``root`` are replaced; nothing else is touched.

    Args:
        root: Dataset root.
        seed: Random seed; the same seed gives byte-identical files.
        size: Image height and width.
        num_train: Images per class in the train split (likewise ``num_val``, ``num_test``).

    Returns:
        The manifest written to ``root/synthetic_faces.json``.
    """
    counts = {'train': num_train, 'val': num_val, 'test': num_test}
    if min(counts.values()) < 0 or size < 16:
        raise ValueError(f'invalid dataset settings: size={size}, per-class counts={counts}')
    os.makedirs(root, exist_ok=True)
    _remove_generated(root)
    num_classes = len(FER7_CLASSES)
    write_classes(os.path.join(root, CLASSES_FILE), FER7_CLASSES)
    for split in SPLITS:
        items = []
        for name in FER7_CLASSES:
            os.makedirs(os.path.join(root, split, name), exist_ok=True)
        for index in range(counts[split] * num_classes):
            label = index % num_classes
            image, _, _ = generate_face(label, face_rng(seed, split, index), size)
            rel_path = f'{split}/{FER7_CLASSES[label]}/{split}_{index:06d}.png'
            if not cv2.imwrite(os.path.join(root, rel_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
                raise OSError(f'could not write {os.path.join(root, rel_path)}')
            items.append((rel_path, label))
        write_meta_info(os.path.join(root, meta_info_name(split)), items)
    manifest = _settings(seed, size, counts)
    manifest['num_images'] = {split: counts[split] * num_classes for split in SPLITS}
    with open(os.path.join(root, MANIFEST_NAME), 'w', encoding='utf-8') as f:
        json.dump(manifest, f, indent=2)
    return manifest


def _remove_generated(root: str) -> None:
    manifest = os.path.join(root, MANIFEST_NAME)
    if os.path.exists(manifest):
        os.remove(manifest)  # first, so an interrupted rewrite is never taken for a complete dataset
    for split in SPLITS:
        if os.path.isdir(os.path.join(root, split)):
            shutil.rmtree(os.path.join(root, split))
        if os.path.exists(os.path.join(root, meta_info_name(split))):
            os.remove(os.path.join(root, meta_info_name(split)))


def _is_complete(root: str, settings: Mapping[str, Any]) -> bool:
    try:
        with open(os.path.join(root, MANIFEST_NAME), encoding='utf-8') as f:
            manifest = json.load(f)
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
    """
    counts = {'train': num_train, 'val': num_val, 'test': num_test}
    if not _is_complete(root, _settings(seed, size, counts)):
        write_synthetic_dataset(root, seed, size, num_train, num_val, num_test)
    return root
