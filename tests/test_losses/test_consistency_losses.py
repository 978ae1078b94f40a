"""Consistency losses against hand-computed values, zero on identical inputs, and their gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from basicsr.losses import build_loss

from srfer_plugin.losses.classification_loss import FERCrossEntropyLoss
from srfer_plugin.losses.consistency_loss import AttentionConsistencyLoss, PredictionConsistencyLoss, attention_map


def test_attention_map_hand_computed():
    # channel 0: [1, 2], channel 1: [3, 0] -> mean |F|^2 = [(1 + 9) / 2, (4 + 0) / 2] = [5, 2]
    feat = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])
    expected = torch.tensor([[5.0, 2.0]]) / math.sqrt(29.0)
    assert torch.allclose(attention_map(feat, p=2), expected)
    # p = 1: mean |F| = [2, 1]
    assert torch.allclose(attention_map(feat, p=1), torch.tensor([[2.0, 1.0]]) / math.sqrt(5.0))


def test_attention_loss_hand_computed_and_weights():
    f_sr = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])
    f_hr = torch.ones(1, 2, 1, 2)
    a_sr = torch.tensor([5.0, 2.0]) / math.sqrt(29.0)
    a_hr = torch.tensor([1.0, 1.0]) / math.sqrt(2.0)
    stage = ((a_sr - a_hr) ** 2).mean().item()
    loss = AttentionConsistencyLoss(loss_weight=2.0, stage_weights=[1.0, 0.5])
    value = loss([f_sr, f_sr], [f_hr, f_hr])
    assert value.item() == pytest.approx(2.0 * (1.0 + 0.5) * stage, rel=1e-6)


def test_attention_loss_zero_on_identical_and_gradients():
    torch.manual_seed(0)
    feats_hr = [torch.randn(3, 4, 8, 8, requires_grad=True), torch.randn(3, 8, 4, 4, requires_grad=True)]
    feats_sr = [f.detach().clone().requires_grad_(True) for f in feats_hr]
    loss = AttentionConsistencyLoss()
    assert loss(feats_sr, feats_hr).item() == pytest.approx(0.0, abs=1e-12)
    feats_sr = [(f.detach() + 0.3 * torch.randn_like(f)).requires_grad_(True) for f in feats_hr]
    value = loss(feats_sr, feats_hr)
    assert value.item() > 0
    value.backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats_sr)
    assert all(f.grad is None for f in feats_hr), 'the HR side must be detached'


def test_attention_loss_reductions_and_errors():
    feats_sr, feats_hr = [torch.randn(4, 2, 3, 3)], [torch.randn(4, 2, 3, 3)]
    per_sample = AttentionConsistencyLoss(reduction='none')(feats_sr, feats_hr)
    assert per_sample.shape == (4,)
    assert AttentionConsistencyLoss(reduction='sum')(feats_sr, feats_hr).item() == pytest.approx(
        per_sample.sum().item(), rel=1e-6
    )
    with pytest.raises(ValueError, match='stage_weights'):
        AttentionConsistencyLoss(stage_weights=[1.0, 1.0])(feats_sr, feats_hr)
    with pytest.raises(ValueError, match='differ'):
        AttentionConsistencyLoss()(feats_sr, [torch.randn(4, 2, 6, 6)])
    with pytest.raises(ValueError, match='reduction'):
        AttentionConsistencyLoss(reduction='avg')


def test_prediction_loss_hand_computed():
    logits_sr = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    logits_hr = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    t = 2.0
    total = 0.0
    for zs, zh in zip(logits_sr.tolist(), logits_hr.tolist()):
        ps = [math.exp(v / t) for v in zs]
        ph = [math.exp(v / t) for v in zh]
        ps = [v / sum(ps) for v in ps]
        ph = [v / sum(ph) for v in ph]
        total += sum(h * math.log(h / s) for h, s in zip(ph, ps))
    expected = 0.5 * total / 2 * t * t  # loss_weight 0.5, batchmean over 2 samples, times T^2
    value = PredictionConsistencyLoss(loss_weight=0.5, temperature=t)(logits_sr, logits_hr)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    kl = F.kl_div(F.log_softmax(logits_sr / t, 1), F.softmax(logits_hr / t, 1), reduction='batchmean')
    assert value.item() == pytest.approx(0.5 * kl.item() * t * t, rel=1e-5)


def test_prediction_loss_zero_on_identical_and_gradients():
    logits_hr = torch.randn(5, 7, requires_grad=True)
    loss = PredictionConsistencyLoss(temperature=4.0)
    assert loss(logits_hr.detach().clone(), logits_hr).item() == pytest.approx(0.0, abs=1e-6)
    logits_sr = torch.randn(5, 7, requires_grad=True)
    value = loss(logits_sr, logits_hr)
    value.backward()
    assert value.item() > 0 and logits_sr.grad.abs().sum() > 0
    assert logits_hr.grad is None, 'the HR side must be detached'
    assert PredictionConsistencyLoss(reduction='none')(logits_sr, logits_hr).shape == (5,)
    with pytest.raises(ValueError, match='temperature'):
        PredictionConsistencyLoss(temperature=0)


def test_losses_are_registered_with_basicsr():
    att = build_loss({'type': 'AttentionConsistencyLoss', 'loss_weight': 3.0, 'p': 1})
    pred = build_loss({'type': 'PredictionConsistencyLoss', 'temperature': 4})
    ce = build_loss({'type': 'FERCrossEntropyLoss', 'loss_weight': 0.5})
    assert isinstance(att, AttentionConsistencyLoss) and att.loss_weight == 3.0 and att.p == 1
    assert isinstance(pred, PredictionConsistencyLoss) and pred.temperature == 4
    assert isinstance(ce, FERCrossEntropyLoss)
    logits, labels = torch.randn(4, 7), torch.tensor([0, 3, 6, 1])
    assert ce(logits, labels).item() == pytest.approx(0.5 * F.cross_entropy(logits, labels).item(), rel=1e-6)


@pytest.mark.parametrize('stage_weights', [[-1.0, 1.0], [0, 0], [math.nan, 1.0], 'deep'])
def test_attention_loss_refuses_bad_stage_weights(stage_weights):
    with pytest.raises(ValueError, match='stage_weights must be a list of numbers >= 0'):
        AttentionConsistencyLoss(stage_weights=stage_weights)


@pytest.mark.parametrize('label_smoothing', [-0.1, 1.0, 1.5, True])
def test_cross_entropy_refuses_label_smoothing_outside_zero_to_one(label_smoothing):
    with pytest.raises(ValueError, match=r'label_smoothing must be in \[0, 1\)'):
        FERCrossEntropyLoss(label_smoothing=label_smoothing)
