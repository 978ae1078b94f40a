"""SRFERGANModel / SRFERESRGANModel: GAN steps with a frozen classifier, log keys, options, resume on CPU."""

from __future__ import annotations

import copy

import pytest
import torch
from basicsr.data import build_dataset
from basicsr.models import build_model
from fer_fixtures import GAN_TRAIN, TINY_NET_D, TINY_SR_ARCHS, model_options, tiny_train_options, write_options
from training_runs import full_and_killed_runs, logged_losses, run_training

from srfer_plugin.models.fer_guidance import FERGuidance
from srfer_plugin.models.safe_sr_model import check_vgg_weights
from srfer_plugin.models.safe_srgan_model import SafeESRGANModel, SafeSRGANModel
from srfer_plugin.models.srfer_gan_model import SRFERESRGANModel, SRFERGANModel
from srfer_plugin.models.srfer_model import SRFERModel
from srfer_plugin.utils.checkpoint import safe_load

GENERATOR_KEYS = {'l_g_pix', 'l_g_gan', 'l_att', 'l_pred'}
DISCRIMINATOR_KEYS = {'l_d_real', 'out_d_real', 'l_d_fake', 'out_d_fake'}


def gan_options(data_root: str, exp_root: str, model_type: str = 'SRFERESRGANModel', network_g=None) -> dict:
    opt = model_options(data_root, exp_root, network_g)
    opt['model_type'] = model_type
    opt['network_d'] = dict(TINY_NET_D)
    opt['train'].update(copy.deepcopy(GAN_TRAIN))
    return opt


@pytest.fixture(scope='module')
def train_batch(tiny_fer_root):
    dataset = build_dataset(model_options(tiny_fer_root, '/tmp/unused')['datasets']['train'])
    return {
        key: torch.utils.data.default_collate([dataset[i][key] for i in (0, 3, 6, 9)]) for key in ('lq', 'gt', 'label')
    }


def _params(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], net: torch.nn.Module) -> bool:
    return any(not torch.equal(v, net.state_dict()[k]) for k, v in before.items())


def test_one_component_for_the_fer_half():
    """The GAN models are SRFERModels (the classifier component, its optimizer, checkpoints and FER validation)
    with a GAN step of their own."""
    for model_cls in (SRFERGANModel, SRFERESRGANModel):
        assert issubclass(model_cls, SRFERModel) and issubclass(model_cls, SafeSRGANModel)
        for method in ('init_training_settings', 'setup_optimizers', 'save', 'nondist_validation'):
            owner = next(c for c in model_cls.__mro__ if method in vars(c))
            assert owner is SRFERModel, f'{model_cls.__name__}.{method} comes from {owner.__name__}'
        assert model_cls.optimize_parameters is SRFERGANModel.optimize_parameters
    assert FERGuidance not in SRFERModel.__mro__, 'the classifier is a component (self.fer), not a base class'
    assert SRFERESRGANModel.generator_gan_loss is SafeESRGANModel.generator_gan_loss
    assert SRFERESRGANModel.discriminator_losses is SafeESRGANModel.discriminator_losses
    assert issubclass(SRFERESRGANModel, SafeESRGANModel) and issubclass(SafeESRGANModel, SafeSRGANModel)


@pytest.mark.parametrize(('arch', 'model_type'), [('RRDBNet', 'SRFERESRGANModel'), ('MSRResNet', 'SRFERGANModel')])
def test_one_gan_step_updates_g_and_d_and_keeps_the_classifier(arch, model_type, tiny_fer_root, tmp_path, train_batch):
    torch.manual_seed(0)
    model = build_model(gan_options(tiny_fer_root, str(tmp_path), model_type, TINY_SR_ARCHS[arch]))
    assert type(model).__name__ == model_type and not model.fer.joint
    assert [type(o).__name__ for o in model.optimizers] == ['Adam', 'Adam']
    g_before, d_before, fer_before = _params(model.net_g), _params(model.net_d), _params(model.net_fer)
    model.feed_data(train_batch)
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert set(log) == GENERATOR_KEYS | DISCRIMINATOR_KEYS
    assert all(torch.isfinite(torch.tensor(v)) for v in log.values())
    assert _changed(g_before, model.net_g), 'the generator did not update'
    assert _changed(d_before, model.net_d), 'the discriminator did not update'
    assert not _changed(fer_before, model.net_fer), 'the frozen classifier changed'
    assert all(p.requires_grad for p in model.net_d.parameters()), 'net_d trainable again after the generator step'


