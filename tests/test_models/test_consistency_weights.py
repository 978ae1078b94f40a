"""train.consistency_weights: weights from the gradient shares at the SR output, the same for any gradient scale."""

from __future__ import annotations

import copy

import pytest
import torch
from basicsr.data import build_dataset
from basicsr.models import build_model
from fer_fixtures import model_options, with_consistency_weights

from srfer_plugin.models.consistency_weights import ConsistencyWeights

TRAIN = {'pixel_opt': {'type': 'L1Loss'}, 'attention_opt': {'type': 'AttentionConsistencyLoss'}}
OPTIONS = {'rule': 'gradient_share', 'shares': {'l_att': 0.5}, 'interval': 2, 'momentum': 0.5}


def _losses(sr: torch.Tensor, target: torch.Tensor, scale: float) -> dict[str, torch.Tensor]:
    """A pixel loss and a consistency-like term whose gradient at ``sr`` is ``scale`` times larger."""
    return {'l_pix': (sr - target).pow(2).mean(), 'l_att': scale * (sr * target).sin().mean()}


def _grad_norm(loss: torch.Tensor, sr: torch.Tensor) -> float:
    return float(torch.autograd.grad(loss, sr, retain_graph=True)[0].norm())


@pytest.mark.parametrize('scale', [1.0, 10.0, 0.01])
def test_the_weighted_term_keeps_its_share_of_the_pixel_gradient(scale):
    """Any gradient scale of the classifier: the weighted term's gradient is ``share`` x the pixel loss's."""
    torch.manual_seed(0)
    sr, target = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)
    weights = ConsistencyWeights(OPTIONS, TRAIN)
    losses = _losses(sr, target, scale)
    weights.weigh(losses, sr, current_iter=1)
    assert _grad_norm(losses['l_att'], sr) == pytest.approx(0.5 * _grad_norm(losses['l_pix'], sr), rel=1e-5)
    assert weights.log() == {'w_att': pytest.approx(weights.weights['l_att'])}


def test_norms_are_running_means_measured_every_interval():
    torch.manual_seed(0)
    sr, target = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)
    weights = ConsistencyWeights(OPTIONS, TRAIN)
    weights.weigh(_losses(sr, target, 1.0), sr, current_iter=1)
    first = dict(weights.norms)
    weights.weigh(_losses(sr, target, 3.0), sr, current_iter=3)  # not a measuring step (interval 2)
    assert weights.norms == first
    weights.weigh(_losses(sr, target, 3.0), sr, current_iter=4)
    assert weights.norms['l_att'] == pytest.approx(0.5 * first['l_att'] + 0.5 * 3 * first['l_att'], rel=1e-5)
    assert weights.norms['pixel'] == pytest.approx(first['pixel'], rel=1e-6)
    resumed = ConsistencyWeights(OPTIONS, TRAIN)
    resumed.load_state_dict(weights.state_dict())
    assert resumed.norms == weights.norms


HELD = {'rule': 'gradient_share', 'shares': {'l_att': 0.5}, 'interval': 2, 'calibration_iters': 4}


def test_calibration_iters_averages_the_window_then_holds_the_weights():
    """``calibration_iters: 4``: measured at iterations 1, 2 and 4 (interval 2), averaged with equal weight, then
    held whatever the gradients do; the held weights survive a resume (they come from the saved norms)."""
    torch.manual_seed(0)
    sr, target = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)
    weights = ConsistencyWeights(HELD, TRAIN)
    norms = []
    for current_iter, scale in ((1, 1.0), (2, 2.0), (3, 7.0), (4, 3.0)):  # iteration 3 is not a measuring step
        weights.weigh(_losses(sr, target, scale), sr, current_iter=current_iter)
        if current_iter != 3:
            norms.append(_grad_norm(_losses(sr, target, scale)['l_att'], sr))
    assert weights.measurements == 3
    assert weights.norms['l_att'] == pytest.approx(sum(norms) / 3, rel=1e-5)
    held = dict(weights.weights)
    for current_iter in (6, 8, 100):  # measuring steps of the interval, past the window
        weights.weigh(_losses(sr, target, 50.0), sr, current_iter=current_iter)
        assert weights.weights == held
    resumed = ConsistencyWeights(HELD, TRAIN)
    resumed.load_state_dict(weights.state_dict())
    resumed.weigh(_losses(sr, target, 50.0), sr, current_iter=101)
    assert resumed.weights == held and resumed.measurements == 3
    unheld = ConsistencyWeights({**HELD, 'calibration_iters': None}, TRAIN)  # measured throughout: it moves
    for current_iter in (1, 2, 4, 6):
        unheld.weigh(_losses(sr, target, 50.0 if current_iter == 6 else float(current_iter)), sr, current_iter)
    assert unheld.weights['l_att'] < held['l_att']


