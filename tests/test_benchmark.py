"""Benchmark matrix: generated option files build the right networks; the benchmark script runs and resumes."""

from __future__ import annotations

import csv
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
    assert '| MSRResNet | 4 | srfer | done |' in (out / 'benchmark.md').read_text()

    # Rerun with an extra unsupported scale: finished cells are neither trained nor evaluated again.
    def not_again(*args, **kwargs):
        raise AssertionError('a finished cell ran again')

    monkeypatch.setattr(benchmark, 'train_cell', not_again)
    monkeypatch.setattr('srfer_plugin.demo.evaluate_sr', not_again)
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
