"""Seed aggregation: mean ± sample std per variant, differences of means and the within-spread rule, in the report."""

from __future__ import annotations

import csv
import statistics

import pytest

from srfer_plugin.studies import aggregate
from srfer_plugin.studies.benchmark_report import write_tables


def test_mean_std_is_the_sample_std():
    assert aggregate.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    mean, std, n = aggregate.mean_std([76.9, 78.1, 78.33])
    assert n == 3 and mean == pytest.approx(77.7766667) and std == pytest.approx(statistics.stdev([76.9, 78.1, 78.33]))
    assert aggregate.mean_std([5]) == (5.0, None, 1), 'one value has no sample std'
    with pytest.raises(ValueError):
        aggregate.mean_std([])


def _row(method: str, seed: int, acc: float, classifier: str = 'frozen', **extra) -> dict:
    metrics = dict(acc=acc, acc_hr=86.9, acc_bicubic=46.67, psnr=30.0 + seed / 10, ssim=0.8)
    metrics.update(extra)
    return dict(fer='demo', backbone='RCAN', scale=4, method=method, seed=seed, classifier=classifier, status='done',
                **metrics)  # fmt: skip


ROWS = [
    *(_row('none', s, a) for s, a in enumerate((66.0, 64.0, 65.0))),
    *(_row('both', s, a) for s, a in enumerate((77.0, 79.0, 78.0))),
    *(_row('attention', s, a) for s, a in enumerate((77.5, 78.5, 76.0))),
    *(_row('both_joint', s, a, 'adapted', acc_hr=90.0) for s, a in enumerate((80.0, 81.0, 82.0))),
    _row('prediction', 0, 70.0),
    dict(_row('prediction', 1, 0.0), status='unsupported'),
]


def test_aggregate_rows_per_variant():
    summaries = aggregate.aggregate_rows(ROWS)
    assert [s['method'] for s in summaries] == ['none', 'both', 'attention', 'both_joint', 'prediction']
    none, both, att, joint, pred = summaries
    assert (none['n'], none['seeds'], none['acc_mean'], none['acc_std']) == (3, [0, 1, 2], 65.0, 1.0)
    assert both['acc_mean'] == 78.0 and both['psnr_mean'] == pytest.approx(30.1)
    assert joint['classifier'] == 'adapted' and joint['acc_hr_mean'] == 90.0 and joint['acc_hr_std'] == 0.0
    assert (pred['n'], pred['acc_mean'], pred['acc_std']) == (1, 70.0, None), 'only done rows count'


def test_differences_and_the_within_spread_rule():
    summaries = aggregate.aggregate_rows(ROWS)
    against = {d['method']: d for d in aggregate.compare_to_reference(summaries, 'both')}
    assert set(against) == {'none', 'attention', 'both_joint', 'prediction'}, 'the reference itself is left out'
    assert against['none']['acc_delta'] == -13.0 and against['none']['acc_within'] is False
    assert against['attention']['acc_delta'] == pytest.approx(-0.6666667)
    assert against['attention']['acc_within'] is True, '|-0.67| <= max(1.26, 1.0)'
    assert against['prediction']['acc_within'] is False and (
        against['prediction']['n'],
        against['prediction']['n_ref'],
    ) == (1, 3)
    assert aggregate.within_spread(0.5, None, None) is None and aggregate.within_spread(1.0, None, 1.0) is True
    assert aggregate.within_spread(-1.01, 0.2, 1.0) is False
    assert aggregate.format_delta(-0.666, True, 2) == '-0.67 (within seed spread)'
    assert (
        aggregate.format_delta(2.0, None, 2) == '+2.00 (one seed)' and aggregate.format_delta(13, False, 2) == '+13.00'
    )
    assert (
        aggregate.format_mean_std(65.0, 1.0, 2) == '65.00 ± 1.00'
        and aggregate.format_mean_std(0.8, None, 4) == '0.8000'
    )


