"""srfer export and srfer-infer --backend onnxruntime: onnxruntime reproduces torch (tiny random-init networks, CPU).

Tolerances: SR outputs in [0, 1] within 1e-4, logits within 1e-3 (measured: about 1e-7 for both); tap maps within
1e-3 of their largest magnitude.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys

import cv2
import numpy as np
import pytest
import torch
from eval_fixtures import tiny_test_setup
from fer_fixtures import TINY_CLASSES, TINY_SR_ARCHS, TINY_VIT_FER

from srfer_plugin import cli, infer
from srfer_plugin.predictor import InferenceError, SRFERPredictor

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from srfer_plugin.onnx_io import (  # noqa: E402  (after the skip: the onnx extra may be missing)
    LOGITS_TOLERANCE,
    METADATA_FILE,
    SR_TOLERANCE,
    OnnxExportError,
    export_predictor,
    load_onnx_predictor,
)


@pytest.fixture(scope='module')
def exported(tiny_fer_root, tmp_path_factory):
    """The tiny test options (RCAN x4, tiny-data ResNet-18 of 4 classes), exported with taps by ``srfer export``."""
    work = tmp_path_factory.mktemp('onnx')
    opt_path, _ = tiny_test_setup(str(work), tiny_fer_root)
    out = str(work / 'exported')
    argv = sys.argv
    try:
        assert cli.main(['export', '-opt', opt_path, '-o', out, '--with-taps']) == 0
    finally:
        sys.argv = argv
    inputs = work / 'inputs'
    inputs.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in (('a.png', (8, 8, 3)), ('b.png', (8, 8, 3)), ('c.png', (10, 7, 3)), ('gray.png', (9, 9))):
        cv2.imwrite(str(inputs / name), rng.integers(0, 256, shape, dtype=np.uint8))
    return {'opt': opt_path, 'out': out, 'inputs': inputs, 'work': work}


def _torch_predictor(opt_path: str) -> SRFERPredictor:
    args = infer.build_parser().parse_args(['-i', 'x', '-o', 'y', '--opt', opt_path, '--device', 'cpu'])
    return infer.build_predictor(args, infer.read_model_options(opt_path), 'cpu')


def _rows(path: str) -> list[dict[str, str]]:
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.DictReader(f))


def test_export_writes_graphs_and_metadata(exported, one_thread):
    meta = json.load(open(os.path.join(exported['out'], METADATA_FILE), encoding='utf-8'))
    assert meta['sr']['scale'] == 4 and meta['sr']['type'] == 'RCAN' and meta['opset'] == 17
    assert meta['fer']['class_names'] == list(TINY_CLASSES) and meta['fer']['input_size'] is None
    assert meta['fer']['outputs'] == ['logits', 'tap_0', 'tap_1', 'tap_2', 'tap_3']
    assert meta['fer']['taps'] == ['layer1', 'layer2', 'layer3', 'layer4']
    assert meta['check']['sr_max_abs_diff'] <= SR_TOLERANCE and meta['check']['logits_max_abs_diff'] <= LOGITS_TOLERANCE

    # dynamic batch (traced with 1) and size, straight through onnxruntime
    import onnxruntime as ort

    torch_pred = _torch_predictor(exported['opt'])
    lr = torch.rand(3, 3, 10, 7, generator=torch.Generator().manual_seed(3))
    sr_session = ort.InferenceSession(os.path.join(exported['out'], 'sr.onnx'), providers=['CPUExecutionProvider'])
    (sr,) = sr_session.run(None, {'lr': lr.numpy()})
    expected_sr = torch_pred.super_resolve(lr)
    assert sr.shape == (3, 3, 40, 28) and np.abs(sr - expected_sr.numpy()).max() <= SR_TOLERANCE
    fer_session = ort.InferenceSession(os.path.join(exported['out'], 'fer.onnx'), providers=['CPUExecutionProvider'])
    logits, *taps = fer_session.run(None, {'image': expected_sr.numpy()})
    with torch.no_grad():
        feats, expected_logits = torch_pred.fer_network(expected_sr)
    assert np.abs(logits - expected_logits.numpy()).max() <= LOGITS_TOLERANCE
    assert [t.shape for t in taps] == [tuple(f.shape) for f in feats]
    for tap, feat in zip(taps, feats):
        np.testing.assert_allclose(tap, feat.numpy(), atol=1e-3 * float(feat.abs().max()))


def test_infer_backends_agree(exported, tmp_path, capsys):
    rows = {}
    for backend in ('torch', 'onnxruntime'):
        out = str(tmp_path / backend)
        argv = ['-i', str(exported['inputs']), '-o', out, '--batch-size', '2', '--device', 'cpu', '--no-progress']
        argv += ['--opt', exported['opt']] if backend == 'torch' else ['--backend', backend, '--onnx', exported['out']]
        assert infer.main(argv) == 0
        rows[backend] = _rows(os.path.join(out, 'predictions.csv'))
    assert 'Processed 4 image(s)' in capsys.readouterr().out
    torch_rows, ort_rows = rows['torch'], rows['onnxruntime']
    assert list(torch_rows[0]) == list(ort_rows[0])
    assert [r['label'] for r in torch_rows] == [r['label'] for r in ort_rows]
    probs = [np.array([[float(r[f'prob_{c}']) for c in TINY_CLASSES] for r in rs]) for rs in (torch_rows, ort_rows)]
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-5)
    for t, o in zip(torch_rows, ort_rows):
        a = cv2.imread(os.path.join(tmp_path, 'torch', t['sr_file']), cv2.IMREAD_UNCHANGED).astype(int)
        b = cv2.imread(os.path.join(tmp_path, 'onnxruntime', o['sr_file']), cv2.IMREAD_UNCHANGED).astype(int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1


@pytest.mark.parametrize('resize', ['input_size', 'fer_size'])
def test_swinir_window_padding_and_vit(resize, tmp_path, one_thread):
    """SwinIR (window 4) on sides the window does not divide, and the tiny ViT at a fixed 32 px input."""
    from basicsr.archs import build_network

    torch.manual_seed(0)
    sr_net = build_network(dict(TINY_SR_ARCHS['SwinIR']))
    fer_opt = {**TINY_VIT_FER, 'input_size': 32} if resize == 'input_size' else dict(TINY_VIT_FER)
    fer_net = build_network(dict(fer_opt))
    fer_size = 32 if resize == 'fer_size' else None
    torch_pred = SRFERPredictor(sr_net, fer_net, 4, 'cpu', 4, fer_size=fer_size, class_names=list(TINY_CLASSES))
    meta = export_predictor(torch_pred, str(tmp_path), TINY_SR_ARCHS['SwinIR'], fer_opt, with_taps=True)
    assert meta['fer']['input_size'] == [32, 32] and meta['fer']['resize']['source'] == (
        'network_fer.input_size' if resize == 'input_size' else 'fer_size'
    )
    assert meta['check']['sr_max_abs_diff'] <= SR_TOLERANCE and meta['check']['logits_max_abs_diff'] <= LOGITS_TOLERANCE

    ort_pred = SRFERPredictor.from_onnx(str(tmp_path), batch_size=3)
    assert ort_pred.label_names == list(TINY_CLASSES) and ort_pred.pad_multiple == 4
    lr = torch.rand(3, 3, 9, 7, generator=torch.Generator().manual_seed(1))  # batch 3, padded to 12x8
    expected, got = torch_pred.predict(lr), ort_pred.predict(lr)
    assert got.sr.shape == (3, 3, 36, 28)
    assert (got.sr - expected.sr).abs().max() <= SR_TOLERANCE
    assert (got.logits - expected.logits).abs().max() <= LOGITS_TOLERANCE
    assert got.label_names == expected.label_names


def test_vit_taps_need_a_fixed_size(tmp_path, one_thread):
    from basicsr.archs import build_network

    torch.manual_seed(0)
    predictor = SRFERPredictor(build_network(dict(TINY_SR_ARCHS['RCAN'])), build_network(dict(TINY_VIT_FER)), 4)
    with pytest.raises(OnnxExportError, match='--fer-size'):
        export_predictor(predictor, str(tmp_path), with_taps=True)


def test_clear_errors(exported, tmp_path, monkeypatch, capsys):
    base = ['-i', str(exported['inputs'] / 'a.png'), '--no-progress', '--backend', 'onnxruntime']
    assert infer.main([*base, '-o', str(tmp_path / 'o1')]) == 2
    assert 'needs --onnx DIR' in capsys.readouterr().err

    # no metadata: named
    bare = tmp_path / 'bare'
    shutil.copytree(exported['out'], bare)
    os.remove(bare / METADATA_FILE)
    assert infer.main([*base, '-o', str(tmp_path / 'o2'), '--onnx', str(bare)]) == 2
    assert str(bare / METADATA_FILE) in capsys.readouterr().err

    # a .onnx file of another export: named
    other = tmp_path / 'other'
    shutil.copytree(exported['out'], other)
    meta = json.load(open(other / METADATA_FILE, encoding='utf-8'))
    meta['export_id'] = 'another-export'
    json.dump(meta, open(other / METADATA_FILE, 'w', encoding='utf-8'))
    with pytest.raises(InferenceError, match=f'{other / "sr.onnx"}: does not belong to its {METADATA_FILE}'):
        load_onnx_predictor(str(other))

    # onnxruntime not installed: the extra is named
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    assert infer.main([*base, '-o', str(tmp_path / 'o3'), '--onnx', exported['out']]) == 2
    assert "pip install 'srfer_plugin[onnx]'" in capsys.readouterr().err


def test_inference_speed_side_by_side(capsys, one_thread):
    from srfer_plugin.tools import benchmark_speed

    argv = ['--inference', '--network', 'demo-small', '--batch', '2', '--steps', '1', '--warmup', '0', '--lr-size', '8']
    results = benchmark_speed.main(argv)
    assert list(results['backends']) == ['torch', 'onnxruntime'] and results['same_labels']
    assert results['max_sr_diff'] <= SR_TOLERANCE and results['speedup'] > 0
    out = capsys.readouterr().out
    assert 'faces/s' in out and 'ratio onnxruntime / torch' in out


@pytest.mark.parametrize('arch', sorted(TINY_SR_ARCHS))
def test_every_sr_arch_takes_any_batch_and_size(arch, tmp_path, one_thread):
    from basicsr.archs import build_network

    torch.manual_seed(0)
    network_g = TINY_SR_ARCHS[arch]
    torch_pred = SRFERPredictor(build_network(dict(network_g)), None, 4, 'cpu', int(network_g.get('window_size', 1)))
    meta = export_predictor(torch_pred, str(tmp_path), network_g)
    assert meta['fer'] is None and meta['check']['sr_max_abs_diff'] <= SR_TOLERANCE
    ort_pred = load_onnx_predictor(str(tmp_path))
    lr = torch.rand(3, 3, 11, 6, generator=torch.Generator().manual_seed(2))
    assert (ort_pred.super_resolve(lr) - torch_pred.super_resolve(lr)).abs().max() <= SR_TOLERANCE


def test_a_second_export_keeps_the_first(exported, tmp_path):
    """Exporting into a folder that holds an export moves the earlier files to ``archived_<time>/``."""
    out = tmp_path / 'again'
    argv = sys.argv
    try:
        assert cli.main(['export', '-opt', exported['opt'], '-o', str(out), '--no-fer', '--no-check']) == 0
        first = (out / 'sr.onnx').read_bytes()
        assert cli.main(['export', '-opt', exported['opt'], '-o', str(out), '--no-fer', '--no-check']) == 0
    finally:
        sys.argv = argv
    (archive,) = out.glob('archived_*')
    assert (archive / 'sr.onnx').read_bytes() == first and (archive / METADATA_FILE).is_file()
    assert (out / 'sr.onnx').is_file()
