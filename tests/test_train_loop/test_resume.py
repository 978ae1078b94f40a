"""Resume that loses nothing: a training killed mid-run continues with the losses of an uninterrupted run."""

from __future__ import annotations

import os

import torch
from fer_fixtures import tiny_train_options, write_options
from training_runs import full_and_killed_runs, logged_losses, run_training

from srfer_plugin.train_loop import load_resume_state_any_device
from srfer_plugin.utils.checkpoint import safe_load

NAME = 'resume_tiny'


def _joint_options(data_root: str) -> dict:
    """Joint learning (trainable net_fer with its own optimizer), 3 iterations per epoch, checkpoints every 4."""
    opt = tiny_train_options(data_root, name=NAME)
    opt['train']['train_network_fer'] = True
    opt['train']['fer_opt'] = {'type': 'FERCrossEntropyLoss', 'loss_weight': 1.0}
    opt['train']['optim_fer'] = {'type': 'SGD', 'lr': 0.01, 'momentum': 0.9}
    opt['train']['total_iter'] = 6
    opt['train']['ema_decay'] = 0.9
    opt['logger']['save_checkpoint_freq'] = 4
    opt['val']['val_freq'] = 4  # validation between checkpoint and next batch must not change the data
    return opt


def test_killed_run_resumes_with_identical_losses(tiny_fer_root, tmp_path):
    opt_path = write_options(_joint_options(tiny_fer_root), str(tmp_path / 'train.yml'))
    # SIGKILL as soon as the first training state exists (iteration 4: one batch into epoch 1).
    full_dir, killed_dir = full_and_killed_runs(opt_path, tmp_path, f'experiments/{NAME}/training_states/4.state')
    exp = killed_dir / 'experiments' / NAME
    assert not (exp / 'models' / 'net_g_latest.pth').exists()
    assert not list((exp / 'training_states').glob('*.tmp')), 'a temporary file was left behind'
    state = safe_load(str(exp / 'training_states' / '4.state'))
    assert {'rng_states', 'iters_per_epoch', 'optimizers', 'schedulers'} <= set(state)
    assert len(state['optimizers']) == 2, 'net_g and net_fer optimizers'
    assert (exp / 'models' / 'net_fer_4.pth').exists()

    proc = run_training(opt_path, str(killed_dir), '--auto_resume')
    assert 'Resuming training from epoch: 1, iter: 4' in proc.stderr + proc.stdout
    full = logged_losses(str(full_dir / 'experiments' / NAME))
    resumed = logged_losses(str(exp))
    assert sorted(full) == list(range(1, 7))
    after = {it: loss for it, loss in resumed.items() if it > 4}
    assert sorted(after) == [5, 6]
    assert after == {it: full[it] for it in after}, 'losses after the resume point differ'
    assert {it: resumed[it] for it in range(1, 5)} == {it: full[it] for it in range(1, 5)}

    full_g = safe_load(str(full_dir / 'experiments' / NAME / 'models' / 'net_g_latest.pth'))
    resumed_g = safe_load(str(exp / 'models' / 'net_g_latest.pth'))
    for key in ('params', 'params_ema'):
        assert all(torch.equal(v, resumed_g[key][k]) for k, v in full_g[key].items())


def test_basicsr_written_training_state_still_resumes(tiny_fer_root, tmp_path, monkeypatch):
    """A training state saved by BasicSR's own ``save_training_state`` (no RNG states) loads and resumes."""
    from basicsr.models import build_model
    from basicsr.models.base_model import BaseModel
    from fer_fixtures import model_options

    opt = model_options(tiny_fer_root, str(tmp_path / 'experiments' / 'plain'))
    opt['name'] = 'plain'
    os.makedirs(opt['path']['training_states'])
    model = build_model(opt)
    BaseModel.save_training_state(model, 0, 3)
    opt.update(auto_resume=True)
    monkeypatch.chdir(tmp_path)
    state = load_resume_state_any_device(opt)
    assert state['iter'] == 3 and 'rng_states' not in state
    assert opt['path']['pretrain_network_g'].endswith('net_g_3.pth')
    model.resume_training(state)
