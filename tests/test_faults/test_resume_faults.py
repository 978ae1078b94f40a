"""Resume under faults: damaged newest checkpoints, stale temporary files, nothing left to train, the classifier,
checkpoints the resumed run would save over."""

from __future__ import annotations

import copy
import glob
import os
import subprocess

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models import build_model
from fer_fixtures import TINY_NET_D, model_options, tiny_train_options, write_options
from training_runs import kill_when, train_cmd, train_env

from srfer_plugin.train_loop import load_resume_state_any_device, resume_selection
from srfer_plugin.train_loop.resume import log_resume_notes
from srfer_plugin.utils.checkpoint import atomic_torch_save

NAME = 'resume_faults'
CUTS = [(0.5, 'truncated'), (0.999, 'truncated'), (0.0, 'empty')]
CUT_IDS = ['50%', '99.9%', '0-byte']


class _Recorder:
    """Stands in for BasicSR's logger."""

    def __init__(self):
        self.messages: list[str] = []

    def info(self, message: str) -> None:
        self.messages.append(message)

    warning = info


def _logged(opt: dict) -> list[str]:
    """What the training loop logs about the start of the run (it calls log_resume_notes once the log exists)."""
    recorder = _Recorder()
    log_resume_notes(opt, recorder)
    return recorder.messages


def _cut(path: str, keep: float) -> None:
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[: int(len(data) * keep)])


@pytest.fixture
def run_options(tiny_fer_root, tmp_path, monkeypatch) -> dict:
    """``--auto_resume`` options of run ``NAME`` in ``tmp_path/experiments`` (the current folder is ``tmp_path``)."""
    opt = model_options(tiny_fer_root, str(tmp_path / 'experiments' / NAME))
    opt.update(name=NAME, auto_resume=True)
    for folder in ('models', 'training_states'):
        os.makedirs(opt['path'][folder])
    monkeypatch.chdir(tmp_path)
    return opt


def _save_checkpoint(opt: dict, current_iter: int, networks: tuple[str, ...] = ('g',)) -> None:
    """What a model saves at ``current_iter``: ``net_<x>_<iter>.pth`` for ``networks``, then ``<iter>.state``."""
    for net in networks:
        weights = {'params': {'w': torch.full((2,), float(current_iter))}}
        atomic_torch_save(weights, os.path.join(opt['path']['models'], f'net_{net}_{current_iter}.pth'))
    state = {'epoch': 0, 'iter': current_iter, 'optimizers': [], 'schedulers': []}
    atomic_torch_save(state, os.path.join(opt['path']['training_states'], f'{current_iter}.state'))


# ------------------------------------------------------------------------------------ damaged newest checkpoint
@pytest.mark.parametrize('keep, word', CUTS, ids=CUT_IDS)
@pytest.mark.parametrize('damaged', ['training_states/4.state', 'models/net_g_4.pth'])
def test_auto_resume_takes_the_previous_state_when_the_newest_is_damaged(run_options, damaged, keep, word):
    _save_checkpoint(run_options, 2)
    _save_checkpoint(run_options, 4)
    damaged_path = os.path.join(run_options['path']['experiments_root'], damaged)
    _cut(damaged_path, keep)
    size = os.path.getsize(damaged_path)

    state = load_resume_state_any_device(run_options)

    assert state['iter'] == 2 and run_options['resume_position']['iter'] == 2
    assert run_options['path']['resume_state'].endswith(os.path.join('training_states', '2.state'))
    assert run_options['path']['pretrain_network_g'].endswith(os.path.join('models', 'net_g_2.pth'))
    (superseded,) = glob.glob(os.path.join(run_options['path']['experiments_root'], 'superseded_*'))
    moved = os.path.join(superseded, damaged)
    assert os.path.getsize(moved) == size, 'a damaged file is skipped and moved aside, never deleted or changed'
    skipped = [m for m in _logged(run_options) if 'skipped' in m]
    assert len(skipped) == 1 and damaged_path in skipped[0] and word in skipped[0], skipped


