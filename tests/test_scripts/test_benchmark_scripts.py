"""The benchmark command lines: ``scripts/benchmark.py``, ``make_benchmark_options.py`` and ``benchmark_speed.py``.

Each script is loaded from its file with ``runpy`` (no ``sys.path`` edits): ``load_script`` gives its globals without
running its ``__main__`` block; the ``__main__`` tests run the block with a patched ``sys.argv``.
"""

from __future__ import annotations

import csv
import filecmp
import json
import os
import runpy
import sys
from typing import Any

import pytest
import yaml
from fer_fixtures import REPO_ROOT, synthetic_faces_and_random_fer

from srfer_plugin.studies import benchmark as bench_lib
from srfer_plugin.studies import benchmark_cells as cells_lib
from srfer_plugin.studies import benchmark_options as mbo

SCRIPTS = os.path.join(REPO_ROOT, 'scripts')
DEMO_FER = os.path.join(REPO_ROOT, 'options', 'fer', 'resnet18slim_fer7_demo.py')
OTHER_FER = os.path.join(REPO_ROOT, 'options', 'fer', 'resnet18_fer7.py')


def load_script(name: str) -> dict[str, Any]:
    """The globals of ``scripts/<name>.py``, run as a module that is not ``__main__``."""
    return runpy.run_path(os.path.join(SCRIPTS, f'{name}.py'), run_name=f'script_{name}')


def run_main_block(name: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``scripts/<name>.py`` as ``__main__`` with ``argv``; returns its exit code."""
    monkeypatch.setattr(sys, 'argv', [os.path.join(SCRIPTS, f'{name}.py'), *argv])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(os.path.join(SCRIPTS, f'{name}.py'), run_name='__main__')
    return exit_info.value.code


@pytest.fixture(scope='module')
def benchmark_cli():
    """``scripts/benchmark.py``'s globals (``main``, ``parse_args``)."""
    return load_script('benchmark')


pytestmark = pytest.mark.usefixtures('one_thread')  # tests/conftest.py


def _touch(path) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, 'w').close()
    return str(path)


def test_make_benchmark_options_writes_the_committed_files(tmp_path, monkeypatch, capsys):
    assert run_main_block('make_benchmark_options', ['--out', str(tmp_path)], monkeypatch) == 0
    assert 'wrote 26 option files' in capsys.readouterr().out
    committed = os.path.join(REPO_ROOT, 'options', 'benchmark')
    names = sorted(os.listdir(tmp_path))
    assert names == sorted(os.listdir(committed))
    assert all(filecmp.cmp(tmp_path / name, os.path.join(committed, name), shallow=False) for name in names)


def test_benchmark_help_keeps_every_flag(monkeypatch, capsys):
    assert run_main_block('benchmark', ['--help'], monkeypatch) == 0
    text = capsys.readouterr().out
    flags = ('--backbones', '--scales', '--methods', '--fer', '--iters', '--preset', '--data-root', '--fer-checkpoint')
    assert all(flag in text for flag in (*flags, '--exp-root', '--out'))


@pytest.fixture
def bench_data(tmp_path_factory):
    """7-class synthetic faces (32 px) with a test split, and a randomly initialised demo FER classifier."""
    root = tmp_path_factory.mktemp('bench_data')
    return synthetic_faces_and_random_fer(str(root), 32, num_train=2, num_val=1, num_test=1)


