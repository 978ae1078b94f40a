"""train.cache_hr_reference: the frozen classifier reads each HR face once; the run matches the uncached one."""

from __future__ import annotations

import copy

import pytest
import torch
from basicsr.data import build_dataset
from basicsr.models import build_model
from fer_fixtures import model_options

from srfer_plugin.models.hr_reference_cache import HRReferenceCache


def _batch(dataset, indices: tuple[int, ...]) -> dict:
    samples = [dataset[i] for i in indices]
    return torch.utils.data.default_collate(samples)


def _pair(tiny_fer_root: str, tmp_path) -> tuple:
    """The same tiny SR-FER model (same seed) without and with the cache."""
    opt = model_options(tiny_fer_root, str(tmp_path / 'plain'))
    opt['datasets']['train']['use_hflip'] = False  # the same faces again (flips are keyed apart)
    models = []
    for cache in (False, True):
        run = copy.deepcopy(opt)
        run['train']['cache_hr_reference'] = cache
        torch.manual_seed(0)
        models.append(build_model(run))
    return opt, models


def _step(model, batch: dict, current_iter: int) -> dict:
    model.feed_data(batch)
    model.optimize_parameters(current_iter)
    return {k: float(v) for k, v in model.get_current_log().items()}


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.net_g.state_dict().items()}


def test_cached_run_matches_the_uncached_one(tiny_fer_root, tmp_path):
    opt, (plain, cached) = _pair(tiny_fer_root, tmp_path)
    dataset = build_dataset(opt['datasets']['train'])
    calls = []
    cached.fer.bare.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))

    first = _batch(dataset, (0, 3, 6, 9))
    assert _step(plain, first, 1) == _step(cached, first, 1), 'a batch of new faces: bit-identical'
    assert all(torch.equal(a, b) for a, b in zip(_weights(plain).values(), _weights(cached).values()))
    assert calls == [4, 4] and len(cached.fer.hr_cache) == 4

    calls.clear()
    mixed = _batch(dataset, (0, 3, 1, 4))  # two faces cached, two new: the classifier reads the new ones only
    logs = _step(plain, mixed, 2), _step(cached, mixed, 2)
    assert calls == [4, 2], 'SR faces, then the HR faces not cached yet'
    assert logs[0].keys() == logs[1].keys()
    for key in logs[0]:
        assert logs[1][key] == pytest.approx(logs[0][key], rel=1e-5, abs=1e-7), key
    for a, b in zip(_weights(plain).values(), _weights(cached).values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert cached.fer.hr_cache.hits == 2 and cached.fer.hr_cache.misses == 6


def test_the_key_holds_the_flip_and_the_face_size():
    cache = HRReferenceCache(attention_p=2.0)
    reads = []

    def classify(faces):
        reads.append(faces.shape[0])
        return [faces.mean(dim=1, keepdim=True)], faces.flatten(1)[:, :3]

    faces = torch.rand(2, 3, 8, 8)
    cache.read(faces, [('a.png', False), ('a.png', True)], classify)
    maps, logits = cache.read(faces.flip(-1), [('a.png', True), ('a.png', False)], classify)
    assert reads == [2] and maps[0].shape == (2, 64) and logits.shape == (2, 3)
    cache.read(torch.rand(1, 3, 4, 4), [('a.png', False)], classify)
    assert reads == [2, 1], 'another face size is another face'
    assert cache.bytes_per_face() == (64 + 3) * 4


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        (lambda o: o['train'].update(cache_hr_reference='yes'), "must be true or false; got 'yes'"),
        (
            lambda o: o['train'].update(
                train_network_fer=True,
                fer_opt={'type': 'FERCrossEntropyLoss'},
                optim_fer={'type': 'SGD', 'lr': 0.01},
            ),
            'only a frozen classifier can be cached',
        ),
        (lambda o: o['datasets']['train'].update(type='PairedImageDataset'), 'needs datasets.train of type'),
    ],
)
def test_the_cache_is_refused_where_it_would_be_wrong(change, message, tiny_fer_root, tmp_path):
    opt = model_options(tiny_fer_root, str(tmp_path))
    opt['train']['cache_hr_reference'] = True
    change(opt)
    with pytest.raises(ValueError, match=message):
        build_model(opt)