def test_study_report_tables(tmp_path):
    descriptions = {'none': 'plain SR (L1)', 'both': 'L1 + att + pred', 'both_joint': 'joint', 'attention': 'att'}
    write_tables(
        ROWS, str(tmp_path), 'python scripts/benchmark.py --preset ablation', [], ('both', 'none'), descriptions
    )
    md = (tmp_path / 'benchmark.md').read_text()
    assert '## Mean ± std over seeds' in md and '| none | frozen | plain SR (L1) | 3 | 65.00 ± 1.00 |' in md
    assert '## Against both (difference of means)' in md and '## Against none (difference of means)' in md
    assert '| attention | frozen | att | 3/3 | -0.67 (within seed spread) |' in md
    assert '| both_joint | adapted | joint | 3/3 | +3.00 |' in md
    assert 'sample standard deviation (ddof=1)' in md and '`adapted` rows' in md and 'net_fer_latest.pth' in md
    assert 'Plain SR vs SR-FER' not in md, 'the matrix comparison is for plain/srfer methods'
    with open(tmp_path / 'benchmark_mean.csv', encoding='utf-8') as f:
        mean = list(csv.DictReader(f))
    assert [r['method'] for r in mean] == ['none', 'both', 'attention', 'both_joint', 'prediction']
    assert mean[0]['seeds'] == '0 1 2' and float(mean[0]['acc_std']) == 1.0 and mean[-1]['acc_std'] == ''
    with open(tmp_path / 'benchmark.csv', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    assert [r['classifier'] for r in rows[9:12]] == ['adapted'] * 3 and rows[0]['seed'] == '0'


def test_study_report_names_the_classifier_when_there_are_several(tmp_path):
    other = [dict(row, fer='mobilenet', acc=row['acc'] - 10) for row in ROWS if row['method'] in ('none', 'both')]
    descriptions = {'none': 'plain SR (L1)', 'both': 'L1 + att + pred'}
    write_tables(ROWS[:6] + other, str(tmp_path), 'srfer benchmark --preset weights', [], ('both',), descriptions)
    md = (tmp_path / 'benchmark.md').read_text()
    assert '| fer | method | classifier | trains | n |' in md
    assert '| mobilenet | none | frozen | plain SR (L1) | 3 | 55.00 ± 1.00 |' in md
    assert '| demo | none | frozen | plain SR (L1) | 3/3 | -13.00 |' in md, 'each classifier against its own reference'
    assert '| mobilenet | none | frozen | plain SR (L1) | 3/3 | -13.00 |' in md


def test_matrix_report_with_seeds(tmp_path):
    rows = [_row(m, s, acc) for s in (0, 1) for m, acc in (('plain', 60.0 + s), ('srfer', 70.0 + 2 * s))]
    write_tables(rows[:2], str(tmp_path), 'one seed')
    md = (tmp_path / 'benchmark.md').read_text()
    assert '| demo | RCAN | 4 | 86.90 | 46.67 | 60.00 | 70.00 | 10.00 |' in md and 'Mean ±' not in md
    assert not (tmp_path / 'benchmark_mean.csv').exists()
    write_tables(rows, str(tmp_path), 'two seeds')
    md = (tmp_path / 'benchmark.md').read_text()
    assert '| demo | RCAN | 4 | 1 | 86.90 | 46.67 | 61.00 | 72.00 | 11.00 |' in md, 'one line per seed'
    assert '| demo | RCAN | 4 | srfer | frozen | 2/2 | +10.50 |' in md, 'srfer against plain, mean over seeds'


def test_niqe_and_degradation_columns_appear_only_when_rows_have_them(tmp_path):
    gan_rows = [
        _row(m, s, acc, niqe=niqe + s, train_degradation='blind_face', test_degradation='blind_face')
        for s in (0, 1)
        for m, acc, niqe in (('plain_sr', 60.0, 7.0), ('esrgan', 62.0, 5.0))
    ]
    write_tables(gan_rows, str(tmp_path), 'gan', [], ('esrgan',), {'plain_sr': 'L1', 'esrgan': 'GAN'})
    md = (tmp_path / 'benchmark.md').read_text()
    assert '| plain_sr | frozen | L1 | 2 | 60.00 ± 0.00 | 86.90 ± 0.00 | 46.67 ± 0.00 | 30.05 ± 0.07 |' in md
    assert '0.8000 ± 0.0000 | 7.50 ± 0.71 |' in md and '| Δ niqe |' in md and '-2.00' in md and 'NIQE' in md
    with open(tmp_path / 'benchmark.csv', encoding='utf-8') as f:
        header = next(csv.reader(f))
    assert header[header.index('ssim') + 1 : header.index('train_s_per_iter')] == [
        'niqe',
        'train_degradation',
        'test_degradation',
    ]
    with open(tmp_path / 'benchmark_mean.csv', encoding='utf-8') as f:
        assert 'niqe_mean' in next(csv.reader(f))
    write_tables(ROWS, str(tmp_path), 'ablation', [], ('both',), {})
    with open(tmp_path / 'benchmark.csv', encoding='utf-8') as f:
        assert 'niqe' not in next(csv.reader(f)), 'tables of other presets keep their columns'
    assert 'niqe' not in (tmp_path / 'benchmark.md').read_text()
