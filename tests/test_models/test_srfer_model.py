"""SRFERModel: one optimisation step with every supported SR backbone, frozen versus joint FER, validation."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model
from fer_fixtures import (
    TINY_CLASSES,
    TINY_SR_ARCHS,
    TINY_VIT_FER,
    draw_face,
    model_options,
    without_classifier,
    write_options,
)

from srfer_plugin.data.fer_layout import write_meta_info
from srfer_plugin.models.srfer_model import SRFERModel


@pytest.fixture(scope='module')
def train_batch(tiny_fer_root):
    opt = model_options(tiny_fer_root, '/tmp/unused')
    dataset = build_dataset(opt['datasets']['train'])
    return {
        key: torch.utils.data.default_collate([dataset[i][key] for i in (0, 3, 6, 9)]) for key in ('lq', 'gt', 'label')
    }


def _params(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize('arch', sorted(TINY_SR_ARCHS))
def test_one_step_every_backbone_frozen_fer(arch, tiny_fer_root, tmp_path, train_batch):
    torch.manual_seed(0)
    model = build_model(model_options(tiny_fer_root, str(tmp_path), TINY_SR_ARCHS[arch]))
    assert isinstance(model, SRFERModel) and not model.fer.joint
    grad_modes = []
    hook = model.net_fer.register_forward_hook(lambda *_: grad_modes.append(torch.is_grad_enabled()))
    g_before, fer_before = _params(model.net_g), _params(model.net_fer)
    model.feed_data(train_batch)
    model.optimize_parameters(1)
    hook.remove()
    log = model.get_current_log()
    assert set(log) == {'l_pix', 'l_att', 'l_pred'}
    assert all(torch.isfinite(torch.tensor(v)) for v in log.values())
    assert grad_modes == [True, False], 'SR branch with autograd, HR branch without'
    assert not torch.isnan(model.output).any() and model.output.shape == train_batch['gt'].shape
    assert any(not torch.equal(v, model.net_g.state_dict()[k]) for k, v in g_before.items())
    assert all(torch.equal(v, model.net_fer.state_dict()[k]) for k, v in fer_before.items()), 'frozen FER changed'


def test_consistency_gradients_reach_net_g_through_frozen_fer(tiny_fer_root, tmp_path, train_batch):
    opt = model_options(tiny_fer_root, str(tmp_path))
    opt['train'].pop('pixel_opt')
    model = build_model(opt)
    model.feed_data(train_batch)
    model.optimizer_g.step = lambda *a, **k: None  # keep the gradients for inspection
    model.optimize_parameters(1)
    grads = [p.grad for p in model.net_g.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in model.net_fer.parameters())


def test_joint_learning_trains_and_saves_fer(tiny_fer_root, tmp_path, train_batch):
    opt = model_options(tiny_fer_root, str(tmp_path))
    opt['train']['train_network_fer'] = True
    opt['train']['fer_opt'] = {'type': 'FERCrossEntropyLoss', 'loss_weight': 1.0}
    opt['train']['optim_fer'] = {'type': 'SGD', 'lr': 0.01, 'momentum': 0.9}
    model = build_model(copy.deepcopy(opt))
    assert model.fer.joint and len(model.optimizers) == 2 and isinstance(model.optimizer_fer, torch.optim.SGD)
    assert model.net_fer.training
    fer_before = _params(model.net_fer)
    model.feed_data(train_batch)
    model.optimize_parameters(1)
    assert 'l_fer' in model.get_current_log()
    assert any(not torch.equal(v, model.net_fer.state_dict()[k]) for k, v in fer_before.items())
    (tmp_path / 'models').mkdir()
    (tmp_path / 'training_states').mkdir()
    model.save(epoch=0, current_iter=1)
    saved = torch.load(f'{tmp_path}/models/net_fer_1.pth', weights_only=True)['params']
    assert all(torch.equal(saved[k], v) for k, v in model.net_fer.state_dict().items())


def test_validation_reports_fer_accuracies_once_per_set(tiny_fer_root, tmp_path):
    opt = model_options(tiny_fer_root, str(tmp_path))
    opt['train']['ema_decay'] = 0.5
    model = build_model(opt)
    assert hasattr(model, 'net_g_ema')
    val_set = build_dataset(opt['datasets']['val'])
    loader = build_dataloader(val_set, opt['datasets']['val'], num_gpu=0, dist=False)
    model.validation(loader, current_iter=1, tb_logger=None, save_img=False)
    results = dict(model.metric_results)
    assert set(results) == {'psnr', 'acc', 'acc_hr', 'acc_bicubic'}
    assert all(0.0 <= results[m] <= 100.0 for m in ('acc', 'acc_hr', 'acc_bicubic'))
    records = model.fer_results['tiny_fer_val']
    labels = torch.tensor(records['label'])
    assert results['acc'] == pytest.approx((torch.tensor(records['pred_sr']) == labels).float().mean().item() * 100)
    assert 'tiny_fer_val' in model.fer.reference_predictions
    model.net_fer.forward = None  # HR/bicubic come from the cache; SR predictions still need the classifier
    with pytest.raises(TypeError):
        model.validation(loader, current_iter=2, tb_logger=None, save_img=False)
    assert model.best_metric_results['tiny_fer_val']['acc']['iter'] == 1


def test_bad_options_fail_before_training(tiny_fer_root, tmp_path):
    opt = model_options(tiny_fer_root, str(tmp_path))
    wrong_scale = dict(opt, network_g=dict(opt['network_g'], upscale=2))
    with pytest.raises(ValueError, match=r'network_g \(RCAN\) turns a 16x16 input into 32x32.*scale 4'):
        build_model(copy.deepcopy(wrong_scale))
    wrong_classes = copy.deepcopy(opt)
    wrong_classes['network_fer']['num_classes'] = 7
    with pytest.raises(ValueError, match=r'datasets\.train has 4 classes.*num_classes is 7'):
        build_model(wrong_classes)
    no_loss = copy.deepcopy(opt)
    for key in ('pixel_opt', 'attention_opt', 'prediction_opt'):
        no_loss['train'].pop(key)
    with pytest.raises(ValueError, match='at least one of pixel_opt'):
        build_model(no_loss)
    fer_loss_frozen = copy.deepcopy(opt)
    fer_loss_frozen['train']['fer_opt'] = {'type': 'FERCrossEntropyLoss'}
    with pytest.raises(ValueError, match='train_network_fer: true'):
        build_model(fer_loss_frozen)
    bad_optim = copy.deepcopy(opt)
    bad_optim['train']['optim_g'] = {'type': 'Adamm', 'lr': 1e-3}
    with pytest.raises(ValueError, match="'Adamm' is not a torch.optim"):
        build_model(bad_optim)
    wrong_stage_weights = copy.deepcopy(opt)
    wrong_stage_weights['train']['attention_opt']['stage_weights'] = [1.0, 0.5, 0.25]
    with pytest.raises(ValueError, match=r'attention_opt\.stage_weights has 3 weight\(s\), but network_fer has 4 tap'):
        build_model(wrong_stage_weights)


def test_output_size_probe_fits_the_swinir_window(tiny_fer_root, tmp_path):
    """The build-time upscale check feeds SwinIR an input its window divides (BasicSR's SwinIR does not pad)."""
    net = dict(TINY_SR_ARCHS['SwinIR'], window_size=7, img_size=7)
    model = build_model(model_options(tiny_fer_root, str(tmp_path), net))
    assert model.opt['network_g']['window_size'] == 7
    with pytest.raises(ValueError, match='scale 2 needs'):
        build_model(dict(model_options(tiny_fer_root, str(tmp_path), net), scale=2))


@pytest.mark.parametrize(
    'network_fer',
    [
        pytest.param(TINY_VIT_FER, id='transformer'),
        pytest.param({**TINY_VIT_FER, 'joint': True}, id='transformer_joint'),
        pytest.param({'input_size': 48}, id='input_size_48_on_32px_faces'),
    ],
)
def test_one_step_with_other_classifiers(network_fer, tiny_fer_root, tmp_path, train_batch):
    opt = model_options(tiny_fer_root, str(tmp_path))
    opt['network_fer'].pop('stages')  # the default taps of each family
    network_fer = dict(network_fer)
    joint = network_fer.pop('joint', False)
    opt['network_fer'].update(copy.deepcopy(network_fer))
    if joint:
        opt['train']['fer_opt'] = {'type': 'FERCrossEntropyLoss', 'loss_weight': 1.0}
        opt['train']['optim_fer'] = {'type': 'AdamW', 'lr': 1e-3}
        opt['train']['train_network_fer'] = True
    torch.manual_seed(0)
    model = build_model(opt)
    net_fer = model.net_fer
    if 'input_size' in network_fer:
        assert net_fer.input_size == (48, 48) and net_fer(train_batch['gt'])[0][0].shape[-1] == 12
    else:
        assert net_fer.taps == ['layers.0', 'layers.1', 'layers.2', 'layers.3']
    g_before, fer_before = _params(model.net_g), _params(net_fer)
    model.feed_data(train_batch)
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert set(log) == {'l_pix', 'l_att', 'l_pred'} | ({'l_fer'} if joint else set()) and log['l_att'] > 0
    assert all(torch.isfinite(torch.tensor(v)) for v in log.values())
    assert any(not torch.equal(v, model.net_g.state_dict()[k]) for k, v in g_before.items())
    fer_changed = any(not torch.equal(v, net_fer.state_dict()[k]) for k, v in fer_before.items())
    assert fer_changed == joint, 'a frozen classifier must stay bit-identical; a joint one must learn'


def test_fer_input_size_the_model_cannot_take_fails_before_training(tiny_fer_root, tmp_path):
    opt = model_options(tiny_fer_root, str(tmp_path))
    opt['datasets']['train']['gt_size'] = 8  # Swin's last stages: 1x1 maps, smaller than its 2x2 windows
    opt['network_fer'].pop('stages')
    opt['network_fer']['config'] = 'swin-tiny_16xb64_in1k'
    opt['network_fer']['cfg_options'] = {
        'model.backbone.arch': {'_delete_': True, 'embed_dims': 16, 'depths': [1, 1, 1, 1], 'num_heads': [1] * 4},
        'model.backbone.window_size': 2,
        'model.backbone.pad_small_map': False,
        'model.head.in_channels': 128,
    }
    message = r'cannot classify 8x8 faces \(datasets.train.gt_size\).*network_fer.input_size'
    with pytest.raises(ValueError, match=message):
        build_model(opt)


def test_label_outside_num_classes_without_classes_txt_fails_before_training(tmp_path):
    import cv2
    import numpy as np
    from fer_fixtures import draw_face

    root = tmp_path / 'no_classes_txt'
    (root / 'c0').mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(root / 'c0' / f'{i}.png'), draw_face(i, 32, rng))
    (root / 'meta_info.txt').write_text('c0/0.png 0\nc0/1.png 9\n')
    opt = model_options(str(root), str(tmp_path / 'exp'))
    for phase in ('train', 'val'):
        opt['datasets'][phase]['meta_info_file'] = str(root / 'meta_info.txt')
    opt['network_fer']['num_classes'] = 7
    with pytest.raises(
        ValueError, match=r'datasets.train.meta_info_file: .*meta_info.txt:2: label 9 is outside \[0, 7\)'
    ):
        build_model(opt)


