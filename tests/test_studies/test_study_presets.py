"""Study presets (ablation, stages, weights, joint): the cells, their options, seeds and names; seeds of matrix presets.

No training: cells and option dicts only.
"""

from __future__ import annotations

import dataclasses
import os

import pytest

from srfer_plugin.models.consistency_weights import ConsistencyWeights
from srfer_plugin.models.fer_option_checks import classifier_batch_size
from srfer_plugin.studies import benchmark_cells as cells_lib
from srfer_plugin.studies import study_presets as sp
from srfer_plugin.studies import study_variants as sv
from srfer_plugin.studies import synthetic
from srfer_plugin.studies.runner import network_path

DEMO_FER = os.path.join(synthetic.REPO_ROOT, synthetic.FER_DEMO_CONFIG)
CONSISTENCY = ('attention_opt', 'prediction_opt')
JOINT_KEYS = tuple(synthetic.DEMO_JOINT_LEARNING)


@pytest.fixture
def fer() -> cells_lib.Classifier:
    """The demo's classifier, as ``scripts/benchmark.py`` resolves it for a study preset, with weights."""
    (classifier,) = cells_lib.resolve_classifiers(sp.data_preset('ablation'), None, None)
    return dataclasses.replace(classifier, checkpoint='/w/fer_final.pth')


def _options(cells, preset, tmp_path, iters=None):
    return {c.name: sp.study_options(c, preset, iters, str(tmp_path / 'faces'), str(tmp_path)) for c in cells}


def test_ablation_cells_and_order(fer):
    cells = sp.plan_study_cells('ablation', [fer], sp.run_seeds('ablation'))
    variants = ['none', 'attention', 'prediction', 'both', 'both_joint', 'plain_finetuned']
    assert [c.name for c in cells] == [f'bench_ablation_{v}_seed{s}' for s in (0, 1, 2) for v in variants]
    assert [c.seed for c in cells] == [s for s in (0, 1, 2) for _ in variants]
    assert {(c.backbone, c.scale, c.fer) for c in cells} == {('RCAN', 4, fer)}
    assert [c.classifier for c in cells[:6]] == ['frozen'] * 4 + ['adapted'] * 2
    assert [c.train_name for c in cells[:6]] == [
        'bench_study_plain_seed0',
        'bench_study_att0.1_seed0',
        'bench_study_pred0.001_seed0',
        'bench_study_att0.1_pred0.001_seed0',
        'bench_study_att0.1_pred0.001_joint_lr0.0001_seed0',
        'bench_study_plain_finetuned_lr0.0001_seed0',
    ]
    for seed in (0, 1, 2):
        mine = [c for c in cells if c.seed == seed]
        finetuned = next(c for c in mine if c.method == 'plain_finetuned')
        plain = next(c for c in mine if c.method == 'none')
        assert finetuned.init_from == plain.train_name and cells.index(plain) < cells.index(finetuned)
        assert all(c.init_from is None for c in mine if c is not finetuned)


