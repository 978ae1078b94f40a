"""MMPretrainFER: stage features, normalisation, freezing and every checkpoint format."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from fer_fixtures import REPO_ROOT

from srfer_plugin.archs.mmpretrain_fer_arch import MMPretrainFER
from srfer_plugin.utils.checkpoint import UnsafeCheckpointError

FER_CONFIG = os.path.join(REPO_ROOT, 'options', 'fer', 'resnet18_fer7.py')


@pytest.fixture(scope='module')
def fer() -> MMPretrainFER:
    torch.manual_seed(0)
    return MMPretrainFER(FER_CONFIG, checkpoint=None, num_classes=5)


def test_features_per_stage_and_logits(fer):
    feats, logits = fer(torch.rand(2, 3, 64, 64))
    assert [f.shape[1:] for f in feats] == [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
    assert logits.shape == (2, 5)
    sub = MMPretrainFER(FER_CONFIG, num_classes=5, stages=[1, 3])
    sub.load_state_dict(fer.state_dict())
    sub_feats, sub_logits = sub(x := torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in sub_feats] == [128, 512]
    assert torch.allclose(sub_logits, fer(x)[1], atol=1e-5), 'the head must read the same last stage'


def test_stage_after_head_is_rejected():
    with pytest.raises(ValueError, match='stages'):
        MMPretrainFER(FER_CONFIG, num_classes=5, stages=[0, 4])


def test_registered_and_built_from_options():
    net = build_network({'type': 'MMPretrainFER', 'config': FER_CONFIG, 'num_classes': 3, 'stages': [2]})
    assert isinstance(net, MMPretrainFER) and net.num_classes == 3 and net.stages == [2]


def test_model_name_config():
    net = MMPretrainFER('resnet18_8xb32_in1k', num_classes=7, stages=[3])
    assert net(torch.rand(1, 3, 32, 32))[1].shape == (1, 7)


def test_normalisation_rgb_0_255_mean_std(fer):
    x = torch.rand(1, 3, 4, 4)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    assert torch.allclose(fer.normalize(x), (x * 255 - mean) / std, atol=1e-5)


def test_normalisation_bgr_model(tmp_path):
    cfg = tmp_path / 'bgr_fer.py'
    cfg.write_text(
        f"_base_ = ['{FER_CONFIG}']\n"
        'data_preprocessor = dict(mean=[10.0, 20.0, 30.0], std=[1.0, 2.0, 3.0], to_rgb=False)\n'
    )
    net = MMPretrainFER(str(cfg), num_classes=7)
    x = torch.rand(1, 3, 2, 2)
    expected = (x.flip(1) * 255 - torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1)) / torch.tensor(
        [1.0, 2.0, 3.0]
    ).view(1, 3, 1, 1)
    assert torch.allclose(net.normalize(x), expected, atol=1e-4)


def test_frozen_by_default_stays_eval_and_passes_gradients(fer):
    assert fer.frozen and not fer.training
    assert not any(p.requires_grad for p in fer.parameters())
    fer.train()
    assert not fer.training, 'a frozen classifier stays in eval mode'
    before = {k: v.clone() for k, v in fer.state_dict().items()}
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    feats, logits = fer(x)
    (logits.sum() + sum(f.mean() for f in feats)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(torch.equal(before[k], v) for k, v in fer.state_dict().items())


def _runner_checkpoint(state_dict: dict, path: str) -> None:
    """What mmengine's Runner.save_checkpoint writes: meta with numpy values, message_hub with HistoryBuffers."""
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance('srfer_test_runner_ckpt')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/lr', np.float64(0.1))
    hub.update_info('iter', 10)
    checkpoint = {
        'meta': {'epoch': 1, 'iter': 10, 'seed': np.int64(0), 'dataset_meta': {'classes': ('a', 'b', 'c', 'd', 'e')}},
        'state_dict': state_dict,
        'message_hub': hub.state_dict(),
        'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1, 'params': [0]}]},
    }
    torch.save(checkpoint, path)
    with pytest.raises(Exception):  # noqa: B017  (what mmengine 0.10.7 hits under torch >= 2.6)
        torch.load(path, weights_only=True)


