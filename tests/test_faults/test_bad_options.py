"""Options that would train silently with a wrong meaning are refused before anything is created.

Each bad value goes through BasicSR's own ``train_pipeline`` (as ``srfer-train`` runs it): the error names the YAML
key path and the value, and no experiment folder exists afterwards, so the refusal came before the first step.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from basicsr.losses import build_loss
from fer_fixtures import tiny_train_options, write_options
from training_runs import train_env

from srfer_plugin.losses.classification_loss import FERCrossEntropyLoss
from srfer_plugin.losses.consistency_loss import AttentionConsistencyLoss, PredictionConsistencyLoss
from srfer_plugin.train_loop import patch_basicsr_train
from srfer_plugin.utils.run_lock import release_folder

NAME = 'bad_options'


def _set(opt: dict, key_path: str, value) -> None:
    *parents, last = key_path.split('.')
    for key in parents:
        opt = opt[key]
    opt[last] = value


# (key path, bad value, what the error must name: the key path and the value as written)
BAD_VALUES = [
    ('train.total_iter', 'abc', "train.total_iter must be a positive integer; got 'abc'"),
    ('train.total_iter', 0, 'train.total_iter must be a positive integer; got 0'),
    ('train.total_iter', -5, 'train.total_iter must be a positive integer; got -5'),
    ('train.total_iter', 2.5, 'train.total_iter must be a positive integer; got 2.5'),
    ('train.optim_g.lr', 'abc', "train.optim_g.lr must be a number > 0; got 'abc'"),
    ('train.optim_g.lr', 0, 'train.optim_g.lr must be a number > 0; got 0'),
    ('train.optim_g.lr', -0.001, 'train.optim_g.lr must be a number > 0; got -0.001'),
    ('train.optim_fer', {'type': 'Adam', 'lr': -1e-5}, 'train.optim_fer.lr must be a number > 0; got -1e-05'),
    ('datasets.train.batch_size_per_gpu', 0, 'datasets.train.batch_size_per_gpu must be an integer > 0; got 0'),
    ('datasets.train.batch_size_per_gpu', 2.5, 'datasets.train.batch_size_per_gpu must be an integer > 0; got 2.5'),
    ('datasets.train.batch_size_per_gpu', '4', "datasets.train.batch_size_per_gpu must be an integer > 0; got '4'"),
    ('datasets.val.batch_size_per_gpu', -1, 'datasets.val.batch_size_per_gpu must be an integer > 0; got -1'),
    ('manual_seed', 'abc', "manual_seed must be an integer in [0, 2147483647] (or ~ for a random one); got 'abc'"),
    ('manual_seed', '7', "manual_seed must be an integer in [0, 2147483647] (or ~ for a random one); got '7'"),
    ('manual_seed', 1.5, 'manual_seed must be an integer in [0, 2147483647] (or ~ for a random one); got 1.5'),
    ('train.pixel_opt.loss_weight', -1.0, 'train.pixel_opt.loss_weight must be a number >= 0; got -1.0'),
    ('train.attention_opt.loss_weight', 'abc', "train.attention_opt.loss_weight must be a number >= 0; got 'abc'"),
    (
        'train.pixel_opt.terms',
        [{'type': 'L1Loss', 'loss_weight': 1.0}, {'type': 'MSELoss', 'loss_weight': -2.0}],
        'train.pixel_opt.terms[1].loss_weight must be a number >= 0; got -2.0',
    ),
    ('train.attention_opt.p', 0, 'train.attention_opt.p must be a number > 0 (the exponent of |F|); got 0'),
    ('train.attention_opt.p', -2, 'train.attention_opt.p must be a number > 0 (the exponent of |F|); got -2'),
    ('train.prediction_opt.temperature', 'abc', "train.prediction_opt.temperature must be a number > 0; got 'abc'"),
    ('logger.print_freq', 0, 'logger.print_freq must be a whole number > 0; got 0'),
    ('logger.save_checkpoint_freq', 2.5, 'logger.save_checkpoint_freq must be a whole number > 0; got 2.5'),
    ('val.val_freq', 0, 'val.val_freq must be a whole number > 0; got 0'),
    ('name', '../mydata', 'name must be one plain folder name'),
    ('name', '/tmp/mydataset', 'name must be one plain folder name'),
    ('name', '.lk.lock', 'name must be one plain folder name'),
    (
        'train.scheduler.milestones',
        ['abc'],
        "train.scheduler.milestones must be a list of whole numbers > 0 (iterations); got ['abc']",
    ),
    ('train.scheduler.gamma', -1, 'train.scheduler.gamma must be a number > 0; got -1'),
    ('train.warmup_iter', 'abc', "train.warmup_iter must be a whole number (-1 for none); got 'abc'"),
    ('train.ema_decay', 1.5, 'train.ema_decay must be a number in [0, 1) (0 = no EMA); got 1.5'),
    ('train.optim_g.betas', [0.9], 'train.optim_g.betas must be two numbers in [0, 1), e.g. [0.9, 0.99]; got [0.9]'),
    ('datasets.train.gt_size', 0, 'datasets.train.gt_size must be a whole number > 0; got 0'),
    (
        'datasets.train.dataset_enlarge_ratio',
        'x',
        "datasets.train.dataset_enlarge_ratio must be a whole number > 0; got 'x'",
    ),
    ('datasets.train.use_hflip', 'false', "datasets.train.use_hflip must be true or false; got 'false'"),
    # the classifier's options, which the model checks again when it is built
    ('train.train_network_fer', 'yes', "train.train_network_fer must be true or false; got 'yes'"),
    ('train.train_network_g', 'no', "train.train_network_g must be true or false; got 'no'"),
    ('train.fer_opt', {'type': 'FERCrossEntropyLoss'}, 'train.fer_opt trains the classifier'),
    ('train.cache_hr_reference', 'yes', "train.cache_hr_reference must be true or false; got 'yes'"),
    ('train.consistency_weights', {'rule': 'manual'}, 'train.consistency_weights.rule must be one of'),
    ('train.fer_batch_size', 0, 'train.fer_batch_size must be a whole number >= 1 (faces per batch); got 0'),
    ('network_fer.checkpoint', 'missing.pth', "network_fer.checkpoint: 'missing.pth' is not a file"),
]


def _train_in_process(opt_file: str, root, monkeypatch) -> None:
    """BasicSR's training pipeline, patched as ``srfer-train`` patches it, on ``opt_file`` under ``root``."""
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, 'argv', ['srfer-train', '-opt', opt_file])
    patch_basicsr_train()
    import basicsr.train

    basicsr.train.train_pipeline(root_path=str(root))