def test_ablation_options(fer, tmp_path):
    cells = sp.plan_study_cells('ablation', [fer], [1])
    opts = _options(cells, 'ablation', tmp_path)
    demo = {m: synthetic.sr_options(m, str(tmp_path / 'faces'), fer.checkpoint, 1000, 1, 'ablation') for m in
            ('plain_sr', 'srfer')}  # fmt: skip
    for cell in cells:
        opt = opts[cell.name]
        assert opt['name'] == cell.train_name and opt['manual_seed'] == 1 and opt['train']['total_iter'] == 1000
        assert opt['network_g'] == synthetic.DEMO_NETWORK_G and opt['scale'] == 4
    none, att, pred, both, joint, finetuned = (opts[c.name] for c in cells)
    assert dict(none, name=demo['plain_sr']['name']) == demo['plain_sr'], "plain SR is the demo's"
    assert dict(both, name=demo['srfer']['name']) == demo['srfer'], "both is the demo's SR-FER"
    assert both['network_fer']['config'] == DEMO_FER and 'train_network_fer' not in both['train']
    assert [k for k in CONSISTENCY if k in att['train']] == ['attention_opt']
    assert [k for k in CONSISTENCY if k in pred['train']] == ['prediction_opt']
    assert att['train']['attention_opt'] == synthetic.DEMO_SRFER_LOSSES['attention_opt']
    assert pred['train']['prediction_opt'] == synthetic.DEMO_SRFER_LOSSES['prediction_opt']
    assert not any(
        k in opt['train']
        for opt in (none, att, pred, both)
        for k in JOINT_KEYS + ('train_network_g', 'train_network_fer')
    )
    # both_joint: both + joint learning with the defaults
    assert joint['train']['train_network_fer'] is True and joint['model_type'] == 'SRFERModel'
    assert {k: joint['train'][k] for k in JOINT_KEYS} == synthetic.DEMO_JOINT_LEARNING
    assert joint['train']['fer_inputs'] == ['sr', 'hr'] and joint['train']['joint_opt']['sr_grad_weight'] == 0.0
    assert {k: joint['train'][k] for k in CONSISTENCY} == synthetic.DEMO_SRFER_LOSSES
    assert 'train_network_g' not in joint['train'] and joint['train']['pixel_opt'] == both['train']['pixel_opt']
    # plain_finetuned: the seed's plain network frozen, the classifier fine-tuned on its outputs (CE on SR only)
    train = finetuned['train']
    assert (
        train['train_network_g'] is False
        and train['fer_inputs'] == ['sr']
        and finetuned['train']['train_network_fer'] is True
    )
    assert finetuned['path']['pretrain_network_g'] == network_path(str(tmp_path), 'bench_study_plain_seed1')
    assert not any(k in train for k in ('pixel_opt', 'optim_g', *CONSISTENCY))
    assert train['fer_opt'] == synthetic.DEMO_JOINT_LEARNING['fer_opt'] and train['total_iter'] == 1000
    assert train['optim_fer'] == synthetic.DEMO_JOINT_LEARNING['optim_fer']


def test_cost_preset_sets_the_classifier_batch(fer, tmp_path):
    cells = sp.plan_study_cells('cost', [fer], [0])
    assert [c.method for c in cells] == ['none', 'both', 'both_fer_batch4', 'both_fer_batch2']
    opts = _options(cells, 'cost', tmp_path)
    assert [c.train_name for c in cells][2:] == [
        'bench_study_att0.1_pred0.001_fb4_seed0',
        'bench_study_att0.1_pred0.001_fb2_seed0',
    ]
    both, half = (opts[f'bench_cost_{name}_seed0']['train'] for name in ('both', 'both_fer_batch4'))
    assert 'fer_batch_size' not in both and half['fer_batch_size'] == 4
    assert {k: v for k, v in half.items() if k != 'fer_batch_size'} == both, 'only the classifier batch differs'
    half_opt = opts['bench_cost_both_fer_batch4_seed0']
    assert classifier_batch_size(half_opt, half_opt['train']) == 4 < half_opt['datasets']['train']['batch_size_per_gpu']


def test_stages_preset(fer, tmp_path):
    cells = sp.plan_study_cells('stages', [fer], [0])
    names = ['none', 'stage0', 'stage1', 'stage2', 'stage3', 'attention', 'deep_weighted', 'shallow_weighted', 'both']
    assert [c.method for c in cells] == names
    opts = _options(cells, 'stages', tmp_path)
    for k in range(4):
        opt = opts[f'bench_stages_stage{k}_seed0']
        assert opt['network_fer']['stages'] == [k] and 'prediction_opt' not in opt['train']
        assert opt['train']['attention_opt'] == synthetic.DEMO_SRFER_LOSSES['attention_opt']
    assert opts['bench_stages_attention_seed0']['network_fer']['stages'] == [0, 1, 2, 3]
    deep = opts['bench_stages_deep_weighted_seed0']['train']['attention_opt']
    assert deep['stage_weights'] == [0.4, 0.8, 1.2, 1.6] and deep['loss_weight'] == sv.ATT
    assert opts['bench_stages_shallow_weighted_seed0']['train']['attention_opt']['stage_weights'] == [
        1.6,
        1.2,
        0.8,
        0.4,
    ]
    assert sv.STUDY_PRESETS['stages'].references == ('both',)
    # trainings shared with the ablation: trained once per seed
    ablation = {c.method: c.train_name for c in sp.plan_study_cells('ablation', [fer], [0])}
    stages = {c.method: c.train_name for c in cells}
    assert stages['attention'] == ablation['attention'] and stages['both'] == ablation['both']
    assert stages['none'] == ablation['none'] == 'bench_study_plain_seed0'
    assert len({c.train_name for c in cells}) == len(cells)


