"""SRFERPredictor (the library behind srfer-infer): loading, padding, batching, resizing, attention, errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import yaml
from eval_fixtures import tiny_test_setup
from fer_fixtures import TINY_CLASSES

from srfer_plugin.predictor import (
    InferenceError,
    ScaleMismatchError,
    SRFERPredictor,
    load_sr_network,
)
from srfer_plugin.utils.inference_io import read_lr_image, resolve_class_names

# A tiny SwinIR: window 7, so 16x16 (the old probe size) and most LR sides do not fit it without padding.
TINY_SWINIR = {
    'type': 'SwinIR',
    'upscale': 2,
    'in_chans': 3,
    'img_size': 14,
    'window_size': 7,
    'img_range': 1.0,
    'depths': [1],
    'embed_dim': 12,
    'num_heads': [2],
    'mlp_ratio': 2,
    'upsampler': 'pixelshuffledirect',
    'resi_connection': '1conv',
}


class ShuffleSR(torch.nn.Module):
    """A random conv + pixel shuffle SR network."""

    def __init__(self, scale: int = 2):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
        self.shuffle = torch.nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class TinyFER(torch.nn.Module):
    """A classifier returning ``([feature map], logits)`` that records the size of what it is given."""

    def __init__(self, num_classes: int = 3, input_size: tuple[int, int] | None = None):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(4, num_classes)
        self.input_size = input_size
        self.seen: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        self.seen.append(tuple(x.shape[-2:]))
        feat = torch.relu(self.conv(x))
        return [feat], self.fc(feat.mean(dim=(2, 3)))


def _fake_predictor(**kwargs) -> SRFERPredictor:
    torch.manual_seed(0)
    return SRFERPredictor(ShuffleSR(2), kwargs.pop('fer', TinyFER()), scale=2, **kwargs)


@pytest.fixture(scope='module')
def swinir_weights(tmp_path_factory) -> str:
    from basicsr.archs import build_network

    torch.manual_seed(0)
    net = build_network(dict(TINY_SWINIR))
    path = str(tmp_path_factory.mktemp('swinir') / 'swinir.pth')
    torch.save({'params': net.state_dict()}, path)
    return path


@pytest.fixture(scope='module')
def tiny(tiny_fer_root, tmp_path_factory):
    """The tiny RCAN + ResNet options, their weights and the parsed options."""
    opt_path, net_path = tiny_test_setup(str(tmp_path_factory.mktemp('predictor')), tiny_fer_root)
    return {'opt': yaml.safe_load(open(opt_path, encoding='utf-8')), 'net': net_path}


def test_swinir_with_a_window_that_the_sides_do_not_fit(swinir_weights):
    """The old probe fed 16x16 to the network and crashed on SwinIR; now: one probe, padding, right SR size."""
    predictor = SRFERPredictor.from_options(TINY_SWINIR, swinir_weights, scale=2)
    assert predictor.pad_multiple == 7 and predictor.fer_network is None
    with pytest.raises(RuntimeError):
        predictor.sr_network(torch.zeros(1, 3, 16, 16))  # what the old copy of the probe did
    lr = torch.rand(2, 3, 10, 9)
    sr = predictor.super_resolve(lr)
    assert sr.shape == (2, 3, 20, 18) and 0.0 <= sr.min() and sr.max() <= 1.0
    pred = predictor.predict(lr)
    torch.testing.assert_close(pred.sr, sr)
    assert pred.logits is None and pred.probs is None and pred.labels is None and pred.label_names is None
    fits = torch.rand(1, 3, 14, 21)  # no padding needed: exactly the network's output
    with torch.no_grad():
        torch.testing.assert_close(predictor.super_resolve(fits), predictor.sr_network(fits).clamp(0, 1))
    rng = np.random.default_rng(0)
    results = predictor.predict_images([rng.integers(0, 256, (10, 9, 3), np.uint8), rng.random((5, 5))])
    assert results[0].sr.shape == (20, 18, 3) and results[1].sr.shape == (10, 10)  # 5x5 gray pads past its size
    assert results[0].sr.dtype == np.uint8 and results[0].probs is None and results[0].label is None


def test_wrong_scale_is_a_clear_error(swinir_weights):
    with pytest.raises(ScaleMismatchError, match='upscale factor match the top-level scale') as info:
        SRFERPredictor.from_options(TINY_SWINIR, swinir_weights, scale=4)
    assert isinstance(info.value, InferenceError) and isinstance(info.value, ValueError)


def test_params_ema_is_preferred(tiny, tmp_path):
    opt = tiny['opt']
    good = torch.load(tiny['net'], weights_only=True)['params']
    zeros = {k: torch.zeros_like(v) for k, v in good.items()}
    path = str(tmp_path / 'both.pth')
    torch.save({'params': zeros, 'params_ema': good}, path)
    net = load_sr_network(opt['network_g'], path)
    assert all(torch.equal(v, good[k]) for k, v in net.state_dict().items())
    net = load_sr_network(opt['network_g'], path, param_key='params')
    assert all(not v.any() for v in net.state_dict().values())


def test_ddp_prefix_and_wrong_weights(tiny, tmp_path):
    opt = tiny['opt']
    good = torch.load(tiny['net'], weights_only=True)['params']
    path = str(tmp_path / 'ddp.pth')
    torch.save({'params': {f'module.{k}': v for k, v in good.items()}}, path)
    net = load_sr_network(opt['network_g'], path)
    assert all(torch.equal(v, good[k]) for k, v in net.state_dict().items())
    with pytest.raises(InferenceError, match='do not fit network_g'):
        load_sr_network({**opt['network_g'], 'num_feat': 16}, path)


def test_real_networks_from_options(tiny):
    opt = tiny['opt']
    predictor = SRFERPredictor.from_options(
        opt['network_g'], tiny['net'], opt['network_fer'], scale=4, class_names=TINY_CLASSES
    )
    assert predictor.pad_multiple == 1 and predictor.num_classes == 4
    pred = predictor.predict(torch.rand(2, 3, 8, 6))
    assert pred.sr.shape == (2, 3, 32, 24) and pred.logits.shape == (2, 4)
    torch.testing.assert_close(pred.probs.sum(dim=1), torch.ones(2))
    assert pred.label_names == [TINY_CLASSES[k] for k in pred.labels.tolist()]
    maps, logits = predictor.attention(pred.sr)
    assert len(maps) == 4 and maps[0].shape == (2, 32, 24) and logits.shape == (2, 4)
    torch.testing.assert_close(logits, pred.logits.cpu())


def test_batches_sizes_and_channel_orders():
    """Mixed sizes, grayscale, alpha and 16 bit: batch 2 equals one at a time; RGB input mirrors BGR input."""
    rng = np.random.default_rng(1)
    images = [
        rng.integers(0, 256, (8, 8, 3), np.uint8),
        rng.integers(0, 256, (6, 9), np.uint8),
        rng.integers(0, 256, (8, 8, 4), np.uint8),
        rng.integers(0, 65536, (8, 8, 3), np.uint16),
        rng.random((6, 9, 1)).astype(np.float32),
    ]
    one = _fake_predictor(batch_size=1).predict_images(images)
    two = _fake_predictor(batch_size=2, class_names=['x', 'y', 'z']).predict_images(images)
    assert [r.sr.shape for r in two] == [(16, 16, 3), (12, 18), (16, 16, 3), (16, 16, 3), (12, 18)]
    for a, b in zip(one, two):
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)
        assert np.abs(a.sr.astype(int) - b.sr.astype(int)).max() <= 1
        assert a.label == b.label and a.label_name == f'class_{a.label}' and b.label_name == 'xyz'[b.label]
        assert b.confidence == pytest.approx(float(b.probs.max())) and b.probs.sum() == pytest.approx(1.0, abs=1e-5)
    rgb = _fake_predictor(batch_size=2).predict_images([img[..., [2, 1, 0]] for img in images[:1]], rgb=True)
    np.testing.assert_allclose(rgb[0].probs, two[0].probs, atol=1e-5)
    np.testing.assert_array_equal(rgb[0].sr[..., ::-1], two[0].sr)


def test_stream_reports_bad_images():
    predictor = _fake_predictor(batch_size=4)
    good = np.zeros((8, 8, 3), np.uint8)
    bad = np.zeros((8, 8, 5), np.uint8)
    errors = []
    results = dict(
        predictor.iter_predict_images(
            [('a', good), ('bad', bad), ('b', good)], on_error=lambda k, e: errors.append((k, e))
        )
    )
    assert sorted(results) == ['a', 'b'] and errors[0][0] == ['bad'] and 'unsupported image shape' in str(errors[0][1])
    with pytest.raises(ValueError, match='unsupported image shape'):
        predictor.predict_images([good, bad])


def test_fer_size_and_the_classifiers_own_input_size():
    """--fer-size resizes for a classifier that does not resize by itself; network_fer.input_size wins."""
    predictor = _fake_predictor(fer_size=24)
    predictor.classify(torch.rand(1, 3, 32, 32))
    assert predictor.fer_size == (24, 24) and predictor.fer_network.seen[-1] == (24, 24)
    maps, logits = predictor.attention(torch.rand(2, 3, 32, 32))
    assert maps[0].shape == (2, 24, 24) and logits.shape == (2, 3)

    own = TinyFER(input_size=(20, 20))
    predictor = _fake_predictor(fer=own, fer_size=24)
    assert predictor.fer_size is None and predictor.requested_fer_size == (24, 24)
    predictor.classify(torch.rand(1, 3, 32, 32))
    assert own.seen[-1] == (32, 32), 'the predictor must leave resizing to the classifier'


def test_without_a_classifier_and_bad_settings():
    predictor = SRFERPredictor(ShuffleSR(2), scale=2)
    assert predictor.num_classes is None and predictor.label_names is None
    with pytest.raises(InferenceError, match='no classifier'):
        predictor.classify(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match='2 class_names for a classifier of 3 classes'):
        _fake_predictor(class_names=['a', 'b']).predict(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match='batch_size'):
        SRFERPredictor(ShuffleSR(2), scale=2, batch_size=0)
    fer = TinyFER(num_classes=5)
    assert _fake_predictor(fer=fer).num_classes == 5  # probed: TinyFER has no num_classes attribute


def test_read_lr_image_kinds(tmp_path):
    rng = np.random.default_rng(2)
    cv2.imwrite(str(tmp_path / 'gray.png'), rng.integers(0, 256, (9, 7), np.uint8))
    cv2.imwrite(str(tmp_path / 'alpha.png'), rng.integers(0, 256, (5, 6, 4), np.uint8))
    cv2.imwrite(str(tmp_path / 'deep.png'), rng.integers(0, 65536, (4, 4, 3), np.uint16))
    (tmp_path / 'empty.png').write_bytes(b'')
    assert read_lr_image(str(tmp_path / 'gray.png')).shape == (9, 7)
    assert read_lr_image(str(tmp_path / 'alpha.png')).shape == (5, 6, 3)
    deep = read_lr_image(str(tmp_path / 'deep.png'))
    assert deep.dtype == np.float32 and 0.0 <= deep.min() and deep.max() <= 1.0
    with pytest.raises(ValueError, match='empty file'):
        read_lr_image(str(tmp_path / 'empty.png'))


def test_class_name_sources(tmp_path, capsys):
    checkpoint = tmp_path / 'fer.pth'
    (tmp_path / 'classes.txt').write_text('a\nb\n')
    fer = TinyFER()
    fer.class_names = ['p', 'q', 'r']
    assert resolve_class_names(3, 'x, y ,z', fer, str(checkpoint)) == ['x', 'y', 'z']
    assert resolve_class_names(3, None, fer, str(checkpoint)) == ['p', 'q', 'r']
    assert 'names 2 classes, the classifier has 3' in capsys.readouterr().err
    assert resolve_class_names(2, None, fer, str(checkpoint)) == ['a', 'b']
    assert resolve_class_names(4, None, None, None) == ['class_0', 'class_1', 'class_2', 'class_3']
