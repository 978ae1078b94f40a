"""Degradation scenarios, per-image determinism of test sets, the bicubic round trip, and scripts/make_lr.py."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
import yaml
from fer_fixtures import REPO_ROOT

from srfer_plugin.data.degradations import (
    SCENARIOS,
    SUPPORTED_SCALES,
    bicubic_roundtrip,
    degrade,
    describe_pipeline,
    normalize_pipeline,
    rng_for_image,
)
from srfer_plugin.data.paired_fer_dataset import PairedFERDataset
from srfer_plugin.synthetic import generate_face

MAKE_LR = os.path.join(REPO_ROOT, 'scripts', 'make_lr.py')
HALF_LEVEL = 0.5 / 255 + 1e-6  # what writing an 8-bit PNG may change


def make_lr_main(argv: list[str]) -> int:
    """Run ``main(argv)`` of scripts/make_lr.py in this process (the script is not an importable module)."""
    return runpy.run_path(MAKE_LR)['main'](argv)


def _dataset(root: str, phase: str = 'val', **extra) -> PairedFERDataset:
    opt = {
        'name': f'tiny_{phase}',
        'phase': phase,
        'dataroot_gt': root,
        'meta_info_file': os.path.join(root, 'meta_info_val.txt'),
        'scale': 4,
        'io_backend': {'type': 'disk'},
    }
    opt.update(extra)
    return PairedFERDataset(opt)


def test_blur_kernel_size_sets_the_kernel_and_a_range_draws_odd_sizes():
    img = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    spec = [{'type': 'blur', 'sigma': 2.0, 'kernel_size': 9}, {'type': 'bicubic'}]
    blurred = cv2.GaussianBlur(img, (9, 9), sigmaX=2.0, borderType=cv2.BORDER_REFLECT)
    assert np.array_equal(degrade(img, 2, spec, np.random.default_rng(0)), degrade(blurred, 2, None))
    ranged = [{'type': 'blur', 'sigma': 2.0, 'kernel_size': [3, 9]}, {'type': 'bicubic'}]
    outputs = {
        size: degrade(cv2.GaussianBlur(img, (size, size), sigmaX=2.0, borderType=cv2.BORDER_REFLECT), 2, None)
        for size in (3, 5, 7, 9)
    }
    drawn = set()
    for seed in range(40):
        lq = degrade(img, 2, ranged, rng_for_image('a.png', seed))
        drawn |= {size for size, out in outputs.items() if np.array_equal(lq, out)}
    assert drawn == {3, 5, 7, 9}


@pytest.mark.parametrize('name', sorted(SCENARIOS))
def test_scenarios_are_valid_pipelines(name):
    steps = normalize_pipeline(name)
    assert [s['type'] for s in steps].count('bicubic') == 1
    assert describe_pipeline(name).count('bicubic') == 1
    steps[0]['type'] = 'changed'  # callers get copies
    assert SCENARIOS[name][0]['type'] != 'changed'


def test_unknown_scenario_is_rejected():
    with pytest.raises(ValueError, match='unknown scenario'):
        normalize_pipeline('blurry', 'datasets.test.degradation')


@pytest.mark.parametrize('scale', SUPPORTED_SCALES)
@pytest.mark.parametrize('name', ['bicubic', 'blur_noise_jpeg'])
def test_every_scale(scale, name):
    img = np.random.default_rng(0).random((48, 48, 3), dtype=np.float32)
    lq = degrade(img, scale, name, rng_for_image('a.png'))
    assert lq.shape == (48 // scale, 48 // scale, 3) and lq.dtype == np.float32
    assert 0.0 <= lq.min() and lq.max() <= 1.0


def test_each_step_changes_the_image():
    img = cv2.GaussianBlur(np.random.default_rng(1).random((64, 64, 3), dtype=np.float32), (5, 5), 1.0)
    plain = degrade(img, 4, 'bicubic')
    for name in ('blur', 'noise', 'jpeg', 'blur_noise_jpeg'):
        assert np.abs(degrade(img, 4, name, rng_for_image('a.png')) - plain).max() > 1e-3, name


def test_bicubic_roundtrip_weakens_detail():
    img, _, _ = generate_face(3, 7)
    restored = bicubic_roundtrip(img, 4)
    assert restored.shape == (112, 112, 3) and restored.dtype == np.float32
    hr = img.astype(np.float32) / 255
    assert 0.005 < np.abs(restored - hr).mean() < 0.1
    grad = lambda x: np.abs(np.diff(x, axis=1)).mean()  # noqa: E731
    assert grad(restored) < 0.8 * grad(hr)


def test_test_sets_degrade_each_image_deterministically(tiny_fer_root):
    a = _dataset(tiny_fer_root, degradation='blur_noise_jpeg')
    b = _dataset(tiny_fer_root, degradation='blur_noise_jpeg')
    assert np.array_equal(a[0]['lq'].numpy(), a[0]['lq'].numpy())
    assert np.array_equal(a[3]['lq'].numpy(), b[3]['lq'].numpy())
    other_seed = _dataset(tiny_fer_root, degradation='blur_noise_jpeg', degradation_seed=1)
    assert not np.array_equal(a[0]['lq'].numpy(), other_seed[0]['lq'].numpy())


def test_training_draws_differ(tiny_fer_root):
    np.random.seed(0)
    train = _dataset(tiny_fer_root, phase='train', degradation='blur_noise_jpeg')
    draws = [train[0]['lq'].numpy() for _ in range(3)]
    assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[1], draws[2])


def test_make_lr_equals_on_the_fly_lr_in_another_process(tiny_fer_root, tmp_path):
    dst = str(tmp_path / 'lr')
    cmd = [sys.executable, MAKE_LR, '--src', tiny_fer_root]
    cmd += ['--meta', 'meta_info_val.txt', '--dst', dst, '--scale', '4', '--scenario', 'blur_noise_jpeg']
    cmd += ['--seed', '3', '--no-progress']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'Wrote 8 LR images' in proc.stdout
    record = yaml.safe_load(open(os.path.join(dst, 'degradation.yml'), encoding='utf-8'))
    assert record['degradation'] == normalize_pipeline('blur_noise_jpeg') and record['degradation_seed'] == 3
    assert os.path.isfile(os.path.join(dst, 'classes.txt'))

    on_the_fly = _dataset(tiny_fer_root, degradation='blur_noise_jpeg', degradation_seed=3)
    from_disk = _dataset(
        tiny_fer_root, dataroot_lq=dst, meta_info_file=os.path.join(dst, 'meta_info_val.txt')
    )  # the copied meta_info and classes.txt work too
    assert from_disk.classes == on_the_fly.classes
    for i in range(len(on_the_fly)):
        lq = on_the_fly[i]['lq'].numpy()
        assert lq.shape == (3, 8, 8)
        assert np.abs(from_disk[i]['lq'].numpy() - lq).max() <= HALF_LEVEL
        written = cv2.imread(os.path.join(dst, on_the_fly.items[i][0]))[..., ::-1].transpose(2, 0, 1) / 255.0
        assert np.abs(written - lq).max() <= HALF_LEVEL


def test_make_lr_yaml_degradation_and_class_folders(tiny_fer_root, tmp_path, capsys):
    dst = str(tmp_path / 'lr')
    spec = '[{type: bicubic}, {type: jpeg, quality: 40}]'
    src = os.path.join(tiny_fer_root, 'val')  # class sub-folders, no meta_info
    assert make_lr_main(['--src', src, '--dst', dst, '--scale', '2', '--degradation', spec, '--no-progress']) == 0
    assert 'jpeg(quality=40)' in capsys.readouterr().out
    ds = PairedFERDataset({'name': 'x', 'phase': 'val', 'dataroot_gt': src, 'dataroot_lq': dst, 'scale': 2})
    assert ds[0]['lq'].shape == (3, 16, 16)
    assert make_lr_main(['--src', src, '--dst', dst, '--scale', '2', '--no-progress']) == 2  # not empty
    assert make_lr_main(['--src', src, '--dst', str(tmp_path / 'x'), '--degradation', 'blurry']) == 1


def test_a_test_image_whose_name_is_not_utf8_gets_its_own_fixed_draw():
    """A name with bytes that are not UTF-8 (surrogate escapes) crashed the test-set draw with UnicodeEncodeError."""
    from srfer_plugin.data.degradations import rng_for_image

    name = 'val/caf\udce9.png'  # the byte 0xE9 of a Latin-1 file name
    assert rng_for_image(name, 3).random() == rng_for_image(name, 3).random()
    assert rng_for_image(name, 3).random() != rng_for_image('val/caf\u00e9.png', 3).random()
    assert (
        rng_for_image('val/happy/a.png', 3).random()
        == np.random.default_rng([zlib.crc32(b'val/happy/a.png'), 3]).random()
    )  # UTF-8 names draw as before