def test_benchmark_script_one_cell_and_skip_finished(benchmark_cli, bench_data, tmp_path, monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')  # the training subprocesses
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    data_root, checkpoint = bench_data
    out = tmp_path / 'bench'
    common = ['--preset', 'cpu-small', '--backbones', 'MSRResNet', '--iters', '2', '--data-root', data_root,
              '--fer-checkpoint', checkpoint, '--out', str(out), '--exp-root', str(tmp_path)]  # fmt: skip
    assert benchmark_cli['main']([*common, '--scales', '4']) == 0
    with open(out / 'benchmark.csv', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    assert [(r['backbone'], r['scale'], r['method'], r['status']) for r in rows] == [
        ('MSRResNet', '4', 'plain', 'done'),
        ('MSRResNet', '4', 'srfer', 'done'),
    ]
    for row in rows:
        for key in ('acc', 'acc_hr', 'acc_bicubic', 'psnr', 'ssim', 'train_s_per_iter'):
            assert row[key] != '' and float(row[key]) >= 0, key
        assert 0 <= float(row['acc']) <= 100 and int(row['params']) > 0 and row['iters'] == '2'
    assert rows[0]['acc_hr'] == rows[1]['acc_hr'], 'one frozen classifier for every cell'
    assert rows[0]['params'] == rows[1]['params'], 'the same network_g in both methods'
    srfer_name = f'bench_cpu_small_MSRResNet_x4_srfer_resnet18slim_fer7_demo_w{cells_lib.weights_digest(checkpoint)}'
    srfer_opt = yaml.safe_load((out / 'cells' / srfer_name / f'{srfer_name}.yml').read_text())  # explicit weights
    assert srfer_opt['model_type'] == 'SRFERModel' and srfer_opt['network_fer']['checkpoint'] == checkpoint
    plain_opt = yaml.safe_load((out / 'cells' / 'bench_cpu_small_MSRResNet_x4_plain' /
                                'bench_cpu_small_MSRResNet_x4_plain.yml').read_text())  # fmt: skip
    assert plain_opt['model_type'] == 'SafeSRModel' and 'network_fer' not in plain_opt
    assert (tmp_path / 'experiments' / 'bench_cpu_small_MSRResNet_x4_plain' / 'models' / 'net_g_latest.pth').exists()
    assert (out / 'benchmark_acc.png').stat().st_size > 1000
    assert '| resnet18slim_fer7_demo | MSRResNet | 4 | srfer | done |' in (out / 'benchmark.md').read_text()
    assert [r['fer'] for r in rows] == ['resnet18slim_fer7_demo'] * 2, 'the default classifier, by its config stem'

    # Rerun with an extra unsupported scale: finished cells are neither trained nor evaluated again.
    def not_again(*args, **kwargs):
        raise AssertionError('a finished cell ran again')

    monkeypatch.setattr(bench_lib, 'run_training', not_again)
    monkeypatch.setattr(bench_lib, 'evaluate_cell', not_again)
    assert benchmark_cli['main']([*common, '--scales', '4', '8']) == 0
    with open(out / 'benchmark.csv', encoding='utf-8') as f:
        again = list(csv.DictReader(f))
    assert again[:2] == rows
    assert [(r['scale'], r['status']) for r in again[2:]] == [('8', 'unsupported')] * 2
    assert 'supports upscale 2, 3 and 4 only' in again[2]['note']


def test_paper_preset_checks_its_files_before_training(benchmark_cli, tmp_path):
    missing = str(tmp_path / 'no_such_dataset')
    with pytest.raises(FileNotFoundError, match='no_such_dataset/meta_info_train.txt'):
        benchmark_cli['main'](['--preset', 'paper', '--data-root', missing, '--out', str(tmp_path / 'out')])
    assert not (tmp_path / 'out' / 'cells').exists()


def test_classifier_axis_end_to_end(benchmark_cli, tmp_path, monkeypatch, capsys):
    """Three classifiers (the demo's cache, one pre-trained here, one with weights) without any real training."""
    data_root = tmp_path / 'faces'
    for split in ('train', 'test'):
        _touch(data_root / f'meta_info_{split}.txt')
    third_config = _touch(tmp_path / 'configs' / 'mobile-net_fer7.py')
    third_weights = _touch(tmp_path / 'mobile.pth')
    calls: dict[str, list] = {'demo': [], 'pretrain': [], 'train': [], 'eval': []}

    def demo_prepare(preset, exp_root, root, train_faces=None):
        calls['demo'].append((preset, exp_root, root))
        return root, {'fer_final': '/cache/demo_fer_default/fer_final.pth'}

    def train_fer(config, **kwargs):
        calls['pretrain'].append((config, kwargs))
        return {'fer_final': os.path.join(kwargs['work_dir'], 'fer_final.pth')}

    def run_training(opt_path, exp_root, log_path):
        with open(opt_path, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
        calls['train'].append(opt['name'])
        assert log_path == os.path.join(os.path.dirname(opt_path), 'train_stdout.log')
        return _touch(os.path.join(exp_root, 'experiments', opt['name'], 'models', 'net_g_latest.pth'))

    hr = {'resnet18slim_fer7_demo': 90.0, 'resnet18_fer7@112x96': 80.0, 'mobile-net_fer7': 70.0}

    def evaluate_cell(data_root, fer, net_g_path, results_root, network_g, scale, fer_weights=None, **test_set):
        assert test_set == {'degradation': None, 'extra_metrics': ()}, 'matrix cells: bicubic test faces'
        calls['eval'].append((os.path.basename(os.path.dirname(results_root)), fer.label, net_g_path))
        srfer = '_srfer' in net_g_path
        metrics = {'acc': hr[fer.label] - (5.0 if srfer else 10.0), 'acc_hr': hr[fer.label], 'acc_bicubic': 40.0}
        return dict(metrics, psnr=30.0, ssim=0.8), 1234

    monkeypatch.setattr('srfer_plugin.studies.synthetic.prepare_data_and_classifier', demo_prepare)
    monkeypatch.setattr('srfer_plugin.fer_pretrain.train_fer', train_fer)
    monkeypatch.setattr(bench_lib, 'run_training', run_training)
    monkeypatch.setattr(bench_lib, 'evaluate_cell', evaluate_cell)
    out, exp_root = tmp_path / 'bench', tmp_path / 'exp'
    fers = ['options/fer/resnet18slim_fer7_demo.py', f'{OTHER_FER}@112x96', f'{third_config}={third_weights}']
    argv = ['--preset', 'cpu-small', '--backbones', 'MSRResNet', 'RCAN', '--scales', '4', '8', '--iters', '2',
            '--data-root', str(data_root), '--out', str(out), '--exp-root', str(exp_root), '--fer', *fers]  # fmt: skip
    assert benchmark_cli['main'](argv) == 0

    assert calls['demo'] == [('default', str(exp_root), str(data_root))], "the demo's classifier cache"
    ((config, kwargs),) = calls['pretrain']
    assert config == OTHER_FER and kwargs['work_dir'] == str(exp_root / 'experiments' / 'bench_fer_resnet18_fer7')
    assert kwargs['data_root'] == str(data_root) and kwargs['reuse'] and kwargs['max_epochs'] == 12
    plain = [mbo.cell_name('cpu-small', b, 4, 'plain') for b in ('MSRResNet', 'RCAN')] + [
        mbo.cell_name('cpu-small', 'RCAN', 8, 'plain')
    ]
    assert sorted(n for n in calls['train'] if n.endswith('_plain')) == sorted(plain), 'plain trained once'
    assert len(calls['train']) == len(set(calls['train'])) == 3 + 3 * 3
    assert len(calls['eval']) == len({e[0] for e in calls['eval']}) == 3 * 3 * 2, 'every supported cell evaluated'
    evaluated_plain = [(name, fer) for name, fer, net_g in calls['eval'] if '_plain' in name and 'RCAN_x8' in name]
    assert evaluated_plain == [
        ('bench_cpu_small_RCAN_x8_plain', 'resnet18slim_fer7_demo'),
        ('bench_cpu_small_RCAN_x8_plain_resnet18_fer7_in112x96', 'resnet18_fer7@112x96'),
        ('bench_cpu_small_RCAN_x8_plain_mobile_net_fer7_we3b0c442', 'mobile-net_fer7'),  # the empty file's digest
    ]
    assert {net_g for name, _, net_g in calls['eval'] if name.startswith('bench_cpu_small_RCAN_x8_plain')} == {
        str(exp_root / 'experiments' / 'bench_cpu_small_RCAN_x8_plain' / 'models' / 'net_g_latest.pth')
    }

    def srfer_fer_options(name):
        with open(out / 'cells' / name / f'{name}.yml', encoding='utf-8') as f:
            return yaml.safe_load(f)['network_fer']

    demo = srfer_fer_options('bench_cpu_small_RCAN_x4_srfer')
    assert (demo['config'], demo['checkpoint']) == (DEMO_FER, '/cache/demo_fer_default/fer_final.pth')
    assert demo['stages'] == [0, 1, 2, 3] and 'input_size' not in demo
    other = srfer_fer_options('bench_cpu_small_RCAN_x4_srfer_resnet18_fer7_in112x96')
    assert other['config'] == OTHER_FER and other['input_size'] == [112, 96]
    assert other['checkpoint'] == str(exp_root / 'experiments' / 'bench_fer_resnet18_fer7' / 'fer_final.pth')
    third = srfer_fer_options('bench_cpu_small_RCAN_x4_srfer_mobile_net_fer7_we3b0c442')
    assert (third['config'], third['checkpoint']) == (third_config, third_weights)

    with open(out / 'benchmark.csv', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 2 * 2 * 2 and [r['fer'] for r in rows[::8]] == list(hr)
    assert [(r['backbone'], r['scale'], r['status']) for r in rows[2:4]] == [('MSRResNet', '8', 'unsupported')] * 2
    assert all(float(r['acc_hr']) == hr[r['fer']] for r in rows if r['status'] == 'done')
    md = (out / 'benchmark.md').read_text()
    assert '| resnet18_fer7@112x96 | options/fer/resnet18_fer7.py |' in md and '| 112x96 | 80.00 |' in md
    assert '| mobile-net_fer7 | RCAN | 8 | 70.00 | 40.00 | 60.00 | 65.00 | 5.00 |' in md, 'plain vs SR-FER, same fer'
    assert (out / 'benchmark_acc.png').stat().st_size > 1000

    # Rerun: every finished cell is skipped (classifiers are only looked up in their caches again).
    def not_again(*args, **kwargs):
        raise AssertionError('a finished cell ran again')

    monkeypatch.setattr(bench_lib, 'run_training', not_again)
    monkeypatch.setattr(bench_lib, 'evaluate_cell', not_again)
    assert benchmark_cli['main'](argv) == 0
    with open(out / 'benchmark.csv', encoding='utf-8') as f:
        assert list(csv.DictReader(f)) == rows


def test_classifier_errors_before_anything_runs(benchmark_cli, tmp_path, monkeypatch, capsys):
    def nothing(*args, **kwargs):
        raise AssertionError('nothing may run before the classifiers are checked')

    monkeypatch.setattr('srfer_plugin.studies.synthetic.prepare_data_and_classifier', nothing)
    monkeypatch.setattr('srfer_plugin.fer_pretrain.train_fer', nothing)
    out = tmp_path / 'out'
    with pytest.raises(FileNotFoundError, match="mmpretrain config 'options/fer/no_such_fer.py' does not exist"):
        benchmark_cli['main'](['--fer', DEMO_FER, 'options/fer/no_such_fer.py', '--out', str(out)])
    with pytest.raises(FileNotFoundError, match='no_such.pth'):
        benchmark_cli['main'](['--fer', f'{OTHER_FER}={tmp_path / "no_such.pth"}', '--out', str(out)])
    for argv, message in (
        (['--fer', DEMO_FER, OTHER_FER, '--fer-checkpoint', DEMO_FER], '--fer-checkpoint is for a single classifier'),
        (['--fer', f'{DEMO_FER}@112', 'options/fer/resnet18slim_fer7_demo.py@112'], 'given twice'),
        (['--preset', 'paper', '--fer', DEMO_FER], 'the paper preset trains no classifier'),
    ):
        with pytest.raises(SystemExit):
            benchmark_cli['main']([*argv, '--out', str(out)])
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_speed_benchmark_runs_both_models_side_by_side(tmp_path, capsys):
    """Structure only (no timing assertions): both models step, ratios are reported and written."""
    benchmark_speed = load_script('benchmark_speed')
    out = tmp_path / 'speed.json'
    argv = ['--network', 'demo', '--batch', '2', '--steps', '1', '--warmup', '0', '--device', 'cpu',
            '--json', str(out)]  # fmt: skip
    results = benchmark_speed['main'](argv)
    assert set(results['models']) == {'SafeSRModel', 'SRFERModel', 'SRFERModel+cache'}
    assert results['network_fer'] == 'resnet18slim_fer7_demo.py'
    assert results['network_g_params'] > 0 and results['time_ratio'] > 0 and results['batch'] == 2
    assert results['cached_time_ratio'] > 0 and results['cache_mib_per_10k_faces'] > 0
    assert json.loads(out.read_text())['time_ratio'] == results['time_ratio']
    printed = capsys.readouterr().out
    assert 'ratio SRFERModel / SafeSRModel: time' in printed and 'ratio SRFERModel+cache / SafeSRModel' in printed


def test_speed_benchmark_times_the_classifier_on_part_of_the_batch(tmp_path, capsys):
    benchmark_speed = load_script('benchmark_speed')
    argv = ['--network', 'demo', '--batch', '3', '--steps', '1', '--warmup', '0', '--device', 'cpu',
            '--fer-batch-size', '1']  # fmt: skip
    results = benchmark_speed['main'](argv)
    assert list(results['models'])[-1] == 'SRFERModel+cache+fer1' and results['sub_batch_time_ratio'] > 0
    assert 'ratio SRFERModel+cache+fer1 / SafeSRModel: time' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        benchmark_speed['main']([*argv[:-1], '3'])
    assert '--fer-batch-size (3) must be below --batch (3)' in capsys.readouterr().err


def test_speed_benchmark_networks_replace_what_they_name(tmp_path):
    """demo-small swaps network_g only; demo also swaps the classifier and the consistency losses."""
    from srfer_plugin.studies.speed import model_options
    from srfer_plugin.studies.synthetic import DEMO_NETWORK_G, DEMO_SRFER_LOSSES

    recipe = model_options(mbo.RECIPE_NAME, str(tmp_path), 'cpu')['SRFERModel']
    small = model_options(mbo.RECIPE_NAME, str(tmp_path), 'cpu', 'demo-small')['SRFERModel']
    demo = model_options(mbo.RECIPE_NAME, str(tmp_path), 'cpu', 'demo')['SRFERModel']
    assert recipe['network_g']['num_feat'] != DEMO_NETWORK_G['num_feat']
    assert small['network_g'] == demo['network_g'] == DEMO_NETWORK_G
    assert small['network_fer']['config'] == recipe['network_fer']['config']
    assert small['train']['attention_opt'] == recipe['train']['attention_opt']
    assert demo['network_fer']['config'].endswith('resnet18slim_fer7_demo.py')
    assert demo['network_fer']['checkpoint'] is None
    for key, loss in DEMO_SRFER_LOSSES.items():
        assert demo['train'][key] == loss
    with pytest.raises(ValueError, match="network 'tiny' not in"):
        model_options(mbo.RECIPE_NAME, str(tmp_path), 'cpu', 'tiny')


def test_speed_benchmark_needs_srfer_options(tmp_path):
    benchmark_speed = load_script('benchmark_speed')
    plain = tmp_path / 'plain.yml'
    plain.write_text(yaml.safe_dump(mbo.make_options('EDSR', 2, 'plain', 'paper')))
    with pytest.raises(ValueError, match='plain.yml: needs model_type SRFERModel'):
        benchmark_speed['main'](['--opt', str(plain), '--device', 'cpu'])