def test_auto_resume_skips_a_state_whose_network_file_is_missing(run_options):
    _save_checkpoint(run_options, 2)
    _save_checkpoint(run_options, 4, networks=())
    assert load_resume_state_any_device(run_options)['iter'] == 2
    assert any('net_g_4.pth is missing' in m for m in _logged(run_options))


@pytest.mark.parametrize('net', ['d', 'fer'])
def test_auto_resume_checks_every_network_the_state_needs(run_options, net):
    """GAN models need ``net_d_<iter>.pth``; joint learning ``net_fer_<iter>.pth``, listed as ignored or not."""
    if net == 'd':
        run_options['network_d'] = dict(TINY_NET_D)
    else:
        run_options['train']['train_network_fer'] = True
        run_options['path']['ignore_resume_networks'] = ['network_fer']
    _save_checkpoint(run_options, 2, ('g', net))
    _save_checkpoint(run_options, 4, ('g', net))
    damaged = os.path.join(run_options['path']['models'], f'net_{net}_4.pth')
    _cut(damaged, 0.5)

    assert load_resume_state_any_device(run_options)['iter'] == 2
    assert run_options['path'][f'pretrain_network_{net}'].endswith(f'net_{net}_2.pth')
    assert any(damaged in m and 'truncated' in m for m in _logged(run_options))


def test_auto_resume_without_a_readable_state_fails_naming_every_file(run_options):
    _save_checkpoint(run_options, 2)
    _save_checkpoint(run_options, 4)
    states = [os.path.join(run_options['path']['training_states'], f'{it}.state') for it in (2, 4)]
    _cut(states[0], 0.0)
    _cut(states[1], 0.5)
    with pytest.raises(Exception) as err:
        load_resume_state_any_device(run_options)
    assert all(state in str(err.value) for state in states) and 'empty' in str(err.value)
    assert isinstance(err.value, resume_selection.ResumeStateError)


# ------------------------------------------------------------------------- what the resumed run would save over
def _checkpoint_bytes(opt: dict) -> dict[str, bytes]:
    """``{'models/net_g_2.pth': bytes, 'training_states/2.state': bytes, ...}`` of the run's checkpoints."""
    root = opt['path']['experiments_root']
    files = glob.glob(os.path.join(root, 'models', '*')) + glob.glob(os.path.join(root, 'training_states', '*'))
    return {os.path.relpath(path, root): open(path, 'rb').read() for path in files}


def test_auto_resume_moves_aside_the_later_checkpoints_it_would_save_over(run_options):
    """States 2, 4, 6 with 6 damaged: the run resumes from 4 and will save at 6 again; the files of 6 (damaged or
    not) go to ``superseded_<time>/`` byte-identical before that, and nothing of iteration 2 or 4 moves."""
    for it in (2, 4, 6):
        _save_checkpoint(run_options, it, ('g', 'd'))
    _cut(os.path.join(run_options['path']['training_states'], '6.state'), 0.0)
    before = _checkpoint_bytes(run_options)
    root = run_options['path']['experiments_root']

    assert load_resume_state_any_device(run_options)['iter'] == 4

    (superseded,) = glob.glob(os.path.join(root, 'superseded_*'))
    later = {'models/net_d_6.pth', 'models/net_g_6.pth', 'training_states/6.state'}
    assert {os.path.relpath(p, superseded) for p in glob.glob(os.path.join(superseded, '*', '*'))} == later
    assert all(open(os.path.join(superseded, rel), 'rb').read() == before[rel] for rel in later)
    assert _checkpoint_bytes(run_options) == {rel: data for rel, data in before.items() if rel not in later}
    logged = _logged(run_options)
    for rel in later:
        assert f'moved {os.path.join(root, rel)} to {os.path.join(superseded, rel)}' in logged, logged
    assert any('resuming from iteration 4: moved 3 checkpoint file(s)' in m and superseded in m for m in logged)