MODEL_TYPES = ('SRFERModel', 'SafeSRModel')  # the plain-SR model validates and saves images the same way


def _options_of(model_type: str, opt: dict) -> dict:
    return opt if model_type == 'SRFERModel' else without_classifier(opt)


def _faces_sharing_a_file_name(root: str) -> str:
    """Kaggle FER2013's layout, ``test/<class>/im0.png`` in each class folder, plus ``test/happy_im0.png``.

    Returns:
        The meta_info file (paths relative to ``root/test``).
    """
    rng = np.random.default_rng(0)
    items = [('happy/im0.png', 1), ('sad/im0.png', 2), ('happy_im0.png', 1)]
    for rel, label in items:
        os.makedirs(os.path.dirname(os.path.join(root, 'test', rel)), exist_ok=True)
        cv2.imwrite(os.path.join(root, 'test', rel), draw_face(label, 32, rng))
    write_meta_info(os.path.join(root, 'meta_info_test.txt'), items)
    return os.path.join(root, 'meta_info_test.txt')


@pytest.mark.parametrize('model_type', MODEL_TYPES)
@pytest.mark.parametrize('is_train', [True, False])
def test_saved_sr_images_of_faces_sharing_a_file_name_are_kept_apart(model_type, is_train, tiny_fer_root, tmp_path):
    """``val.save_img`` names each SR image by the face's path in its set (not its file name alone), in BasicSR's
    folders: no two faces (nor two val sets of the same faces, in training) write one file. Plain SR too."""
    meta_info = _faces_sharing_a_file_name(str(tmp_path / 'kaggle'))
    exp = tmp_path / 'exp'
    opt = _options_of(model_type, model_options(tiny_fer_root, str(exp), is_train=is_train))
    opt['val']['suffix'] = 'x4'
    model = build_model(opt)
    for name in ('kaggle', 'kaggle_blur'):  # two sets of the same faces
        ds_opt = dict(opt['datasets']['val'], name=name, dataroot_gt=str(tmp_path / 'kaggle' / 'test'))
        ds_opt['meta_info_file'] = meta_info
        loader = build_dataloader(build_dataset(ds_opt), ds_opt, num_gpu=0, dist=False)
        for current_iter in (1, 2):  # a face keeps its name at every validation
            model.validation(loader, current_iter=current_iter, tb_logger=None, save_img=True)
    saved = sorted(str(p.relative_to(exp / 'visualization')) for p in (exp / 'visualization').rglob('*.png'))
    names = ['happy_im0', 'sad_im0', 'happy_im0_2']
    if is_train:  # visualization/<name>/<name>_<iter>.png; the second set's names start with its own
        names += [f'kaggle_blur_{n}' for n in names]
        assert saved == sorted(os.path.join(n, f'{n}_{i}.png') for n in names for i in (1, 2))
    else:  # visualization/<set>/<name>_<suffix>.png
        assert saved == sorted(os.path.join(s, f'{n}_x4.png') for s in ('kaggle', 'kaggle_blur') for n in names)


