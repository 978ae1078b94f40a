"""PairedFERDataset: label sources, backends, LR sizes and clear errors on bad input."""

from __future__ import annotations

import os
import re
import shutil

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.utils.lmdb_util import make_lmdb_from_imgs
from fer_fixtures import TINY_CLASSES, make_tiny_fer_dataset

from srfer_plugin.data.degradations import degrade, downsample_bicubic, rng_for_image
from srfer_plugin.data.fer_layout import read_meta_info


def dataset_opt(root: str, **overrides) -> dict:
    opt = {
        'name': 'tiny',
        'type': 'PairedFERDataset',
        'phase': 'val',
        'scale': 4,
        'dataroot_gt': root,
        'meta_info_file': os.path.join(root, 'meta_info_train.txt'),
        'io_backend': {'type': 'disk'},
    }
    opt.update(overrides)
    return opt


def test_meta_info_and_class_folders_give_the_same_labels(tiny_fer_root):
    by_meta = build_dataset(dataset_opt(tiny_fer_root))
    by_folders = build_dataset(dataset_opt(os.path.join(tiny_fer_root, 'train'), meta_info_file=None))
    assert len(by_meta) == len(by_folders) == 12
    assert by_meta.classes == by_folders.classes == list(TINY_CLASSES)
    meta = {os.path.basename(p): label for p, label in by_meta.items}
    folders = {os.path.basename(p): label for p, label in by_folders.items}
    assert meta == folders
    sample = by_meta[4]
    assert set(sample) == {'lq', 'gt', 'label', 'lq_path', 'gt_path', 'hflip'}
    assert sample['label'].dtype == torch.long and int(sample['label']) == by_meta.items[4][1]
    assert sample['gt'].shape == (3, 32, 32) and sample['lq'].shape == (3, 8, 8)
    assert 0.0 <= float(sample['gt'].min()) and float(sample['gt'].max()) <= 1.0


def test_gt_is_rgb_and_lq_is_matlab_bicubic(tiny_fer_root):
    ds = build_dataset(dataset_opt(tiny_fer_root))
    rel_path, _ = ds.items[0]
    bgr = cv2.imread(os.path.join(tiny_fer_root, rel_path)).astype(np.float32) / 255.0
    sample = ds[0]
    assert np.allclose(sample['gt'].permute(1, 2, 0).numpy(), bgr[..., ::-1], atol=1e-6)
    expected_lq = downsample_bicubic(bgr, 4)[..., ::-1]
    assert np.allclose(sample['lq'].permute(1, 2, 0).numpy(), expected_lq, atol=1e-6)


