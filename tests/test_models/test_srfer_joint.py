"""Joint learning options of SRFERModel: gradient routing, the classifier's frozen start, scheduler_fer,
train_network_g, distillation from the starting classifier, renamed keys."""

from __future__ import annotations

import copy
import csv
import os
import re

import pytest
import torch
from basicsr.archs import build_network
from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model
from fer_fixtures import model_options

from srfer_plugin.losses.consistency_loss import PredictionConsistencyLoss
from srfer_plugin.models import fer_guidance, joint_learning
from srfer_plugin.models.joint_learning import DEFAULT_SR_GRAD_WEIGHT, route_sr_gradient
from srfer_plugin.train_loop.option_checks import check_options
from srfer_plugin.utils.checkpoint import safe_load
from srfer_plugin.utils.fer_report import write_fer_reports
from srfer_plugin.utils.renamed_options import RenamedOptionError

SR_LOSSES = ('pixel_opt', 'attention_opt', 'prediction_opt')


@pytest.fixture(scope='module')
def batch(tiny_fer_root):
    dataset = build_dataset(model_options(tiny_fer_root, '/tmp/unused')['datasets']['train'])
    samples = [dataset[i] for i in (0, 3, 6, 9)]
    return {key: torch.utils.data.default_collate([s[key] for s in samples]) for key in ('lq', 'gt', 'label')}


def joint_options(data_root: str, exp_root: str, drop: tuple[str, ...] = (), **train) -> dict:
    """The tiny options with the classifier trained (SGD), ``drop`` removed from and ``train`` added to ``train:``."""
    opt = model_options(data_root, exp_root)
    opt['train']['train_network_fer'] = True
    opt['train']['fer_opt'] = {'type': 'FERCrossEntropyLoss', 'loss_weight': 1.0}
    opt['train']['optim_fer'] = {'type': 'SGD', 'lr': 0.01, 'momentum': 0.9}
    for key in drop:
        opt['train'].pop(key)
    opt['train'].update(copy.deepcopy(train))
    return opt


