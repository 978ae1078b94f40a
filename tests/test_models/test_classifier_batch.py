"""train.fer_batch_size: the classifier reads the first N faces of each batch; the pixel loss still sees them all."""

from __future__ import annotations

import copy

import pytest
import torch
from basicsr.data import build_dataset
from basicsr.models import build_model
from fer_fixtures import GAN_TRAIN, TINY_NET_D, model_options

from srfer_plugin.models.fer_option_checks import classifier_batch_size


def _batch(dataset, indices: tuple[int, ...]) -> dict:
    return torch.utils.data.default_collate([dataset[i] for i in indices])


def _count_reads(model) -> list[int]:
    reads: list[int] = []
    model.fer.bare.register_forward_hook(lambda module, args, out: reads.append(args[0].shape[0]))
    return reads


def _built(opt: dict, **train: object):
    run = copy.deepcopy(opt)
    run['train'].update(train)
    torch.manual_seed(0)
    return build_model(run)


def test_the_classifier_reads_the_first_faces_and_its_losses_are_theirs(tiny_fer_root, tmp_path):
    opt = model_options(tiny_fer_root, str(tmp_path))
    opt['datasets']['train']['use_hflip'] = False
    dataset = build_dataset(opt['datasets']['train'])
    four, first_two = _batch(dataset, (0, 3, 6, 9)), _batch(dataset, (0, 3))
    sub_batch, whole = _built(opt, fer_batch_size=2), _built(opt)
    reads = _count_reads(sub_batch)

    sub_batch.feed_data(four)
    sub_batch.optimize_parameters(1)
    whole.feed_data(first_two)
    whole.optimize_parameters(1)
    assert reads == [2, 2], 'SR faces, then HR faces: two of the four each'
    sub_log, whole_log = sub_batch.get_current_log(), whole.get_current_log()
    for key in ('l_att', 'l_pred'):  # the two faces the classifier read, as a batch of those two alone gives them
        assert sub_log[key] == pytest.approx(whole_log[key], rel=1e-5), key
    assert sub_log['l_pix'] != pytest.approx(whole_log['l_pix'], rel=1e-3), 'the pixel loss sees all four faces'


def test_joint_learning_trains_the_classifier_on_the_first_faces(tiny_fer_root, tmp_path):
    """``l_fer`` (SR and HR faces, a share of its gradient routed to net_g) and ``l_fer_distill`` on the N faces."""
    opt = model_options(tiny_fer_root, str(tmp_path))
    opt['datasets']['train']['use_hflip'] = False
    opt['train'].update(
        train_network_fer=True,
        fer_opt={'type': 'FERCrossEntropyLoss', 'loss_weight': 1.0},
        optim_fer={'type': 'SGD', 'lr': 0.01},
        joint_opt={'sr_grad_weight': 0.1},
        fer_distill_opt={'type': 'PredictionConsistencyLoss', 'temperature': 2.0},
    )
    dataset = build_dataset(opt['datasets']['train'])
    sub_batch, whole = _built(opt, fer_batch_size=2), _built(opt)
    reads = _count_reads(sub_batch)
    sub_batch.feed_data(_batch(dataset, (0, 3, 6, 9)))
    sub_batch.optimize_parameters(1)
    whole.feed_data(_batch(dataset, (0, 3)))
    whole.optimize_parameters(1)
    assert reads and set(reads) == {2}, 'every classifier pass (SR, HR, routed SR, distillation) reads 2 faces'
    sub_log, whole_log = sub_batch.get_current_log(), whole.get_current_log()
    for key in ('l_att', 'l_pred', 'l_fer', 'l_fer_distill'):
        assert sub_log[key] == pytest.approx(whole_log[key], rel=1e-5), key


