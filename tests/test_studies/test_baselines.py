"""The ``baselines`` preset (srfer_plugin.studies.baselines): its cells, options, arguments and report.

No training: cells and option dicts, and a run whose trainings and evaluations are replaced by stand-ins.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Any

import pytest
import yaml

from srfer_plugin.studies import baselines as bl
from srfer_plugin.studies import baselines_report as blr
from srfer_plugin.studies import benchmark as bench_lib
from srfer_plugin.studies import study_presets as sp
from srfer_plugin.studies import study_variants as sv
from srfer_plugin.studies import synthetic
from srfer_plugin.tools import benchmark as cli

STEMS = {
    'hr': 'resnet18slim_fer7_demo',
    'lr_x4': 'resnet18slim_fer7_demo_lr_x4',
    'lr_x8': 'resnet18slim_fer7_demo_lr_x8',
    'multires': 'resnet18slim_fer7_demo_multires',
}


@pytest.fixture
def fers() -> list:
    """The run's classifiers with (made-up) weights."""
    return [dataclasses.replace(c, checkpoint=f'/w/{c.label}.pth') for c in bl.classifiers()]


def test_classifiers_of_the_conditions():
    fers = bl.classifiers()
    assert [c.label for c in fers] == [
        STEMS['hr'], STEMS['lr_x4'], STEMS['lr_x8'], STEMS['multires'],
        f'{STEMS["lr_x4"]}_blind', f'{STEMS["lr_x8"]}_blind', f'{STEMS["multires"]}_blind',
    ]  # fmt: skip
    assert all(os.path.isfile(c.config) and c.checkpoint is None and c.own for c in fers)
    hr = fers[0]
    own = sp.plan_study_cells('ablation', [dataclasses.replace(hr, checkpoint='/w')], [0])[0].fer
    assert (hr.config, hr.tag) == (own.config, ''), "the HR classifier is the studies' (the demo's)"
    assert [c.label for c in bl.classifiers([8], ['blind_face'])] == [
        STEMS['hr'], f'{STEMS["lr_x8"]}_blind', f'{STEMS["multires"]}_blind',
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r'--scales: \[2\] not in the baselines preset scales \[4, 8\]'):
        bl.classifiers([2], ['bicubic'])
    with pytest.raises(ValueError, match=r"--degradations: \['jpeg'\] not in the baselines degradations"):
        bl.classifiers([4], ['jpeg'])


def test_planned_cells(fers):
    cells = bl.plan_cells(fers, [0, 1])
    assert len(cells) == 2 * 2 * 2 * 3 * 3  # seeds x scales x degradations x methods x classifiers
    conditions = [(s, d) for s in (4, 8) for d in ('bicubic', 'blind_face')]
    expected = [
        f'bench_baselines_x{s}_{d}_{m}_by_{r}_seed{k}'
        for k in (0, 1)
        for s, d in conditions
        for m in ('plain', 'srfer', 'srfer_multires')
        for r in ('hr', 'lr', 'multires')
    ]
    assert [c.name for c in cells] == expected
    assert all(isinstance(c, bl.BaselineCell) and c.backbone == 'RCAN' and c.classifier == 'frozen' for c in cells)
    by_name = {c.name: c for c in cells}
    for s, d in conditions:
        blind = '' if d == 'bicubic' else '_blind'
        for m in ('plain', 'srfer', 'srfer_multires'):
            row = [by_name[f'bench_baselines_x{s}_{d}_{m}_by_{r}_seed1'] for r in ('hr', 'lr', 'multires')]
            assert [c.fer.label for c in row] == [STEMS['hr'], STEMS[f'lr_x{s}'] + blind, STEMS['multires'] + blind]
            assert {(c.scale, c.degradation, c.test_degradation, c.seed) for c in row} == {(s, d, d, 1)}
            assert len({c.train_name for c in row}) == 1, 'one training, scored by each classifier'
            guide = {'plain': None, 'srfer': STEMS['hr'], 'srfer_multires': STEMS['multires'] + blind}[m]
            assert all((c.guide.label if c.guide else None) == guide for c in row)
    assert len({c.train_name for c in cells}) == 2 * 4 * 3
    # x4 trainings are the studies': plain SR and SR-FER of the ablation (bicubic) and of the gan preset (blind)
    ablation = {c.method: c.train_name for c in sp.plan_study_cells('ablation', fers[:1], [1])}
    gan = {c.method: c.train_name for c in sp.plan_study_cells('gan', fers[:1], [1])}
    assert by_name['bench_baselines_x4_bicubic_plain_by_lr_seed1'].train_name == ablation['none']
    assert by_name['bench_baselines_x4_bicubic_srfer_by_hr_seed1'].train_name == ablation['both']
    assert by_name['bench_baselines_x4_blind_face_plain_by_hr_seed1'].train_name == gan['plain_sr']
    assert by_name['bench_baselines_x4_blind_face_srfer_by_hr_seed1'].train_name == gan['srfer']
    assert by_name['bench_baselines_x8_blind_face_srfer_multires_by_hr_seed1'].train_name == (
        'bench_study_att0.1_pred0.001_blind_face_x8_guide_resnet18slim_fer7_demo_multires_blind_seed1'
    )
    short = bl.plan_cells(fers[:1] + fers[2:4], [0], iters=50, scales=[8], degradations=['bicubic'])
    assert [c.name for c in short][:2] == ['bench_baselines_x8_bicubic_plain_by_hr_it50_seed0'] + [
        'bench_baselines_x8_bicubic_plain_by_lr_it50_seed0'
    ]
    assert short[0].train_name == 'bench_study_plain_x8_it50_seed0'
    with pytest.raises(ValueError, match='classifier resnet18slim_fer7_demo_lr_x4 .x4 bicubic. is not in the run'):
        bl.plan_cells(fers[:1], [0], scales=[4], degradations=['bicubic'])