def test_net_d_init_iters_and_net_d_iters_schedule_the_generator(tiny_fer_root, tmp_path, train_batch):
    opt = gan_options(tiny_fer_root, str(tmp_path))
    opt['train'].update(net_d_init_iters=1, net_d_iters=2)
    model = build_model(opt)
    model.feed_data(train_batch)
    for it, generator_due in ((1, False), (2, True), (3, False), (4, True)):
        g_before = _params(model.net_g)
        model.optimize_parameters(it)
        assert _changed(g_before, model.net_g) == generator_due, f'iter {it}'
        assert set(model.get_current_log()) == (GENERATOR_KEYS if generator_due else set()) | DISCRIMINATOR_KEYS


def test_fer_losses_reach_the_generator_in_gan_training(tiny_fer_root, tmp_path, train_batch):
    opt = gan_options(tiny_fer_root, str(tmp_path), 'SRFERGANModel')
    opt['train'].pop('pixel_opt')
    opt['train']['gan_opt']['loss_weight'] = 0.0  # only the SR-FER losses drive net_g
    model = build_model(opt)
    model.feed_data(train_batch)
    model.optimizer_g.step = lambda *a, **k: None  # keep the generator's gradients
    model.optimize_parameters(1)
    grads = [p.grad for p in model.net_g.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in model.net_fer.parameters())
    assert set(model.get_current_log()) == {'l_g_gan', 'l_att', 'l_pred'} | DISCRIMINATOR_KEYS


def test_joint_learning_in_gan_training_trains_the_classifier(tiny_fer_root, tmp_path, train_batch):
    opt = gan_options(tiny_fer_root, str(tmp_path))
    opt['train']['train_network_fer'] = True
    opt['train']['fer_opt'] = {'type': 'FERCrossEntropyLoss', 'loss_weight': 1.0}
    opt['train']['optim_fer'] = {'type': 'SGD', 'lr': 0.01}
    model = build_model(opt)
    assert len(model.optimizers) == 3 and model.optimizers[-1] is model.optimizer_fer
    fer_before = _params(model.net_fer)
    model.feed_data(train_batch)
    model.optimize_parameters(1)
    assert 'l_fer' in model.get_current_log() and _changed(fer_before, model.net_fer)


def test_validation_reports_fer_accuracies(tiny_fer_root, tmp_path):
    from basicsr.data import build_dataloader

    opt = gan_options(tiny_fer_root, str(tmp_path))
    model = build_model(opt)
    val_set = build_dataset(opt['datasets']['val'])
    loader = build_dataloader(val_set, opt['datasets']['val'], num_gpu=0, dist=False)
    model.validation(loader, current_iter=1, tb_logger=None, save_img=False)
    assert {'psnr', 'acc', 'acc_hr', 'acc_bicubic'} <= set(model.metric_results)


@pytest.mark.parametrize(
    ('edit', 'match'),
    [
        (lambda o: o.pop('network_d'), 'missing network_d'),
        (lambda o: o['train'].pop('gan_opt'), r'missing train\.gan_opt \(given: network_d, train\.optim_d\)'),
        (lambda o: o['train'].pop('optim_d'), 'missing train.optim_d'),
        (lambda o: o['train'].update(net_d_iters=0), r'train\.net_d_iters must be an integer >= 1'),
        (lambda o: o['train'].update(net_d_init_iters=4), r'train\.net_d_init_iters \(4\) >= train\.total_iter'),
        (lambda o: o['train'].update(train_network_g=False), 'train.train_network_g'),
        (lambda o: o['train'].update(train_network_fer=True), 'train.fer_opt and train.optim_fer'),
    ],
)
def test_bad_gan_options_fail_before_training_naming_the_key(edit, match, tiny_fer_root, tmp_path):
    opt = gan_options(tiny_fer_root, str(tmp_path))
    edit(opt)
    with pytest.raises(ValueError, match=match):
        build_model(opt)


def test_perceptual_loss_without_vgg_weights_fails_naming_the_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    with pytest.raises(FileNotFoundError, match=r'train\.perceptual_opt .*vgg19-dcbb9e9d\.pth'):
        check_vgg_weights('train.perceptual_opt')
    (tmp_path / 'experiments' / 'pretrained_models').mkdir(parents=True)
    (tmp_path / 'experiments' / 'pretrained_models' / 'vgg19-dcbb9e9d.pth').write_bytes(b'')
    check_vgg_weights('train.perceptual_opt')


