"""Benchmark matrix: generated option files build the right networks; the benchmark script runs and resumes."""

from __future__ import annotations

import csv
import dataclasses
import filecmp
import glob
import json
import os
import sys

import pytest
import torch
import yaml
from basicsr.archs import build_network

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'scripts')
sys.path.insert(0, SCRIPTS)
import benchmark  # noqa: E402
import make_benchmark_options as mbo  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread (on a busy 2-core machine OpenMP barriers make two up to 100x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


OPTION_FILES = sorted(glob.glob(os.path.join(mbo.REPO_ROOT, 'options', 'benchmark', '*.yml')))


def _lr_size(net_opt: dict) -> int:
    return int(net_opt['window_size']) if net_opt['type'] == 'SwinIR' else 4  # SwinIR needs window multiples


def test_option_files_are_generated_from_the_template(tmp_path):
    written, skipped = mbo.write_matrix(str(tmp_path))
    assert len(OPTION_FILES) == len(written) == 26 and len(skipped) == 4
    for path in written:
        assert filecmp.cmp(path, os.path.join(mbo.REPO_ROOT, 'options', 'benchmark', os.path.basename(path)))
    assert filecmp.cmp(tmp_path / 'skipped.txt', os.path.join(mbo.REPO_ROOT, 'options', 'benchmark', 'skipped.txt'))
    assert set(skipped) == {mbo.cell_name('paper', b, 8, m) for b in ('RRDBNet', 'MSRResNet') for m in mbo.METHODS}


@pytest.mark.parametrize('path', [p for p in OPTION_FILES if p.endswith('_srfer.yml')], ids=os.path.basename)
def test_every_option_file_builds_and_upscales(path):
    """network_g of each cell turns an LR input into a ``scale`` times larger output (plain == srfer network)."""
    with open(path, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    with open(path.replace('_srfer.yml', '_plain.yml'), encoding='utf-8') as f:
        plain = yaml.safe_load(f)
    assert plain['network_g'] == opt['network_g'] and plain['model_type'] == 'SRModel'
    assert opt['model_type'] == 'SRFERModel' and 'network_fer' not in plain
    size = _lr_size(opt['network_g'])
    net = build_network(opt['network_g']).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, size, size))
    assert tuple(out.shape) == (1, 3, size * opt['scale'], size * opt['scale'])


def test_paper_cells_are_the_recipe_with_their_network():
    with open(mbo.RECIPE, encoding='utf-8') as f:
        recipe = yaml.safe_load(f)
    cell = mbo.make_options('RCAN', 4, 'srfer', 'paper')
    assert dict(cell, name=recipe['name']) == recipe, 'the RCAN x4 SR-FER cell is options/train_RCAN_srfer_x4.yml'
    plain = mbo.make_options('EDSR', 2, 'plain', 'paper', iters=3000)
    assert plain['network_g']['upscale'] == plain['scale'] == 2 and plain['train']['optim_g']['lr'] == 1e-4
    assert plain['train']['total_iter'] == 3000 and plain['train']['scheduler']['milestones'] == [2000]
    assert plain['val']['metrics']['psnr']['crop_border'] == 2
    assert recipe['network_g']['upscale'] == 4, 'the template itself is not modified'


@pytest.mark.parametrize('backbone', mbo.BACKBONES)
def test_cpu_small_networks_upscale(backbone):
    for scale in mbo.SCALES:
        if mbo.unsupported_reason(backbone, scale):
            with pytest.raises(ValueError, match='supports|upsamples'):
                mbo.network_g(backbone, scale, 'cpu-small')
            continue
        net_opt = mbo.network_g(backbone, scale, 'cpu-small')
        size = mbo.HR_SIZE // scale
        net = build_network(net_opt)
        out = net(torch.rand(2, 3, size, size))
        out.mean().backward()
        assert out.shape[-1] == size * scale and torch.isfinite(out).all()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters() if p.requires_grad)


@pytest.fixture
def bench_data(tmp_path_factory):
    """7-class synthetic faces (32 px) with a test split, and a randomly initialised demo FER classifier."""
    from srfer_plugin.archs.mmpretrain_fer_arch import MMPretrainFER
    from srfer_plugin.data.synthetic_faces import ensure_synthetic_dataset
    from srfer_plugin.demo import FER_DEMO_CONFIG

    root = tmp_path_factory.mktemp('bench_data')
    data_root = ensure_synthetic_dataset(str(root / 'faces'), seed=0, size=32, num_train=2, num_val=1, num_test=1)
    torch.manual_seed(0)
    fer = MMPretrainFER(os.path.join(mbo.REPO_ROOT, FER_DEMO_CONFIG), checkpoint=None, num_classes=7)
    checkpoint = str(root / 'fer.pth')
    torch.save({'state_dict': fer.model.state_dict()}, checkpoint)
    return data_root, checkpoint