def _state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _same(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def _gradients(opt: dict, batch: dict) -> tuple[dict, dict, dict]:
    """net_g and net_fer gradients of one step (no optimizer step) and the logged losses."""
    torch.manual_seed(0)
    model = build_model(opt)
    for optimizer in model.optimizers:
        optimizer.step = lambda *args, **kwargs: None  # keep the gradients for inspection
    model.feed_data(batch)
    model.optimize_parameters(1)
    grads = [{n: p.grad for n, p in net.named_parameters()} for net in (model.net_g, model.net_fer)]
    return grads[0], grads[1], model.get_current_log()


def test_route_sr_gradient_scales_only_the_gradient():
    x = torch.rand(2, 3, requires_grad=True)
    for weight, expected in ((0.0, None), (1.0, 1.0), (0.25, 0.25), (3.0, 3.0)):
        x.grad = None
        y = route_sr_gradient(x, weight)
        assert torch.equal(y, x)
        if expected is None:
            assert not y.requires_grad
        else:
            (y * 2).sum().backward()
            assert torch.equal(x.grad, torch.full_like(x, 2 * expected))
    assert DEFAULT_SR_GRAD_WEIGHT == 0.0


def test_fer_opt_gradient_to_net_g_follows_sr_grad_weight(tiny_fer_root, tmp_path, batch):
    grads = {}
    for weight in (0.0, 1.0, 0.5):
        opt = joint_options(tiny_fer_root, str(tmp_path), SR_LOSSES, fer_inputs=['sr'])
        opt['train']['joint_opt'] = {'sr_grad_weight': weight}
        grads[weight] = _gradients(opt, batch)
    g0, fer0, log0 = grads[0.0]
    assert set(log0) == {'l_fer'}
    assert all(g is None or not g.any() for g in g0.values()), 'sr_grad_weight 0: fer_opt must not reach net_g'
    assert all(g is not None for g in fer0.values()) and any(g.any() for g in fer0.values())
    g1, fer1, log1 = grads[1.0]
    assert all(g is not None for g in g1.values()) and sum(float(g.abs().sum()) for g in g1.values()) > 0
    g_half, fer_half, log_half = grads[0.5]
    for name, grad in g1.items():
        assert torch.equal(g_half[name], 0.5 * grad), name
    for name, grad in fer1.items():  # the classifier always gets fer_opt's full gradient
        torch.testing.assert_close(fer0[name], grad, rtol=1e-6, atol=0)
        torch.testing.assert_close(fer_half[name], grad, rtol=1e-6, atol=0)
    assert log0['l_fer'] == log1['l_fer'] == log_half['l_fer']


def test_consistency_losses_keep_their_full_gradient_to_net_g(tiny_fer_root, tmp_path, batch):
    """With sr_grad_weight 0 net_g gets exactly the consistency gradient; with 1 fer_opt's is added."""
    drop = ('pixel_opt',)
    routed = _gradients(joint_options(tiny_fer_root, str(tmp_path), drop, fer_inputs=['sr']), batch)[0]
    consistency_only = joint_options(tiny_fer_root, str(tmp_path), drop, fer_inputs=['sr'])
    consistency_only['train']['fer_opt']['loss_weight'] = 0.0
    consistency_only['train']['joint_opt'] = {'sr_grad_weight': 1.0}
    reference = _gradients(consistency_only, batch)[0]
    full = joint_options(tiny_fer_root, str(tmp_path), drop, fer_inputs=['sr'], joint_opt={'sr_grad_weight': 1.0})
    both = _gradients(full, batch)[0]
    assert sum(float(g.abs().sum()) for g in reference.values()) > 0
    for name, grad in reference.items():
        torch.testing.assert_close(routed[name], grad, rtol=1e-5, atol=1e-12)
    assert any(not torch.allclose(both[name], grad) for name, grad in reference.items())


class _Recorder:
    def __init__(self):
        self.messages: list[str] = []

    def info(self, msg: str) -> None:
        self.messages.append(msg)

    warning = info


def test_warmup_freezes_the_classifier_then_trains_it_also_after_resume(tiny_fer_root, tmp_path, batch, monkeypatch):
    recorder = _Recorder()
    monkeypatch.setattr(fer_guidance, 'get_root_logger', lambda *args, **kwargs: recorder)
    opt = joint_options(tiny_fer_root, str(tmp_path), joint_opt={'fer_frozen_iters': 2})
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(opt))
    assert not model.net_fer.training
    fer_start = _state(model.net_fer)
    for current_iter in (1, 2):
        g_before = _state(model.net_g)
        model.feed_data(batch)
        model.optimize_parameters(current_iter)
        assert 'l_fer' not in model.get_current_log() and not model.net_fer.training
        assert _same(model.net_fer, fer_start), f'iter {current_iter}: the classifier changed during the warm-up'
        assert not _same(model.net_g, g_before), 'net_g trains during the warm-up'
    for folder in ('models', 'training_states'):
        os.makedirs(opt['path'][folder])
    model.save(epoch=0, current_iter=2)
    model.optimize_parameters(3)
    assert 'l_fer' in model.get_current_log() and model.net_fer.training
    assert not _same(model.net_fer, fer_start), 'the classifier must train at fer_frozen_iters + 1'
    model.optimize_parameters(4)
    assert sum('trains from now on' in m for m in recorder.messages) == 1, recorder.messages

    resumed_opt = copy.deepcopy(opt)
    resumed_opt['path']['resume_state'] = os.path.join(opt['path']['training_states'], '2.state')
    resumed_opt['path']['pretrain_network_g'] = os.path.join(opt['path']['models'], 'net_g_2.pth')
    resumed = build_model(resumed_opt)
    resumed.resume_training(safe_load(resumed_opt['path']['resume_state']))
    assert _same(resumed.net_fer, fer_start) and not resumed.net_fer.training
    resumed.feed_data(batch)
    resumed.optimize_parameters(3)
    assert 'l_fer' in resumed.get_current_log() and resumed.net_fer.training
    assert not _same(resumed.net_fer, fer_start), 'a resumed run must train the classifier at fer_frozen_iters + 1'