def test_weights_preset(fer, tmp_path):
    cells = sp.plan_study_cells('weights', [fer], [2])
    rules = [
        'auto', 'auto_full', 'auto_pred0.3', 'auto_pred1', 'auto_hold', 'auto_budget', 'auto_budget_start1',
        'auto_pilot', 'rerun_att0.3_pred0.001', 'rerun_att0.03_pred0.0003',
    ]  # fmt: skip
    assert len(cells) == 1 + 9 + len(rules) and cells[0].method == 'none'
    assert [c.method for c in cells[-len(rules) :]] == rules
    opts = _options(cells, 'weights', tmp_path)
    grid = set()
    for cell in cells[1 : -len(rules)]:
        train = opts[cell.name]['train']
        grid.add((train['attention_opt']['loss_weight'], train['prediction_opt']['loss_weight']))
        assert opts[cell.name]['network_fer']['stages'] == [0, 1, 2, 3]
    assert grid == {(a, p) for a in (0.03, 0.1, 0.3) for p in (0.0003, 0.001, 0.003)}
    centre = next(c for c in cells if c.method == 'both')
    assert opts[centre.name]['train']['attention_opt']['loss_weight'] == 0.1 and centre.train_name.startswith(
        'bench_study_att0.1_pred0.001_seed2'
    )
    assert 'bench_weights_att0.3_pred0.0003_seed2' in {c.name for c in cells}
    # a rerun of a grid cell is a training of its own, at weights that differ by 1e-6
    rerun = next(c for c in cells if c.method == 'rerun_att0.3_pred0.001')
    assert rerun.train_name == 'bench_study_att0.300001_pred0.001_seed2'
    assert (
        opts[rerun.name]['train']['attention_opt']['loss_weight'],
        opts[rerun.name]['train']['prediction_opt']['loss_weight'],
    ) == (0.300001, 0.001)


def _rule_cell(fer, tmp_path, variant: str) -> tuple[str, dict]:
    """The training name and ``train`` section of the weights preset's ``variant`` at seed 0."""
    (cell,) = sp.plan_study_cells('weights', [fer], [0], variants=[variant])
    return cell.train_name, sp.study_options(cell, 'weights', None, str(tmp_path / 'faces'), str(tmp_path))['train']