@pytest.mark.parametrize(
    ('key_path', 'value', 'message'), BAD_VALUES, ids=[f'{key}={value!r}' for key, value, _ in BAD_VALUES]
)
def test_bad_value_refused_before_anything_is_created(tiny_fer_root, tmp_path, monkeypatch, key_path, value, message):
    opt = tiny_train_options(tiny_fer_root, name=NAME)
    _set(opt, key_path, value)
    opt_file = write_options(opt, str(tmp_path / 'bad.yml'))
    with pytest.raises(ValueError) as err:
        _train_in_process(opt_file, tmp_path, monkeypatch)
    assert message in str(err.value)
    assert 'tiny_fer_train' not in str(err.value), 'a dataset is named by its YAML key, not its name'
    assert not (tmp_path / 'experiments').exists(), 'refused only after creating the experiment folder'


@pytest.mark.parametrize(('content', 'held'), [('- name: x\n- datasets: {}\n', 'a list'), ('', 'the file is empty')])
def test_option_file_that_is_not_a_mapping_is_refused(tmp_path, monkeypatch, content, held):
    opt_file = tmp_path / 'not_a_mapping.yml'
    opt_file.write_text(content)
    with pytest.raises(ValueError) as err:
        _train_in_process(str(opt_file), tmp_path, monkeypatch)
    assert str(opt_file) in str(err.value) and 'must be a YAML mapping' in str(err.value) and held in str(err.value)
    assert not (tmp_path / 'experiments').exists()


