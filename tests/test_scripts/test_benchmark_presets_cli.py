"""``scripts/benchmark.py`` with the study presets and seeds: arguments, and an ablation run with no real training.

The script is loaded from its file with ``runpy`` (no ``sys.path`` edits).
"""

from __future__ import annotations

import csv
import os
import runpy
from typing import Any

import pytest
import yaml
from fer_fixtures import REPO_ROOT

from srfer_plugin.studies import benchmark as bench_lib
from srfer_plugin.studies import study_presets
from srfer_plugin.studies.benchmark_cells import resolve_classifiers

SCRIPT = os.path.join(REPO_ROOT, 'scripts', 'benchmark.py')


@pytest.fixture(scope='module')
def cli() -> dict[str, Any]:
    """``scripts/benchmark.py``'s globals (``main``, ``parse_args``), without running its ``__main__`` block."""
    return runpy.run_path(SCRIPT, run_name='script_benchmark')


def _touch(path) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, 'w').close()
    return str(path)


def test_presets_and_seeds_parse(cli, capsys):
    parse = cli['parse_args']
    args = parse(['--preset', 'ablation'])
    assert args.seed_values == [0, 1, 2] and args.backbones is None and len(args.classifiers) == 1
    assert parse(['--preset', 'stages', '--seeds', '2']).seed_values == [0, 1]
    assert parse(['--preset', 'weights', '--seed-list', '5', '7', '--iters', '300']).seed_values == [5, 7]
    matrix = parse(['--preset', 'cpu-small'])
    assert matrix.seed_values == [0] and matrix.backbones == ['RCAN', 'EDSR', 'SwinIR', 'RRDBNet', 'MSRResNet']
    assert parse(['--preset', 'paper', '--seeds', '3', '--scales', '4']).seed_values == [0, 1, 2]
    assert parse(['--preset', 'joint', '--train-faces', '1001']).train_faces == 1001
    axis = parse(
        ['--preset', 'weights', '--fer', 'srfer::fer/resnet18slim_fer7_demo.py', 'srfer::fer/resnet18_fer7.py']
    )
    assert parse(['--preset', 'joint', '--train-faces', '1001', '--fer', 'srfer::fer/resnet18slim_fer7_demo.py'])
    assert parse(['--preset', 'stages', '--variants', 'attention', '--fer', 'srfer::fer/resnet18_fer7.py'])
    assert [(c.label, c.tag, c.own) for c in axis.classifiers] == [
        ('resnet18slim_fer7_demo', '', True),
        ('resnet18_fer7', 'resnet18_fer7', False),
    ]
    for argv, message in (
        (['--seeds', '2', '--seed-list', '1'], 'not allowed with argument'),
        (['--preset', 'ablation', '--seeds', '0'], '--seeds must be >= 1'),
        (['--preset', 'ablation', '--backbones', 'EDSR'], "--preset ablation trains the demo's RCAN x4"),
        (['--preset', 'weights', '--train-faces', '1001', '--fer', 'srfer::fer/resnet18_fer7.py'], 'drop the other'),
        (['--preset', 'stages', '--fer', 'srfer::fer/resnet18_fer7.py'], "pick the demo classifier's taps by index"),
        (['--preset', 'joint', '--train-faces', '1000'], '--train-faces must be a multiple of the 7 classes'),
        (['--preset', 'cpu-small', '--train-faces', '1001'], '--train-faces sets the training set of a study preset'),
        (['--preset', 'joint', '--train-faces', '1001', '--data-root', 'x'], 'drop --data-root and --fer-checkpoint'),
    ):
        with pytest.raises(SystemExit):
            parse(argv)
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse(['--help'])
    text = capsys.readouterr().out
    assert all(word in text for word in ('--seeds', '--seed-list', 'ablation', 'stages', 'weights', 'cpu-small'))


