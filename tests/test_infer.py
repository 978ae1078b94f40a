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


def test_swinir_window_that_the_sides_do_not_fit(tmp_path, capsys):
    """SwinIR with window_size 7 (the old 16x16 scale probe crashed on it) on a 10x9 LR face: padded, 20x18 SR."""
    from basicsr.archs import build_network

    network_g = {
        'type': 'SwinIR',
        'upscale': 2,
        'img_size': 14,
        'window_size': 7,
        'embed_dim': 12,
        'depths': [1],
        'num_heads': [2],
        'mlp_ratio': 2,
        'upsampler': 'pixelshuffledirect',
    }
    torch.manual_seed(0)
    weights = str(tmp_path / 'swinir.pth')
    torch.save({'params': build_network(dict(network_g)).state_dict()}, weights)
    cv2.imwrite(str(tmp_path / 'lr.png'), np.random.default_rng(0).integers(0, 256, (10, 9, 3), dtype=np.uint8))
    out = str(tmp_path / 'out')
    argv = ['-i', str(tmp_path / 'lr.png'), '-o', out, '--sr-model', weights, '--network-g', yaml.safe_dump(network_g)]
    assert infer.main(argv + ['--scale', '2', '--no-progress']) == 0
    (row,) = _rows(os.path.join(out, 'predictions.csv'))
    assert (row['width'], row['height']) == ('9', '10') and 'label' not in row
    assert cv2.imread(os.path.join(out, row['sr_file'])).shape == (20, 18, 3)
    assert 'SR only' in capsys.readouterr().err
    assert infer.main(argv + ['--scale', '4', '--no-progress']) == 2
    err = capsys.readouterr().err
    assert 'turns a 21x21 input into 42x42' in err and 'make --scale match the network' in err


@pytest.mark.parametrize(
    ('extra', 'message'),
    [
        (['--min-face', '40'], '--min-face only apply with --detect'),
        (['--every', '5', '--lr-size', '16'], '--lr-size, --every only apply with --detect'),
        (['--backend', 'onnxruntime', '--onnx', 'x', '--pad-multiple', '8'], '--pad-multiple: the exported sr.onnx'),
        (['--fer-size', '-1'], 'argument --fer-size: -1 is below 0'),
    ],
)
def test_settings_that_would_be_ignored_are_refused(tmp_path, capsys, extra, message):
    (tmp_path / 'face.png').write_bytes(cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    with pytest.raises(SystemExit) as exit_info:
        infer.main(['-i', str(tmp_path / 'face.png'), '-o', str(tmp_path / 'out'), *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_photos_are_read_upright_as_the_datasets_read_them(tmp_path):
    """A phone photo stored sideways (EXIF orientation 6) went through inference sideways (no face found)."""
    from PIL import Image

    from srfer_plugin.utils.inference_io import read_lr_image

    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:, :8] = 255
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / 'sideways.jpg', exif=exif.tobytes(), quality=95)
    upright = read_lr_image(str(tmp_path / 'sideways.jpg'))
    as_trained = cv2.imread(str(tmp_path / 'sideways.jpg'), cv2.IMREAD_COLOR)  # how PairedFERDataset decodes
    assert upright.shape == as_trained.shape == (32, 16, 3)
    assert np.abs(upright * 255 - as_trained).max() <= 1