def test_cell_options(fers, tmp_path):
    cells = {c.name: c for c in bl.plan_cells(fers, [1])}
    data = str(tmp_path / 'faces')

    def options(name):
        return bl.cell_options(cells[name], None, data)

    # x4 bicubic plain SR and SR-FER are the ablation's trainings, option for option
    for ours, theirs in (('plain', 'none'), ('srfer', 'both')):
        study_cell = next(c for c in sp.plan_study_cells('ablation', fers[:1], [1]) if c.method == theirs)
        study = sp.study_options(study_cell, 'ablation', None, data, str(tmp_path))
        assert options(f'bench_baselines_x4_bicubic_{ours}_by_lr_seed1') == study
    x8 = options('bench_baselines_x8_blind_face_srfer_multires_by_hr_seed1')
    assert x8['scale'] == 8 and x8['network_g']['upscale'] == 8 and x8['manual_seed'] == 1
    assert x8['datasets']['train']['degradation'] == 'blind_face' and x8['train']['total_iter'] == sv.STUDY_ITERS
    assert x8['network_fer']['config'] == fers[-1].config and x8['network_fer']['checkpoint'] == fers[-1].checkpoint
    assert x8['network_fer']['stages'] == [0, 1, 2, 3], "the demo's taps: the guide is the demo's network"
    assert {k: x8['train'][k] for k in ('attention_opt', 'prediction_opt')} == synthetic.DEMO_SRFER_LOSSES
    plain8 = options('bench_baselines_x8_bicubic_plain_by_multires_seed1')
    assert plain8['model_type'] == 'SafeSRModel' and 'network_fer' not in plain8 and plain8['scale'] == 8
    assert bl.cell_options(cells['bench_baselines_x8_bicubic_plain_by_hr_seed1'], 40, data)['train']['total_iter'] == 40


def test_cli_arguments(capsys):
    args = cli.parse_args(['--preset', 'baselines'])
    assert args.seed_values == [0, 1, 2] and args.scales == [4, 8] and args.degradations == ['bicubic', 'blind_face']
    assert len(args.classifiers) == 7
    args = cli.parse_args(['--preset', 'baselines', '--seeds', '1', '--scales', '4', '--degradations', 'bicubic'])
    assert args.seed_values == [0] and [c.label for c in args.classifiers] == [
        STEMS['hr'], STEMS['lr_x4'], STEMS['multires'],
    ]  # fmt: skip
    args = cli.parse_args(['--preset', 'baselines', '--scales', '8', '--fer-checkpoint', __file__])
    assert [c.checkpoint for c in args.classifiers] == [os.path.abspath(__file__), None, None, None, None]
    for argv, message in (
        (['--preset', 'baselines', '--fer-checkpoint', '/no/such.pth'], "--fer-checkpoint '/no/such.pth' does not"),
        (['--preset', 'baselines', '--fer', 'options/fer/resnet18_fer7.py'], "drop ['--fer']"),
        (['--preset', 'baselines', '--backbones', 'EDSR'], "drop ['--backbones']"),
        (['--preset', 'baselines', '--scales', '2'], '--scales: [2] not in the baselines preset scales'),
        (['--preset', 'ablation', '--degradations', 'bicubic'], '--degradations chooses the conditions'),
    ):
        with pytest.raises(SystemExit):
            cli.parse_args(argv)
        assert message in capsys.readouterr().err


