"""Every checkpoint the plugin reads is loaded without running pickled code; crafted files are refused."""

from __future__ import annotations

import os

import pytest
import torch
from basicsr.models import build_model
from fer_fixtures import model_options

from srfer_plugin.train_loop import load_resume_state_any_device
from srfer_plugin.utils.checkpoint import UnsafeCheckpointError


class _Payload:
    """Unpickling this calls ``os.system``, which would write the marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / 'pwned'

    def make(name: str, wrap) -> str:
        path = str(tmp_path / name)
        torch.save(wrap(_Payload(str(marker))), path)
        return path

    make.marker = marker
    return make


def _check_refused(err: pytest.ExceptionInfo, path: str, marker) -> None:
    assert path in str(err.value), 'the error names the file'
    assert 'posix.system' in str(err.value) or 'os.system' in str(err.value)
    assert not marker.exists(), 'pickled code ran'


def test_malicious_fer_checkpoint_is_refused(evil, tiny_fer_root, tmp_path):
    path = evil('fer.pth', lambda p: {'state_dict': {'w': torch.zeros(1)}, 'meta': p})
    opt = model_options(tiny_fer_root, str(tmp_path / 'exp'))
    opt['network_fer']['checkpoint'] = path
    with pytest.raises(UnsafeCheckpointError) as err:
        build_model(opt)
    _check_refused(err, path, evil.marker)


def test_malicious_pretrain_network_g_is_refused(evil, tiny_fer_root, tmp_path):
    path = evil('net_g.pth', lambda p: {'params': p})
    opt = model_options(tiny_fer_root, str(tmp_path / 'exp'))
    opt['path']['pretrain_network_g'] = path
    with pytest.raises(UnsafeCheckpointError) as err:
        build_model(opt)
    _check_refused(err, path, evil.marker)


def test_malicious_resume_state_is_refused(evil, tiny_fer_root, tmp_path):
    path = evil('7.state', lambda p: {'epoch': 0, 'iter': 7, 'optimizers': [p], 'schedulers': []})
    opt = model_options(tiny_fer_root, str(tmp_path / 'exp'))
    opt.update(name='evil', auto_resume=False)
    opt['path']['resume_state'] = path
    with pytest.raises(UnsafeCheckpointError) as err:
        load_resume_state_any_device(opt)
    _check_refused(err, path, evil.marker)


def test_plugin_checkpoints_round_trip(tiny_fer_root, tmp_path):
    """Weights and training states written by SRFERModel load back through the safe loader."""
    opt = model_options(tiny_fer_root, str(tmp_path / 'exp'))
    opt['train']['ema_decay'] = 0.5
    model = build_model(opt)
    model.save(0, 2)
    files = sorted(os.listdir(opt['path']['models'])) + sorted(os.listdir(opt['path']['training_states']))
    assert files == ['net_g_2.pth', '2.state']
    loaded = torch.load(os.path.join(opt['path']['models'], 'net_g_2.pth'), weights_only=True)
    assert set(loaded) == {'params', 'params_ema'}
    opt['path']['pretrain_network_g'] = os.path.join(opt['path']['models'], 'net_g_2.pth')
    opt['path']['param_key_g'] = 'params_ema'
    again = build_model(opt)
    for key, value in model.net_g_ema.state_dict().items():
        assert torch.equal(value, again.net_g.state_dict()[key])