@pytest.mark.parametrize(
    ('options', 'train', 'message'),
    [
        ({**OPTIONS, 'rule': 'manual'}, TRAIN, r"rule must be one of \('gradient_share', 'psnr_budget', 'psnr_pilot'"),
        ({**OPTIONS, 'shares': {'l_pred': 0.1}}, TRAIN, r"one share per consistency loss set \(\['l_att'\]\)"),
        ({**OPTIONS, 'shares': {'l_att': 0}}, TRAIN, 'shares.l_att must be a number > 0'),
        ({**OPTIONS, 'interval': 0}, TRAIN, 'interval must be a whole number >= 1'),
        ({**OPTIONS, 'momentum': 1}, TRAIN, r'momentum must be a number in \[0, 1\)'),
        ({**HELD, 'calibration_iters': 0}, TRAIN, 'calibration_iters must be a whole number >= 1'),
        ({**HELD, 'calibration_iters': '50'}, TRAIN, "calibration_iters must be a whole number >= 1.*got '50'"),
        ({**HELD, 'calibration_iters': 1}, TRAIN, r'calibration_iters \(1\) is below interval \(2\)'),
        ({**HELD, 'momentum': 0.9}, TRAIN, 'momentum is not used with calibration_iters'),
        (HELD, {**TRAIN, 'net_d_init_iters': 4}, r'calibration_iters \(4\) must be above train.net_d_init_iters'),
        ({**OPTIONS, 'every': 3}, TRAIN, r"unknown key\(s\) \['every'\]"),
        (
            OPTIONS,
            {**TRAIN, 'attention_opt': {'type': 'AttentionConsistencyLoss', 'loss_weight': 0.1}},
            'attention_opt.loss_weight: the weight is set by train.consistency_weights',
        ),
        (OPTIONS, {'attention_opt': TRAIN['attention_opt']}, 'set train.pixel_opt'),
        (OPTIONS, {**TRAIN, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 0}}, r'set train.pixel_opt \(weight > 0\)'),
    ],
)
def test_bad_options_name_their_key(options, train, message):
    with pytest.raises(ValueError, match=message):
        ConsistencyWeights(options, train)


def test_a_training_step_logs_the_weights_and_saves_the_norms(tiny_fer_root, tmp_path):
    section = {'rule': 'gradient_share', 'shares': {'l_att': 0.05, 'l_pred': 0.05}}
    opt = with_consistency_weights(model_options(tiny_fer_root, str(tmp_path)), section)
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(opt))
    dataset = build_dataset(opt['datasets']['train'])
    batch = torch.utils.data.default_collate([dataset[i] for i in (0, 3, 6, 9)])
    model.feed_data(batch)
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert log['w_att'] > 0 and log['w_pred'] > 0 and {'l_pix', 'l_att', 'l_pred'} <= set(log)
    state = model.fer.training_state()['consistency_weights']
    assert set(state['norms']) == {'pixel', 'l_att', 'l_pred'}
    resumed = build_model(copy.deepcopy(opt))
    resumed.fer.check_resume_state({'consistency_weights': state})
    assert resumed.fer.auto_weights.norms == state['norms']


def test_resuming_past_the_window_without_saved_norms_says_so(tiny_fer_root, tmp_path, monkeypatch):
    """A run resumed with ``calibration_iters`` from a state without norms (it ran with hand-set weights) measures
    once and holds: a warning names this."""
    section = {**HELD, 'shares': {'l_att': 0.05, 'l_pred': 0.05}, 'calibration_iters': 10}
    opt = with_consistency_weights(model_options(tiny_fer_root, str(tmp_path)), section)
    model = build_model(opt)
    warnings = []
    monkeypatch.setattr(
        'srfer_plugin.models.fer_guidance.get_root_logger', lambda: type('L', (), {'warning': warnings.append})()
    )
    model.fer.check_resume_state({'iter': 5})
    assert not warnings  # inside the window: measured as usual
    model.fer.check_resume_state({'iter': 20})
    assert len(warnings) == 1 and 'holds no gradient norms' in warnings[0] and 'calibration_iters (10)' in warnings[0]


def test_gradient_shares_tool_reads_the_hand_set_weights(tiny_fer_root, tmp_path, capsys):
    """``srfer gradient-shares``: one share per consistency loss and batch, proportional to its loss_weight."""
    from fer_fixtures import tiny_train_options, write_options

    from srfer_plugin.tools.gradient_shares import main, measure_gradients

    opt = tiny_train_options(tiny_fer_root)
    # random-init networks: the first model build of a process draws from torch's RNG while importing, so compare
    # two later builds (trained networks come from files)
    main(['-opt', write_options(opt, str(tmp_path / 'a.yml')), '--batches', '1'])
    shares = main(['-opt', str(tmp_path / 'a.yml'), '--batches', '2'])
    assert set(shares) == {'l_att', 'l_pred'} and all(len(v) == 2 and min(v) > 0 for v in shares.values())
    printed = capsys.readouterr().out
    assert 'l_att: share' in printed and 'cosine' in printed
    opt['train']['attention_opt']['loss_weight'] *= 10
    tenfold = main(['-opt', write_options(opt, str(tmp_path / 'b.yml')), '--batches', '2'])
    assert tenfold['l_att'] == pytest.approx([10 * v for v in shares['l_att']], rel=1e-4)
    # the cosine with the pixel loss's gradient is a direction: the same at ten times the weight, within [-1, 1]
    base, scaled = (measure_gradients(str(tmp_path / name), batches=2) for name in ('a.yml', 'b.yml'))
    assert scaled['l_att']['share'] == pytest.approx([10 * v for v in base['l_att']['share']], rel=1e-4)
    assert scaled['l_att']['cosine'] == pytest.approx(base['l_att']['cosine'], abs=1e-5)
    assert all(-1 <= c <= 1 for term in base.values() for c in term['cosine'])
    assert base['l_att']['cosine'] != pytest.approx(base['l_pred']['cosine'], abs=1e-6)  # measured per term
    opt['train']['fer_batch_size'] = 2  # as training does, the tool lets the classifier read the first 2 faces
    sub_batch = main(['-opt', write_options(opt, str(tmp_path / 'c.yml')), '--batches', '2'])
    assert sub_batch['l_att'] != pytest.approx(tenfold['l_att'], rel=1e-3)
