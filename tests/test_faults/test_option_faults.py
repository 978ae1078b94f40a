"""Option keys that BasicSR would miss, ignore or read only mid-run are refused before anything is created.

Most cases call the checks directly on options shaped as ``parse_options`` returns them (fast); a few go through
BasicSR's own ``parse_options``/pipelines as ``srfer-train`` and ``srfer-test`` run them, to show that the refusal
comes before any folder exists and that what BasicSR fills in itself (its debug mode) is not refused.
"""

from __future__ import annotations

import copy
import glob
import os
import sys
from typing import Any

import pytest
import yaml
from fer_fixtures import REPO_ROOT, load_options, tiny_train_options, write_options

from srfer_plugin.data.fer_layout import meta_info_name
from srfer_plugin.train_loop import (
    OptionError,
    check_option_file,
    check_options,
    guard_parse_options,
    option_checks,
    patch_basicsr_train,
)
from srfer_plugin.utils.run_lock import release_folder

OPT_FILE = 'opts.yml'


def _parsed(opt: dict[str, Any], is_train: bool = True) -> dict[str, Any]:
    """``opt`` as BasicSR's ``parse_options`` returns it (phases, scale, run folders), without creating anything."""
    opt = copy.deepcopy(opt)
    opt.update(is_train=is_train, dist=False, rank=0, world_size=1, auto_resume=False)
    if opt.get('num_gpu') == 'auto':
        opt['num_gpu'] = 0
    for key, dataset in opt['datasets'].items():
        dataset['phase'], dataset['scale'] = key.split('_')[0], opt['scale']
    root = '/nonexistent/run'
    folders = ('experiments_root', 'models', 'training_states', 'log', 'visualization')
    if not is_train:
        folders = ('results_root', 'log', 'visualization')
    opt['path'].update({key: os.path.join(root, key) for key in folders})
    return opt


@pytest.fixture
def train_opt(tiny_fer_root) -> dict[str, Any]:
    return _parsed(tiny_train_options(tiny_fer_root, name='option_faults'))


@pytest.fixture
def test_opt(tiny_fer_root, tmp_path) -> dict[str, Any]:
    """The tiny test options pointed at the tiny data, with a (never read) trained network."""
    opt = load_options('options/tests/test_srfer_tiny_cpu.yml')
    opt['path']['pretrain_network_g'] = str(tmp_path / 'net_g_latest.pth')
    open(opt['path']['pretrain_network_g'], 'wb').close()
    opt['datasets']['test_1'].update(
        dataroot_gt=tiny_fer_root, meta_info_file=os.path.join(tiny_fer_root, meta_info_name('val'))
    )
    return _parsed(opt, is_train=False)


def _refused(opt: dict[str, Any], is_train: bool = True) -> str:
    with pytest.raises(OptionError) as err:
        check_options(opt, is_train, OPT_FILE)
    return str(err.value)


# ------------------------------------------------------------------------------------------- dataset names


def test_two_validation_sets_of_one_name_are_refused(train_opt):
    train_opt['datasets']['val_2'] = dict(train_opt['datasets']['val'], phase='val')
    message = _refused(train_opt)
    assert 'datasets.val and datasets.val_2' in message and "'tiny_fer_val'" in message


def test_two_test_sets_of_one_name_are_refused(test_opt):
    test_opt['datasets']['test_2'] = dict(test_opt['datasets']['test_1'])
    message = _refused(test_opt, is_train=False)
    assert 'datasets.test_1 and datasets.test_2' in message and "'tiny_fer_val'" in message


def test_sets_of_distinct_names_are_accepted(train_opt, test_opt):
    train_opt['datasets']['val_2'] = dict(train_opt['datasets']['val'], name='tiny_fer_val_2')
    check_options(train_opt, True, OPT_FILE)
    test_opt['datasets']['test_2'] = dict(test_opt['datasets']['test_1'], name='tiny_fer_val_2')
    check_options(test_opt, False, OPT_FILE)


# ------------------------------------------------------------------------------------------- val.metrics