def test_weights_preset_automatic_rule_sets_shares_not_weights(fer, tmp_path):
    (cell,) = sp.plan_study_cells('weights', [fer], [0], variants=['auto'])
    assert cell.train_name == 'bench_study_att1.15_pred0.007_gshare_seed0'
    train = sp.study_options(cell, 'weights', None, str(tmp_path / 'faces'), str(tmp_path))['train']
    assert train['consistency_weights'] == {'rule': 'gradient_share', 'shares': {'l_att': 1.15, 'l_pred': 0.007}}
    assert 'loss_weight' not in train['attention_opt'] and 'loss_weight' not in train['prediction_opt']
    name, train = _rule_cell(fer, tmp_path, 'auto_hold')
    assert name == 'bench_study_att0.83_pred6_gshare_hold50_seed0'
    assert train['consistency_weights'] == {
        'rule': 'gradient_share',
        'shares': {'l_att': 0.83, 'l_pred': 6.0},
        'calibration_iters': 50,
    }
    ConsistencyWeights(train['consistency_weights'], train)  # the model accepts the section as written
    assert 'gradient shares' in sp.descriptions('weights')['auto']
    shares = {'l_att': 2.49, 'l_pred': 6.0}
    twin_rules = {  # variant: (training name, consistency_weights)
        'auto_budget': (
            'bench_study_att2.49_pred6_gshare_budget0.5_start0.1_seed0',
            {'rule': 'psnr_budget', 'shares': shares, 'budget_db': 0.5, 'budget_start': 0.1},
        ),
        'auto_pilot': (  # the pilot: a fifth of the preset's 1,000 iterations
            'bench_study_att2.49_pred6_gshare_budget0.2_pilot0.2_seed0',
            {'rule': 'psnr_pilot', 'shares': shares, 'budget_db': 0.2, 'pilot_iters': 200},
        ),
    }
    for variant, (expected_name, section) in twin_rules.items():
        name, train = _rule_cell(fer, tmp_path, variant)
        assert (name, train['consistency_weights']) == (expected_name, section), variant
        ConsistencyWeights(section, train)  # the model accepts the section as written
    assert 'from 0.1 to cost 0.5 dB against a plain-SR twin' in sp.descriptions('weights')['auto_budget']
    short = sv.AUTO_PILOT.consistency_weights(30)  # a pilot shorter than the interval measures every step
    assert (short['pilot_iters'], short['interval']) == (6, 6)
    ConsistencyWeights(short, {**train, 'total_iter': 30})
    (at_one,) = sp.plan_study_cells('weights', [fer], [0], variants=['auto_budget_start1'])
    assert at_one.train_name == 'bench_study_att2.49_pred6_gshare_budget0.5_seed0'
    (full,) = sp.plan_study_cells('weights', [fer], [0], variants=['auto_full'])
    assert full.train_name == 'bench_study_att0.47_pred4.2_gshare_seed0'
    (mid,) = sp.plan_study_cells('weights', [fer], [0], variants=['auto_pred0.3'])
    assert mid.train_name == 'bench_study_att1.15_pred0.3_gshare_seed0'
    assert (
        'consistency_weights'
        not in sp.study_options(
            sp.plan_study_cells('weights', [fer], [0], variants=['both'])[0],
            'weights',
            None,
            str(tmp_path),
            str(tmp_path),
        )['train']
    )


def test_study_presets_take_other_classifiers(fer, tmp_path):
    other = cells_lib.Classifier('/c/mobilenet.py', '/w/mobilenet.pth', None, 'mobilenet', 'mobilenet', own=False)
    cells = sp.plan_study_cells('ablation', [fer, other], [1])
    names = {(c.fer.label, c.method): (c.name, c.train_name, c.init_from) for c in cells}
    # plain SR does not use the classifier: trained once, scored by each
    assert names[('mobilenet', 'none')] == ('bench_ablation_none_mobilenet_seed1', 'bench_study_plain_seed1', None)
    assert names[('mobilenet', 'both')][1] == 'bench_study_att0.1_pred0.001_mobilenet_seed1'
    assert names[(fer.label, 'both')][1] == 'bench_study_att0.1_pred0.001_seed1'
    finetuned = names[('mobilenet', 'plain_finetuned')]
    assert finetuned[1] == 'bench_study_plain_finetuned_lr0.0001_mobilenet_seed1'
    assert finetuned[2] == 'bench_study_plain_seed1'
    opts = _options([c for c in cells if c.fer is other], 'ablation', tmp_path)
    network_fer = opts['bench_ablation_both_mobilenet_seed1']['network_fer']
    assert network_fer['config'] == '/c/mobilenet.py' and network_fer['checkpoint'] == '/w/mobilenet.pth'
    assert 'stages' not in network_fer  # the classifier's own default taps
    assert len({c.name for c in cells}) == len(cells)