def test_scheduler_fer_gives_the_classifier_its_own_learning_rate(tiny_fer_root, tmp_path):
    schedule = {'type': 'MultiStepLR', 'milestones': [2], 'gamma': 0.1}
    lrs = {}
    for name, train in (('own', {'scheduler_fer': schedule}), ('default', {})):
        model = build_model(joint_options(tiny_fer_root, str(tmp_path), **train))
        assert len(model.schedulers) == len(model.optimizers) == 2
        assert [s.optimizer for s in model.schedulers] == model.optimizers, 'resume restores them by position'
        for current_iter in (1, 2, 3):
            model.update_learning_rate(current_iter, warmup_iter=-1)
        lrs[name] = [o.param_groups[0]['lr'] for o in (model.optimizer_g, model.optimizer_fer)]
    assert lrs['own'] == pytest.approx([1e-3, 1e-3]), 'scheduler_fer: milestone 2 divides the classifier LR by 10'
    assert lrs['default'] == pytest.approx([1e-3, 1e-2]), 'without scheduler_fer, train.scheduler (milestone 1000)'


def test_train_network_g_false_trains_only_the_classifier(tiny_fer_root, tmp_path, batch):
    opt = joint_options(tiny_fer_root, str(tmp_path), SR_LOSSES, fer_inputs=['sr'], train_network_g=False)
    torch.manual_seed(1)
    pretrained = build_network(opt['network_g'])
    for folder in ('models', 'training_states'):
        os.makedirs(opt['path'][folder])
    opt['path']['pretrain_network_g'] = str(tmp_path / 'plain_sr.pth')
    torch.save({'params': pretrained.state_dict()}, opt['path']['pretrain_network_g'])
    model = build_model(opt)
    assert not hasattr(model, 'optimizer_g') and model.optimizers == [model.optimizer_fer]
    assert len(model.schedulers) == 1 and not model.net_g.training and model.net_fer.training
    assert all(torch.equal(v, pretrained.state_dict()[k]) for k, v in model.net_g.state_dict().items())
    grad_modes = []
    model.net_g.register_forward_hook(lambda *_: grad_modes.append(torch.is_grad_enabled()))
    fer_before = _state(model.net_fer)
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert grad_modes == [False] and set(model.get_current_log()) == {'l_fer'}
    assert all(p.grad is None for p in model.net_g.parameters())
    assert _same(model.net_g, pretrained.state_dict()), 'net_g must stay the loaded network'
    assert not _same(model.net_fer, fer_before), 'the classifier must train'
    val_set = build_dataset(opt['datasets']['val'])
    model.validation(build_dataloader(val_set, opt['datasets']['val'], num_gpu=0, dist=False), 1, None, False)
    assert not model.net_g.training, 'validation must leave net_g in eval mode'
    model.save(epoch=0, current_iter=-1)
    model.save(epoch=0, current_iter=1)
    assert os.path.isfile(os.path.join(opt['path']['models'], 'net_g_latest.pth'))
    assert os.path.isfile(os.path.join(opt['path']['models'], 'net_fer_1.pth'))
    assert len(safe_load(os.path.join(opt['path']['training_states'], '1.state'))['optimizers']) == 1


def _change(frozen_fer: bool = False, frozen_g: bool = False, pretrain_g: str | None = 'net_g.pth', **train):
    """A change of the joint options: a frozen classifier, ``train_network_g: false``, ``train`` keys (None removes)."""

    def change(opt: dict) -> None:
        if frozen_fer:
            opt['train']['train_network_fer'] = False
            for key in ('fer_opt', 'optim_fer'):
                opt['train'].pop(key)
        if frozen_g:
            for key in SR_LOSSES:
                opt['train'].pop(key)
            opt['train']['train_network_g'] = False
            opt['path']['pretrain_network_g'] = pretrain_g
        for key, value in train.items():
            if value is None:
                opt['train'].pop(key)
            else:
                opt['train'][key] = value

    return change