@pytest.mark.parametrize('fmt', ['runner', 'plain', 'basicsr_params', 'ddp_prefixed'])
def test_checkpoint_formats(fer, tmp_path, fmt):
    inner = fer.model.state_dict()
    path = str(tmp_path / f'{fmt}.pth')
    if fmt == 'runner':
        _runner_checkpoint(inner, path)
    elif fmt == 'plain':
        torch.save(inner, path)
    elif fmt == 'basicsr_params':
        torch.save({'params': fer.state_dict()}, path)  # keys prefixed with "model."
    else:
        torch.save({'state_dict': {f'module.{k}': v for k, v in inner.items()}}, path)
    torch.manual_seed(123)
    loaded = MMPretrainFER(FER_CONFIG, checkpoint=path, num_classes=5)
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(loaded(x)[1], fer(x)[1], atol=1e-6)
    if fmt == 'runner':
        assert loaded.class_names == ['a', 'b', 'c', 'd', 'e']


def test_checkpoint_errors(fer, tmp_path):
    path = str(tmp_path / 'five.pth')
    torch.save(fer.model.state_dict(), path)
    with pytest.raises(ValueError, match='head has 5 classes.*num_classes is 7'):
        MMPretrainFER(FER_CONFIG, checkpoint=path, num_classes=7)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        MMPretrainFER(FER_CONFIG, checkpoint=str(tmp_path / 'missing.pth'), num_classes=5)
    with pytest.raises(FileNotFoundError, match='no_such_config.py'):
        MMPretrainFER(str(tmp_path / 'no_such_config.py'))
    partial = {k: v for k, v in fer.model.state_dict().items() if not k.startswith('head.')}
    torch.save(partial, path)
    with pytest.raises(ValueError, match='missing keys'):
        MMPretrainFER(FER_CONFIG, checkpoint=path, num_classes=5)


def test_options_that_would_load_nothing_are_refused(fer, tmp_path):
    """``strict: false`` with a file of another network, a ``param_key`` the file lacks, and non-boolean ``strict``
    used to load nothing (or the wrong entry) without a word."""
    other = str(tmp_path / 'other.pth')
    torch.save({'params': {'body.0.weight': torch.zeros(3, 3, 3, 3)}}, other)
    with pytest.raises(ValueError, match='none of its 1 tensors is a weight of'):
        MMPretrainFER(FER_CONFIG, checkpoint=other, num_classes=5, strict=False)
    params = str(tmp_path / 'params.pth')
    torch.save({'params': fer.state_dict()}, params)
    with pytest.raises(KeyError, match="has no key 'params_ema'; keys: \\['params'\\]"):
        MMPretrainFER(FER_CONFIG, checkpoint=params, num_classes=5, param_key='params_ema')
    with pytest.raises(ValueError, match="network_fer.strict must be true or false; got 'no'"):
        MMPretrainFER(FER_CONFIG, checkpoint=params, num_classes=5, strict='no')
    with pytest.raises(ValueError, match='network_fer.param_key must be a key name'):
        MMPretrainFER(FER_CONFIG, checkpoint=params, num_classes=5, param_key=5)


class _Exploit:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_malicious_checkpoint_is_refused(fer, tmp_path):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': fer.model.state_dict(), 'meta': _Exploit(str(marker))}, path)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth.*posix.system|evil.pth.*nt.system'):
        MMPretrainFER(FER_CONFIG, checkpoint=path, num_classes=5)
    assert not marker.exists()


def test_stage_after_the_head_stage_is_rejected(tmp_path):
    cfg = tmp_path / 'head_at_stage2.py'
    cfg.write_text(
        f"_base_ = ['{FER_CONFIG}']\nmodel = dict(backbone=dict(out_indices=(2, )), head=dict(in_channels=256))\n"
    )
    with pytest.raises(ValueError, match='after the stage the head reads'):
        MMPretrainFER(str(cfg), num_classes=5, stages=[1, 3])
    assert MMPretrainFER(str(cfg), num_classes=5, stages=[1, 2])(torch.rand(1, 3, 32, 32))[1].shape == (1, 5)