def test_joint_preset_sweeps_routing_warmup_and_classifier_lr(fer, tmp_path):
    cells = sp.plan_study_cells('joint', [fer], [0])
    opts = _options(cells, 'joint', tmp_path)
    settings = {}
    for cell in cells:
        train = opts[cell.name]['train']
        if 'joint_opt' in train and not cell.method.startswith('plain_finetuned'):
            settings[cell.method] = (
                train['joint_opt']['sr_grad_weight'],
                train['joint_opt']['fer_frozen_iters'],
                train['optim_fer']['lr'],
            )
            assert opts[cell.name]['train']['train_network_fer'] is True and cell.classifier == 'adapted'
    assert settings == {
        'both_joint': (0.0, 0, 1e-4),
        'sr_grad_0.1': (0.1, 0, 1e-4),
        'sr_grad_1': (1.0, 0, 1e-4),
        'warmup_300': (0.0, 300, 1e-4),
        'fer_lr_1e-5': (0.0, 0, 1e-5),
        'distill_1': (0.0, 0, 1e-4),
    }
    distill = opts[next(c.name for c in cells if c.method == 'distill_1')]['train']['fer_distill_opt']
    assert distill == synthetic.DEMO_FER_DISTILL and distill is not synthetic.DEMO_FER_DISTILL
    assert all('fer_distill_opt' not in o['train'] for n, o in opts.items() if not n.startswith('bench_joint_distill'))
    names = {c.method: c.train_name for c in cells}
    assert names['both_joint'] == 'bench_study_att0.1_pred0.001_joint_lr0.0001_seed0', "the ablation's, reused"
    assert names['sr_grad_1'] == 'bench_study_att0.1_pred0.001_joint_g1_lr0.0001_seed0'
    assert names['fer_lr_1e-5'] == 'bench_study_att0.1_pred0.001_joint_lr1e-05_seed0'
    assert names['distill_1'] == 'bench_study_att0.1_pred0.001_joint_kd1_lr0.0001_seed0'
    assert 'distillation from the starting classifier on HR faces, weight 1' in sp.descriptions('joint')['distill_1']
    assert len(set(names.values())) == len(names)
    finetuned = opts[next(c.name for c in cells if c.method == 'plain_finetuned_lr_1e-5')]['train']
    assert finetuned['train_network_g'] is False and finetuned['optim_fer']['lr'] == 1e-5
    assert names['plain_finetuned_lr_1e-5'] == 'bench_study_plain_finetuned_lr1e-05_seed0'
    assert names['plain_finetuned'] == 'bench_study_plain_finetuned_lr0.0001_seed0', "the ablation's, reused"
    assert isinstance(
        opts[next(c.name for c in cells if c.method == 'warmup_300')]['train']['joint_opt']['fer_frozen_iters'], int
    )
    assert 'sr_grad_weight 1,' in sp.descriptions('joint')['sr_grad_1']
    with pytest.raises(ValueError, match='srfer_joint'):
        sv.Variant('bad', 'srfer', att=0.1, joint=(('fer_frozen_iters', 5),))
    with pytest.raises(ValueError, match=r"\['fer_frozen_iters'\] need .*plain_finetuned \(key 'fer_lr'\)"):
        sv.Variant('bad', 'plain_finetuned', init='none', joint=(('fer_frozen_iters', 5),))
    with pytest.raises(ValueError, match='sr_grad_weight'):
        sv.Variant('bad', 'srfer_joint', att=0.1, joint=(('fer_momentum', 0.9),))


def test_iterations_other_than_the_default_are_in_the_names(fer, tmp_path):
    cells = sp.plan_study_cells('ablation', [fer], [0], iters=300)
    assert cells[0].name == 'bench_ablation_none_it300_seed0' and cells[0].train_name == 'bench_study_plain_it300_seed0'
    opts = _options(cells, 'ablation', tmp_path, iters=300)
    assert all(opt['train']['total_iter'] == 300 for opt in opts.values())
    assert opts[cells[-1].name]['path']['pretrain_network_g'] == network_path(str(tmp_path), cells[0].train_name)
    assert sp.plan_study_cells('ablation', [fer], [0], iters=sv.STUDY_ITERS)[0].name == 'bench_ablation_none_seed0'