def test_numbers_that_yaml_reads_as_strings_are_accepted_as_numbers(tiny_fer_root, tmp_path, monkeypatch):
    """BasicSR's YAML loader reads ``1e-4`` (no dot) as a string; it is taken as the number it spells."""
    opt = tiny_train_options(tiny_fer_root, name=NAME)
    opt_file = write_options(opt, str(tmp_path / 'exponents.yml'))
    text = open(opt_file, encoding='utf-8').read()
    text = text.replace('total_iter: 4', 'total_iter: 4e0').replace('lr: 0.001', 'lr: 1e-3')
    text = text.replace('loss_weight: 100.0', 'loss_weight: 1e2')
    with open(opt_file, 'w', encoding='utf-8') as f:
        f.write(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['srfer-train', '-opt', opt_file])
    patch_basicsr_train()
    import basicsr.train

    parsed, _ = basicsr.train.parse_options(str(tmp_path), is_train=True)
    release_folder(parsed['path']['experiments_root'])
    train_opt = parsed['train']
    assert train_opt['total_iter'] == 4 and isinstance(train_opt['total_iter'], int)
    assert train_opt['optim_g']['lr'] == 1e-3 and isinstance(train_opt['optim_g']['lr'], float)
    assert train_opt['attention_opt']['loss_weight'] == 100.0
    assert not (tmp_path / 'experiments' / NAME).exists()


def test_basicsr_own_entry_point_checks_the_options(tiny_fer_root, tmp_path):
    """``python -m basicsr.train`` (the autoload hook) refuses the same bad values."""
    opt = tiny_train_options(tiny_fer_root, name=NAME, manual_seed='abc')
    opt_file = write_options(opt, str(tmp_path / 'bad.yml'))
    proc = subprocess.run(
        [sys.executable, '-m', 'basicsr.train', '-opt', opt_file],
        cwd=tmp_path,
        env=train_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "manual_seed must be an integer in [0, 2147483647] (or ~ for a random one); got 'abc'" in proc.stderr
    import basicsr

    assert not os.path.exists(os.path.join(os.path.dirname(os.path.dirname(basicsr.__file__)), 'experiments', NAME))


def test_loss_classes_refuse_bad_values_when_built_directly():
    with pytest.raises(ValueError, match=r'p \(the exponent of \|F\|\) must be a number > 0; got 0'):
        AttentionConsistencyLoss(p=0)
    with pytest.raises(ValueError, match='got -1'):
        build_loss({'type': 'AttentionConsistencyLoss', 'p': -1})
    for loss_class in (AttentionConsistencyLoss, PredictionConsistencyLoss, FERCrossEntropyLoss):
        with pytest.raises(ValueError, match=f'{loss_class.__name__}: loss_weight must be a number >= 0; got -0.5'):
            loss_class(loss_weight=-0.5)
    assert AttentionConsistencyLoss(loss_weight=0, p=0.5).p == 0.5


def test_scheduler_iterations_that_yaml_reads_as_strings_become_numbers(tiny_fer_root):
    """``milestones: [2e5]`` is a string to YAML 1.1, which MultiStepLR would never reach: it becomes 200000."""
    from srfer_plugin.train_loop.option_checks import check_options

    opt = tiny_train_options(tiny_fer_root, name=NAME)
    opt['train']['scheduler'] = {'type': 'MultiStepLR', 'milestones': ['2e5', 400000], 'gamma': '5e-1'}
    opt['train']['optim_g']['betas'] = ['9e-1', 0.99]
    check_options(opt, is_train=True)
    assert opt['train']['scheduler']['milestones'] == [200000, 400000]
    assert opt['train']['scheduler']['gamma'] == 0.5
    assert opt['train']['optim_g']['betas'] == [0.9, 0.99]