BAD_OPTIONS = {
    'joint_opt_frozen_fer': (_change(frozen_fer=True, joint_opt={}), r'train\.joint_opt: joint learning only'),
    'scheduler_fer_frozen_fer': (
        _change(frozen_fer=True, scheduler_fer={'type': 'MultiStepLR', 'milestones': [1]}),
        r'train\.scheduler_fer: joint learning only',
    ),
    'train_network_g_frozen_fer': (
        _change(frozen_fer=True, train_network_g=False),
        r'train\.train_network_g: joint learning only',
    ),
    'optim_fer_frozen_fer': (
        _change(frozen_fer=True, optim_fer={'type': 'Adam', 'lr': 1e-4}),
        r'train\.optim_fer: joint learning only; set train\.train_network_fer: true',
    ),
    'train_network_fer_not_bool': (
        _change(train_network_fer='yes'),
        r"train\.train_network_fer must be true or false; got 'yes'",
    ),
    'frozen_iters_not_below_total_iter': (
        _change(joint_opt={'fer_frozen_iters': 4}),
        r'train\.joint_opt\.fer_frozen_iters \(4\) >= train\.total_iter \(4\)',
    ),
    'negative_sr_grad_weight': (
        _change(joint_opt={'sr_grad_weight': -0.5}),
        r'train\.joint_opt\.sr_grad_weight must be a number >= 0.*-0\.5',
    ),
    'unknown_joint_key': (
        _change(joint_opt={'sr_grad_wieght': 1.0}),
        r"train\.joint_opt: unknown key\(s\) \['sr_grad_wieght'\]; known: sr_grad_weight, fer_frozen_iters",
    ),
    'fer_opt_without_optim_fer': (_change(optim_fer=None), r'needs train\.fer_opt and train\.optim_fer'),
    'frozen_start_with_fer_opt_only': (
        _change(pixel_opt=None, attention_opt=None, prediction_opt=None, joint_opt={'fer_frozen_iters': 1}),
        r'train\.joint_opt\.fer_frozen_iters \(1\): nothing trains while the classifier is frozen',
    ),
    'train_network_g_false_with_sr_losses': (
        _change(frozen_g=True, pixel_opt={'type': 'L1Loss'}),
        r'train\.train_network_g: false keeps network_g fixed, so train\.pixel_opt',
    ),
    'train_network_g_false_without_pretrain': (
        _change(frozen_g=True, pretrain_g=None),
        r'train\.train_network_g: false needs path\.pretrain_network_g',
    ),
    'train_network_g_false_with_ema': (_change(frozen_g=True, ema_decay=0.999), r'set train\.ema_decay: 0'),
    'train_network_g_false_with_sr_grad_weight': (
        _change(frozen_g=True, joint_opt={'sr_grad_weight': 1.0}),
        r'train\.joint_opt\.sr_grad_weight \(1\.0\) has no effect with train\.train_network_g',
    ),
    'fer_distill_opt_frozen_fer': (
        _change(frozen_fer=True, fer_distill_opt={'type': 'PredictionConsistencyLoss', 'temperature': 2.0}),
        r'train\.fer_distill_opt trains the classifier: set train\.train_network_fer: true',
    ),
    'scheduler_fer_type': (
        _change(scheduler_fer={'type': 'StepLR', 'step_size': 1}),
        r"train\.scheduler_fer\.type: 'StepLR' is not one of",
    ),
}


@pytest.mark.parametrize('case', sorted(BAD_OPTIONS))
def test_bad_joint_options_fail_before_training_naming_their_keys(case, tiny_fer_root, tmp_path):
    change, message = BAD_OPTIONS[case]
    opt = joint_options(tiny_fer_root, str(tmp_path))
    change(opt)
    with pytest.raises(ValueError, match=message):
        build_model(opt)