def test_the_consistency_gradient_reaches_only_the_faces_read(tiny_fer_root, tmp_path):
    opt = model_options(tiny_fer_root, str(tmp_path))
    model = _built(opt, fer_batch_size=2)
    sr = torch.rand(4, 3, 32, 32, requires_grad=True)
    gt = torch.rand(4, 3, 32, 32)
    sr_faces, hr_faces, keys, labels = model.fer.classifier_batch(sr, gt, None, torch.arange(4))
    assert keys is None and labels.tolist() == [0, 1]
    losses = model.fer.consistency_losses(model.fer.classify(sr_faces), model.fer.reference(hr_faces))
    (grad,) = torch.autograd.grad(sum(losses.values()), sr)
    assert grad[:2].abs().sum() > 0 and torch.count_nonzero(grad[2:]) == 0


def test_with_the_hr_cache_only_the_faces_read_are_cached(tiny_fer_root, tmp_path):
    opt = model_options(tiny_fer_root, str(tmp_path))
    dataset = build_dataset(opt['datasets']['train'])
    model = _built(opt, fer_batch_size=2, cache_hr_reference=True)
    model.feed_data(_batch(dataset, (0, 3, 6, 9)))
    model.optimize_parameters(1)
    assert len(model.fer.hr_cache) == 2 and model.fer.hr_cache.misses == 2


def test_a_gan_generator_step_reads_the_first_faces(tiny_fer_root, tmp_path):
    opt = model_options(tiny_fer_root, str(tmp_path))
    opt['model_type'] = 'SRFERESRGANModel'
    opt['network_d'] = dict(TINY_NET_D)
    opt['train'].update(copy.deepcopy(GAN_TRAIN))
    dataset = build_dataset(opt['datasets']['train'])
    model = _built(opt, fer_batch_size=3)
    reads = _count_reads(model)
    model.feed_data(_batch(dataset, (0, 3, 6, 9)))
    model.optimize_parameters(1)
    assert reads == [3, 3]
    assert {'l_att', 'l_pred', 'l_g_pix'} <= set(model.get_current_log())


@pytest.mark.parametrize(
    ('value', 'message'),
    [
        (0, r'must be a whole number >= 1 \(faces per batch\); got 0'),
        (2.0, r'must be a whole number >= 1 \(faces per batch\); got 2.0'),
        (True, r'must be a whole number >= 1 \(faces per batch\); got True'),
        (4, r'train.fer_batch_size \(4\) must be below the batch of a training step \(4: datasets.train'),
    ],
)
def test_a_wrong_size_is_refused_when_the_model_is_built(value, message, tiny_fer_root, tmp_path):
    opt = model_options(tiny_fer_root, str(tmp_path))
    opt['train']['fer_batch_size'] = value
    with pytest.raises(ValueError, match=message):
        build_model(opt)


def test_the_bound_is_the_batch_of_a_step():
    """DataParallel steps one batch of batch_size_per_gpu x num_gpu; a distributed process its own batch."""
    opt = {'num_gpu': 2, 'dist': False, 'datasets': {'train': {'batch_size_per_gpu': 4}}}
    train = {'attention_opt': {'type': 'AttentionConsistencyLoss'}, 'fer_batch_size': 6}
    assert classifier_batch_size(opt, train) == 6
    with pytest.raises(ValueError, match=r'below the batch of a training step \(4:'):
        classifier_batch_size({**opt, 'dist': True}, train)
    assert classifier_batch_size({'datasets': {}}, train) == 6, 'no training set (a model fed directly): no bound'


def test_automatic_weights_are_refused_with_it(tiny_fer_root, tmp_path):
    opt = model_options(tiny_fer_root, str(tmp_path))
    opt['train'].update(fer_batch_size=2, consistency_weights={'rule': 'gradient_share', 'shares': {'l_att': 1.0}})
    with pytest.raises(ValueError, match=r'fer_batch_size \(2\) with train.consistency_weights'):
        build_model(opt)


def test_without_a_classifier_loss_it_is_refused(tiny_fer_root, tmp_path):
    opt = model_options(tiny_fer_root, str(tmp_path))
    opt['train'].update(fer_batch_size=2)
    del opt['train']['attention_opt'], opt['train']['prediction_opt']
    with pytest.raises(ValueError, match=r'train.fer_batch_size \(2\): no attention_opt, prediction_opt or fer_opt'):
        build_model(opt)