def test_ablation_run_without_training(cli, tmp_path, monkeypatch):
    """Ablation with 2 seeds: plain before plain_finetuned, joint cells scored by their fine-tuned classifier."""
    data_root = tmp_path / 'faces'
    for split in ('train', 'test'):
        _touch(data_root / f'meta_info_{split}.txt')
    trained: list[str] = []
    evaluated: dict[str, Any] = {}

    def demo_prepare(preset, exp_root, root, train_faces=None):
        return root, {'fer_final': '/cache/demo_fer_default/fer_final.pth'}

    def run_training(opt_path, exp_root, log_path):
        with open(opt_path, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
        trained.append(opt['name'])
        init = opt['path']['pretrain_network_g']
        assert init is None or os.path.isfile(init), 'the network a training starts from exists'
        if opt['train'].get('train_network_fer'):
            _touch(os.path.join(exp_root, 'experiments', opt['name'], 'models', 'net_fer_latest.pth'))
        return _touch(os.path.join(exp_root, 'experiments', opt['name'], 'models', 'net_g_latest.pth'))

    def evaluate_cell(data_root, fer, net_g_path, results_root, network_g, scale, fer_weights=None, **test_set):
        assert test_set == {'degradation': None, 'extra_metrics': ()}, 'bicubic test faces, PSNR/SSIM only'
        name = os.path.basename(os.path.dirname(results_root))
        evaluated[name] = (net_g_path, fer_weights)
        seed = int(name[-1])
        acc = {'none': 65.0, 'attention': 76.0, 'prediction': 70.0, 'both': 78.0, 'both_joint': 80.0}
        variant = name[len('bench_ablation_') : -len('_seed0')]
        metrics = {'acc': acc.get(variant, 68.0) + seed, 'acc_hr': 90.0 if fer_weights else 86.9, 'acc_bicubic': 46.7}
        return dict(metrics, psnr=30.0, ssim=0.8), 252755

    monkeypatch.setattr('srfer_plugin.studies.synthetic.prepare_data_and_classifier', demo_prepare)
    monkeypatch.setattr(bench_lib, 'run_training', run_training)
    monkeypatch.setattr(bench_lib, 'evaluate_cell', evaluate_cell)
    out, exp_root = tmp_path / 'bench', tmp_path / 'exp'
    argv = ['--preset', 'ablation', '--seeds', '2', '--data-root', str(data_root), '--out', str(out),
            '--exp-root', str(exp_root)]  # fmt: skip
    assert cli['main'](argv) == 0

    assert trained == [
        f'bench_study_{key}_seed{seed}'
        for seed in (0, 1)
        for key in (
            'plain',
            'att0.1',
            'pred0.001',
            'att0.1_pred0.001',
            'att0.1_pred0.001_joint_lr0.0001',
            'plain_finetuned_lr0.0001',
        )
    ]
    for seed in (0, 1):
        for variant in ('both_joint', 'plain_finetuned'):
            net_g, weights = evaluated[f'bench_ablation_{variant}_seed{seed}']
            assert weights == os.path.join(os.path.dirname(net_g), 'net_fer_latest.pth'), 'its adapted classifier'
        assert evaluated[f'bench_ablation_both_seed{seed}'][1] is None, 'the frozen classifier'
    finetuned = yaml.safe_load(
        (
            out
            / 'cells'
            / 'bench_study_plain_finetuned_lr0.0001_seed1'
            / 'bench_study_plain_finetuned_lr0.0001_seed1.yml'
        ).read_text()
    )
    assert finetuned['path']['pretrain_network_g'] == str(
        exp_root / 'experiments' / 'bench_study_plain_seed1' / 'models' / 'net_g_latest.pth'
    )
    assert finetuned['train']['train_network_g'] is False and finetuned['manual_seed'] == 1
    with open(out / 'benchmark.csv', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    assert [(r['method'], r['seed'], r['classifier']) for r in rows[4:6]] == [
        ('both_joint', '0', 'adapted'),
        ('plain_finetuned', '0', 'adapted'),
    ]
    assert all(r['status'] == 'done' and r['classifier'] == 'frozen' for r in rows[:4])
    md = (out / 'benchmark.md').read_text()
    assert '| both_joint | adapted |' in md and '## Against both' in md and '## Against none' in md
    assert '| none | frozen | plain SR (L1) | 2 | 65.50 ± 0.71 |' in md
    assert (out / 'benchmark_acc.png').stat().st_size > 1000 and (out / 'benchmark_mean.csv').exists()

    # Rerun: nothing trains or evaluates again.
    def not_again(*args, **kwargs):
        raise AssertionError('a finished cell ran again')

    monkeypatch.setattr(bench_lib, 'run_training', not_again)
    monkeypatch.setattr(bench_lib, 'evaluate_cell', not_again)
    assert cli['main'](argv) == 0
    with open(out / 'benchmark.csv', encoding='utf-8') as f:
        assert list(csv.DictReader(f)) == rows


def test_plain_finetuned_needs_its_plain_network(tmp_path):
    (fer,) = resolve_classifiers('cpu-small', None, None)  # its weights are not read before training
    cell = study_presets.plan_study_cells('ablation', [fer], [0])[-1]
    run = bench_lib.BenchmarkRun('ablation', str(tmp_path / 'out'), str(tmp_path), str(tmp_path / 'faces'))
    with pytest.raises(RuntimeError, match='starts from the network of bench_study_plain_seed0'):
        bench_lib.run_cell(run, cell)


def test_gan_run_without_training(cli, tmp_path, monkeypatch):
    """The gan preset: bicubic trains nothing, GAN cells start from their L1 networks, blind_face test faces, NIQE."""
    data_root = tmp_path / 'faces'
    for split in ('train', 'test'):
        _touch(data_root / f'meta_info_{split}.txt')
    trained: list[tuple[str, str | None]] = []
    evaluated: dict[str, Any] = {}

    def run_training(opt_path, exp_root, log_path):
        with open(opt_path, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
        init = opt['path']['pretrain_network_g']
        assert init is None or os.path.isfile(init), 'the L1 network a GAN training starts from exists'
        trained.append((opt['name'], opt['model_type']))
        return _touch(os.path.join(exp_root, 'experiments', opt['name'], 'models', 'net_g_latest.pth'))

    def evaluate_cell(data_root, fer, net_g_path, results_root, network_g, scale, fer_weights=None, **test_set):
        name = os.path.basename(os.path.dirname(results_root))
        evaluated[name] = (net_g_path, network_g['type'], test_set)
        return {'acc': 60.0, 'acc_hr': 86.9, 'acc_bicubic': 40.0, 'psnr': 28.0, 'ssim': 0.7, 'niqe': 6.5}, 1

    monkeypatch.setattr(
        'srfer_plugin.studies.synthetic.prepare_data_and_classifier',
        lambda p, e, root, train_faces=None: (root, {'fer_final': '/f'}),
    )
    monkeypatch.setattr(bench_lib, 'run_training', run_training)
    monkeypatch.setattr(bench_lib, 'evaluate_cell', evaluate_cell)
    out, exp_root = tmp_path / 'bench', tmp_path / 'exp'
    argv = ['--preset', 'gan', '--seeds', '1', '--data-root', str(data_root), '--out', str(out),
            '--exp-root', str(exp_root)]  # fmt: skip
    assert cli['main'](argv) == 0
    assert trained == [
        ('bench_study_plain_blind_face_seed0', 'SafeSRModel'),
        ('bench_study_att0.1_pred0.001_blind_face_seed0', 'SRFERModel'),
        ('bench_study_plain_esrgan_blind_face_seed0', 'SafeESRGANModel'),
        ('bench_study_att0.1_pred0.001_esrgan_blind_face_seed0', 'SRFERESRGANModel'),
        ('bench_study_plain_seed0', 'SafeSRModel'),
        ('bench_study_att0.1_pred0.001_seed0', 'SRFERModel'),
        ('bench_study_plain_esrgan_seed0', 'SafeESRGANModel'),
        ('bench_study_att0.1_pred0.001_esrgan_seed0', 'SRFERESRGANModel'),
    ]
    assert evaluated['bench_gan_bicubic_seed0'][:2] == (None, 'BicubicUpsampler'), 'nothing trained for bicubic'
    assert all(test_set == {'degradation': 'blind_face', 'extra_metrics': ('niqe',)} for *_, test_set in
               evaluated.values())  # fmt: skip
    with open(out / 'benchmark.csv', encoding='utf-8') as f:
        rows = {r['method']: r for r in csv.DictReader(f)}
    assert rows['esrgan']['train_degradation'] == 'blind_face' and rows['esrgan']['test_degradation'] == 'blind_face'
    assert rows['esrgan_trained_bicubic']['train_degradation'] == 'bicubic' and rows['bicubic']['niqe'] == '6.5'
    assert rows['bicubic']['train_s_per_iter'] == '' and rows['srfer_esrgan']['iters'] == '300'
    md = (out / 'benchmark.md').read_text()
    assert '## Against plain_sr' in md and '## Against esrgan' in md and 'NIQE' in md