BAD_METRICS = [
    ({'type': 'calculate_psnrr', 'crop_border': 4}, "val.metrics.psnr.type: 'calculate_psnrr' is not a registered"),
    (
        {'type': 'calculate_psnr', 'crop_border': '4'},
        "val.metrics.psnr.crop_border must be a whole number >= 0; got '4'",
    ),
    ({'type': 'calculate_psnr', 'crop_border': -1}, 'val.metrics.psnr.crop_border must be a whole number >= 0; got -1'),
    ({'type': 'calculate_psnr', 'crop_border': 4.5}, 'val.metrics.psnr.crop_border must be a whole number >= 0'),
    ({'type': 'calculate_psnr'}, 'val.metrics.psnr.crop_border is missing'),
    (
        {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_chanel': True},
        'val.metrics.psnr.test_y_chanel is not an option calculate_psnr reads',
    ),
    (
        {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': 'false'},
        "val.metrics.psnr.test_y_channel must be true or false; got 'false'",
    ),
    ({'type': 'calculate_psnr', 'crop_border': 4, 'better': 'more'}, 'val.metrics.psnr.better must be higher or lower'),
]


@pytest.mark.parametrize(('metric', 'message'), BAD_METRICS, ids=[m for _, m in BAD_METRICS])
def test_bad_metric_is_refused_before_training(train_opt, metric, message):
    train_opt['val']['metrics']['psnr'] = metric
    assert message in _refused(train_opt)


def test_metric_typos_name_the_closest_known_key(train_opt):
    train_opt['val']['metrics']['psnr'] = {'type': 'calculate_psnrr', 'crop_border': 4}
    assert 'did you mean calculate_psnr?' in _refused(train_opt)
    train_opt['val']['metrics']['psnr'] = {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_chanel': True}
    assert 'did you mean val.metrics.psnr.test_y_channel?' in _refused(train_opt)


def test_metrics_of_basicsr_and_of_the_plugin_are_accepted(train_opt, test_opt):
    """calculate_face_niqe is registered by the plugin; its own keywords (block_size) and BasicSR's better pass."""
    metrics = {
        'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': True, 'input_order': 'HWC'},
        'ssim': {'type': 'calculate_ssim', 'crop_border': 4, 'test_y_channel': False},
        'niqe': {'type': 'calculate_face_niqe', 'crop_border': 4, 'block_size': 32, 'better': 'lower'},
    }
    for opt, is_train in ((train_opt, True), (test_opt, False)):
        opt['val']['metrics'] = copy.deepcopy(metrics)
        check_options(opt, is_train, OPT_FILE)


# ------------------------------------------------------------------------------------------- required keys

MISSING_IN_TRAINING = [
    ('logger.save_checkpoint_freq', 'logger.save_checkpoint_freq is missing'),
    ('logger.print_freq', 'logger.print_freq is missing'),
    ('logger.use_tb_logger', 'logger.use_tb_logger is missing'),
    ('val.val_freq', 'val.val_freq is missing'),
    ('val.save_img', 'val.save_img is missing'),
    ('num_gpu', 'num_gpu is missing'),
    ('network_g', 'network_g is missing'),
    ('model_type', 'model_type is missing'),
    ('logger', 'logger is missing'),
    ('datasets.val.name', 'datasets.val.name must be a non-empty string; got None'),
    ('datasets.train.type', 'datasets.train.type must be a non-empty string; got None'),
]


def _drop(opt: dict[str, Any], key_path: str) -> None:
    *parents, last = key_path.split('.')
    for key in parents:
        opt = opt[key]
    del opt[last]


@pytest.mark.parametrize(('key_path', 'message'), MISSING_IN_TRAINING, ids=[k for k, _ in MISSING_IN_TRAINING])
def test_missing_required_key_is_refused_naming_the_key_and_file(train_opt, key_path, message):
    _drop(train_opt, key_path)
    refused = _refused(train_opt)
    assert message in refused
    if 'must be' not in message:
        assert repr(OPT_FILE) in refused


def test_a_misspelt_required_key_is_named(train_opt):
    train_opt['model_typ'] = train_opt.pop('model_type')
    message = _refused(train_opt)
    assert 'model_type is missing' in message and 'model_typ is given: a misspelling?' in message
    train_opt['model_type'] = train_opt.pop('model_typ')
    train_opt['logger']['save_checkpoint_frq'] = train_opt['logger'].pop('save_checkpoint_freq')
    assert 'logger.save_checkpoint_frq is given: a misspelling?' in _refused(train_opt)


@pytest.mark.parametrize('num_gpu', ['autoo', -1, 1.5, True, None])
def test_num_gpu_must_be_auto_or_a_whole_number(tiny_fer_root, tmp_path, num_gpu):
    opt = tiny_train_options(tiny_fer_root, name='option_faults', num_gpu=num_gpu)
    opt_file = write_options(opt, str(tmp_path / 'bad.yml'))
    with pytest.raises(OptionError) as err:
        check_option_file(opt_file)
    assert f'num_gpu must be auto or a whole number >= 0 (0 = CPU); got {num_gpu!r}' in str(err.value)
    assert opt_file in str(err.value)


def test_missing_num_gpu_and_logger_are_refused_before_parse_options(tiny_fer_root, tmp_path):
    """BasicSR's parse_options reads num_gpu (and in debug mode logger) itself, with a bare KeyError."""
    for key in ('num_gpu', 'logger'):
        opt = tiny_train_options(tiny_fer_root, name='option_faults')
        del opt[key]
        opt_file = write_options(opt, str(tmp_path / f'no_{key}.yml'))
        with pytest.raises(OptionError, match=f'{key} is missing in {opt_file!r}'):
            check_option_file(opt_file)


def test_a_test_run_needs_val_save_img_but_no_logger(test_opt):
    test_opt.pop('logger', None)
    check_options(test_opt, False, OPT_FILE)
    del test_opt['val']
    assert 'val is missing' in _refused(test_opt, is_train=False)


def test_unknown_types_are_refused_with_the_closest_known(train_opt):
    for change, message in (
        (lambda o: o.update(model_type='SRFERModle'), "model_type: 'SRFERModle' is not a registered model"),
        (lambda o: o['network_g'].update(type='RCANN'), "network_g.type: 'RCANN' is not a registered network"),
        (lambda o: o['datasets']['val'].update(type='PairedFERDatset'), "'PairedFERDatset' is not a registered"),
    ):
        opt = copy.deepcopy(train_opt)
        change(opt)
        refused = _refused(opt)
        assert message in refused and 'did you mean' in refused


# ------------------------------------------------------------------------------------------- ignored keys


def test_unknown_train_key_is_refused_with_the_closest_known(train_opt):
    train_opt['train']['attenton_opt'] = train_opt['train'].pop('attention_opt')
    message = _refused(train_opt)
    assert 'train.attenton_opt is not an option SRFERModel reads' in message
    assert 'did you mean train.attention_opt?' in message


def test_train_keys_of_the_plugin_and_basicsr_models_are_accepted(train_opt):
    train_opt['train'].update(use_amp=False, amp_dtype='bf16', channels_last=False, max_nonfinite_steps=10)
    train_opt['train'].update(seed_per_iter=True, fer_inputs=['sr', 'hr'], perceptual_opt=None)
    check_options(train_opt, True, OPT_FILE)


def test_unknown_dataset_key_is_refused_with_the_closest_known(train_opt):
    train_opt['datasets']['train']['degradaton'] = train_opt['datasets']['train'].pop('degradation')
    message = _refused(train_opt)
    assert 'datasets.train.degradaton is not an option PairedFERDataset reads' in message
    assert 'did you mean datasets.train.degradation?' in message


def test_rotation_is_refused_for_faces(train_opt):
    train_opt['datasets']['train']['use_rot'] = True
    assert 'datasets.train.use_rot: true: PairedFERDataset does not rotate faces' in _refused(train_opt)
    train_opt['datasets']['train']['use_rot'] = False
    check_options(train_opt, True, OPT_FILE)


@pytest.mark.parametrize('scale', ['4', 0, 2.5, True])
def test_bad_top_level_scale_is_named_as_scale(train_opt, scale):
    train_opt['scale'] = scale
    for dataset in train_opt['datasets'].values():
        dataset['scale'] = scale  # as parse_options copies it
    message = _refused(train_opt)
    assert message.startswith(f'scale must be a whole number >= 1 (the upscale factor); got {scale!r}'), message


@pytest.mark.parametrize(
    'key_path',
    [
        'train.use_amp',
        'train.channels_last',
        'train.seed_per_iter',
        'train.cache_hr_reference',
        'val.save_img',
        'logger.use_tb_logger',
        'datasets.train.pin_memory',
        'val.metrics.psnr.test_y_channel',
    ],
)
def test_a_flag_written_as_a_string_is_refused(train_opt, key_path):
    """``'false'`` is a non-empty string: read with ``if``/``bool()`` it turned the flag on."""
    *parents, key = key_path.split('.')
    section = train_opt
    for parent in parents:
        section = section.setdefault(parent, {})
    section[key] = 'false'
    assert f"{key_path} must be true or false; got 'false'" in _refused(train_opt)
    section[key] = False
    check_options(train_opt, True, OPT_FILE)


@pytest.mark.parametrize('value', [-5, 2.5, 'often'])
def test_max_nonfinite_steps_must_be_a_whole_number(train_opt, value):
    train_opt['train']['max_nonfinite_steps'] = value
    assert 'train.max_nonfinite_steps must be a whole number >= 0 (0: never stop)' in _refused(train_opt)
    train_opt['train']['max_nonfinite_steps'] = 0
    check_options(train_opt, True, OPT_FILE)


def test_basicsr_templates_use_shuffle_true_is_accepted_false_refused(train_opt):
    train_opt['datasets']['train']['use_shuffle'] = True  # as in BasicSR's option templates
    check_options(train_opt, True, OPT_FILE)
    train_opt['datasets']['train']['use_shuffle'] = False
    assert 'datasets.train.use_shuffle: false would be ignored' in _refused(train_opt)


def test_unknown_top_level_and_val_keys_are_refused_with_the_closest_known(train_opt):
    train_opt['manual_sead'] = train_opt.pop('manual_seed')  # trained with a random seed
    assert 'manual_sead is not an option SRFERModel reads (it would be ignored); did you mean manual_seed?' in (
        _refused(train_opt)
    )
    train_opt['manual_seed'] = train_opt.pop('manual_sead')
    train_opt['val']['metric'] = train_opt['val'].pop('metrics')  # validated without PSNR/SSIM
    assert 'val.metric is not an option SRFERModel reads (it would be ignored); did you mean val.metrics?' in (
        _refused(train_opt)
    )
    train_opt['val']['metrics'] = train_opt['val'].pop('metric')
    train_opt['find_unused_parameters'] = True  # BasicSR's own keys and the networks stay accepted
    check_options(train_opt, True, OPT_FILE)


@pytest.mark.parametrize('stage_weights', [[-1, 1, 1, 1], [0, 0, 0, 0], ['a', 1, 1, 1], 2])
def test_bad_stage_weights_are_refused(train_opt, stage_weights):
    train_opt['train']['attention_opt']['stage_weights'] = stage_weights
    message = _refused(train_opt)
    assert message.startswith('train.attention_opt.stage_weights must be a list of numbers >= 0'), message


def test_label_smoothing_outside_zero_to_one_is_refused(train_opt):
    train_opt['train']['fer_opt'] = {'type': 'FERCrossEntropyLoss', 'label_smoothing': 1.5}
    assert 'train.fer_opt.label_smoothing must be a number in [0, 1); got 1.5' in _refused(train_opt)


@pytest.mark.parametrize('name', ['../outside', '/abs/set', 'a/b', '..'])
def test_dataset_name_must_be_one_folder_name(train_opt, name):
    train_opt['datasets']['val']['name'] = name  # fer/<name> and visualization/<name> would leave the run folder
    assert 'datasets.val.name must be one plain folder name' in _refused(train_opt)


def test_degradation_beside_lr_images_is_refused(train_opt, tiny_fer_root):
    train_opt['datasets']['train']['dataroot_lq'] = tiny_fer_root
    message = _refused(train_opt)
    assert 'datasets.train.degradation' in message and 'datasets.train.dataroot_lq' in message
    del train_opt['datasets']['train']['degradation']
    check_options(train_opt, True, OPT_FILE)


def test_validation_set_without_val_section_is_refused(train_opt):
    del train_opt['val']
    message = _refused(train_opt)
    assert 'datasets.val is given but the val section is missing' in message


# ------------------------------------------------------------------------------------------- path


def test_test_run_without_trained_network_is_refused(test_opt):
    test_opt['path']['pretrain_network_g'] = None
    assert 'set path.pretrain_network_g' in _refused(test_opt, is_train=False)


def test_test_run_of_a_network_without_weights_needs_none(test_opt):
    test_opt['path']['pretrain_network_g'] = None
    test_opt['network_g'] = {'type': 'BicubicUpsampler', 'upscale': 4}
    check_options(test_opt, False, OPT_FILE)


@pytest.mark.parametrize('is_train', [True, False])
def test_unknown_path_key_is_refused_with_the_closest_known(train_opt, test_opt, is_train):
    opt = train_opt if is_train else test_opt
    opt['path']['pretrain_networkg'] = opt['path'].pop('pretrain_network_g')
    message = _refused(opt, is_train)
    assert 'path.pretrain_networkg is not an option' in message and 'did you mean path.pretrain_network_g?' in message


# ------------------------------------------------------------------------------------------- through BasicSR


def _write(opt: dict[str, Any], path) -> str:
    return write_options(opt, str(path))


def test_srfer_train_refuses_before_anything_is_created(tiny_fer_root, tmp_path, monkeypatch):
    """The key that BasicSR reads only after iteration 1 (save_checkpoint_freq) stops the pipeline at parsing."""
    opt = tiny_train_options(tiny_fer_root, name='option_faults')
    del opt['logger']['save_checkpoint_freq']
    opt_file = _write(opt, tmp_path / 'bad.yml')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['srfer-train', '-opt', opt_file])
    patch_basicsr_train()
    import basicsr.train

    with pytest.raises(OptionError, match=f'logger.save_checkpoint_freq is missing in {opt_file!r}'):
        basicsr.train.train_pipeline(root_path=str(tmp_path))
    assert not (tmp_path / 'experiments').exists()


def test_srfer_test_refuses_a_random_network_before_anything_is_created(tiny_fer_root, tmp_path, monkeypatch):
    opt = load_options('options/tests/test_srfer_tiny_cpu.yml')
    opt['datasets']['test_1'].update(
        dataroot_gt=tiny_fer_root, meta_info_file=os.path.join(tiny_fer_root, meta_info_name('val'))
    )
    opt['path']['pretrain_network_g'] = None
    opt_file = _write(opt, tmp_path / 'bad.yml')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['srfer-test', '-opt', opt_file])
    guard_parse_options()
    import basicsr.test

    with pytest.raises(OptionError, match='set path.pretrain_network_g'):
        basicsr.test.test_pipeline(root_path=str(tmp_path))
    assert not (tmp_path / 'results').exists()


