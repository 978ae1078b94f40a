"""End to end through the entry points: train -> --auto_resume -> test, BasicSR's own entry point, bad recipe."""

from __future__ import annotations

import csv
import glob
import os
import subprocess
import sys

import yaml
from fer_fixtures import REPO_ROOT, load_options, tiny_train_options, write_options


def run(args: list[str], cwd: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='2')
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


def test_train_auto_resume_then_test(tiny_fer_root, tmp_path):
    work = str(tmp_path)
    opt = tiny_train_options(tiny_fer_root)
    opt['train']['total_iter'] = 4
    opt_path = write_options(opt, os.path.join(work, 'train.yml'))
    run(['-m', 'srfer_plugin.train', '-opt', opt_path], work)
    exp = os.path.join(work, 'experiments', opt['name'])
    assert sorted(os.listdir(os.path.join(exp, 'training_states'))) == ['2.state', '4.state']

    opt['train']['total_iter'] = 6
    write_options(opt, opt_path)
    resumed = run(['-m', 'srfer_plugin.train', '-opt', opt_path, '--auto_resume'], work)
    log = resumed.stdout + resumed.stderr
    assert 'Resuming training from epoch: 1, iter: 4.' in log
    assert 'iter:       5' in log and 'iter:       1,' not in log
    assert os.path.isfile(os.path.join(exp, 'models', 'net_g_6.pth'))
    assert not glob.glob(os.path.join(exp, 'models', 'net_fer_*.pth')), 'a frozen classifier is not saved'

    test_opt = load_options('options/tests/test_srfer_tiny_cpu.yml')
    test_opt['datasets']['test_1'].update(
        dataroot_gt=tiny_fer_root, meta_info_file=os.path.join(tiny_fer_root, 'meta_info_val.txt')
    )
    tested = run(['-m', 'srfer_plugin.test', '-opt', write_options(test_opt, os.path.join(work, 'test.yml'))], work)
    log = tested.stdout + tested.stderr
    for metric in ('psnr', 'ssim', 'acc', 'acc_hr', 'acc_bicubic'):
        assert f'# {metric}:' in log
    results = os.path.join(work, 'results', test_opt['name'])
    assert len(os.listdir(os.path.join(results, 'visualization', 'tiny_fer_val'))) == 8
    with open(os.path.join(results, 'summary.csv'), newline='') as f:
        rows = list(csv.DictReader(f))
    assert rows[0]['dataset'] == 'tiny_fer_val' and 0 <= float(rows[0]['acc']) <= 100


def test_basicsr_own_entry_point_finds_the_plugin(tiny_fer_root, tmp_path):
    opt = tiny_train_options(tiny_fer_root)
    opt.update(name='basicsr_entry_point')
    opt['train']['total_iter'] = 1
    opt['val']['val_freq'] = 1
    opt_path = write_options(opt, str(tmp_path / 'train.yml'))
    proc = run(['-m', 'basicsr.train', '-opt', opt_path], str(tmp_path))
    assert 'Model [SRFERModel] is created.' in proc.stdout + proc.stderr
    # BasicSR roots its __main__ at the folder above its package (site-packages); the plugin roots it here.
    assert os.path.isfile(tmp_path / 'experiments' / 'basicsr_entry_point' / 'models' / 'net_g_latest.pth')


def test_shipped_option_file_by_name(tiny_fer_root, tmp_path):
    """``-opt srfer::NAME`` from a folder outside the clone, with --force_yml pointing it at data."""
    force = [
        f'datasets:{phase}:{key}={value}'
        for phase in ('train', 'val')
        for key, value in (
            ('dataroot_gt', tiny_fer_root),
            ('meta_info_file', os.path.join(tiny_fer_root, f'meta_info_{phase}.txt')),
        )
    ]
    force += ['train:total_iter=1', 'val:val_freq=1', 'logger:save_checkpoint_freq=1']
    run(
        ['-m', 'srfer_plugin.train', '-opt', 'srfer::tests/train_srfer_tiny_cpu.yml', '--force_yml', *force],
        str(tmp_path),
    )
    exp = tmp_path / 'experiments' / 'test_srfer_tiny_cpu'
    assert (exp / 'models' / 'net_g_latest.pth').is_file() and (exp / 'train_srfer_tiny_cpu.yml').is_file()


def test_recipe_without_data_stops_at_once_naming_the_path(tmp_path):
    recipe = os.path.join(REPO_ROOT, 'options', 'train_RCAN_srfer_x4.yml')
    with open(recipe) as f:
        assert yaml.safe_load(f)['network_g']['num_group'] == 10, 'the recipe keeps full RCAN'
    proc = run(['-m', 'srfer_plugin.train', '-opt', recipe], str(tmp_path), check=False)
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()[-1]
    assert 'fer_resnet18_rafdb.pth' in err and 'Pre-train the classifier' in err and 'Preparing datasets' in err
    assert not (tmp_path / 'experiments' / 'RCAN_SRFER_x4_RAFDB').exists(), 'refused before any folder'
    # with a classifier file in place, the missing data is named next
    os.makedirs(tmp_path / 'experiments' / 'pretrained_models')
    (tmp_path / 'experiments' / 'pretrained_models' / 'fer_resnet18_rafdb.pth').write_bytes(b'not yet')
    proc = run(['-m', 'srfer_plugin.train', '-opt', recipe], str(tmp_path), check=False)
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()[-1]
    assert 'datasets/RAF-DB' in err and 'README.md' in err and 'Preparing datasets' in err
    assert 'Start training' not in proc.stdout + proc.stderr