def test_explicit_resume_state_moves_aside_later_and_latest_checkpoints_on_rank_0_only(run_options):
    """``path.resume_state`` at 4 of a run that went on to 6 and finished: 6 and the earlier run's
    ``net_g_latest.pth`` (finished work the resumed run would replace at its end) move; files it reads stay."""
    for it in (2, 4, 6):
        _save_checkpoint(run_options, it)
    models = run_options['path']['models']
    for name in ('net_g_latest.pth', 'net_fer_latest.pth'):
        atomic_torch_save({'params': {'w': torch.zeros(2)}}, os.path.join(models, name))
    run_options['network_fer']['checkpoint'] = os.path.join(models, 'net_fer_latest.pth')  # the run reads it
    run_options['train']['total_iter'] = 8
    run_options.update(auto_resume=False)
    run_options['path']['resume_state'] = os.path.join(run_options['path']['training_states'], '4.state')
    before = _checkpoint_bytes(run_options)
    root = run_options['path']['experiments_root']

    other_rank = dict(copy.deepcopy(run_options), rank=1)
    assert load_resume_state_any_device(other_rank)['iter'] == 4
    assert _checkpoint_bytes(run_options) == before and not glob.glob(os.path.join(root, 'superseded_*'))

    assert load_resume_state_any_device(run_options)['iter'] == 4
    (superseded,) = glob.glob(os.path.join(root, 'superseded_*'))
    later = {'models/net_g_6.pth', 'models/net_g_latest.pth', 'training_states/6.state'}
    assert {os.path.relpath(p, superseded) for p in glob.glob(os.path.join(superseded, '*', '*'))} == later
    assert all(open(os.path.join(superseded, rel), 'rb').read() == before[rel] for rel in later)
    assert _checkpoint_bytes(run_options) == {rel: data for rel, data in before.items() if rel not in later}

    assert load_resume_state_any_device(copy.deepcopy(run_options))['iter'] == 4  # nothing left to move
    assert len(glob.glob(os.path.join(root, 'superseded_*'))) == 1


# --------------------------------------------------------------------------------------- stale temporary files
def test_training_start_removes_only_the_temp_files_of_killed_saves(run_options):
    _save_checkpoint(run_options, 2)
    models, states = run_options['path']['models'], run_options['path']['training_states']
    stale = [os.path.join(models, '.net_g_18.pth.k3x_9abq.tmp'), os.path.join(states, '.18.state.a1b2c3d4.tmp')]
    kept = [os.path.join(models, name) for name in ('notes.tmp', '.net_g_18.pth.tmp', '.readme.txt.a1b2c3d4.tmp')]
    for path in stale + kept:
        with open(path, 'wb') as f:
            f.write(b'x')

    other_rank = dict(copy.deepcopy(run_options), rank=1)
    load_resume_state_any_device(other_rank)
    assert all(os.path.exists(path) for path in stale), 'only rank 0 cleans'

    assert load_resume_state_any_device(run_options)['iter'] == 2
    assert not any(os.path.exists(path) for path in stale)
    assert all(os.path.exists(path) for path in kept)
    removed = [m for m in _logged(run_options) if 'removed' in m]
    assert sorted(removed) == sorted(f'removed {path}: the temporary file of a save that was cut off' for path in stale)


# ----------------------------------------------------------------------------------------- nothing left to train
@pytest.mark.parametrize('state_iter, total_iter, finished', [(4, 4, True), (6, 4, False)], ids=['at', 'past'])
def test_state_with_no_iteration_left_is_refused(run_options, state_iter, total_iter, finished):
    _save_checkpoint(run_options, state_iter)
    if finished:
        atomic_torch_save({'params': {}}, os.path.join(run_options['path']['models'], 'net_g_latest.pth'))
    run_options['train']['total_iter'] = total_iter
    with pytest.raises(Exception) as err:
        load_resume_state_any_device(run_options)
    message = str(err.value)
    assert f'{state_iter}.state' in message and f'iteration {state_iter}' in message
    assert f'train.total_iter is {total_iter}' in message and 'raise train.total_iter' in message
    assert isinstance(err.value, resume_selection.ResumeStateError)

    run_options['train']['total_iter'] = state_iter + 2  # a user who raises total_iter resumes
    assert load_resume_state_any_device(run_options)['iter'] == state_iter