@pytest.mark.parametrize('scale', [2, 4, 8])
def test_lr_sizes(tiny_fer_root, scale):
    ds = build_dataset(dataset_opt(tiny_fer_root, scale=scale))
    assert ds[0]['lq'].shape == (3, 32 // scale, 32 // scale)


def test_gt_size_resizes_whole_faces(tiny_fer_root):
    ds = build_dataset(dataset_opt(tiny_fer_root, scale=8, gt_size=48))
    sample = ds[0]
    assert sample['gt'].shape == (3, 48, 48) and sample['lq'].shape == (3, 6, 6)


def test_test_sets_degrade_deterministically_and_train_draws_vary(tiny_fer_root):
    chain = [{'type': 'bicubic'}, {'type': 'noise', 'sigma': [5, 15]}]
    val = build_dataset(dataset_opt(tiny_fer_root, degradation=chain, degradation_seed=3))
    assert torch.equal(val[1]['lq'], val[1]['lq'])
    img = cv2.imread(os.path.join(tiny_fer_root, val.items[1][0])).astype(np.float32) / 255.0
    expected = degrade(img, 4, chain, rng_for_image(val.items[1][0], 3))[..., ::-1]
    assert np.allclose(val[1]['lq'].permute(1, 2, 0).numpy(), expected, atol=1e-6)
    train = build_dataset(dataset_opt(tiny_fer_root, degradation=chain, phase='train'))
    assert not torch.equal(train[1]['lq'], train[1]['lq'])


def test_dataroot_lq_pairs(tiny_fer_root, tmp_path):
    lq_root = tmp_path / 'lq'
    for rel_path, _ in read_meta_info(os.path.join(tiny_fer_root, 'meta_info_train.txt')):
        img = cv2.imread(os.path.join(tiny_fer_root, rel_path))
        os.makedirs(lq_root / os.path.dirname(rel_path), exist_ok=True)
        cv2.imwrite(str(lq_root / rel_path), cv2.resize(img, (8, 8), interpolation=cv2.INTER_AREA))
    ds = build_dataset(dataset_opt(tiny_fer_root, dataroot_lq=str(lq_root)))
    sample = ds[2]
    assert sample['lq'].shape == (3, 8, 8) and sample['lq_path'].startswith(str(lq_root))
    with pytest.raises(ValueError, match='expected 16x16'):
        build_dataset(dataset_opt(tiny_fer_root, dataroot_lq=str(lq_root), scale=2))


def test_lmdb_backend_matches_disk(tiny_fer_root, tmp_path):
    items = read_meta_info(os.path.join(tiny_fer_root, 'meta_info_train.txt'))
    lmdb_path = str(tmp_path / 'train.lmdb')
    make_lmdb_from_imgs(tiny_fer_root, lmdb_path, [p for p, _ in items], [os.path.splitext(p)[0] for p, _ in items])
    disk = build_dataset(dataset_opt(tiny_fer_root))
    meta = os.path.join(tiny_fer_root, 'meta_info_train.txt')
    lmdb = build_dataset(dataset_opt(lmdb_path, meta_info_file=meta, io_backend={'type': 'lmdb'}))
    assert len(lmdb) == len(disk) and lmdb.classes == list(TINY_CLASSES)
    for i in (0, 7):
        assert torch.equal(lmdb[i]['gt'], disk[i]['gt']) and int(lmdb[i]['label']) == int(disk[i]['label'])


def test_flip_augmentation_flips_both(tiny_fer_root):
    ds = build_dataset(dataset_opt(tiny_fer_root, phase='train', use_hflip=True))
    plain = build_dataset(dataset_opt(tiny_fer_root))[0]
    seen_flipped = False
    for seed in range(12):
        np.random.seed(seed)
        sample = ds[0]
        if torch.equal(sample['gt'], plain['gt'].flip(-1)):
            seen_flipped = True
            assert torch.allclose(sample['lq'], plain['lq'].flip(-1), atol=1e-6)
        else:
            assert torch.equal(sample['gt'], plain['gt'])
    assert seen_flipped


def test_grayscale_images_become_three_channels(tmp_path):
    root = make_tiny_fer_dataset(str(tmp_path / 'gray'), per_class={'train': 1})
    rel_path = read_meta_info(os.path.join(root, 'meta_info_train.txt'))[0][0]
    gray = cv2.cvtColor(cv2.imread(os.path.join(root, rel_path)), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(os.path.join(root, rel_path), gray)
    sample = build_dataset(dataset_opt(root))[0]
    assert sample['gt'].shape == (3, 32, 32)
    assert torch.equal(sample['gt'][0], sample['gt'][1]) and torch.equal(sample['gt'][1], sample['gt'][2])


def test_missing_dataroot_names_the_key_and_readme_section(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'datasets\.tiny\.dataroot_gt.*nowhere.*README'):
        build_dataset(dataset_opt(str(tmp_path / 'nowhere'), meta_info_file=None))


def test_label_outside_num_classes(tiny_fer_root, tmp_path):
    meta = tmp_path / 'meta.txt'
    meta.write_text('train/happy/happy_000.png 1\ntrain/sad/sad_000.png 9\n')
    with pytest.raises(ValueError, match=r'meta\.txt:2: label 9 is outside \[0, 4\)'):
        build_dataset(dataset_opt(tiny_fer_root, meta_info_file=str(meta)))


def test_sizes_not_divisible_by_scale(tmp_path):
    with pytest.raises(ValueError, match='gt_size.*30 is not divisible by scale 4'):
        build_dataset(dataset_opt(make_tiny_fer_dataset(str(tmp_path / 'a'), per_class={'train': 1}), gt_size=30))
    root = make_tiny_fer_dataset(str(tmp_path / 'b'), size=30, per_class={'train': 1})
    with pytest.raises(ValueError, match='30x30, not divisible by scale 4'):
        build_dataset(dataset_opt(root))


def test_unreadable_and_missing_images(tmp_path):
    root = make_tiny_fer_dataset(str(tmp_path / 'c'), per_class={'train': 1})
    first = read_meta_info(os.path.join(root, 'meta_info_train.txt'))[0][0]
    with open(os.path.join(root, first), 'wb') as f:
        f.write(b'not an image')
    with pytest.raises(OSError, match=f'unreadable image.*{os.path.basename(first)}'):
        build_dataset(dataset_opt(root))
    shutil.rmtree(os.path.join(root, 'train', 'sad'))
    with pytest.raises(FileNotFoundError, match='missing.*sad_000.png'):
        build_dataset(dataset_opt(root))


def test_bad_degradation_option(tiny_fer_root):
    with pytest.raises(ValueError, match=r'datasets\.tiny\.degradation\[0\].*unknown type'):
        build_dataset(dataset_opt(tiny_fer_root, degradation=[{'type': 'sharpen'}]))
    with pytest.raises(ValueError, match='exactly one'):
        build_dataset(dataset_opt(tiny_fer_root, degradation=[{'type': 'noise', 'sigma': 3}]))
    with pytest.raises(ValueError, match='scale.*5'):
        build_dataset(dataset_opt(tiny_fer_root, scale=5))


@pytest.mark.parametrize('seed', [-1, 2.7, True, '3', [1]])
def test_degradation_seed_must_be_a_whole_number_from_zero(tiny_fer_root, seed):
    """Refused when the set is built, not at the first validation (``ValueError: expected non-negative integer``)."""
    with pytest.raises(ValueError, match=rf'datasets\.tiny\.degradation_seed: {re.escape(repr(seed))} is not a whole'):
        build_dataset(dataset_opt(tiny_fer_root, degradation='blur', degradation_seed=seed))


@pytest.mark.parametrize(('seed', 'used'), [(0, 0), (7, 7), (3.0, 3), (None, 0)])
def test_whole_degradation_seeds_are_used(tiny_fer_root, seed, used):
    ds = build_dataset(dataset_opt(tiny_fer_root, degradation='blur', degradation_seed=seed))
    assert ds.degradation_seed == used and ds[0]['lq'].shape == (3, 8, 8)
