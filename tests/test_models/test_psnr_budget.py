"""train.consistency_weights rule psnr_budget: gradient-share weights scaled to hold the PSNR cost against a
plain-SR twin of net_g that trains alongside it."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from basicsr.data import build_dataset
from basicsr.models import build_model
from fer_fixtures import model_options, tiny_train_options, with_consistency_weights, write_options
from training_runs import full_and_killed_runs, logged_losses, run_training

from srfer_plugin.models.consistency_weights import GAP_MOMENTUM, LOG_SCALE_LIMIT, RISE_SHARE, ConsistencyWeights
from srfer_plugin.models.plain_sr_reference import PlainSRReference
from srfer_plugin.utils.checkpoint import safe_load

TRAIN = {'pixel_opt': {'type': 'L1Loss'}, 'attention_opt': {'type': 'AttentionConsistencyLoss'}}
BUDGET = {'rule': 'psnr_budget', 'shares': {'l_att': 0.5}, 'budget_db': 0.5, 'budget_rate': 0.1, 'budget_start': 1}


def _losses(sr: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    return {'l_pix': (sr - target).pow(2).mean(), 'l_att': (sr * target).sin().mean()}


def _weigh(weights: ConsistencyWeights, gap: float, current_iter: int = 1) -> float:
    torch.manual_seed(0)
    sr, target = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)
    weights.weigh(_losses(sr, target), sr, current_iter, gap_db=gap)
    return weights.weights['l_att']


def test_the_scale_rises_below_the_budget_and_falls_above_it():
    """The weight is the gradient-share weight times exp(log scale); the scale follows the running gap."""
    weights = ConsistencyWeights(BUDGET, TRAIN)
    first = _weigh(weights, gap=0.0)  # gap 0 < budget: up by 0.1 * (0.5 - 0) / 0.5, capped at 0.1 * RISE_SHARE
    rise = 0.1 * RISE_SHARE
    assert weights.log_scale == pytest.approx(rise) and weights.gap == 0.0
    base = first / math.exp(rise)
    _weigh(weights, gap=2.0)  # running gap 0.05 * 2.0 = 0.1: still below the budget, by less than the cap
    assert weights.gap == pytest.approx((1 - GAP_MOMENTUM) * 2.0)
    assert weights.log_scale == pytest.approx(rise + min(0.1 * (0.5 - 0.1) / 0.5, rise))
    _weigh(weights, gap=30.0)  # running gap 0.095 + 1.5 = 1.595: above the budget, down at the full rate
    assert weights.log_scale == pytest.approx(2 * rise + 0.1 * (0.5 - weights.gap) / 0.5)
    for _ in range(200):  # far above the budget: the scale falls to its limit and stops there
        _weigh(weights, gap=5.0)
    assert weights.log_scale == -LOG_SCALE_LIMIT
    assert weights.weights['l_att'] == pytest.approx(base * math.exp(-LOG_SCALE_LIMIT), rel=1e-5)
    assert weights.log()['psnr_gap'] == pytest.approx(weights.gap)
    resumed = ConsistencyWeights(BUDGET, TRAIN)
    resumed.load_state_dict(weights.state_dict())
    assert (resumed.log_scale, resumed.gap, resumed.norms) == (weights.log_scale, weights.gap, weights.norms)


def test_the_scale_starts_low_by_default():
    """Without ``budget_start`` the weights start at a tenth of the gradient-share weights."""
    default = ConsistencyWeights({k: v for k, v in BUDGET.items() if k != 'budget_start'}, TRAIN)
    at_one = ConsistencyWeights(BUDGET, TRAIN)
    assert default.log_scale == pytest.approx(math.log(0.1)) and at_one.log_scale == 0.0
    assert _weigh(default, gap=0.0) == pytest.approx(_weigh(at_one, gap=0.0) * 0.1, rel=1e-5)


def test_the_rule_needs_the_gap():
    with pytest.raises(ValueError, match='psnr_budget needs the plain-SR twin'):
        _weigh(ConsistencyWeights(BUDGET, TRAIN), gap=None)


@pytest.mark.parametrize(
    ('options', 'message'),
    [
        ({**BUDGET, 'budget_db': 0}, 'budget_db must be a number > 0'),
        ({**BUDGET, 'budget_db': '0.5'}, 'budget_db must be a number > 0'),
        ({k: v for k, v in BUDGET.items() if k != 'budget_db'}, 'budget_db must be a number > 0.*got None'),
        ({**BUDGET, 'budget_rate': 2}, r'budget_rate must be a number in \(0, 1\]'),
        ({**BUDGET, 'budget_start': 0}, r'budget_start must be a number in \[0.00674, 148\]; got 0'),
        ({**BUDGET, 'budget_start': 500}, 'budget_start must be a number in'),
        ({**BUDGET, 'calibration_iters': 50}, 'psnr_budget sets the weights from the PSNR gap; remove calibration'),
        ({**BUDGET, 'rule': 'gradient_share'}, r"\['budget_db', 'budget_rate', 'budget_start'\] belong to rule"),
    ],
)
def test_bad_budget_options_name_their_key(options, message):
    with pytest.raises(ValueError, match=message):
        ConsistencyWeights(options, TRAIN)


def test_the_twin_trains_on_pixels_alone_and_measures_the_gap():
    """The gap is PSNR as SR papers read it: per face on the Y channel, averaged over the batch."""
    from basicsr.utils.color_util import rgb2ycbcr_pt

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2), torch.nn.Conv2d(3, 3, 3, padding=1))
    twin = PlainSRReference(net, lambda n, key: torch.optim.Adam(n.parameters(), lr=1.0), torch.nn.L1Loss())
    lq, gt = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 8, 8)
    before = copy.deepcopy(twin.net.state_dict())
    with torch.no_grad():
        twin_out = twin.net(lq).clamp(0, 1)
    sr = gt * 0.9 + torch.tensor([0.02, 0.08]).view(2, 1, 1, 1)  # two faces, two errors

    def y_mse(images):
        return ((rgb2ycbcr_pt(images, y_only=True) - rgb2ycbcr_pt(gt, y_only=True)) ** 2).flatten(1).mean(1)

    expected = float((10 * torch.log10(y_mse(sr) / y_mse(twin_out))).mean())
    assert twin.step(lq, gt, sr, lr=1e-3) == pytest.approx(expected, rel=1e-4)
    assert twin.optimizer.param_groups[0]['lr'] == 1e-3  # net_g's rate, not the optimizer's own 1.0
    assert any(not torch.equal(before[k], v) for k, v in twin.net.state_dict().items())  # the twin stepped
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # net_g is untouched
    copy_of = PlainSRReference(net, lambda n, key: torch.optim.Adam(n.parameters(), lr=1.0), torch.nn.L1Loss())
    copy_of.load_state_dict(twin.state_dict())
    assert all(torch.equal(v, copy_of.net.state_dict()[k]) for k, v in twin.net.state_dict().items())


def _budget_options(opt: dict) -> dict:
    return with_consistency_weights(opt, {**BUDGET, 'shares': {'l_att': 0.05, 'l_pred': 0.05}})


def test_a_training_step_trains_the_twin_and_logs_the_gap(tiny_fer_root, tmp_path):
    opt = _budget_options(model_options(tiny_fer_root, str(tmp_path)))
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(opt))
    start = {k: v.clone() for k, v in model.plain_reference.net.state_dict().items()}
    assert all(torch.equal(v, start[k]) for k, v in model.net_g.state_dict().items())  # starts as net_g
    dataset = build_dataset(opt['datasets']['train'])
    model.feed_data(torch.utils.data.default_collate([dataset[i] for i in (0, 3, 6, 9)]))
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert log['psnr_gap'] == pytest.approx(0.0, abs=1e-6)  # before either network stepped, they are one network
    assert log['w_att'] > 0 and log['w_pred'] > 0
    state = model.extra_training_state()
    assert 'plain_reference' in state and state['consistency_weights']['log_scale'] > 0
    twin = model.plain_reference.net.state_dict()
    assert any(not torch.equal(twin[k], v) for k, v in model.net_g.state_dict().items())  # they train apart


def test_the_gan_models_refuse_the_rule(tiny_fer_root, tmp_path):
    """Their generator step has no plain-SR twin: the error comes when the model is built, before any step."""
    from fer_fixtures import GAN_TRAIN, TINY_NET_D

    opt = _budget_options(model_options(tiny_fer_root, str(tmp_path)))
    opt['model_type'], opt['network_d'] = 'SRFERGANModel', dict(TINY_NET_D)
    opt['train'].update(copy.deepcopy(GAN_TRAIN))
    with pytest.raises(ValueError, match='psnr_budget needs model_type SRFERModel.*got SRFERGANModel'):
        build_model(opt)


def test_killed_budget_run_resumes_with_identical_losses(tiny_fer_root, tmp_path):
    """The twin's weights, its optimizer, the scale and the running gap are in the training state: a run killed
    after its first state continues as the uninterrupted run."""
    opt = _budget_options(tiny_train_options(tiny_fer_root, name='budget_tiny'))
    opt['train']['total_iter'] = 6
    opt['logger']['save_checkpoint_freq'] = 4
    opt['logger']['print_freq'] = 1
    opt['val']['val_freq'] = 4
    opt_path = write_options(opt, str(tmp_path / 'train.yml'))
    full_dir, killed_dir = full_and_killed_runs(opt_path, tmp_path, 'experiments/budget_tiny/training_states/4.state')
    exp = killed_dir / 'experiments' / 'budget_tiny'
    state = safe_load(str(exp / 'training_states' / '4.state'))
    assert {'plain_reference', 'consistency_weights'} <= set(state)
    run_training(opt_path, str(killed_dir), '--auto_resume')
    full, resumed = logged_losses(str(full_dir / 'experiments' / 'budget_tiny')), logged_losses(str(exp))
    assert 'psnr_gap' in full[6]
    assert {it: resumed[it] for it in (5, 6)} == {it: full[it] for it in (5, 6)}
