"""srfer-infer: mixed sizes, grayscale, alpha, corrupt files, globs, explicit networks, exit codes."""

from __future__ import annotations

import csv
import os

import cv2
import numpy as np
import pytest
import torch
import yaml
from eval_fixtures import tiny_test_setup
from fer_fixtures import TINY_CLASSES

from srfer_plugin import infer


@pytest.fixture(scope='module')
def setup(tiny_fer_root, tmp_path_factory):
    """Options + weights, and an input folder of LR faces of several kinds."""
    work = tmp_path_factory.mktemp('infer')
    opt_path, net_path = tiny_test_setup(str(work), tiny_fer_root)
    inputs = work / 'inputs'
    (inputs / 'more').mkdir(parents=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(inputs / 'a.png'), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    cv2.imwrite(str(inputs / 'b.png'), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    cv2.imwrite(str(inputs / 'c.jpg'), rng.integers(0, 256, (10, 7, 3), dtype=np.uint8))
    cv2.imwrite(str(inputs / 'gray.png'), rng.integers(0, 256, (9, 9), dtype=np.uint8))
    cv2.imwrite(str(inputs / 'alpha.png'), rng.integers(0, 256, (8, 8, 4), dtype=np.uint8))
    (inputs / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n not really')
    (inputs / 'empty.jpg').write_bytes(b'')
    (inputs / 'notes.txt').write_text('not an image')  # not an image extension: ignored in folders
    cv2.imwrite(str(inputs / 'more' / 'd.png'), rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    return {'work': work, 'opt': opt_path, 'net': net_path, 'inputs': inputs}


def _rows(path: str) -> list[dict[str, str]]:
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.DictReader(f))


def test_folder_and_glob_with_bad_files(setup, tmp_path, capsys):
    out = str(tmp_path / 'out')
    inputs = setup['inputs']
    argv = ['-i', str(inputs), '-i', str(inputs / 'm*' / '*.png'), '-i', str(inputs / 'missing.png')]
    argv += ['-o', out, '--opt', setup['opt'], '--batch-size', '2', '--device', 'cpu', '--no-progress']
    assert infer.main(argv) == 0
    printed = capsys.readouterr()
    assert 'Processed 6 image(s)' in printed.out and 'Skipped 3 input(s)' in printed.out

    rows = _rows(os.path.join(out, 'predictions.csv'))
    assert [os.path.basename(r['file']) for r in rows] == ['a.png', 'alpha.png', 'b.png', 'c.jpg', 'gray.png', 'd.png']
    assert list(rows[0])[:7] == ['file', 'sr_file', 'width', 'height', 'label', 'label_index', 'confidence']
    assert [k for k in rows[0] if k.startswith('prob_')] == [f'prob_{c}' for c in TINY_CLASSES]  # from --opt
    for row in rows:
        probs = np.array([float(row[f'prob_{c}']) for c in TINY_CLASSES])
        assert probs.sum() == pytest.approx(1.0, abs=1e-4)
        assert row['label'] == TINY_CLASSES[int(probs.argmax())] == TINY_CLASSES[int(row['label_index'])]
        sr = cv2.imread(os.path.join(out, row['sr_file']), cv2.IMREAD_UNCHANGED)
        assert sr.shape[:2] == (4 * int(row['height']), 4 * int(row['width']))
        assert sr.ndim == (2 if row['sr_file'].endswith('gray.png') else 3)
    assert rows[-1]['sr_file'] == os.path.join('sr', 'more', 'd.png')  # relative to the glob's fixed part

    skipped = {os.path.basename(r['file']): r['reason'] for r in _rows(os.path.join(out, 'skipped.csv'))}
    assert skipped == {
        'missing.png': 'does not exist',
        'corrupt.png': 'not a readable image (OpenCV cannot decode it)',
        'empty.jpg': 'empty file',
    }


def test_batches_match_single_images(setup, tmp_path):
    """Same-size grouping must not change results: batch 8 (a, alpha, b together) equals batch 1."""
    probs = []
    for batch in (1, 8):
        out = str(tmp_path / f'out{batch}')
        argv = ['-i', str(setup['inputs'] / '*.png'), '-o', out, '--opt', setup['opt'], '--batch-size', str(batch)]
        assert infer.main(argv + ['--no-progress']) == 0
        rows = _rows(os.path.join(out, 'predictions.csv'))
        probs.append(np.array([[float(r[f'prob_{c}']) for c in TINY_CLASSES] for r in rows]))
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-5)


def test_explicit_networks_and_classes(setup, tmp_path):
    opt = yaml.safe_load(open(setup['opt'], encoding='utf-8'))
    net_yaml = str(tmp_path / 'net_g.yml')
    with open(net_yaml, 'w', encoding='utf-8') as f:
        yaml.safe_dump(opt['network_g'], f)
    out = str(tmp_path / 'out')
    argv = ['-i', str(setup['inputs'] / 'a.png'), '-o', out, '--sr-model', setup['net'], '--network-g', net_yaml]
    argv += ['--scale', '4', '--fer-config', opt['network_fer']['config'], '--num-classes', '3']
    argv += ['--classes', 'x,y,z', '--fer-size', '24', '--no-progress']
    assert infer.main(argv) == 0
    rows = _rows(os.path.join(out, 'predictions.csv'))
    assert len(rows) == 1 and [k for k in rows[0] if k.startswith('prob_')] == ['prob_x', 'prob_y', 'prob_z']


def test_params_ema_is_preferred(setup, tmp_path):
    opt = yaml.safe_load(open(setup['opt'], encoding='utf-8'))
    good = torch.load(setup['net'], weights_only=True)['params']
    zeros = {k: torch.zeros_like(v) for k, v in good.items()}
    path = str(tmp_path / 'both.pth')
    torch.save({'params': zeros, 'params_ema': good}, path)
    net = infer.load_sr_network(opt['network_g'], path)
    assert all(torch.equal(v, good[k]) for k, v in net.state_dict().items())
    net = infer.load_sr_network(opt['network_g'], path, param_key='params')
    assert all(not v.any() for v in net.state_dict().values())


def test_nothing_processed_fails(setup, tmp_path, capsys):
    out = str(tmp_path / 'out')
    bad = [str(setup['inputs'] / 'corrupt.png'), str(setup['inputs'] / 'empty.jpg')]
    assert infer.main(['-i', bad[0], '-i', bad[1], '-o', out, '--opt', setup['opt'], '--no-progress']) == 1
    assert 'Skipped 2 input(s)' in capsys.readouterr().out
    assert infer.main(['-i', str(setup['inputs'] / 'nothing*.png'), '-o', out, '--opt', setup['opt']]) == 2
    assert 'no input images found' in capsys.readouterr().err
    argv = ['-i', str(setup['inputs'] / 'a.png'), '-o', out, '--opt', setup['opt'], '--scale', '2']
    assert infer.main(argv) == 2
    assert 'make --scale match the network' in capsys.readouterr().err