# Made-up accuracies: at x4 bicubic, SR-FER wins under every classifier; at x8 bicubic the LR-trained classifier on
# bicubic faces beats every SR-FER pipeline.
ACC = {
    (4, 'hr'): {'plain': 50.0, 'srfer': 62.0, 'srfer_multires': 60.0, 'bicubic': 45.0},
    (4, 'lr'): {'plain': 55.0, 'srfer': 64.0, 'srfer_multires': 63.0, 'bicubic': 58.0},
    (4, 'multires'): {'plain': 56.0, 'srfer': 61.0, 'srfer_multires': 65.0, 'bicubic': 57.0},
    (8, 'hr'): {'plain': 20.0, 'srfer': 35.0, 'srfer_multires': 33.0, 'bicubic': 15.0},
    (8, 'lr'): {'plain': 30.0, 'srfer': 38.0, 'srfer_multires': 37.0, 'bicubic': 52.0},
    (8, 'multires'): {'plain': 31.0, 'srfer': 36.0, 'srfer_multires': 39.0, 'bicubic': 45.0},
}


def test_run_without_training(tmp_path, monkeypatch):
    """Two seeds at x4 and x8 on bicubic faces: classifiers pre-trained first, each network trained once and
    scored by its condition's three classifiers on its degradation, and the report's verdicts."""
    data_root = tmp_path / 'faces'
    for split in ('train', 'test'):
        (data_root / f'meta_info_{split}.txt').parent.mkdir(parents=True, exist_ok=True)
        (data_root / f'meta_info_{split}.txt').write_text('')
    pretrained, trained, evaluated = [], [], []

    def demo_prepare(preset, exp_root, root, train_faces=None):
        return root, {'fer_final': '/cache/demo_fer_default/fer_final.pth'}

    def pretrain_classifier(config, root, exp_root):
        pretrained.append(os.path.basename(config))
        return f'/cache/{os.path.basename(config)}.pth'

    def run_training(opt_path, exp_root, log_path):
        with open(opt_path, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
        trained.append((opt['name'], opt['scale'], opt.get('network_fer', {}).get('checkpoint')))
        path = os.path.join(exp_root, 'experiments', opt['name'], 'models', 'net_g_latest.pth')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, 'w').close()
        return path

    def evaluate_cell(data_root, fer, net_g_path, results_root, network_g, scale, fer_weights=None, **test_set):
        name = os.path.basename(os.path.dirname(results_root))
        evaluated.append((name, fer.label, network_g['upscale'], scale, test_set['degradation']))
        seed = int(name[-1])
        method = name.split(f'x{scale}_bicubic_')[1].split('_by_')[0]
        role = name.split('_by_')[1].split('_it')[0]
        acc = ACC[(scale, role)]
        metrics = {'acc': acc[method] + seed, 'acc_hr': 86.9, 'acc_bicubic': acc['bicubic']}
        return dict(metrics, psnr=28.0 - scale / 4 + seed / 10, ssim=0.8), 252755

    monkeypatch.setattr('srfer_plugin.studies.synthetic.prepare_data_and_classifier', demo_prepare)
    monkeypatch.setattr(bench_lib, 'pretrain_classifier', pretrain_classifier)
    monkeypatch.setattr(bench_lib, 'run_training', run_training)
    monkeypatch.setattr(bench_lib, 'evaluate_cell', evaluate_cell)
    out, exp_root = tmp_path / 'bench', tmp_path / 'exp'
    argv = ['--preset', 'baselines', '--seeds', '2', '--degradations', 'bicubic', '--data-root', str(data_root),
            '--out', str(out), '--exp-root', str(exp_root), '--iters', '20']  # fmt: skip
    assert cli.main(argv) == 0

    assert pretrained == [f'{STEMS[k]}.py' for k in ('lr_x4', 'lr_x8', 'multires')]
    multires = f'/cache/{STEMS["multires"]}.py.pth'
    assert trained == [
        (f'bench_study_{key}{x}{guide}_it20_seed{seed}', scale, fer)
        for seed in (0, 1)
        for scale, x in ((4, ''), (8, '_x8'))
        for key, guide, fer in (
            ('plain', '', None),
            ('att0.1_pred0.001', '', '/cache/demo_fer_default/fer_final.pth'),
            ('att0.1_pred0.001', f'_guide_{STEMS["multires"]}', multires),
        )
    ]
    assert len(evaluated) == 2 * 2 * 3 * 3
    assert all(up == scale and degradation == 'bicubic' for _, _, up, scale, degradation in evaluated)
    with open(out / 'benchmark.csv', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    assert [(r['method'], r['role'], r['fer'], r['test_degradation']) for r in rows[:3]] == [
        ('plain', role, STEMS[k], 'bicubic') for role, k in (('hr', 'hr'), ('lr', 'lr_x4'), ('multires', 'multires'))
    ]
    md = (out / 'benchmark.md').read_text()
    assert '## Where SR-FER is not the best choice' in md
    assert (
        '- x4 bicubic: the best pipeline is SR-FER (multires-guided) faces under the multi-resolution classifier '
        '(65.50 ± 0.71 %); SR-FER is the best choice here.'
    ) in md
    assert (
        '- x8 bicubic: the best pipeline is bicubic faces under the LR-trained (test scale) classifier '
        '(52.00 ± 0.00 %); SR-FER is NOT the best choice here: its best, SR-FER (multires-guided) under the '
        'multi-resolution classifier (39.50 ± 0.71 %), is 12.50 points lower.'
    ) in md
    assert (
        f'| x8 bicubic | LR-trained (test scale) ({STEMS["lr_x8"]}) | bicubic | 52.00 ± 0.00 | SR-FER (HR-guided) | '
        '38.50 ± 0.71 | SR-FER is not the best choice: its best is 13.50 points lower |'
    ) in md
    assert '## x8, bicubic test faces: accuracy (%), mean ± std over seeds' in md
    assert (
        f'| HR-trained ({STEMS["hr"]}) | 15.00 ± 0.00 | 20.50 ± 0.71 | 35.50 ± 0.71 | 33.50 ± 0.71 | '
        'SR-FER (HR-guided) |'
    ) in md
    assert f'| LR-trained (test scale) ({STEMS["lr_x8"]}) | +13.50 | -8.00 |  | -1.00 |' in md
    with open(out / 'benchmark_mean.csv', encoding='utf-8') as f:
        means = list(csv.DictReader(f))
    assert len(means) == 2 * 3 * 3 and {m['n'] for m in means} == {'2'}

    # Rerun: nothing trains or evaluates again, the report is the same.
    def not_again(*args: Any, **kwargs: Any):
        raise AssertionError('a finished cell ran again')

    monkeypatch.setattr(bench_lib, 'run_training', not_again)
    monkeypatch.setattr(bench_lib, 'evaluate_cell', not_again)
    assert cli.main(argv) == 0
    assert (out / 'benchmark.md').read_text() == md


def _summary(fer: str, mean: float, std: float | None) -> dict[str, Any]:
    return {'fer': fer, 'mean': mean, 'std': std, 'n': 1 if std is None else 3, 'psnr': None, 'ssim': None}


def test_verdicts_mark_seed_spread_and_one_seed():
    spread = {
        (4, 'blind_face', 'hr', 'bicubic'): _summary('hr', 30.0, 0.0),
        (4, 'blind_face', 'hr', 'srfer'): _summary('hr', 40.0, 2.0),
        (4, 'blind_face', 'lr', 'bicubic'): _summary('lr', 41.0, 0.0),
        (4, 'blind_face', 'lr', 'plain'): _summary('lr', 35.0, 1.0),
    }
    sentences, table = blr.verdict_lines(spread, [(4, 'blind_face')])
    assert sentences == [
        'x4 blind_face: the best pipeline is bicubic faces under the LR-trained (test scale) classifier '
        '(41.00 ± 0.00 %); SR-FER is NOT the best choice here: its best, SR-FER (HR-guided) under the HR-trained '
        'classifier (40.00 ± 2.00 %), is 1.00 points lower (within seed spread).'
    ]
    assert [row[2] for row in table] == ['SR-FER (HR-guided)', 'bicubic']
    assert table[1][-1] == 'no SR-FER row' and table[0][-1] == 'SR-FER is the best choice'
    one_seed = {
        (8, 'bicubic', 'lr', 'bicubic'): _summary('lr', 50.0, None),
        (8, 'bicubic', 'lr', 'srfer_multires'): _summary('lr', 45.0, None),
    }
    sentences, table = blr.verdict_lines(one_seed, [(8, 'bicubic')])
    assert sentences[0].endswith('is 5.00 points lower (one seed).')
    assert table[0][-1] == 'SR-FER is not the best choice: its best is 5.00 points lower, one seed'
    tie = {
        (8, 'bicubic', 'hr', 'bicubic'): _summary('hr', 20.0, None),
        (8, 'bicubic', 'hr', 'srfer'): _summary('hr', 20.0, None),
    }
    sentences, table = blr.verdict_lines(tie, [(8, 'bicubic')])
    assert sentences[0].endswith('; SR-FER ties with it: SR-FER (HR-guided) under the HR-trained classifier.')
    assert table[0][-1] == 'SR-FER ties with the best'
    assert blr.verdict_lines({}, [(4, 'bicubic')]) == ([], [])
