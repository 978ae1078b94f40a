"""The demo's --quick path, shrunk to a few images and iterations, writes a well-formed report; --full adds its
rows."""

from __future__ import annotations

import csv
import os

import cv2
import pytest

from srfer_plugin import demo


def test_quick_demo_writes_a_well_formed_report(tmp_path, monkeypatch):
    monkeypatch.setitem(
        demo.PRESETS, 'quick', {'num_train': 4, 'num_val': 1, 'num_test': 2, 'fer_epochs': 1, 'sr_iters': 3}
    )
    out = tmp_path / 'results' / 'demo'
    rows = demo.main(['--quick', '--full', '--out', str(out), '--exp-root', str(tmp_path), '--num-grid-faces', '2'])

    with open(out / 'report.csv', newline='') as f:
        table = list(csv.DictReader(f))
    assert [row['method'] for row in table] == ['hr', 'bicubic', 'plain_sr', 'srfer', 'srfer_joint', 'lr_classifier']
    assert list(table[0]) == ['method', 'acc', 'psnr', 'ssim']
    for row in table:
        assert 0.0 <= float(row['acc']) <= 100.0
    for row in table[1:]:
        assert float(row['psnr']) > 5.0 and 0.0 < float(row['ssim']) <= 1.0
    assert table[0]['psnr'] == '' and float(table[3]['acc']) == round(rows['srfer']['acc'], 4)
    # --full: the bicubic faces read by the classifier trained on x4 LR faces
    lr_row = table[-1]
    assert float(lr_row['acc']) == round(rows['lr_classifier']['acc'], 4) and lr_row['psnr'] == table[1]['psnr']
    assert os.path.isfile(tmp_path / 'experiments' / 'demo_fer_quick_lr_x4' / 'fer_final.pth')

    report = (out / 'report.md').read_text()
    assert '| srfer |' in report and 'gap closed' in report and '![faces](faces.png)' in report
    assert 'lr_classifier (--full) reads the bicubic faces with a classifier trained on x4 LR faces' in report
    for picture in ('accuracy.png', 'faces.png'):
        image = cv2.imread(str(out / picture))
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    # the SR runs are real BasicSR trainings whose option files can be rerun by hand
    assert sorted(os.listdir(out / 'options')) == [
        'demo_plain_sr_quick_seed0.yml',
        'demo_srfer_joint_lr0.0001_quick_seed0.yml',
        'demo_srfer_quick_seed0.yml',
    ]
    latest = tmp_path / 'experiments' / 'demo_srfer_quick_seed0' / 'models' / 'net_g_latest.pth'
    assert os.path.isfile(latest)
    # a trained network is reused, not trained again
    monkeypatch.setattr(demo, 'run_training', lambda *args, **kwargs: pytest.fail('trained again'))
    opt = demo.sr_options('srfer', str(tmp_path / 'faces'), 'fer.pth', 3, 0, 'quick')
    assert demo.train_sr(opt, str(tmp_path / 'again'), str(tmp_path), 'SR-FER') == str(latest)
