"""Tests of scripts/train_fer.py: FER pre-training through mmengine's Runner on a tiny synthetic dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from srfer_plugin.data.fer_layout import FER7_CLASSES
from srfer_plugin.data.synthetic_faces import write_synthetic_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CONFIG = os.path.join(REPO, 'options', 'fer', 'resnet18_fer7_tiny.py')


@pytest.fixture(scope='module')
def tiny_dataset(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('fer') / 'synthetic')
    write_synthetic_dataset(root, seed=0, size=48, num_train=4, num_val=2, num_test=2)
    return root


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_dataset) -> tuple[str, subprocess.CompletedProcess]:
    work_dir = str(tmp_path_factory.mktemp('work'))
    cmd = [
        sys.executable,
        os.path.join(REPO, 'scripts', 'train_fer.py'),
        TINY_CONFIG,
        '--work-dir',
        work_dir,
        '--data-root',
        tiny_dataset,
        '--device',
        'cpu',
        '--cfg-options',
        'train_cfg.max_epochs=2',
    ]
    env = {**os.environ, 'OMP_NUM_THREADS': '2'}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work_dir, proc


def test_writes_accuracy_json(trained, tiny_dataset):
    work_dir, proc = trained
    with open(os.path.join(work_dir, 'fer_test_accuracy.json')) as f:
        summary = json.load(f)
    assert 0.0 <= summary['accuracy_top1'] <= 100.0
    assert summary['num_test_images'] == 14
    assert summary['classes'] == list(FER7_CLASSES)
    assert summary['epoch'] == 2
    assert os.path.samefile(summary['data_root'], tiny_dataset)
    assert 'HR test accuracy' in proc.stdout and summary['fer_final'] in proc.stdout


def test_runner_checkpoints_exist(trained):
    work_dir, _ = trained
    with open(os.path.join(work_dir, 'fer_test_accuracy.json')) as f:
        summary = json.load(f)
    assert summary['checkpoint_last'].endswith('epoch_2.pth') and os.path.isfile(summary['checkpoint_last'])
    assert summary['checkpoint_best'] and os.path.isfile(summary['checkpoint_best'])


def test_plain_checkpoint_loads_without_allow_listing(trained):
    work_dir, _ = trained
    ckpt = torch.load(os.path.join(work_dir, 'fer_final.pth'), map_location='cpu', weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert ckpt['meta']['num_classes'] == 7 and ckpt['meta']['classes'] == list(FER7_CLASSES)
    assert ckpt['state_dict']['head.fc.weight'].shape == (7, 512)

    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules

    import srfer_plugin  # noqa: F401

    register_all_modules()
    cfg = Config.fromfile(TINY_CONFIG)
    model = MODELS.build({**cfg.model, 'data_preprocessor': cfg.data_preprocessor})
    missing, unexpected = model.load_state_dict(ckpt['state_dict'], strict=True)
    assert not missing and not unexpected
    # the weights were trained: they differ from a fresh initialisation
    fresh = MODELS.build({**cfg.model, 'data_preprocessor': cfg.data_preprocessor}).state_dict()
    assert not torch.equal(fresh['head.fc.weight'], ckpt['state_dict']['head.fc.weight'])


def test_cli_overrides_reach_the_config(tiny_dataset):
    sys.path.insert(0, os.path.join(REPO, 'scripts'))
    try:
        import train_fer
    finally:
        sys.path.pop(0)
    from srfer_plugin.fer_pretrain import build_config

    args = train_fer.parse_args(
        [
            TINY_CONFIG,
            '--data-root',
            tiny_dataset,
            '--work-dir',
            '/tmp/x',
            '--device',
            'cpu',
            '--max-epochs',
            '5',
            '--cfg-options',
            'train_dataloader.batch_size=4',
        ]
    )
    cfg = build_config(
        args.config, args.work_dir, args.data_root, args.cfg_options, args.seed, args.device, args.max_epochs
    )
    assert cfg.work_dir == '/tmp/x' and cfg.train_dataloader.batch_size == 4
    assert cfg.train_cfg.max_epochs == 5 and cfg.param_scheduler[-1]['end'] == 5
    assert cfg.env_cfg.dist_cfg.backend == 'gloo' and cfg.launcher == 'none'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[key].dataset.data_root == tiny_dataset
        assert list(cfg[key].dataset.classes) == list(FER7_CLASSES)
    assert cfg.test_dataloader.dataset.ann_file == 'meta_info_test.txt'
    assert cfg.default_scope == 'mmpretrain'


def test_eval_degradation_on_plain_checkpoint(trained, tiny_dataset, tmp_path):
    work_dir, _ = trained
    out = str(tmp_path / 'degradation.json')
    cmd = [
        sys.executable,
        os.path.join(REPO, 'scripts', 'eval_fer_degradation.py'),
        TINY_CONFIG,
        os.path.join(work_dir, 'fer_final.pth'),
        '--data-root',
        tiny_dataset,
        '--split',
        'val',
        '--out',
        out,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out) as f:
        result = json.load(f)
    assert result['num_images'] == 14 and result['scale'] == 4
    for key in ('hr', 'bicubic'):
        confusion = result[f'confusion_{key}']
        assert sum(map(sum, confusion)) == 14 and all(sum(row) == 2 for row in confusion)
        correct = sum(confusion[i][i] for i in range(7))
        assert abs(result[f'{key}_accuracy'] - 100 * correct / 14) < 1e-6
    assert abs(result['drop'] - (result['hr_accuracy'] - result['bicubic_accuracy'])) < 1e-6
