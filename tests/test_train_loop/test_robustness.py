"""Bad input during long runs: non-finite losses skip steps and stop cleanly; too-small training sets fail early."""

from __future__ import annotations

import logging
import os

import pytest
import torch
from basicsr.data import build_dataset
from basicsr.models import build_model
from fer_fixtures import model_options

from srfer_plugin.models.safe_sr_model import NonFiniteLossError
from srfer_plugin.train_loop import check_train_set_size, patch_basicsr_train
from srfer_plugin.utils.checkpoint import safe_load


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _batch(dataset, nan: bool) -> dict:
    items = [dataset[i] for i in range(4)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ('lq', 'gt', 'label')}
    if nan:
        batch['lq'][0, 0, 0, 0] = float('nan')
    return batch


def test_nonfinite_loss_skips_step_then_stops_after_saving(tiny_fer_root, tmp_path):
    opt = model_options(tiny_fer_root, str(tmp_path / 'exp'))
    opt['train'].update(ema_decay=0.5, max_nonfinite_steps=3)
    model = build_model(opt)
    dataset = build_dataset(opt['datasets']['train'])
    records = _Records()
    logging.getLogger('basicsr').addHandler(records)
    try:
        weights = {k: v.clone() for k, v in model.net_g.state_dict().items()}
        ema = {k: v.clone() for k, v in model.net_g_ema.state_dict().items()}
        for it in (1, 2):
            model.feed_data(_batch(dataset, nan=True))
            model.optimize_parameters(it)
        assert all(torch.equal(v, model.net_g.state_dict()[k]) for k, v in weights.items()), 'optimizer stepped'
        assert all(torch.equal(v, model.net_g_ema.state_dict()[k]) for k, v in ema.items()), 'EMA updated'
        assert not model.optimizer_g.state, 'Adam state must stay untouched'
        warning = next(m for m in records.messages if 'non-finite' in m)
        assert 'l_pix' in warning and 'l_att' in warning and 'skipped' in warning

        model.feed_data(_batch(dataset, nan=False))  # a finite step resets the count
        model.optimize_parameters(3)
        assert model._nonfinite_steps == 0 and model.optimizer_g.state
        for it in (4, 5):
            model.feed_data(_batch(dataset, nan=True))
            model.optimize_parameters(it)
        model.feed_data(_batch(dataset, nan=True))
        with pytest.raises(NonFiniteLossError, match='3 consecutive') as err:
            model.optimize_parameters(6)
        assert 'net_g_6.pth' in str(err.value)
    finally:
        logging.getLogger('basicsr').removeHandler(records)
    saved = safe_load(os.path.join(opt['path']['models'], 'net_g_6.pth'))['params']
    assert all(torch.isfinite(v).all() for v in saved.values())
    assert safe_load(os.path.join(opt['path']['training_states'], '6.state'))['iter'] == 6


def test_training_set_smaller_than_a_batch_fails_early(tiny_fer_root):
    opt = model_options(tiny_fer_root, '/tmp/unused')['datasets']['train']
    dataset = build_dataset(opt)  # 12 images
    check_train_set_size(dataset, dict(opt, batch_size_per_gpu=12), num_gpu=0, dist=False, world_size=1)
    with pytest.raises(ValueError, match='fewer than one batch of 16'):
        check_train_set_size(dataset, dict(opt, batch_size_per_gpu=16), num_gpu=0, dist=False, world_size=1)
    with pytest.raises(ValueError, match='6 per process'):
        check_train_set_size(dataset, dict(opt, batch_size_per_gpu=8), num_gpu=0, dist=True, world_size=2)
    patch_basicsr_train()
    import basicsr.train

    with pytest.raises(ValueError, match='empty'):
        basicsr.train.build_dataloader([], dict(opt, batch_size_per_gpu=1), num_gpu=0)


def test_amp_and_channels_last_step_on_cpu(tiny_fer_root, tmp_path):
    """bf16 autocast and NHWC training take finite steps; fp16 without CUDA is refused at build time."""
    opt = model_options(tiny_fer_root, str(tmp_path / 'exp'))
    opt['train'].update(use_amp=True, amp_dtype='bf16', channels_last=True)
    model = build_model(opt)
    assert model.net_g.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    dataset = build_dataset(opt['datasets']['train'])
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.feed_data(_batch(dataset, nan=False))
    assert model.lq.is_contiguous(memory_format=torch.channels_last)
    model.optimize_parameters(1)
    assert all(torch.isfinite(torch.tensor(v)) for v in model.log_dict.values())
    assert any(not torch.equal(v, model.net_g.state_dict()[k]) for k, v in before.items()), 'no step was taken'

    opt = model_options(tiny_fer_root, str(tmp_path / 'exp2'))
    opt['train'].update(use_amp=True, amp_dtype='fp16')
    with pytest.raises(ValueError, match='fp16 needs CUDA'):
        build_model(opt)
