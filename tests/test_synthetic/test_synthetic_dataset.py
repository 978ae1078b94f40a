"""Tests of the synthetic-face dataset on disk (srfer_plugin.synthetic.dataset) and its command line."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from fer_fixtures import REPO_ROOT

from srfer_plugin import synthetic as sf
from srfer_plugin.data.fer_layout import FER7_CLASSES, meta_info_name, read_classes, read_meta_info
from srfer_plugin.synthetic.dataset import GENERATOR_ID

SMALL = dict(seed=3, size=40, num_train=3, num_val=1, num_test=2)


def _digest(root: str) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.endswith('.png') or name.endswith('.txt'):
                path = os.path.join(dirpath, name)
                with open(path, 'rb') as f:
                    out[os.path.relpath(path, root)] = hashlib.sha1(f.read()).hexdigest()
    return out


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('synth') / 'fer')
    sf.write_synthetic_dataset(root, **SMALL)
    return root


def test_same_seed_same_bytes_different_seed_differs(dataset, tmp_path):
    again = str(tmp_path / 'again')
    sf.write_synthetic_dataset(again, **SMALL)
    assert _digest(again) == _digest(dataset)
    other = str(tmp_path / 'other')
    sf.write_synthetic_dataset(other, **{**SMALL, 'seed': 4})
    a, b = _digest(dataset), _digest(other)
    assert a.keys() == b.keys()
    pngs = [k for k in a if k.endswith('.png')]
    assert all(a[k] != b[k] for k in pngs)


def test_layout_balanced_and_readable(dataset):
    assert read_classes(os.path.join(dataset, 'classes.txt')) == list(FER7_CLASSES)
    for split, per_class in (('train', 3), ('val', 1), ('test', 2)):
        items = read_meta_info(os.path.join(dataset, meta_info_name(split)), num_classes=7)
        assert len(items) == 7 * per_class
        assert np.bincount([label for _, label in items], minlength=7).tolist() == [per_class] * 7
        for rel_path, label in items:
            parts = rel_path.split('/')
            assert parts[0] == split and parts[1] == FER7_CLASSES[label] and parts[2].endswith('.png')
            assert os.path.isfile(os.path.join(dataset, rel_path))
    import cv2

    img = cv2.imread(os.path.join(dataset, items[0][0]))
    assert img.shape == (40, 40, 3)


def test_ensure_reuses_and_regenerates(tmp_path):
    root = str(tmp_path / 'cache')
    sf.ensure_synthetic_dataset(root, **SMALL)
    manifest = os.path.join(root, sf.MANIFEST_NAME)
    with open(manifest) as f:
        info = json.load(f)
    assert info['version'] == sf.GENERATOR_VERSION and info['per_class']['train'] == 3
    # the generator's name predates the package move: datasets written before it stay valid caches
    assert info['generator'] == GENERATOR_ID == 'srfer_plugin.data.synthetic_faces'
    probe = os.path.join(root, 'train', 'neutral', 'train_000000.png')  # one of its files: replaced on regeneration

    def mark_probe() -> None:
        with open(probe, 'wb') as f:
            f.write(b'probe')

    def is_probe() -> bool:
        with open(probe, 'rb') as f:
            return f.read() == b'probe'

    mark_probe()
    sf.ensure_synthetic_dataset(root, **SMALL)
    assert is_probe()  # reused, not rewritten
    sf.ensure_synthetic_dataset(root, **{**SMALL, 'num_train': 2})
    assert not is_probe()  # other settings: regenerated
    assert len(read_meta_info(os.path.join(root, 'meta_info_train.txt'))) == 14
    info['version'] = -1  # a stale generator version is regenerated too
    with open(manifest, 'w') as f:
        json.dump(info, f)
    mark_probe()
    sf.ensure_synthetic_dataset(root, **{**SMALL, 'num_train': 2})
    assert not is_probe()
    os.remove(os.path.join(root, read_meta_info(os.path.join(root, 'meta_info_test.txt'))[0][0]))
    sf.ensure_synthetic_dataset(root, **{**SMALL, 'num_train': 2})  # incomplete: regenerated
    assert all(
        os.path.isfile(os.path.join(root, p)) for p, _ in read_meta_info(os.path.join(root, 'meta_info_test.txt'))
    )


def test_cli(tmp_path):
    out = str(tmp_path / 'cli')
    cmd = [
        sys.executable,
        os.path.join(REPO_ROOT, 'scripts', 'generate_synthetic_faces.py'),
        '--out',
        out,
        '--seed',
        '1',
        '--size',
        '32',
        '--num-train',
        '1',
        '--num-val',
        '1',
        '--num-test',
        '1',
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    assert len(read_meta_info(os.path.join(out, 'meta_info_val.txt'))) == 7
    with open(os.path.join(out, sf.MANIFEST_NAME)) as f:
        assert json.load(f)['size'] == 32
