"""``srfer benchmark`` reruns into the same ``--out`` / ``--exp-root``: earlier cells and networks are reused only
when made with the run's iterations and dataset; otherwise the run stops before anything trains or is overwritten."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from srfer_plugin.studies import benchmark as bench_lib
from srfer_plugin.studies.benchmark_reuse import SETTINGS_FILE, EarlierSettingsError
from srfer_plugin.tools.benchmark import main

PLAIN = 'bench_cpu_small_MSRResNet_x4_plain'  # the training; its cell adds the tag of the explicit (empty) weights
PLAIN_CELL = f'{PLAIN}_resnet18slim_fer7_demo_we3b0c442'


def _touch(path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, 'w').close()
    return path


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """A cpu-small run (MSRResNet x4, plain and SR-FER) with stand-ins for the training and the evaluation.

    The training stand-in does what BasicSR leaves behind: its copy of the options and ``net_g_latest.pth``.
    """
    data_root = tmp_path / 'faces'
    for split in ('train', 'test'):
        _touch(str(data_root / f'meta_info_{split}.txt'))
    checkpoint = _touch(str(tmp_path / 'fer.pth'))
    calls: list[str] = []

    def run_training(opt_path, exp_root, log_path):
        with open(opt_path, encoding='utf-8') as f:
            name = yaml.safe_load(f)['name']
        calls.append(name)
        shutil.copy(opt_path, _touch(os.path.join(exp_root, 'experiments', name, f'{name}.yml')))
        return _touch(os.path.join(exp_root, 'experiments', name, 'models', 'net_g_latest.pth'))

    def evaluate_cell(*args, **kwargs):
        calls.append('eval')
        return {'acc': 50.0, 'acc_hr': 80.0, 'acc_bicubic': 40.0, 'psnr': 25.0, 'ssim': 0.7}, 10

    monkeypatch.setattr(bench_lib, 'run_training', run_training)
    monkeypatch.setattr(bench_lib, 'evaluate_cell', evaluate_cell)
    out, exp_root = tmp_path / 'out', tmp_path / 'exp'

    def argv(iters: int, root=data_root) -> list[str]:
        return ['--preset', 'cpu-small', '--backbones', 'MSRResNet', '--scales', '4', '--iters', str(iters),
                '--data-root', str(root), '--fer-checkpoint', checkpoint, '--out', str(out),
                '--exp-root', str(exp_root)]  # fmt: skip

    main(argv(2))
    assert len(calls) == 4, calls  # two trainings, two evaluations
    calls.clear()
    return argv, calls, out, exp_root, data_root


def test_other_iterations_are_refused_not_skipped(bench):
    argv, calls, out, exp_root, _ = bench
    md = (out / 'benchmark.md').read_text()
    with pytest.raises(EarlierSettingsError) as caught:
        main(argv(20))
    message = str(caught.value)
    assert f'{out / "cells" / PLAIN_CELL / "result.json"}: total_iter 2 (this run: 20)' in message
    assert '2 earlier result(s)' in message and 'Nothing was trained or changed' in message
    assert calls == [] and (out / 'benchmark.md').read_text() == md, 'nothing ran, the tables still match'

    main(argv(2))  # the same settings: every finished cell is reused
    assert calls == []


def test_results_written_before_the_record_are_compared_by_their_iterations(bench):
    argv, calls, out, _, _ = bench
    for result in (out / 'cells').glob('*/result.json'):
        row = json.loads(result.read_text())
        assert row.pop('settings')['total_iter'] == row['iters'] == 2
        result.write_text(json.dumps(row))
    with pytest.raises(EarlierSettingsError, match='total_iter 2 \\(this run: 20\\)'):
        main(argv(20))
    assert calls == []


@pytest.mark.parametrize('record', ['benchmark', 'basicsr'])
def test_a_network_of_other_settings_is_not_reused(bench, record):
    """An interrupted evaluation: the network exists, its cell has no result.json."""
    argv, calls, out, exp_root, _ = bench
    os.remove(out / 'cells' / PLAIN_CELL / 'result.json')
    if record == 'basicsr':  # a training made before the record: BasicSR's copy of its options tells
        os.remove(exp_root / 'experiments' / PLAIN / SETTINGS_FILE)
    net_g = exp_root / 'experiments' / PLAIN / 'models' / 'net_g_latest.pth'
    with pytest.raises(EarlierSettingsError, match=f'{net_g}: total_iter 2 \\(this run: 20\\)'):
        main(argv(20))
    assert calls == []
    main(argv(2))
    assert calls == ['eval'], 'the same settings: only the evaluation runs again'


def test_another_dataset_is_refused(bench, tmp_path):
    argv, calls, _, _, data_root = bench
    other = tmp_path / 'other_faces'
    shutil.copytree(data_root, other)
    with pytest.raises(EarlierSettingsError, match=f'data_root {data_root} \\(this run: {other}\\)'):
        main(argv(2, other))
    assert calls == []


def test_a_rerun_with_fewer_cells_archives_the_tables_it_would_shrink(bench, capsys):
    argv, calls, out, _, _ = bench
    csv = (out / 'benchmark.csv').read_text()
    main(argv(2))  # the same cells (a resumed run): the tables stay where they are
    assert not [p for p in os.listdir(out) if p.startswith('archived_')]
    main([*argv(2), '--methods', 'plain'])  # fewer cells: the full tables are kept aside
    (archive,) = [p for p in os.listdir(out) if p.startswith('archived_')]
    assert (out / archive / 'benchmark.csv').read_text() == csv
    assert csv.count('\n') == 3 and (out / 'benchmark.csv').read_text().count('\n') == 2  # header + rows
    assert f'to {out / archive}' in capsys.readouterr().out
    assert calls == []