def test_a_smaller_training_set_is_in_the_names(fer, tmp_path):
    cells = sp.plan_study_cells('joint', [fer], [1], variants=['both_joint'], train_faces=1001)
    assert [c.train_name for c in cells] == ['bench_study_att0.1_pred0.001_joint_lr0.0001_train1001_seed1']
    assert cells[0].name == 'bench_joint_both_joint_train1001_seed1'
    assert synthetic.default_data_root('/e', 'default', 1001) == '/e/datasets/synthetic_fer_default_train1001'
    for bad in (1000, 0, 2107):
        with pytest.raises(ValueError, match=rf'--train-faces must be a multiple of the 7 classes .*got {bad}'):
            synthetic.check_train_faces('default', bad)


def test_a_smaller_training_set_is_the_first_faces_of_the_full_one(tmp_path, monkeypatch):
    """Same validation and test faces, and the first training faces of each class, byte for byte."""
    monkeypatch.setitem(
        synthetic.PRESETS, 'quick', dict(synthetic.PRESETS['quick'], num_train=3, num_val=1, num_test=1)
    )
    full = synthetic.ensure_faces('quick', str(tmp_path / 'full'))
    small = synthetic.ensure_faces('quick', str(tmp_path / 'small'), train_faces=14)
    for split, count in (('train', 14), ('val', 7), ('test', 7)):
        with open(os.path.join(small, f'meta_info_{split}.txt'), encoding='utf-8') as f:
            lines = f.read().splitlines()
        assert len(lines) == count, split
        for line in lines:
            rel_path = line.split()[0]
            with open(os.path.join(small, rel_path), 'rb') as a, open(os.path.join(full, rel_path), 'rb') as b:
                assert a.read() == b.read(), rel_path


def test_run_seeds():
    assert sp.run_seeds('ablation') == [0, 1, 2] and sp.run_seeds('weights', seeds=1) == [0]
    assert sp.run_seeds('cpu-small') == [0] and sp.run_seeds('paper', seeds=2) == [0, 1]
    assert sp.run_seeds('stages', seed_list=[4, 1, 4]) == [4, 1]
    for kwargs in ({'seeds': 0}, {'seed_list': [-1]}, {'seeds': 2, 'seed_list': [1]}):
        with pytest.raises(ValueError, match='seed'):
            sp.run_seeds('ablation', **kwargs)


def test_matrix_presets_take_seeds_and_keep_todays_names(fer, tmp_path):
    cells = cells_lib.plan_cells('cpu-small', [fer], ['RCAN'], [4], seeds=[0, 1])
    assert [(c.name, c.train_name, c.seed) for c in cells] == [
        ('bench_cpu_small_RCAN_x4_plain', 'bench_cpu_small_RCAN_x4_plain', 0),
        ('bench_cpu_small_RCAN_x4_srfer', 'bench_cpu_small_RCAN_x4_srfer', 0),
        ('bench_cpu_small_RCAN_x4_plain_seed1', 'bench_cpu_small_RCAN_x4_plain_seed1', 1),
        ('bench_cpu_small_RCAN_x4_srfer_seed1', 'bench_cpu_small_RCAN_x4_srfer_seed1', 1),
    ]
    assert cells_lib.plan_cells('cpu-small', [fer], ['RCAN'], [4]) == cells[:2], 'default: seed 0, the old names'
    seeds = [cells_lib.cell_options(c, 'cpu-small', 5, str(tmp_path))['manual_seed'] for c in cells]
    assert seeds == [0, 0, 1, 1]
    other = dataclasses.replace(fer, tag='other', own=False)
    (plain, srfer) = cells_lib.plan_cells('cpu-small', [other], ['EDSR'], [2], seeds=[3])
    assert plain.train_name == 'bench_cpu_small_EDSR_x2_plain_seed3', 'one plain training per seed'
    assert (plain.name, srfer.name) == (
        'bench_cpu_small_EDSR_x2_plain_other_seed3',
        'bench_cpu_small_EDSR_x2_srfer_other_seed3',
    )