def test_benchmark_script_one_cell_and_skip_finished(bench_data, tmp_path, monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')  # the training subprocesses
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    data_root, checkpoint = bench_data
    out = tmp_path / 'bench'
    common = ['--preset', 'cpu-small', '--backbones', 'MSRResNet', '--iters', '2', '--data-root', data_root,
              '--fer-checkpoint', checkpoint, '--out', str(out), '--exp-root', str(tmp_path)]  # fmt: skip
    assert benchmark.main([*common, '--scales', '4']) == 0
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
    srfer_opt = yaml.safe_load((out / 'cells' / 'bench_cpu_small_MSRResNet_x4_srfer' /
                                'bench_cpu_small_MSRResNet_x4_srfer.yml').read_text())  # fmt: skip
    assert srfer_opt['model_type'] == 'SRFERModel' and srfer_opt['network_fer']['checkpoint'] == checkpoint
    assert (tmp_path / 'experiments' / 'bench_cpu_small_MSRResNet_x4_plain' / 'models' / 'net_g_latest.pth').exists()
    assert (out / 'benchmark_acc.png').stat().st_size > 1000
    assert '| resnet18slim_fer7_demo | MSRResNet | 4 | srfer | done |' in (out / 'benchmark.md').read_text()
    assert [r['fer'] for r in rows] == ['resnet18slim_fer7_demo'] * 2, 'the default classifier, by its config stem'

    # Rerun with an extra unsupported scale: finished cells are neither trained nor evaluated again.
    def not_again(*args, **kwargs):
        raise AssertionError('a finished cell ran again')

    monkeypatch.setattr(benchmark, 'train_cell', not_again)
    monkeypatch.setattr(benchmark, 'evaluate_cell', not_again)
    assert benchmark.main([*common, '--scales', '4', '8']) == 0
    with open(out / 'benchmark.csv', encoding='utf-8') as f:
        again = list(csv.DictReader(f))
    assert again[:2] == rows
    assert [(r['scale'], r['status']) for r in again[2:]] == [('8', 'unsupported')] * 2
    assert 'supports upscale 2, 3 and 4 only' in again[2]['note']


def test_paper_preset_checks_its_files_before_training(tmp_path):
    missing = str(tmp_path / 'no_such_dataset')
    with pytest.raises(FileNotFoundError, match='no_such_dataset/meta_info_train.txt'):
        benchmark.main(['--preset', 'paper', '--data-root', missing, '--out', str(tmp_path / 'out')])
    assert not (tmp_path / 'out' / 'cells').exists()


DEMO_FER = os.path.join(mbo.REPO_ROOT, 'options', 'fer', 'resnet18slim_fer7_demo.py')
OTHER_FER = os.path.join(mbo.REPO_ROOT, 'options', 'fer', 'resnet18_fer7.py')


def test_fer_entries_parse():
    parse = benchmark.parse_fer_entry
    assert parse('a.py') == ('a.py', None, None)
    assert parse('a.py=w.pth') == ('a.py', 'w.pth', None)
    assert parse('a.py=w.pth@224') == ('a.py', 'w.pth', 224)
    assert parse('dir@x/a.py@112x96') == ('dir@x/a.py', None, (112, 96)), 'only a trailing N or HxW is a size'
    for bad in ('a.py=', '=w.pth', 'a.py@0'):
        with pytest.raises(ValueError, match='--fer'):
            parse(bad)


def test_default_classifier_keeps_todays_cells():
    """Without --fer: one classifier (the preset's), today's cell names and options."""
    for preset in mbo.PRESETS:
        (fer,) = benchmark.resolve_classifiers(preset, None, None)
        assert fer.own and fer.tag == '' and fer.input_size is None
        assert fer.config == mbo.default_fer_config(preset)
        assert benchmark.resolve_classifiers(preset, [fer.config], None) == [fer], '--fer with its own config'
        cells = benchmark.plan_cells(preset, [fer], ['RCAN', 'EDSR'], [2, 8])
        expected = [(b, s, m) for b in ('RCAN', 'EDSR') for s in (2, 8) for m in mbo.METHODS]
        assert [(c.backbone, c.scale, c.method) for c in cells] == expected
        assert [c.name for c in cells] == [c.train_name for c in cells] == [mbo.cell_name(preset, *e) for e in expected]
    fer = dataclasses.replace(benchmark.resolve_classifiers('paper', None, None)[0], checkpoint='/w/fer.pth')
    opt = benchmark.cell_options(benchmark.plan_cells('paper', [fer], ['RCAN'], [4], ['srfer'])[0], 'paper', None, None)
    today = mbo.make_options('RCAN', 4, 'srfer', 'paper', fer_checkpoint='/w/fer.pth')
    assert opt == dict(today, network_fer=dict(today['network_fer'], config=OTHER_FER)), 'absolute config only'


def _touch(path) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, 'w').close()
    return str(path)