def test_state_at_total_iter_of_an_unfinished_run_finishes_it_and_says_so(run_options):
    """Killed after its last checkpoint, before ``net_g_latest.pth``: the resumed run writes the final networks."""
    _save_checkpoint(run_options, 4)
    run_options['train']['total_iter'] = 4
    assert load_resume_state_any_device(run_options)['iter'] == 4
    assert any('4.state is at iteration 4 = train.total_iter' in m for m in _logged(run_options))


def test_rerun_of_a_finished_training_exits_with_an_error(tiny_fer_root, tmp_path):
    opt = tiny_train_options(tiny_fer_root, name=NAME)
    opt['val']['val_freq'] = 100
    opt_path = write_options(opt, str(tmp_path / 'train.yml'))
    for attempt, extra in enumerate(([], ['--auto_resume'])):
        proc = subprocess.run(
            train_cmd(opt_path, *extra), cwd=tmp_path, env=train_env(), capture_output=True, text=True, timeout=300
        )
        if attempt == 0:
            assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.returncode != 0, 'a resume with nothing left to train must not exit 0'
    assert '4.state is at iteration 4, train.total_iter is 4' in proc.stderr, proc.stderr[-3000:]


# ---------------------------------------------------------------------------------------------- the classifier
@pytest.fixture(scope='module')
def classifier_files(tiny_fer_root, tmp_path_factory) -> dict:
    """The tiny options' classifier with seed-1234 weights, as a BasicSR ``params`` file and as an mmengine one."""
    folder = tmp_path_factory.mktemp('classifier')
    network_fer = tiny_train_options(tiny_fer_root)['network_fer']
    torch.manual_seed(1234)
    net = build_network(copy.deepcopy(network_fer))
    files = {'params': str(folder / 'fer_params.pth'), 'mmengine': str(folder / 'fer_mmengine.pth')}
    torch.save({'params': net.state_dict()}, files['params'])
    torch.save({'state_dict': net.model.state_dict()}, files['mmengine'])
    return dict(files, weights={k: v.clone() for k, v in net.state_dict().items()})


def _with_classifier(opt: dict, classifier_files: dict, file_format: str, ignore: bool) -> dict:
    """``opt`` whose classifier is ``network_fer.checkpoint`` in ``file_format`` (``params`` or ``mmengine``),
    with ``network_fer`` in ``path.ignore_resume_networks`` or not (it makes no difference)."""
    opt['network_fer']['checkpoint'] = classifier_files[file_format]
    if ignore:
        opt['path']['ignore_resume_networks'] = ['network_fer']
    else:
        opt['path'].pop('ignore_resume_networks', None)
    return opt


def _same_weights(net: torch.nn.Module, weights: dict[str, torch.Tensor]) -> bool:
    state = net.state_dict()
    return set(state) == set(weights) and all(torch.equal(state[k], weights[k]) for k in weights)


def test_frozen_classifier_is_identical_after_kill_and_resume(tiny_fer_root, classifier_files, tmp_path, monkeypatch):
    """A frozen classifier and no ``ignore_resume_networks``: check_resume points the classifier at a
    ``net_fer_<iter>.pth`` that is never saved; the resumed run must still use the weights it started with."""
    opt = _with_classifier(tiny_train_options(tiny_fer_root, name=NAME), classifier_files, 'params', False)
    opt['train']['total_iter'] = 8
    opt['val']['val_freq'] = 100
    opt_path = write_options(opt, str(tmp_path / 'train.yml'))
    assert kill_when(opt_path, str(tmp_path), f'experiments/{NAME}/training_states/2.state') != 0

    resumed_opt = model_options(tiny_fer_root, str(tmp_path / 'experiments' / NAME))
    resumed_opt = _with_classifier(resumed_opt, classifier_files, 'params', False)
    resumed_opt.update(name=NAME, auto_resume=True)
    monkeypatch.chdir(tmp_path)
    state = load_resume_state_any_device(resumed_opt)
    assert state['iter'] >= 2
    torch.manual_seed(0)
    model = build_model(resumed_opt)
    model.resume_training(state)
    assert _same_weights(model.net_fer, classifier_files['weights']), 'the resumed run uses another classifier'


