"""train.consistency_weights rule psnr_pilot: a pilot measures the PSNR cost of the gradient-share weights against a
plain-SR twin, then the run goes on from the twin with the weights scaled to the budget."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from basicsr.data import build_dataset
from basicsr.models import build_model
from fer_fixtures import model_options, tiny_train_options, with_consistency_weights, write_options
from training_runs import full_and_killed_runs, logged_losses, run_training

from srfer_plugin.models.consistency_weights import GAP_MOMENTUM, LOG_SCALE_LIMIT, ConsistencyWeights
from srfer_plugin.utils.checkpoint import safe_load

TRAIN = {'pixel_opt': {'type': 'L1Loss'}, 'attention_opt': {'type': 'AttentionConsistencyLoss'}, 'total_iter': 10}
PILOT = {'rule': 'psnr_pilot', 'shares': {'l_att': 0.5}, 'budget_db': 0.2, 'pilot_iters': 3, 'interval': 1}


def _weigh(weights: ConsistencyWeights, gap: float | None, current_iter: int) -> float:
    torch.manual_seed(0)
    sr, target = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)
    losses = {'l_pix': (sr - target).pow(2).mean(), 'l_att': (sr * target).sin().mean()}
    weights.weigh(losses, sr, current_iter, gap_db=gap)
    return weights.weights['l_att']


@pytest.mark.parametrize(
    ('gaps', 'scale'),
    [
        ((0.8, 0.8, 0.8), 0.2 / 0.8),  # the pilot cost four times the budget: a quarter of the shares
        ((0.1, 0.1, 0.1), 1.0),  # within the budget: the shares themselves, never more
        ((-0.3, -0.3, -0.3), 1.0),  # the consistency losses helped PSNR in the pilot
        ((0.0, 0.0, 1e6), math.exp(-LOG_SCALE_LIMIT)),  # the scale stops at its limit
    ],
)
def test_the_pilot_runs_at_the_shares_then_scales_them_to_the_budget(gaps, scale):
    """During the pilot the weights are the gradient-share weights; after it, those times the scale, held."""
    weights = ConsistencyWeights(PILOT, TRAIN)
    pilot = [_weigh(weights, gap, it) for it, gap in enumerate(gaps, 1)]
    assert pilot == pytest.approx([pilot[0]] * 3, rel=1e-6)  # the gradient-share weights at scale 1 throughout
    running = gaps[0]
    for gap in gaps[1:]:
        running = GAP_MOMENTUM * running + (1 - GAP_MOMENTUM) * gap
    assert weights.gap == pytest.approx(running)
    assert math.exp(weights.log_scale) == pytest.approx(scale, rel=1e-6)
    assert _weigh(weights, None, 4) == pytest.approx(pilot[0] * math.exp(weights.log_scale), rel=1e-6)  # no twin
    held = dict(weights.norms)
    sr = torch.rand(2, 3, 8, 8, requires_grad=True)
    weights.weigh({'l_pix': sr.pow(3).mean(), 'l_att': sr.cos().mean()}, sr, 20, gap_db=None)  # a measuring step
    assert weights.norms == held, 'after the pilot the weights hold'
    assert weights.piloting(3) and weights.pilot_ends(3) and not weights.piloting(4)


def test_the_pilot_needs_the_gap():
    with pytest.raises(ValueError, match='psnr_pilot needs the plain-SR twin'):
        _weigh(ConsistencyWeights(PILOT, TRAIN), None, 1)


@pytest.mark.parametrize(
    ('options', 'message'),
    [
        ({k: v for k, v in PILOT.items() if k != 'pilot_iters'}, 'pilot_iters must be a whole number >= 1.*None'),
        ({**PILOT, 'pilot_iters': 0}, 'pilot_iters must be a whole number >= 1'),
        ({**PILOT, 'pilot_iters': 10}, r'pilot_iters \(10\) must be below train.total_iter \(10\)'),
        ({**PILOT, 'pilot_iters': 3, 'interval': 5}, r'pilot_iters \(3\) is below interval \(5\)'),
        ({**PILOT, 'budget_db': -1}, 'budget_db must be a number > 0'),
        ({**PILOT, 'budget_rate': 0.1}, r"\['budget_rate'\] belong to rule psnr_budget; got rule 'psnr_pilot'"),
        ({**PILOT, 'calibration_iters': 50}, 'psnr_pilot sets the weights from the PSNR gap; remove calibration_iters'),
        ({**PILOT, 'rule': 'psnr_budget'}, r"\['pilot_iters'\] belong to rule psnr_pilot"),
    ],
)
def test_bad_pilot_options_name_their_key(options, message):
    with pytest.raises(ValueError, match=message):
        ConsistencyWeights(options, TRAIN)


def _pilot_options(opt: dict, pilot_iters: int) -> dict:
    shares = {'l_att': 0.05, 'l_pred': 0.05}
    return with_consistency_weights(opt, {**PILOT, 'shares': shares, 'pilot_iters': pilot_iters})


def test_the_run_goes_on_from_the_twin_after_the_pilot(tiny_fer_root, tmp_path):
    """At the pilot's last step net_g and optimizer_g take the twin's weights and Adam state; the twin is dropped."""
    opt = _pilot_options(model_options(tiny_fer_root, str(tmp_path)), pilot_iters=2)
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(opt))
    dataset = build_dataset(opt['datasets']['train'])
    batch = torch.utils.data.default_collate([dataset[i] for i in (0, 3, 6, 9)])
    twin = model.plain_reference
    for it in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(it)
        assert 'psnr_gap' in model.get_current_log()
    assert model.plain_reference is None and 'plain_reference' not in model.extra_training_state()
    assert all(torch.equal(v, twin.net.state_dict()[k]) for k, v in model.net_g.state_dict().items())
    own, twins = model.optimizer_g.state_dict(), twin.optimizer.state_dict()
    assert own['state'].keys() == twins['state'].keys() and own['state']
    for index, state in own['state'].items():
        assert all(torch.equal(value, twins['state'][index][name]) for name, value in state.items())
    assert own['param_groups'][0]['initial_lr'] == opt['train']['optim_g']['lr']  # the scheduler's own groups
    model.feed_data(batch)
    model.optimize_parameters(3)  # no twin from here on
    assert model.get_current_log()['w_att'] > 0


def test_the_pilot_refuses_a_loss_its_twin_does_not_train(tiny_fer_root, tmp_path):
    """The twin learns from the pixel loss alone: a joint l_fer that reaches net_g would be lost in the restart."""
    opt = _pilot_options(model_options(tiny_fer_root, str(tmp_path)), pilot_iters=2)
    opt['train'].update(
        train_network_fer=True,
        fer_opt={'type': 'FERCrossEntropyLoss', 'loss_weight': 1.0},
        optim_fer={'type': 'SGD', 'lr': 0.01},
        joint_opt={'sr_grad_weight': 1},
    )
    with pytest.raises(ValueError, match='the pilot would drop train.fer_opt through train.joint_opt.sr_grad_weight'):
        build_model(opt)


def test_a_state_saved_at_the_pilot_end_before_the_restart_makes_it_on_resume(tiny_fer_root, tmp_path):
    """A run stopped at the pilot's last step before the restart (non-finite losses) restarts on resume; a state of
    a pilot that ran past a lowered pilot_iters is refused."""
    opt = _pilot_options(model_options(tiny_fer_root, str(tmp_path)), pilot_iters=2)
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(opt))
    dataset = build_dataset(opt['datasets']['train'])
    model.feed_data(torch.utils.data.default_collate([dataset[i] for i in (0, 3, 6, 9)]))
    model.optimize_parameters(1)
    for saved_iter in (2, 3):
        model.save_training_state(0, saved_iter)  # holds the twin, as at the pilot's last step before the restart
    states = opt['path']['training_states']
    torch.manual_seed(0)  # the same (random) classifier: the state records its weights
    resumed = build_model(copy.deepcopy(opt))
    resumed.resume_training(safe_load(f'{states}/2.state'))
    assert resumed.plain_reference is None
    twin = model.plain_reference.net.state_dict()
    assert all(torch.equal(v, twin[k]) for k, v in resumed.net_g.state_dict().items())
    torch.manual_seed(0)
    lowered = build_model(copy.deepcopy(opt))
    with pytest.raises(ValueError, match=r'pilot_iters \(2\) ends before the training state of iteration 3'):
        lowered.resume_training(safe_load(f'{states}/3.state'))


@pytest.mark.parametrize('killed_after', [2, 4])
def test_killed_pilot_run_resumes_with_identical_losses(tiny_fer_root, tmp_path, killed_after):
    """Killed during its pilot (state 2: the twin resumes, the pilot ends after the resume) or after it (state 4:
    no twin in the state, none built), the run continues as the uninterrupted one."""
    opt = _pilot_options(tiny_train_options(tiny_fer_root, name='pilot_tiny'), pilot_iters=3)
    opt['train']['total_iter'] = 6
    opt['logger']['save_checkpoint_freq'] = 2
    opt['logger']['print_freq'] = 1
    opt['val']['val_freq'] = 2
    opt_path = write_options(opt, str(tmp_path / 'train.yml'))
    marker = f'experiments/pilot_tiny/training_states/{killed_after}.state'
    full_dir, killed_dir = full_and_killed_runs(opt_path, tmp_path, marker)
    exp = killed_dir / 'experiments' / 'pilot_tiny'
    state = safe_load(str(exp / 'training_states' / f'{killed_after}.state'))
    assert ('plain_reference' in state) == (killed_after < 3)
    run_training(opt_path, str(killed_dir), '--auto_resume')
    full, resumed = logged_losses(str(full_dir / 'experiments' / 'pilot_tiny')), logged_losses(str(exp))
    after = range(killed_after + 1, 7)
    assert {it: resumed[it] for it in after} == {it: full[it] for it in after}