def test_cells_of_several_classifiers(tmp_path):
    """--fer A B: SR-FER trains per classifier; plain trains once per backbone x scale, evaluated per classifier."""
    weights = _touch(tmp_path / 'other.pth')
    fers = benchmark.resolve_classifiers('cpu-small', [DEMO_FER, f'{OTHER_FER}={weights}@224'], None)
    assert [(f.label, f.tag, f.own, f.input_size, f.checkpoint) for f in fers] == [
        ('resnet18slim_fer7_demo', '', True, None, None),
        ('resnet18_fer7@224', 'resnet18_fer7_in224', False, 224, weights),
    ]
    fers[0] = dataclasses.replace(fers[0], checkpoint='/w/demo.pth')
    backbones, scales = ['RCAN', 'SwinIR'], [2, 4]
    cells = benchmark.plan_cells('cpu-small', fers, backbones, scales)
    assert len(cells) == 2 * 2 * 2 * 2 and len({c.name for c in cells}) == len(cells)
    plain = [c for c in cells if c.method == 'plain']
    assert sorted({c.train_name for c in plain}) == sorted(
        mbo.cell_name('cpu-small', b, s, 'plain') for b in backbones for s in scales
    )
    assert all(sum(c.train_name == p.train_name for c in plain) == 2 for p in plain), 'evaluated per classifier'
    assert {c.fer.label for c in plain if c.backbone == 'RCAN' and c.scale == 2} == {f.label for f in fers}
    assert all(c.train_name == c.name for c in cells if c.method == 'srfer')
    assert [c.name for c in cells if c.fer is fers[0]] == [
        mbo.cell_name('cpu-small', b, s, m) for b in backbones for s in scales for m in mbo.METHODS
    ], 'the default classifier keeps its names'
    assert all(c.name.endswith('_resnet18_fer7_in224') for c in cells if c.fer is fers[1])
    plain_opts = {}
    for cell in cells:
        opt = benchmark.cell_options(cell, 'cpu-small', 3, str(tmp_path))
        assert opt['name'] == cell.train_name and opt['train']['total_iter'] == 3
        if cell.method == 'plain':
            assert 'network_fer' not in opt
            assert plain_opts.setdefault(cell.train_name, opt) == opt, 'plain training ignores the classifier'
            continue
        net_fer = opt['network_fer']
        assert (net_fer['config'], net_fer['checkpoint']) == (cell.fer.config, cell.fer.checkpoint)
        if cell.fer is fers[0]:
            assert 'input_size' not in net_fer and net_fer['stages'] == [0, 1, 2, 3]
        else:
            assert net_fer['input_size'] == 224 and 'stages' not in net_fer, "MMPretrainFER's default stages"


