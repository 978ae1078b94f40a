"""Attention pictures: the library grid and scripts/visualize_attention.py."""

from __future__ import annotations

import os
import runpy
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml
from eval_fixtures import tiny_test_setup
from fer_fixtures import REPO_ROOT

from srfer_plugin.utils.visualize import AttentionRow, attention_grid, attention_heatmaps, attention_rows

SCRIPT = os.path.join(REPO_ROOT, 'scripts', 'visualize_attention.py')


def run_script(argv: list[str], monkeypatch) -> int:
    """Run scripts/visualize_attention.py as ``python SCRIPT argv...`` in this process; return its exit status."""
    monkeypatch.setattr(sys, 'argv', [SCRIPT, *argv])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(SCRIPT, run_name='__main__')
    return exit_info.value.code


def test_attention_grid_png_size(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        AttentionRow(name, rng.random((32, 32, 3)), [rng.random((32, 32)) for _ in range(3)], 'happy 0.50')
        for name in ('HR', 'bicubic')
    ]
    path = str(tmp_path / 'grid' / 'a.png')
    picture = attention_grid(rows, path, title='a.png', cell_size=1.5, dpi=80)
    png = cv2.imread(path)
    assert png.shape == picture.shape == (round((2 * 1.5 + 0.4) * 80), round(4 * 1.5 * 80), 3)
    assert attention_grid(rows[:1]).shape == (160, 640, 3)
    with pytest.raises(ValueError, match='same number of stage maps'):
        attention_grid([rows[0], AttentionRow('x', rows[0].image, rows[0].maps[:1])])


@pytest.fixture(scope='module')
def tiny_setup(tiny_fer_root, tmp_path_factory):
    return tiny_test_setup(str(tmp_path_factory.mktemp('visualize')), tiny_fer_root)


def test_attention_rows_from_a_classifier(tiny_setup):
    from basicsr.archs import build_network

    opt = yaml.safe_load(open(tiny_setup[0], encoding='utf-8'))
    fer = build_network(opt['network_fer'])
    images = torch.rand(2, 3, 32, 32)
    maps, logits = attention_heatmaps(fer, images)
    assert len(maps) == 4 and logits.shape == (2, 4)
    assert maps[0].shape == (2, 32, 32) and 0.0 <= maps[0].min() and maps[0].max() <= 1.0
    rows = attention_rows(fer, {'HR': images[0], 'SR': images[1:2]}, ['a', 'b', 'c', 'd'], label=1)
    assert [r.name for r in rows] == ['HR', 'SR'] and rows[0].image.shape == (32, 32, 3)
    assert rows[0].caption.split()[0] in 'abcd' and rows[0].caption.split()[-1] in ('ok', 'wrong')


def test_visualize_attention_script(tiny_setup, tiny_fer_root, tmp_path, capsys, monkeypatch):
    opt_path, net_path = tiny_setup
    out = str(tmp_path / 'att')
    image = os.path.join(tiny_fer_root, 'val', 'happy', 'happy_000.png')
    argv = ['--opt', opt_path, '--plain-sr-model', net_path, '--images', image, '--out', out, '--device', 'cpu']
    assert run_script(argv, monkeypatch) == 0
    printed = capsys.readouterr().out
    assert 'HR -> ' in printed and 'plain SR -> ' in printed and 'SR-FER -> ' in printed
    png = cv2.imread(os.path.join(out, 'happy_000_attention.png'))
    assert png.shape == (round((4 * 1.6 + 0.4) * 100), round(5 * 1.6 * 100), 3)  # 4 rows, image + 4 stages
