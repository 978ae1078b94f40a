"""SafeSRModel: the plain-SR base of SRFERModel, registered and usable on its own as ``model_type``."""

from __future__ import annotations

import os

import pytest
import torch
from basicsr.data import build_dataset
from basicsr.models import build_model
from fer_fixtures import model_options, without_classifier

from srfer_plugin.models.safe_sr_model import SafeSRModel
from srfer_plugin.models.srfer_model import SRFERModel
from srfer_plugin.utils.checkpoint import safe_load


def plain_options(data_root: str, exp_root: str) -> dict:
    """The tiny SR-FER options without the classifier and its losses: a plain-SR run."""
    return without_classifier(model_options(data_root, exp_root))


def _batch(opt: dict) -> dict:
    dataset = build_dataset(opt['datasets']['train'])
    return {key: torch.utils.data.default_collate([dataset[i][key] for i in (0, 1, 2, 3)]) for key in ('lq', 'gt')}


def test_plain_model_trains_saves_and_resumes_like_srfer(tiny_fer_root, tmp_path):
    opt = plain_options(tiny_fer_root, str(tmp_path))
    opt['train']['optim_g'] = {'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 0.01}  # not only Adam
    torch.manual_seed(0)
    model = build_model(opt)
    assert type(model) is SafeSRModel and issubclass(SRFERModel, SafeSRModel)
    assert isinstance(model.optimizer_g, torch.optim.AdamW) and model.optimizers == [model.optimizer_g]
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.feed_data(_batch(opt))
    model.optimize_parameters(1)
    assert set(model.get_current_log()) == {'l_pix'}
    assert any(not torch.equal(v, model.net_g.state_dict()[k]) for k, v in before.items())

    model.save(0, 1)
    weights = safe_load(os.path.join(opt['path']['models'], 'net_g_1.pth'))
    assert set(weights) == {'params'} and not any(k.startswith('module.') for k in weights['params'])
    state = safe_load(os.path.join(opt['path']['training_states'], '1.state'))
    assert state['iter'] == 1 and {'python', 'numpy', 'torch'} <= set(state['rng_states'])
    assert not [f for f in os.listdir(opt['path']['models']) if f.endswith('.tmp')], 'atomic save left a temp file'


def test_plain_model_skips_a_non_finite_step(tiny_fer_root, tmp_path):
    opt = plain_options(tiny_fer_root, str(tmp_path))
    model = build_model(opt)
    batch = _batch(opt)
    batch['gt'][0, 0, 0, 0] = float('nan')
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert all(torch.equal(v, model.net_g.state_dict()[k]) for k, v in before.items()), 'a NaN step was applied'


def test_plain_model_checks_losses_and_scale_when_built(tiny_fer_root, tmp_path):
    opt = plain_options(tiny_fer_root, str(tmp_path))
    opt['train'].pop('pixel_opt')
    with pytest.raises(ValueError, match='train: set at least one of pixel_opt, perceptual_opt'):
        build_model(opt)
    opt = plain_options(tiny_fer_root, str(tmp_path))
    opt['network_g']['upscale'] = 2
    with pytest.raises(ValueError, match=r'turns a 16x16 input into 32x32.*scale 4'):
        build_model(opt)


def test_validation_scores_every_image_of_a_batch(tiny_fer_root, tmp_path):
    """Validation batches of 2 give the per-image mean PSNR of batches of 1 (BasicSR scored a batch as one tiled
    image)."""
    opt = plain_options(tiny_fer_root, str(tmp_path))
    opt['val']['metrics'] = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}
    torch.manual_seed(0)
    model = build_model(opt)
    dataset = build_dataset(opt['datasets']['val'])
    results = []
    for batch_size in (1, 2):
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
        model.nondist_validation(loader, current_iter=1, tb_logger=None, save_img=False)
        results.append(model.metric_results['psnr'])
    assert len(dataset) >= 4 and results[1] == pytest.approx(results[0], rel=1e-9)