@pytest.mark.parametrize('ignore', [False, True], ids=['not-ignored', 'ignored'])
@pytest.mark.parametrize('file_format', ['params', 'mmengine'])
def test_resumed_frozen_classifier_is_the_one_the_run_started_with(run_options, classifier_files, file_format, ignore):
    opt = _with_classifier(run_options, classifier_files, file_format, ignore)
    build_model(copy.deepcopy(opt)).save(0, 2)
    state = load_resume_state_any_device(opt)
    assert state['iter'] == 2
    torch.manual_seed(0)
    assert _same_weights(build_model(opt).net_fer, classifier_files['weights'])


@pytest.mark.parametrize('ignore', [False, True], ids=['not-ignored', 'ignored'])
def test_resumed_joint_classifier_is_its_saved_net_fer(run_options, classifier_files, ignore):
    opt = _with_classifier(run_options, classifier_files, 'mmengine', ignore)
    opt['train']['train_network_fer'] = True
    opt['train']['fer_opt'] = {'type': 'FERCrossEntropyLoss', 'loss_weight': 1.0}
    opt['train']['optim_fer'] = {'type': 'SGD', 'lr': 0.01}
    model = build_model(copy.deepcopy(opt))
    with torch.no_grad():
        for param in model.net_fer.parameters():
            param.add_(1.0)  # what joint training changed
    trained = {k: v.clone() for k, v in model.net_fer.state_dict().items()}
    model.save(0, 2)
    load_resume_state_any_device(opt)
    assert opt['path']['pretrain_network_fer'].endswith('net_fer_2.pth')
    assert _same_weights(build_model(opt).net_fer, trained)


@pytest.mark.parametrize('file_format', ['params', 'mmengine'])
def test_missing_frozen_classifier_at_resume_is_named(run_options, classifier_files, tmp_path, file_format):
    moved = str(tmp_path / 'fer_moved.pth')
    classifier = os.path.join(str(tmp_path), os.path.basename(classifier_files[file_format]))
    with open(classifier_files[file_format], 'rb') as src, open(classifier, 'wb') as dst:
        dst.write(src.read())
    opt = _with_classifier(run_options, dict(classifier_files, **{file_format: classifier}), file_format, False)
    build_model(copy.deepcopy(opt)).save(0, 2)
    os.rename(classifier, moved)
    with pytest.raises(FileNotFoundError) as err:
        load_resume_state_any_device(opt)
    assert classifier in str(err.value) and '2.state' in str(err.value)


def test_classifier_file_replaced_before_resume_is_refused(run_options, classifier_files, tmp_path):
    """The training state records the frozen classifier's weights fingerprint: a file swapped under the same name
    between the kill and the resume is refused instead of silently guiding the rest of the run."""
    classifier = str(tmp_path / 'fer_swapped.pth')
    with open(classifier_files['params'], 'rb') as src, open(classifier, 'wb') as dst:
        dst.write(src.read())
    opt = _with_classifier(run_options, dict(classifier_files, params=classifier), 'params', False)
    build_model(copy.deepcopy(opt)).save(0, 2)
    other = {k: v + 1 if v.is_floating_point() else v for k, v in classifier_files['weights'].items()}
    torch.save({'params': other}, classifier)
    state = load_resume_state_any_device(opt)
    assert state['fer_fingerprint']
    with pytest.raises(ValueError, match='not the one this run started with'):
        build_model(opt).resume_training(state)