def test_classifier_axis_end_to_end(tmp_path, monkeypatch, capsys):
    """Three classifiers (the demo's cache, one pre-trained here, one with weights) without any real training."""
    data_root = tmp_path / 'faces'
    for split in ('train', 'test'):
        _touch(data_root / f'meta_info_{split}.txt')
    third_config = _touch(tmp_path / 'configs' / 'mobile-net_fer7.py')
    third_weights = _touch(tmp_path / 'mobile.pth')
    calls: dict[str, list] = {'demo': [], 'pretrain': [], 'train': [], 'eval': []}

    def demo_prepare(preset, exp_root, root):
        calls['demo'].append((preset, exp_root, root))
        return root, {'fer_final': '/cache/demo_fer_default/fer_final.pth'}

    def train_fer(config, **kwargs):
        calls['pretrain'].append((config, kwargs))
        return {'fer_final': os.path.join(kwargs['work_dir'], 'fer_final.pth')}

    def train_cell(opt_path, exp_root, log_path):
        with open(opt_path, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
        calls['train'].append(opt['name'])
        _touch(os.path.join(exp_root, 'experiments', opt['name'], 'models', 'net_g_latest.pth'))

    hr = {'resnet18slim_fer7_demo': 90.0, 'resnet18_fer7@112x96': 80.0, 'mobile-net_fer7': 70.0}

    def evaluate_cell(data_root, fer, net_g_path, results_root, network_g, scale):
        calls['eval'].append((os.path.basename(os.path.dirname(results_root)), fer.label, net_g_path))
        srfer = '_srfer' in net_g_path
        metrics = {'acc': hr[fer.label] - (5.0 if srfer else 10.0), 'acc_hr': hr[fer.label], 'acc_bicubic': 40.0}
        return dict(metrics, psnr=30.0, ssim=0.8), 1234

    monkeypatch.setattr('srfer_plugin.demo.prepare_data_and_classifier', demo_prepare)
    monkeypatch.setattr('srfer_plugin.fer_pretrain.train_fer', train_fer)
    monkeypatch.setattr(benchmark, 'train_cell', train_cell)
    monkeypatch.setattr(benchmark, 'evaluate_cell', evaluate_cell)
    out, exp_root = tmp_path / 'bench', tmp_path / 'exp'
    fers = ['options/fer/resnet18slim_fer7_demo.py', f'{OTHER_FER}@112x96', f'{third_config}={third_weights}']
    argv = ['--preset', 'cpu-small', '--backbones', 'MSRResNet', 'RCAN', '--scales', '4', '8', '--iters', '2',
            '--data-root', str(data_root), '--out', str(out), '--exp-root', str(exp_root), '--fer', *fers]  # fmt: skip
    assert benchmark.main(argv) == 0

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
        ('bench_cpu_small_RCAN_x8_plain_mobile_net_fer7', 'mobile-net_fer7'),
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
    third = srfer_fer_options('bench_cpu_small_RCAN_x4_srfer_mobile_net_fer7')
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

    monkeypatch.setattr(benchmark, 'train_cell', not_again)
    monkeypatch.setattr(benchmark, 'evaluate_cell', not_again)
    assert benchmark.main(argv) == 0
    with open(out / 'benchmark.csv', encoding='utf-8') as f:
        assert list(csv.DictReader(f)) == rows


def test_classifier_errors_before_anything_runs(tmp_path, monkeypatch, capsys):
    def nothing(*args, **kwargs):
        raise AssertionError('nothing may run before the classifiers are checked')

    monkeypatch.setattr('srfer_plugin.demo.prepare_data_and_classifier', nothing)
    monkeypatch.setattr('srfer_plugin.fer_pretrain.train_fer', nothing)
    out = tmp_path / 'out'
    with pytest.raises(FileNotFoundError, match="mmpretrain config 'options/fer/no_such_fer.py' does not exist"):
        benchmark.main(['--fer', DEMO_FER, 'options/fer/no_such_fer.py', '--out', str(out)])
    with pytest.raises(FileNotFoundError, match='no_such.pth'):
        benchmark.main(['--fer', f'{OTHER_FER}={tmp_path / "no_such.pth"}', '--out', str(out)])
    for argv, message in (
        (['--fer', DEMO_FER, OTHER_FER, '--fer-checkpoint', DEMO_FER], '--fer-checkpoint is for a single classifier'),
        (['--fer', f'{DEMO_FER}@112', 'options/fer/resnet18slim_fer7_demo.py@112'], 'given twice'),
        (['--preset', 'paper', '--fer', DEMO_FER], 'the paper preset trains no classifier'),
    ):
        with pytest.raises(SystemExit):
            benchmark.main([*argv, '--out', str(out)])
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_speed_benchmark_runs_both_models_side_by_side(tmp_path):
    """Structure only (no timing assertions): both models step, ratios are reported and written."""
    import benchmark_speed

    out = tmp_path / 'speed.json'
    argv = ['--network', 'demo-small', '--batch', '2', '--steps', '1', '--warmup', '0', '--device', 'cpu',
            '--json', str(out)]  # fmt: skip
    results = benchmark_speed.main(argv)
    assert set(results['models']) == {'SRModel', 'SRFERModel'} and results['network_g_params'] > 0
    assert results['time_ratio'] > 0 and results['batch'] == 2
    assert json.loads(out.read_text())['time_ratio'] == results['time_ratio']


def test_speed_benchmark_needs_srfer_options(tmp_path):
    import benchmark_speed

    plain = tmp_path / 'plain.yml'
    plain.write_text(yaml.safe_dump(mbo.make_options('EDSR', 2, 'plain', 'paper')))
    with pytest.raises(ValueError, match='plain.yml: needs model_type SRFERModel'):
        benchmark_speed.main(['--opt', str(plain), '--device', 'cpu'])
