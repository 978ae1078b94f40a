"""Evaluation reports: write_fer_reports on known records, and srfer-test end to end on tiny data."""

from __future__ import annotations

import csv
import glob
import os

import numpy as np
import pytest
from eval_fixtures import run_srfer_test, tiny_test_setup

from srfer_plugin.utils.fer_report import confusion_matrix, gap_closed, per_class_accuracy, write_fer_reports


def _read_csv(path: str) -> list[list[str]]:
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.reader(f))


def _summary(root: str) -> dict[str, dict[str, str]]:
    with open(os.path.join(root, 'summary.csv'), newline='', encoding='utf-8') as f:
        return {row['dataset']: row for row in csv.DictReader(f)}


def _check_consistency(folder: str, summary_row: dict[str, str]) -> None:
    """Per-class accuracies and the overall accuracies must follow from the confusion matrices."""
    per_class = _read_csv(os.path.join(folder, 'per_class.csv'))
    header, rows = per_class[0], per_class[1:]
    for kind, metric in (('sr', 'acc'), ('hr', 'acc_hr'), ('bicubic', 'acc_bicubic')):
        table = _read_csv(os.path.join(folder, f'confusion_{kind}.csv'))
        assert table[0][0] == 'true\\pred' and table[0][-1] == 'total'
        matrix = np.array([[int(v) for v in row[1:-1]] for row in table[1:]])
        assert [row[0] for row in table[1:]] == [row[0] for row in rows]
        assert [int(row[-1]) for row in table[1:]] == list(matrix.sum(axis=1))
        col = header.index(metric)
        for i, row in enumerate(rows):
            support = matrix[i].sum()
            assert int(row[1]) == support
            if support:
                assert float(row[col]) == pytest.approx(100.0 * matrix[i, i] / support, abs=0.01)
            else:
                assert row[col] == ''
        overall = 100.0 * np.trace(matrix) / matrix.sum()
        assert float(summary_row[metric]) == pytest.approx(overall, abs=1e-3)
        assert os.path.getsize(os.path.join(folder, f'confusion_{kind}.png')) > 1000


def test_metrics_helpers():
    matrix = confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], 4)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    acc = per_class_accuracy(matrix)
    assert acc[:3].tolist() == [50.0, 100.0, 0.0] and np.isnan(acc[3])
    assert gap_closed(80.0, 90.0, 60.0) == pytest.approx(2 / 3)
    assert gap_closed(80.0, 60.0, 60.0) is None


def test_write_fer_reports_known_records(tmp_path):
    root = str(tmp_path / 'results' / 'exp')
    records = {
        'path': [f'img{i}.png' for i in range(6)],
        'label': [0, 0, 1, 1, 2, 2],
        'pred_sr': [0, 1, 1, 1, 2, 0],
        'pred_hr': [0, 0, 1, 1, 2, 2],
        'pred_bicubic': [1, 1, 1, 0, 2, 0],
    }
    metrics = {'psnr': 25.0, 'acc': 100 * 4 / 6, 'acc_hr': 100.0, 'acc_bicubic': 100 * 2 / 6}
    names = ['neutral', 'happy', 'sad', 'surprise']  # 'surprise' has no test image
    write_fer_reports(root, 'set_a', metrics, records, names)
    write_fer_reports(root, 'set_b', {'psnr': 20.0}, None, None)  # no labels: summary row only
    write_fer_reports(root, 'set_a', metrics, records, names)  # tested again: replaces its row

    summary = _summary(root)
    assert list(summary) == ['set_b', 'set_a']
    row = summary['set_a']
    assert row['num_images'] == '6' and float(row['gap_closed']) == pytest.approx(0.5)
    assert float(row['mean_class_acc']) == pytest.approx((50 + 100 + 50) / 3, abs=1e-3)
    assert summary['set_b']['psnr'] == '20.0000' and summary['set_b']['acc'] == ''
    folder = os.path.join(root, 'fer', 'set_a')
    _check_consistency(folder, row)
    assert _read_csv(os.path.join(folder, 'per_class.csv'))[4] == ['surprise', '0', '', '', '']
    predictions = _read_csv(os.path.join(folder, 'predictions.csv'))
    assert predictions[0] == ['path', 'label', 'pred_sr', 'pred_hr', 'pred_bicubic']
    assert predictions[6] == ['img5.png', 'sad', 'neutral', 'sad', 'neutral']
    md = open(os.path.join(root, 'summary.md'), encoding='utf-8').read()
    assert '| set_a | 6 |' in md and '## set_a' in md and 'fer/set_a/confusion_sr.png' in md


def test_srfer_test_writes_reports(tiny_fer_root, tmp_path):
    opt_path, _ = tiny_test_setup(
        str(tmp_path), tiny_fer_root, {'test_2': {'name': 'tiny_fer_val_bnj', 'degradation': 'blur_noise_jpeg'}}
    )
    root = run_srfer_test(opt_path, str(tmp_path))
    summary = _summary(root)
    assert list(summary) == ['tiny_fer_val', 'tiny_fer_val_bnj']
    for name, row in summary.items():
        assert row['num_images'] == '8'
        for key in ('psnr', 'ssim', 'acc', 'acc_hr', 'acc_bicubic', 'mean_class_acc'):
            assert row[key] != '', key
        _check_consistency(os.path.join(root, 'fer', name), row)
        assert len(_read_csv(os.path.join(root, 'fer', name, 'predictions.csv'))) == 9
    # the same HR images, differently degraded: HR predictions agree, LR-based ones need not
    hr = [_read_csv(os.path.join(root, 'fer', n, 'confusion_hr.csv')) for n in summary]
    assert hr[0] == hr[1]
    assert os.path.isfile(os.path.join(root, 'summary.md'))
    assert len(glob.glob(os.path.join(root, 'visualization', 'tiny_fer_val', '*.png'))) == 8


def test_reports_of_images_whose_names_are_not_utf8(tmp_path):
    """``predictions.csv`` crashed with UnicodeEncodeError on a Latin-1 file name, after the whole test pass."""
    root = str(tmp_path / 'results' / 'exp')
    records = {
        'path': ['caf\udce9.png', 'ok.png'],
        'label': [0, 1],
        'pred_sr': [0, 1],
        'pred_hr': [0, 1],
        'pred_bicubic': [1, 1],
    }
    write_fer_reports(root, 'set_a', {'acc': 100.0, 'acc_hr': 100.0, 'acc_bicubic': 50.0}, records, ['a', 'b'])
    text = open(os.path.join(root, 'fer', 'set_a', 'predictions.csv'), encoding='utf-8').read()
    assert 'caf\\xe9.png' in text and 'ok.png' in text
