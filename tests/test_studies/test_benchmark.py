"""Benchmark library: generated option files build the right networks; classifiers and cells are planned right.

The command lines (``scripts/benchmark.py`` & co.) are tested in ``tests/test_scripts/test_benchmark_scripts.py``.
"""

from __future__ import annotations

import dataclasses
import filecmp
import glob
import os

import pytest
import torch
import yaml
from basicsr.archs import build_network

from srfer_plugin.studies import benchmark_cells as cells_lib
from srfer_plugin.studies import benchmark_options as mbo

pytestmark = pytest.mark.usefixtures('one_thread')  # tests/conftest.py


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
    assert plain['network_g'] == opt['network_g'] and plain['model_type'] == 'SafeSRModel'
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


DEMO_FER = os.path.join(mbo.REPO_ROOT, 'options', 'fer', 'resnet18slim_fer7_demo.py')
OTHER_FER = os.path.join(mbo.REPO_ROOT, 'options', 'fer', 'resnet18_fer7.py')


def test_fer_entries_parse():
    parse = cells_lib.parse_fer_entry
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
        (fer,) = cells_lib.resolve_classifiers(preset, None, None)
        assert fer.own and fer.tag == '' and fer.input_size is None
        assert fer.config == mbo.default_fer_config(preset)
        assert cells_lib.resolve_classifiers(preset, [fer.config], None) == [fer], '--fer with its own config'
        cells = cells_lib.plan_cells(preset, [fer], ['RCAN', 'EDSR'], [2, 8])
        expected = [(b, s, m) for b in ('RCAN', 'EDSR') for s in (2, 8) for m in mbo.METHODS]
        assert [(c.backbone, c.scale, c.method) for c in cells] == expected
        assert [c.name for c in cells] == [c.train_name for c in cells] == [mbo.cell_name(preset, *e) for e in expected]
    fer = dataclasses.replace(cells_lib.resolve_classifiers('paper', None, None)[0], checkpoint='/w/fer.pth')
    opt = cells_lib.cell_options(cells_lib.plan_cells('paper', [fer], ['RCAN'], [4], ['srfer'])[0], 'paper', None, None)
    today = mbo.make_options('RCAN', 4, 'srfer', 'paper', fer_checkpoint='/w/fer.pth')
    shipped = os.path.realpath(OTHER_FER)  # the recipe names it srfer::fer/resnet18_fer7.py
    assert opt == dict(today, network_fer=dict(today['network_fer'], config=shipped)), 'absolute config only'


def _touch(path) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, 'w').close()
    return str(path)


def test_explicit_weights_never_share_trainings_with_other_weights(tmp_path):
    """Weights given explicitly name the cells by the file's digest: the preset's own config with other weights does
    not reuse the cached classifier's trainings, and two weight files of one config do not share theirs."""
    first, second = tmp_path / 'a' / 'latest.pth', tmp_path / 'b' / 'latest.pth'
    for path, content in ((first, b'first'), (second, b'second')):
        path.parent.mkdir()
        path.write_bytes(content)
    (default,) = cells_lib.resolve_classifiers('cpu-small', None, None)
    (own_a,) = cells_lib.resolve_classifiers('cpu-small', None, str(first))
    (own_b,) = cells_lib.resolve_classifiers('cpu-small', [f'{DEMO_FER}={second}'], None)
    assert own_a.own and own_a.label == default.label
    assert len({default.tag, own_a.tag, own_b.tag}) == 3 and default.tag == ''
    names = {
        fer.tag: cells_lib.plan_cells('cpu-small', [fer], ['RCAN'], [4], ['srfer'])[0].train_name
        for fer in (default, own_a, own_b)
    }
    assert len(set(names.values())) == 3, names
    (again,) = cells_lib.resolve_classifiers('cpu-small', None, str(first))
    assert again.tag == own_a.tag, 'the same weights keep their names (a rerun resumes them)'


def test_cells_of_several_classifiers(tmp_path):
    """--fer A B: SR-FER trains per classifier; plain trains once per backbone x scale, evaluated per classifier."""
    weights = _touch(tmp_path / 'other.pth')
    fers = cells_lib.resolve_classifiers('cpu-small', [DEMO_FER, f'{OTHER_FER}={weights}@224'], None)
    assert [(f.label, f.tag, f.own, f.input_size, f.checkpoint) for f in fers] == [
        ('resnet18slim_fer7_demo', '', True, None, None),
        ('resnet18_fer7@224', 'resnet18_fer7_in224_we3b0c442', False, 224, weights),  # sha256 of the empty file
    ]
    fers[0] = dataclasses.replace(fers[0], checkpoint='/w/demo.pth')
    backbones, scales = ['RCAN', 'SwinIR'], [2, 4]
    cells = cells_lib.plan_cells('cpu-small', fers, backbones, scales)
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
    assert all(c.name.endswith('_resnet18_fer7_in224_we3b0c442') for c in cells if c.fer is fers[1])
    plain_opts = {}
    for cell in cells:
        opt = cells_lib.cell_options(cell, 'cpu-small', 3, str(tmp_path))
        assert opt['name'] == cell.train_name and opt['train']['total_iter'] == 3
        if cell.method == 'plain':
            assert 'network_fer' not in opt and opt['model_type'] == 'SafeSRModel'
            assert plain_opts.setdefault(cell.train_name, opt) == opt, 'plain training ignores the classifier'
            continue
        net_fer = opt['network_fer']
        assert (net_fer['config'], net_fer['checkpoint']) == (cell.fer.config, cell.fer.checkpoint)
        if cell.fer is fers[0]:
            assert 'input_size' not in net_fer and net_fer['stages'] == [0, 1, 2, 3]
        else:
            assert net_fer['input_size'] == 224 and 'stages' not in net_fer, "MMPretrainFER's default stages"


@pytest.mark.parametrize('fer_weights', [None, '/w/net_fer_latest.pth'])
def test_an_adapted_cell_is_scored_by_its_fine_tuned_classifier(fer_weights, monkeypatch):
    """The classifier a joint training fine-tuned (``fer_weights``) scores its cell, not the pre-trained one."""
    from srfer_plugin.studies import benchmark as bench_lib

    seen = {}

    class Model:
        net_g = torch.nn.Conv2d(3, 3, 1)

        def get_bare_model(self, net):
            return net

    def run_evaluation(opt):
        seen.update(opt['network_fer'])
        return {'acc': 1.0}, Model()

    monkeypatch.setattr(bench_lib, 'run_evaluation', run_evaluation)
    (fer,) = cells_lib.resolve_classifiers('cpu-small', None, None)
    fer = dataclasses.replace(fer, checkpoint='/w/fer_final.pth')
    metrics, params = bench_lib.evaluate_cell('/d', fer, '/w/net_g.pth', '/r', {'type': 'RCAN'}, 4, fer_weights)
    assert seen['checkpoint'] == (fer_weights or '/w/fer_final.pth') and params == 12
    assert seen['config'] == fer.config