def test_sr_options_methods(tmp_path):
    args = (str(tmp_path), 'fer.pth', 100, 0, 'quick')
    srfer = synthetic.sr_options('srfer', *args)
    same = synthetic.sr_options('srfer', *args, losses=synthetic.DEMO_SRFER_LOSSES, stages=[0, 1, 2, 3])
    assert same == srfer and 'train_network_g' not in srfer['train'] and 'train_network_fer' not in srfer['train']
    joint = synthetic.sr_options('srfer_joint', *args)
    assert joint['name'] == 'demo_srfer_joint_lr0.0001_quick_seed0' and joint['train']['train_network_fer'] is True
    assert {k: v for k, v in joint['train'].items() if k not in JOINT_KEYS} == srfer['train']
    assert synthetic.sr_options('srfer', *args, losses={})['train'] == synthetic.sr_options('plain_sr', *args)['train']
    with pytest.raises(ValueError, match='init_network_g'):
        synthetic.sr_options('plain_finetuned', *args)
    with pytest.raises(ValueError, match='not in'):
        synthetic.sr_options('srfer_frozen', *args)


def test_variants_filter_keeps_order_and_the_plain_run_finetuning_needs(fer):
    cells = sp.plan_study_cells('ablation', [fer], [1], variants=['both_joint', 'plain_finetuned', 'both'])
    assert [c.method for c in cells] == ['none', 'both', 'both_joint', 'plain_finetuned']
    assert cells[-1].init_from == cells[0].train_name
    with pytest.raises(ValueError, match=r"--variants: \['bogus'\] not in the variants of --preset stages"):
        sp.select_variants('stages', ['bogus'])
    assert sp.select_variants('weights', None) == sv.STUDY_PRESETS['weights'].variants


def test_gan_preset_cells_start_from_their_l1_networks_and_reuse_the_ablation(fer, tmp_path):
    cells = sp.plan_study_cells('gan', [fer], [1])
    by_method = {c.method: c for c in cells}
    assert [c.method for c in cells] == [
        'bicubic', 'plain_sr', 'srfer', 'esrgan', 'srfer_esrgan',
        'plain_sr_trained_bicubic', 'srfer_trained_bicubic', 'esrgan_trained_bicubic', 'srfer_esrgan_trained_bicubic',
    ]  # fmt: skip
    assert by_method['bicubic'].train_name == '' and by_method['bicubic'].init_from is None
    assert by_method['esrgan'].init_from == by_method['plain_sr'].train_name == 'bench_study_plain_blind_face_seed1'
    assert by_method['srfer_esrgan'].init_from == by_method['srfer'].train_name
    ablation = {c.method: c.train_name for c in sp.plan_study_cells('ablation', [fer], [1])}
    assert by_method['plain_sr_trained_bicubic'].train_name == ablation['none'], 'bicubic L1 trainings are shared'
    assert by_method['srfer_trained_bicubic'].train_name == ablation['both']
    opts = _options(cells, 'gan', tmp_path)
    assert opts[by_method['bicubic'].name]['network_g'] == {'type': 'BicubicUpsampler', 'upscale': 4}
    gan = opts[by_method['srfer_esrgan'].name]
    assert gan['model_type'] == 'SRFERESRGANModel' and gan['network_d']['type'] == 'UNetDiscriminatorSN'
    assert gan['train']['total_iter'] == 300 and gan['train']['gan_opt']['loss_weight'] == 0.1
    assert {'attention_opt', 'prediction_opt'} <= set(gan['train']) and 'train_network_fer' not in gan['train']
    assert gan['path']['pretrain_network_g'] == network_path(str(tmp_path), by_method['srfer'].train_name)
    assert gan['datasets']['train']['degradation'] == 'blind_face'
    plain_gan = opts[by_method['esrgan_trained_bicubic'].name]
    assert plain_gan['model_type'] == 'SafeESRGANModel' and 'network_fer' not in plain_gan
    assert plain_gan['datasets']['train']['degradation'] == {'type': 'bicubic'}
    study = sv.STUDY_PRESETS['gan']
    assert study.test_degradation == 'blind_face' and study.extra_metrics == ('niqe',)
    assert [c.method for c in sp.plan_study_cells('gan', [fer], [0], variants=['srfer_esrgan'])] == [
        'srfer',
        'srfer_esrgan',
    ], 'a GAN variant brings the L1 variant it starts from'
