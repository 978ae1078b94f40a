"""``python -m srfer_plugin.demo --full``: the flag parses, and the report adds the joint row scored by its classifier.

No training: the report is written from given rows.
"""

from __future__ import annotations

import csv

from srfer_plugin import demo

ROWS = {
    'hr': {'acc': 86.9},
    'bicubic': {'acc': 46.67, 'psnr': 29.2, 'ssim': 0.8018},
    'plain_sr': {'acc': 66.9, 'psnr': 31.31, 'ssim': 0.8497},
    'srfer': {'acc': 76.9, 'psnr': 30.65, 'ssim': 0.8318},
}


def test_full_parses():
    assert demo.parse_args(['--full', '--quick']).full is True
    assert demo.parse_args([]).full is False


def test_report_without_and_with_the_joint_row(tmp_path):
    demo.write_report(str(tmp_path / 'frozen'), ROWS, {'num_test_images': 420})
    frozen = (tmp_path / 'frozen' / 'report.md').read_text()
    assert 'srfer_joint' not in frozen and 'adapted' not in frozen
    joint = dict(ROWS, srfer_joint={'acc': 79.5, 'psnr': 30.6, 'ssim': 0.83, 'acc_hr': 90.0, 'acc_bicubic': 50.0})
    demo.write_report(str(tmp_path / 'full'), joint, {'num_test_images': 420})
    report = (tmp_path / 'full' / 'report.md').read_text()
    assert '| srfer_joint | 79.50 | 30.60 | 0.8300 |' in report
    assert 'scored by its own adapted classifier' in report and '90.00 % on HR' in report
    assert '+2.60 acc points, -0.05 dB PSNR' in report
    assert [line for line in report.splitlines() if 'srfer_joint' not in line] == frozen.splitlines()
    with open(tmp_path / 'full' / 'report.csv', newline='') as f:
        assert [row['method'] for row in csv.DictReader(f)] == ['hr', 'bicubic', 'plain_sr', 'srfer', 'srfer_joint']