def test_plain_gan_baseline_runs_without_a_classifier(tiny_fer_root, tmp_path, train_batch):
    opt = gan_options(tiny_fer_root, str(tmp_path), 'SafeESRGANModel')
    del opt['network_fer']
    for key in ('attention_opt', 'prediction_opt'):
        del opt['train'][key]
    model = build_model(opt)
    model.feed_data(train_batch)
    model.optimize_parameters(1)
    assert set(model.get_current_log()) == {'l_g_pix', 'l_g_gan'} | DISCRIMINATOR_KEYS


def test_killed_gan_run_resumes_with_identical_losses(tiny_fer_root, tmp_path):
    name = 'resume_gan_tiny'
    opt = tiny_train_options(tiny_fer_root, name=name)
    opt['model_type'] = 'SRFERESRGANModel'
    opt['network_g'] = dict(TINY_SR_ARCHS['MSRResNet'])
    opt['network_d'] = dict(TINY_NET_D)
    opt['train'].update(copy.deepcopy(GAN_TRAIN), total_iter=6, net_d_init_iters=1)
    opt['logger']['save_checkpoint_freq'] = 4
    opt['val']['val_freq'] = 4
    opt_path = write_options(opt, str(tmp_path / 'train.yml'))
    full_dir, killed_dir = full_and_killed_runs(opt_path, tmp_path, f'experiments/{name}/training_states/4.state')
    exp = killed_dir / 'experiments' / name
    assert (exp / 'models' / 'net_d_4.pth').exists() and not (exp / 'models' / 'net_g_latest.pth').exists()
    assert len(safe_load(str(exp / 'training_states' / '4.state'))['optimizers']) == 2, 'net_g and net_d'
    proc = run_training(opt_path, str(killed_dir), '--auto_resume')
    assert 'Resuming training from epoch: 1, iter: 4' in proc.stderr + proc.stdout
    full = logged_losses(str(full_dir / 'experiments' / name))
    resumed = logged_losses(str(exp))
    assert sorted(full) == list(range(1, 7)) and 'l_d_real' in full[6] and 'l_g_gan' in full[6]
    assert {it: resumed[it] for it in (5, 6)} == {it: full[it] for it in (5, 6)}, 'losses after the resume differ'
    for net in ('net_g', 'net_d'):
        full_net = safe_load(str(full_dir / 'experiments' / name / 'models' / f'{net}_latest.pth'))['params']
        resumed_net = safe_load(str(exp / 'models' / f'{net}_latest.pth'))['params']
        assert all(torch.equal(v, resumed_net[k]) for k, v in full_net.items()), net


def test_esrgan_recipe_builds_and_steps_on_cpu(tiny_fer_root, tmp_path, monkeypatch):
    """options/train_ESRGAN_srfer_x4.yml as shipped (smaller networks, tiny data, no pretrained weights)."""
    import os

    import yaml
    from fer_fixtures import REPO_ROOT

    with open(os.path.join(REPO_ROOT, 'options', 'train_ESRGAN_srfer_x4.yml'), encoding='utf-8') as f:
        recipe = yaml.safe_load(f)
    opt = model_options(tiny_fer_root, str(tmp_path))
    for phase in ('train', 'val'):
        opt['datasets'][phase]['gt_size'] = recipe['datasets'][phase]['gt_size']
    opt.update({k: recipe[k] for k in ('model_type', 'network_d', 'network_fer')})
    opt['train'] = dict(recipe['train'], total_iter=4)
    opt['network_g'] = dict(recipe['network_g'], num_feat=8, num_block=1, num_grow_ch=4)
    opt['network_d'] = dict(recipe['network_d'], num_feat=8)
    opt['network_fer'] = dict(recipe['network_fer'], checkpoint=None, num_classes=4)
    monkeypatch.chdir(tmp_path)  # no experiments/pretrained_models/vgg19-dcbb9e9d.pth here
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    with pytest.raises(FileNotFoundError, match='train.perceptual_opt'):
        build_model(copy.deepcopy(opt))
    opt['train'].pop('perceptual_opt')
    model = build_model(opt)
    assert isinstance(model, SRFERESRGANModel) and model.net_d.input_size == 128
    dataset = build_dataset(opt['datasets']['train'])
    batch = {k: torch.utils.data.default_collate([dataset[i][k] for i in (0, 5)]) for k in ('lq', 'gt', 'label')}
    assert batch['gt'].shape[-1] == 128
    d_before = _params(model.net_d)
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert set(model.get_current_log()) == GENERATOR_KEYS | DISCRIMINATOR_KEYS and _changed(d_before, model.net_d)