DISTILL = {'type': 'PredictionConsistencyLoss', 'loss_weight': 1.0, 'temperature': 2.0}


def _hr_divergence(model, start: torch.nn.Module, batch: dict) -> float:
    """KL between the starting classifier's and the model's classifier's predictions on the HR batch, both read as
    the training reads them (batch statistics)."""
    with torch.no_grad():
        now = joint_learning.frozen_copy(model.fer.bare)
        return float(PredictionConsistencyLoss(temperature=2.0)(now(batch['gt'])[1], start(batch['gt'])[1]))


def test_fer_distill_keeps_hr_readings_near_the_starting_classifier_also_after_resume(tiny_fer_root, tmp_path, batch):
    """``fer_distill_opt``: a frozen copy of the starting classifier (``network_fer.checkpoint``, also on resume) is
    the teacher on HR faces; ``l_fer_distill`` is logged and the trained classifier's HR predictions drift less
    than without it."""
    checkpoint = str(tmp_path / 'fer.pth')
    opt = joint_options(tiny_fer_root, str(tmp_path))
    torch.manual_seed(0)
    torch.save({'state_dict': build_network({**opt['network_fer'], 'checkpoint': None}).model.state_dict()}, checkpoint)
    drift = {}
    for name, weight in (('plain', None), ('distill', 5.0)):
        train = {'optim_fer': {'type': 'Adam', 'lr': 1e-3}}
        if weight:
            train['fer_distill_opt'] = dict(DISTILL, loss_weight=weight)
        opt = joint_options(tiny_fer_root, str(tmp_path / name), **train)
        opt['network_fer']['checkpoint'] = checkpoint
        torch.manual_seed(0)
        model = build_model(copy.deepcopy(opt))
        starting_classifier = joint_learning.frozen_copy(model.fer.bare)
        start = _state(model.net_fer)
        if weight:
            assert _same(model.fer.teacher, start)
            assert not any(p.requires_grad for p in model.fer.teacher.parameters())
        for current_iter in range(1, 5):
            model.feed_data(batch)
            model.optimize_parameters(current_iter)
            log = model.get_current_log()
            assert ('l_fer_distill' in log) == bool(weight)
            if weight and current_iter == 1:
                assert log['l_fer_distill'] == pytest.approx(0, abs=1e-6), 'student and teacher start the same'
            if weight and current_iter == 2:
                assert log['l_fer_distill'] > 0
                for folder in ('models', 'training_states'):
                    os.makedirs(opt['path'][folder])
                model.save(epoch=0, current_iter=2)
                adapted = _state(model.net_fer)
        drift[name] = _hr_divergence(model, starting_classifier, batch)
    assert _same(model.fer.teacher, start), 'the teacher must stay the starting classifier'
    assert not _same(model.net_fer, start), 'the classifier must still train'
    assert drift['distill'] < 0.5 * drift['plain'], drift  # measured: 0.26 against 9.3 (chaotic on 12 faces)

    opt['path']['resume_state'] = os.path.join(opt['path']['training_states'], '2.state')
    resumed = build_model(opt)
    assert _same(resumed.net_fer, adapted), 'the trained classifier resumes from its own file'
    assert _same(resumed.fer.teacher, start), 'the teacher is network_fer.checkpoint, not the resumed weights'


def test_fer_distill_trains_the_classifier_alone_with_train_network_g_false(tiny_fer_root, tmp_path, batch):
    opt = joint_options(
        tiny_fer_root, str(tmp_path), SR_LOSSES, fer_inputs=['sr'], train_network_g=False, fer_distill_opt=DISTILL
    )
    torch.manual_seed(1)
    opt['path']['pretrain_network_g'] = str(tmp_path / 'plain_sr.pth')
    torch.save({'params': build_network(opt['network_g']).state_dict()}, opt['path']['pretrain_network_g'])
    model = build_model(opt)
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert set(model.get_current_log()) == {'l_fer', 'l_fer_distill'}