VALIDATE_AND_SAVE = """
import sys

import yaml
from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model

import srfer_plugin.models.srfer_model  # noqa: F401 (registers the model)

with open(sys.argv[1], encoding='utf-8') as f:
    opt = yaml.safe_load(f)
val = opt['datasets']['val']
model = build_model(opt)
model.validation(build_dataloader(build_dataset(val), val, num_gpu=0, dist=False), 1, None, save_img=True)
"""


@pytest.mark.parametrize('model_type', MODEL_TYPES)
def test_sr_image_of_a_face_whose_name_is_not_utf8_is_saved(model_type, tiny_fer_root, tmp_path):
    """``val.save_img`` on Kaggle-style class folders holding ``caf\\xe9.png`` (not UTF-8): cv2.imwrite crashed
    (segfault) on such a path; the SR image is written by Python, named as ``srfer infer`` names such a file
    (``\\xHH``). In a child process: a segfault fails this test, not the session."""
    faces, lr_faces = tmp_path / 'kaggle' / 'test', tmp_path / 'kaggle' / 'test_lr'  # LR given: no degradation
    rng = np.random.default_rng(0)
    for rel in (b'happy/caf\xe9.png', b'happy/im0.png', b'sad/im0.png'):
        face = draw_face(1, 32, rng)
        for folder, image in ((faces, face), (lr_faces, cv2.resize(face, (8, 8), interpolation=cv2.INTER_AREA))):
            path = os.path.join(os.fsencode(str(folder)), rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                with open(path, 'wb') as f:
                    f.write(cv2.imencode('.png', image)[1].tobytes())
            except (OSError, UnicodeError):
                pytest.skip('this file system does not allow file names that are not UTF-8')
    (tmp_path / 'kaggle' / 'classes.txt').write_text('\n'.join(TINY_CLASSES) + '\n', encoding='utf-8')
    exp = tmp_path / 'exp'
    opt = _options_of(model_type, model_options(tiny_fer_root, str(exp)))
    opt['datasets']['val'].update(dataroot_gt=str(faces), dataroot_lq=str(lr_faces), meta_info_file=None)
    opt_path = write_options(opt, str(tmp_path / 'opt.yml'))
    proc = subprocess.run([sys.executable, '-c', VALIDATE_AND_SAVE, opt_path], capture_output=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode(errors='replace')[-3000:]
    saved = sorted(str(p.relative_to(exp / 'visualization')) for p in (exp / 'visualization').rglob('*.png'))
    assert saved == [os.path.join(n, f'{n}_1.png') for n in ('happy_caf\\xe9', 'happy_im0', 'sad_im0')]
