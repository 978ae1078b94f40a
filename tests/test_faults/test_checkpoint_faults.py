"""Checkpoint files under faults: cut off, empty or not checkpoints at all, a save killed mid-write, the umask."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from basicsr.models import build_model
from fer_fixtures import model_options

from srfer_plugin.train_loop import load_resume_state_any_device
from srfer_plugin.utils import checkpoint
from srfer_plugin.utils.checkpoint import atomic_torch_save, safe_load

# (share of the file kept, word the error must use)
CUTS = [(0.5, 'truncated'), (0.999, 'truncated'), (0.0, 'empty')]


def _cut(path: str, keep: float) -> None:
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[: int(len(data) * keep)])


@pytest.fixture(scope='module')
def saved_run(tiny_fer_root, tmp_path_factory) -> dict:
    """A tiny SR-FER model's options and its ``net_g_2.pth`` and ``2.state``, written by the model itself."""
    opt = model_options(tiny_fer_root, str(tmp_path_factory.mktemp('checkpoint_faults') / 'exp'))
    build_model(opt).save(0, 2)
    return opt


def _copy_saved(opt: dict, kind: str, folder) -> str:
    """A copy in ``folder`` of the run's ``net_g_2.pth`` (``kind='net_g'``) or ``2.state`` (``'state'``)."""
    subfolder, name = {'net_g': ('models', 'net_g_2.pth'), 'state': ('training_states', '2.state')}[kind]
    with open(os.path.join(opt['path'][subfolder], name), 'rb') as f:
        data = f.read()
    path = os.path.join(str(folder), name)
    with open(path, 'wb') as f:
        f.write(data)
    return path


@pytest.fixture(params=['net_g', 'state'])
def damaged_copy(request, saved_run, tmp_path) -> str:
    """A copy of the saved weights or training state, to be damaged by the test."""
    return _copy_saved(saved_run, request.param, tmp_path)


@pytest.mark.parametrize('keep, word', CUTS, ids=['50%', '99.9%', '0-byte'])
def test_cut_off_checkpoint_error_names_the_file_and_the_damage(damaged_copy, keep, word):
    _cut(damaged_copy, keep)
    with pytest.raises(Exception) as err:
        safe_load(damaged_copy)
    message = str(err.value)
    assert damaged_copy in message and word in message, message
    assert err.value.__cause__ is not None, 'the original error must stay chained'
    assert isinstance(err.value, checkpoint.CheckpointReadError)


def test_file_that_is_no_checkpoint_is_named(tmp_path):
    path = tmp_path / 'net_g_2.pth'
    path.write_text('<html>404 Not Found</html>')
    with pytest.raises(Exception) as err:
        safe_load(str(path))
    assert str(path) in str(err.value) and 'not a checkpoint' in str(err.value)
    assert err.value.__cause__ is not None


@pytest.mark.parametrize('keep, word', CUTS, ids=['50%', '99.9%', '0-byte'])
def test_cut_off_weights_fail_the_model_naming_the_file(saved_run, tiny_fer_root, tmp_path, keep, word):
    """What BasicSR's load_network reads (``path.pretrain_network_g``) goes through the same checks."""
    weights = _copy_saved(saved_run, 'net_g', tmp_path)
    _cut(weights, keep)
    opt = model_options(tiny_fer_root, str(tmp_path / 'exp'))
    opt['path']['pretrain_network_g'] = weights
    with pytest.raises(Exception) as err:
        build_model(opt)
    assert weights in str(err.value) and word in str(err.value)


@pytest.mark.parametrize('keep, word', CUTS, ids=['50%', '99.9%', '0-byte'])
def test_cut_off_resume_state_error_names_the_file(saved_run, tmp_path, keep, word):
    state = _copy_saved(saved_run, 'state', tmp_path)
    _cut(state, keep)
    opt = dict(saved_run, auto_resume=False, path=dict(saved_run['path'], resume_state=state))
    with pytest.raises(Exception) as err:
        load_resume_state_any_device(opt)
    assert state in str(err.value) and word in str(err.value)
    assert err.value.__cause__ is not None


@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)], ids=['022', '002', '077'])
def test_saved_checkpoint_mode_follows_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_torch_save({'params': {'w': torch.zeros(2)}}, str(tmp_path / 'net_g_2.pth'))
    finally:
        os.umask(previous)
    assert os.stat(tmp_path / 'net_g_2.pth').st_mode & 0o777 == mode


# A process that saves a checkpoint whose pickling blocks, so it can be killed mid-write.
_SLOW_SAVE = textwrap.dedent(
    """
    import sys, time
    import torch
    from srfer_plugin.utils.checkpoint import atomic_torch_save

    class Slow:
        def __reduce__(self):
            time.sleep(60)
            return (int, (0,))

    atomic_torch_save({'params': {'w': torch.zeros(2)}, 'slow': Slow()}, sys.argv[1])
    """
)


def test_save_killed_mid_write_leaves_only_a_temp_file_that_cleanup_removes(tmp_path):
    models = tmp_path / 'models'
    models.mkdir()
    keep = [models / 'net_g_18.pth', models / 'notes.tmp', models / '.net_g_18.pth.user.tmp', models / 'a.pth.tmp']
    for path in keep:
        path.write_bytes(b'user file')
    proc = subprocess.Popen([sys.executable, '-c', _SLOW_SAVE, str(models / 'net_g_18.pth')])
    try:
        deadline = time.time() + 120
        while not [p for p in os.listdir(models) if p.startswith('.net_g_18.pth.') and p not in {k.name for k in keep}]:
            assert proc.poll() is None and time.time() < deadline, 'the save never started'
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = sorted(set(os.listdir(models)) - {k.name for k in keep})
    assert len(left) == 1 and left[0].endswith('.tmp'), left
    assert (models / 'net_g_18.pth').read_bytes() == b'user file', 'the killed save must leave the old file intact'

    removed = checkpoint.remove_stale_temp_files(str(models))
    assert removed == [str(models / left[0])]
    assert sorted(os.listdir(models)) == sorted(k.name for k in keep), "only the writer's own temp files go"
