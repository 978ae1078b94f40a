"""A transformer classifier through everything downstream: srfer-test reports, srfer-infer, attention pictures."""

from __future__ import annotations

import csv
import os
import runpy
import sys

import cv2
import pytest
from eval_fixtures import run_srfer_test, tiny_test_setup
from fer_fixtures import REPO_ROOT, TINY_CLASSES, TINY_VIT_FER

from srfer_plugin import infer

VISUALIZE_SCRIPT = os.path.join(REPO_ROOT, 'scripts', 'visualize_attention.py')


@pytest.fixture(scope='module')
def vit_setup(tiny_fer_root, tmp_path_factory):
    return tiny_test_setup(str(tmp_path_factory.mktemp('vit_downstream')), tiny_fer_root, network_fer=TINY_VIT_FER)


def test_srfer_test_reports_with_a_transformer(vit_setup, tmp_path):
    opt_path, _ = vit_setup
    root = run_srfer_test(opt_path, str(tmp_path))
    with open(os.path.join(root, 'summary.csv'), newline='', encoding='utf-8') as f:
        (row,) = list(csv.DictReader(f))
    assert row['num_images'] == '8' and all(row[k] != '' for k in ('acc', 'acc_hr', 'acc_bicubic', 'psnr'))


def test_infer_and_attention_pictures_with_a_transformer(vit_setup, tiny_fer_root, tmp_path, monkeypatch):
    opt_path, net_path = vit_setup
    image = os.path.join(tiny_fer_root, 'val', 'happy', 'happy_000.png')
    lr = cv2.resize(cv2.imread(image), (8, 8), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / 'lr.png'), lr)
    out = tmp_path / 'infer'
    assert (
        infer.main(
            ['-i', str(tmp_path / 'lr.png'), '-o', str(out), '--opt', opt_path, '--device', 'cpu', '--no-progress']
        )
        == 0
    )
    with open(out / 'predictions.csv', newline='', encoding='utf-8') as f:
        (row,) = list(csv.DictReader(f))
    assert row['label'] in TINY_CLASSES and abs(sum(float(row[f'prob_{c}']) for c in TINY_CLASSES) - 1) < 1e-4
    assert cv2.imread(str(out / row['sr_file'])).shape[:2] == (32, 32)

    att = str(tmp_path / 'att')
    argv = ['--opt', opt_path, '--plain-sr-model', net_path, '--images', image, '--out', att, '--device', 'cpu']
    monkeypatch.setattr(sys, 'argv', [VISUALIZE_SCRIPT, *argv])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(VISUALIZE_SCRIPT, run_name='__main__')
    assert exit_info.value.code == 0
    png = cv2.imread(os.path.join(att, 'happy_000_attention.png'))
    assert png.shape[1] == round(5 * 1.6 * 100), 'the image and the 4 block-group maps of the ViT'
