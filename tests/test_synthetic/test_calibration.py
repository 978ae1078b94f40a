"""Tests of the calibration-check helpers (srfer_plugin.synthetic.calibration) shared by two scripts."""

from __future__ import annotations

import json

import numpy as np

from srfer_plugin.data.degradations import bicubic_roundtrip
from srfer_plugin.synthetic import generate_face
from srfer_plugin.synthetic.calibration import accuracy_and_confusion, print_and_save, restored_uint8


def test_accuracy_and_confusion():
    labels = np.array([0, 1, 2, 2, 1])
    preds = np.array([0, 2, 2, 2, 1])
    accuracy, matrix = accuracy_and_confusion(labels, preds, 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 2]]
    assert accuracy == 80.0 == float((preds == labels).mean() * 100)  # as the scripts computed it before


def test_restored_uint8_is_the_rounded_roundtrip():
    img, _, _ = generate_face(2, 3, size=48)
    restored = restored_uint8(img, 4)
    assert restored.shape == img.shape and restored.dtype == np.uint8
    expected = np.clip(np.round(bicubic_roundtrip(img, 4) * 255), 0, 255).astype(np.uint8)
    assert np.array_equal(restored, expected)


def test_print_and_save(tmp_path, capsys):
    result = {'hr_accuracy': 50.0, 'confusion_bicubic': [[1, 0], [2, 3]]}
    print_and_save(result, 'title:', None)
    assert capsys.readouterr().out == 'title:\n   [1, 0]\n   [2, 3]\n'  # print('  ', row), as before
    out = str(tmp_path / 'result.json')
    print_and_save(result, 'named:', out, ['neutral', 'happy'])
    assert capsys.readouterr().out == 'named:\n    neutral [1, 0]\n      happy [2, 3]\n'
    with open(out, encoding='utf-8') as f:
        assert json.load(f) == result
