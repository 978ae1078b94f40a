"""srfer_plugin.fer_pretrain and scripts/train_fer.py: FER pre-training with mmengine's Runner on tiny data."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from srfer_plugin.data.fer_layout import FER7_CLASSES
from srfer_plugin.synthetic import write_synthetic_dataset

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


def test_reuse_follows_the_config_content_not_its_path(trained, tiny_dataset, tmp_path, monkeypatch, capsys):
    """The same config from another checkout reuses the run; an edited _base_ file trains again."""
    import shutil

    from mmengine.runner import Runner

    from srfer_plugin.fer_pretrain import train_fer

    work_dir, _ = trained
    with open(os.path.join(work_dir, 'fer_test_accuracy.json')) as f:
        earlier = json.load(f)
    checkout = tmp_path / 'other_checkout'
    shutil.copytree(os.path.join(REPO, 'options', 'fer'), checkout)
    copied = str(checkout / os.path.basename(TINY_CONFIG))

    def no_training(*args, **kwargs):
        raise RuntimeError('trains again')

    monkeypatch.setattr(Runner, 'from_cfg', no_training)
    options = dict(work_dir=work_dir, data_root=tiny_dataset, device='cpu', cfg_options={'train_cfg.max_epochs': 2})
    assert train_fer(copied, reuse=True, **options) == earlier
    assert 'reusing' in capsys.readouterr().out
    base = checkout / 'resnet18_fer7.py'
    base.write_text(base.read_text() + '\nauto_scale_lr = dict(base_batch_size=64)\n')
    with pytest.raises(RuntimeError, match='trains again'):
        train_fer(copied, reuse=True, **options)


def test_cli_overrides_reach_the_config(tiny_dataset):
    train_fer = SimpleNamespace(**runpy.run_path(os.path.join(REPO, 'scripts', 'train_fer.py')))  # not as __main__
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
            '--pretrained',
            'imagenet.pth',
        ]
    )
    cfg = build_config(
        args.config, args.work_dir, args.data_root, args.cfg_options, args.seed, args.device, args.max_epochs
    )
    assert cfg.work_dir == '/tmp/x' and cfg.train_dataloader.batch_size == 4 and args.pretrained == 'imagenet.pth'
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


# --- starting from pretrained weights (--pretrained / load_from), read with the safe loader ---------------------


@pytest.fixture
def cpu_env(monkeypatch):
    """train_fer(device='cpu') hides the GPUs through CUDA_VISIBLE_DEVICES; restore it after the test."""
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')


def _build_tiny_model(num_classes: int = 7):
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.head.num_classes = num_classes
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def imagenet_style_checkpoint(tmp_path_factory) -> tuple[str, dict[str, torch.Tensor]]:
    """An mmpretrain-format checkpoint of the tiny config's ResNet-18 with a 1000-class head, as ImageNet files are.

    Every tensor is drawn from its own generator, so no initialisation of the Runner can reproduce it by chance. The
    numpy scalar in ``meta`` makes ``torch.load(weights_only=True)`` refuse the file, as it refuses real mmpretrain
    and mmengine checkpoints: only the plugin's safe loader reads it.
    """
    import numpy as np

    generator = torch.Generator().manual_seed(1234)
    state = {
        k: torch.randn(v.shape, generator=generator) * 0.05 if v.is_floating_point() else v
        for k, v in _build_tiny_model(num_classes=1000).state_dict().items()
    }
    path = str(tmp_path_factory.mktemp('pretrained') / 'resnet18_in1k.pth')
    meta = {'mmpretrain_version': '1.2.0', 'epoch': 100, 'best_top1': np.float64(69.9)}
    torch.save({'meta': meta, 'state_dict': state}, path)
    with pytest.raises(Exception):  # noqa: B017  (torch raises UnpicklingError or its own wrapper)
        torch.load(path, weights_only=True)
    return path, state


def _frozen_lr_options() -> dict:
    # Learning rate 0 (AdamW's decoupled weight decay scales with it): the trained parameters stay exactly the ones
    # training started from, so they show whether the checkpoint reached the Runner's model.
    return {'optim_wrapper.optimizer.lr': 0.0}


def _parameters(state: dict[str, torch.Tensor], prefix: str = 'backbone.') -> dict[str, torch.Tensor]:
    buffers = ('running_mean', 'running_var', 'num_batches_tracked')
    return {k: v for k, v in state.items() if k.startswith(prefix) and not k.endswith(buffers)}


@pytest.mark.parametrize('how', ['pretrained', 'config_load_from'])
def test_training_starts_from_pretrained_weights(
    how, imagenet_style_checkpoint, tiny_dataset, tmp_path, capsys, cpu_env
):
    from srfer_plugin.fer_pretrain import INIT_NAME, train_fer

    path, source = imagenet_style_checkpoint
    work_dir = str(tmp_path / 'work')
    cfg_options = _frozen_lr_options()
    if how == 'config_load_from':
        cfg_options['load_from'] = path  # mmengine would refuse this file; train_fer reads it safely
    summary = train_fer(
        TINY_CONFIG,
        work_dir=work_dir,
        data_root=tiny_dataset,
        device='cpu',
        max_epochs=1,
        cfg_options=cfg_options,
        pretrained=path if how == 'pretrained' else None,
    )
    out = capsys.readouterr().out
    what = '--pretrained' if how == 'pretrained' else 'load_from'
    assert 'skipped 2 tensors whose shape differs from the model: head.fc.weight [1000, 512] vs [7, 512]' in out
    assert f'{what} {path}: initialising' in out

    # the cleaned file holds tensors only and no head
    init = torch.load(os.path.join(work_dir, INIT_NAME), map_location='cpu', weights_only=True)
    assert not any(k.startswith('head.') for k in init['state_dict'])
    assert set(init['meta']['skipped_shape_mismatch']) == {'head.fc.weight', 'head.fc.bias'}

    final = torch.load(summary['fer_final'], map_location='cpu', weights_only=True)['state_dict']
    expected = _parameters(source)
    assert expected and set(_parameters(final)) == set(expected)
    for key, value in expected.items():
        assert torch.equal(final[key], value), key  # init_weights() did not overwrite them
    assert final['head.fc.weight'].shape == (7, 512)


def test_pretrained_refuses_a_malicious_pickle(tiny_dataset, tmp_path, cpu_env):
    from srfer_plugin.fer_pretrain import train_fer
    from srfer_plugin.utils.checkpoint import UnsafeCheckpointError

    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)

    bad = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1)}, 'meta': Payload()}, bad)
    work_dir = tmp_path / 'work'
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        train_fer(TINY_CONFIG, work_dir=str(work_dir), data_root=tiny_dataset, device='cpu', pretrained=bad)
    assert not marker.exists()
    assert not work_dir.exists()  # nothing was built, trained or written


def test_pretrained_errors_name_the_file(tiny_dataset, tmp_path, cpu_env):
    from srfer_plugin.fer_pretrain import train_fer

    kwargs = {'work_dir': str(tmp_path / 'work'), 'data_root': tiny_dataset, 'device': 'cpu'}
    missing = str(tmp_path / 'nowhere' / 'resnet18.pth')
    with pytest.raises(FileNotFoundError, match='--pretrained .*nowhere/resnet18.pth'):
        train_fer(TINY_CONFIG, pretrained=missing, **kwargs)

    unrelated = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'encoder.weight': torch.zeros(3, 3), 'decoder.bias': torch.zeros(3)}}, unrelated)
    with pytest.raises(ValueError, match=r'--pretrained .*other.pth: none of its 2 tensors match the model'):
        train_fer(TINY_CONFIG, pretrained=unrelated, **kwargs)
    assert not (tmp_path / 'work').exists()


def test_read_weights_handles_prefixes_and_urls(imagenet_style_checkpoint, tmp_path, monkeypatch):
    import shutil

    from srfer_plugin.fer_pretrain import match_weights, read_weights

    path, source = imagenet_style_checkpoint
    # DDP 'module.' prefixes are stripped; a backbone-only file is matched under 'backbone.'
    ddp = str(tmp_path / 'ddp.pth')
    torch.save({'state_dict': {f'module.{k}': v for k, v in source.items()}}, ddp)
    assert set(read_weights(ddp)) == set(source)
    backbone_only = {k[len('backbone.') :]: v for k, v in source.items() if k.startswith('backbone.')}
    matched = match_weights(_build_tiny_model(), backbone_only, 'backbone.pth')
    assert set(matched['state_dict']) == set(k for k in source if k.startswith('backbone.'))

    # URLs are downloaded once into torch hub's checkpoint folder, then read the same safe way
    calls = []

    def fake_download(url, dst, progress=True):
        calls.append(url)
        shutil.copy(path, dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    url = 'https://download.example.org/models/resnet18_in1k.pth'
    for _ in range(2):
        state = read_weights(url)
    assert calls == [url] and os.path.isfile(tmp_path / 'hub' / 'checkpoints' / 'resnet18_in1k.pth')
    assert torch.equal(state['backbone.conv1.weight'], source['backbone.conv1.weight'])


def test_vit_position_embedding_is_resized_not_skipped():
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules

    from srfer_plugin.fer_pretrain import match_weights

    register_all_modules()
    cfg = Config.fromfile(os.path.join(REPO, 'options', 'fer', 'deit-tiny_fer7.py'))
    model = MODELS.build(cfg.model)  # 112 px: 7x7 patches
    imagenet_cfg = cfg.model.copy()
    imagenet_cfg.backbone = {**cfg.model.backbone, 'img_size': 224}
    imagenet_cfg.head = {**cfg.model.head, 'num_classes': 1000}
    source = MODELS.build(imagenet_cfg).state_dict()  # 224 px: 14x14 patches, 1000 classes
    result = match_weights(model, source, 'deit-tiny_in1k.pth')
    assert result['state_dict']['backbone.pos_embed'].shape == model.backbone.pos_embed.shape == (1, 50, 192)
    assert set(result['shape_mismatch']) == {'head.layers.head.weight', 'head.layers.head.bias'}


@pytest.mark.parametrize('name', ['mobilenetv3-small_fer7', 'convnext-atto_fer7', 'deit-tiny_fer7', 'resnet18_fer7'])
def test_fer_configs_build_for_seven_classes(name):
    from mmengine.config import Config
    from mmpretrain.apis import get_model

    cfg = Config.fromfile(os.path.join(REPO, 'options', 'fer', f'{name}.py'))
    model = get_model(cfg, pretrained=False)
    assert cfg.data_preprocessor.num_classes == 7
    assert type(model.head.loss_module).__name__ == 'LabelSmoothLoss'
    assert [t['type'] for t in cfg.train_dataloader.dataset.pipeline][1:-1] == [
        'RandomResizedCrop',
        'RandomFlip',
        'ColorJitter',
        'RandomErasing',
    ]
    model.eval()
    with torch.no_grad():
        logits = model(torch.zeros(2, 3, 112, 112), mode='tensor')
    assert logits.shape == (2, 7)


def test_demo_classifier_keeps_its_plain_training():
    from mmengine.config import Config
    from mmpretrain.apis import get_model

    cfg = Config.fromfile(os.path.join(REPO, 'options', 'fer', 'resnet18slim_fer7_demo.py'))
    assert [t['type'] for t in cfg.train_dataloader.dataset.pipeline] == [
        'LoadImageFromFile',
        'Resize',
        'RandomFlip',
        'PackInputs',
    ]
    assert dict(cfg.model.head.loss) == {'type': 'CrossEntropyLoss', 'loss_weight': 1.0}
    assert type(get_model(cfg, pretrained=False).head.loss_module).__name__ == 'CrossEntropyLoss'


def test_eval_degradation_names_a_bad_image_before_loading_anything(tmp_path, capsys):
    """A truncated image stopped the evaluation mid-run (cv2.imread returned None); it is named first."""
    from srfer_plugin.tools import eval_fer_degradation

    root = tmp_path / 'data'
    write_synthetic_dataset(str(root), seed=0, size=48, num_train=1, num_val=1, num_test=1)
    with open(root / 'meta_info_test.txt', encoding='utf-8') as f:
        victim = f.readline().split()[0]
    data = (root / victim).read_bytes()
    (root / victim).write_bytes(data[: len(data) // 3])
    argv = [TINY_CONFIG, str(tmp_path / 'never_read.pth'), '--data-root', str(root), '--split', 'test']
    assert eval_fer_degradation.main(argv) == 2
    err = capsys.readouterr().err
    assert str(root / victim) in err and err.startswith('error: 1 image(s) of the dataset cannot be used')