def test_what_basicsr_debug_mode_fills_in_is_not_refused(tiny_fer_root, tmp_path, monkeypatch):
    """In debug mode parse_options sets print_freq, save_checkpoint_freq and val_freq itself."""
    opt = tiny_train_options(tiny_fer_root, name='debug_option_faults')
    for section, key in (('logger', 'print_freq'), ('logger', 'save_checkpoint_freq'), ('val', 'val_freq')):
        del opt[section][key]
    opt_file = _write(opt, tmp_path / 'debug.yml')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['srfer-train', '-opt', opt_file])
    patch_basicsr_train()
    import basicsr.train

    with pytest.warns(UserWarning, match='debug'):
        parsed, _ = basicsr.train.parse_options(str(tmp_path), is_train=True)
    release_folder(parsed['path']['experiments_root'])
    assert parsed['logger']['save_checkpoint_freq'] == 8 and parsed['val']['val_freq'] == 8


SHIPPED = sorted(glob.glob(os.path.join(REPO_ROOT, 'srfer_plugin', 'options', '**', '*.yml'), recursive=True))


@pytest.mark.parametrize('path', SHIPPED, ids=[os.path.relpath(p, REPO_ROOT) for p in SHIPPED])
def test_every_shipped_option_file_passes_the_checks(path, monkeypatch, tmp_path):
    monkeypatch.setattr(option_checks, '_check_model_options', lambda opt: None)  # its classifier files are absent
    with open(path, encoding='utf-8') as f:
        is_train = 'train' in yaml.safe_load(f)
    check_option_file(path, is_train)
    opt = _parsed(option_checks.load_option_file(path), is_train)
    monkeypatch.chdir(tmp_path)  # the networks it starts from, as an earlier training leaves them
    for key, weights in opt['path'].items():
        if key.startswith('pretrain_network_') and weights:
            os.makedirs(os.path.dirname(weights) or '.', exist_ok=True)
            open(weights, 'wb').close()
    check_options(opt, is_train, path)


def test_missing_pretrained_network_is_refused_unless_a_resume_replaces_it(train_opt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_opt['path']['pretrain_network_g'] = 'experiments/plain/models/net_g_latest.pth'
    message = _refused(train_opt)
    assert message.startswith("path.pretrain_network_g: 'experiments/plain/models/net_g_latest.pth' is not a file")
    assert repr(str(tmp_path)) in message
    train_opt['path']['resume_state'] = 'experiments/x/training_states/10.state'  # check_resume replaces it
    check_options(train_opt, True, OPT_FILE)