def test_reports_name_the_classifier_state(tiny_fer_root, tmp_path):
    """``adapted`` comes from the weights file a joint run saved, not from which option named the file."""
    joint = build_model(joint_options(tiny_fer_root, str(tmp_path / 'train')))
    assert joint.fer.classifier_state == 'adapted'
    os.makedirs(joint.opt['path']['models'])
    joint.fer.save(joint.save_network, 1)
    adapted_path = os.path.join(joint.opt['path']['models'], 'net_fer_1.pth')
    record = safe_load(adapted_path)['meta']['srfer']
    assert record['adapted'] is True and record['iter'] == 1 and record['run'] == joint.opt['name']
    joint.save_network(joint.net_fer, 'net_fer_plain', 1)  # the same weights without the record
    plain_path = os.path.join(joint.opt['path']['models'], 'net_fer_plain_1.pth')
    for state, fer_path, case in (
        ('frozen', None, 'frozen'),
        ('adapted', adapted_path, 'adapted'),
        ('frozen', plain_path, 'plain'),
    ):
        opt = model_options(tiny_fer_root, str(tmp_path / case), is_train=False)
        if fer_path:
            opt['network_fer']['checkpoint'] = fer_path
        model = build_model(opt)
        assert model.fer.classifier_state == state, case
        val_set = build_dataset(opt['datasets']['val'])
        model.validation(build_dataloader(val_set, opt['datasets']['val'], num_gpu=0, dist=False), 0, None, False)
        with open(os.path.join(opt['path']['results_root'], 'summary.csv'), newline='', encoding='utf-8') as f:
            (row,) = list(csv.DictReader(f))
        assert row['classifier'] == state
        with open(os.path.join(opt['path']['results_root'], 'summary.md'), encoding='utf-8') as f:
            summary = f.read()
        assert f'Classifier `{state}`' in summary
        assert ('measured with this adapted classifier' in summary) == (state == 'adapted')


RENAMED = {
    'network_fer.freeze': (lambda o: o['network_fer'].update(freeze=False), 'train.train_network_fer'),
    'train.freeze_network_g': (lambda o: o['train'].update(freeze_network_g=True), 'train.train_network_g'),
    'joint_opt.warmup_iter': (
        lambda o: o['train'].update(joint_opt={'warmup_iter': 1}),
        'train.joint_opt.fer_frozen_iters',
    ),
    'path.pretrain_network_fer': (lambda o: o['path'].update(pretrain_network_fer='x.pth'), 'network_fer.checkpoint'),
    'path.param_key_fer': (lambda o: o['path'].update(param_key_fer='params'), 'network_fer.param_key'),
    'path.strict_load_fer': (lambda o: o['path'].update(strict_load_fer=False), 'network_fer.strict'),
}


@pytest.mark.parametrize('old_key', sorted(RENAMED))
def test_renamed_keys_fail_naming_the_new_key(old_key, tiny_fer_root, tmp_path):
    """No silent aliases: an old key stops the build (and option parsing) with its new name."""
    change, new_key = RENAMED[old_key]
    opt = joint_options(tiny_fer_root, str(tmp_path))
    change(opt)
    with pytest.raises(RenamedOptionError, match=rf'{re.escape(old_key)} is no longer read: use {re.escape(new_key)}'):
        build_model(opt)
    with pytest.raises(RenamedOptionError, match=re.escape(new_key)):
        check_options(opt, is_train=True)


def test_write_fer_reports_rejects_an_unknown_classifier_state(tmp_path):
    with pytest.raises(ValueError, match="classifier 'tuned' is not one of"):
        write_fer_reports(str(tmp_path), 'set', {'psnr': 20.0}, None, None, classifier='tuned')
    write_fer_reports(str(tmp_path), 'set', {'psnr': 20.0}, None, None)
    with open(tmp_path / 'summary.csv', newline='', encoding='utf-8') as f:
        assert 'classifier' not in next(csv.reader(f)), 'no state given: no column'
