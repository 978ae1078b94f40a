"""Real-world degradation steps on BasicSR's functions: shapes, determinism, equality with BasicSR, checks."""

from __future__ import annotations

import math
import os
import random
import runpy

import cv2
import numpy as np
import pytest
import yaml
from basicsr.data.degradations import (
    circular_lowpass_kernel,
    random_add_gaussian_noise,
    random_add_poisson_noise,
    random_mixed_kernels,
)
from fer_fixtures import REPO_ROOT

from srfer_plugin.data.degradations import (
    SCENARIOS,
    degrade,
    describe_pipeline,
    downsample_bicubic,
    normalize_pipeline,
    rng_for_image,
)
from srfer_plugin.data.paired_fer_dataset import PairedFERDataset
from srfer_plugin.data.realworld_degradations import KERNEL_TYPES, draw_seed, random_kernel

BICUBIC = {'type': 'bicubic'}
KERNEL_BLUR = {
    'type': 'kernel_blur',
    'kernel_list': list(KERNEL_TYPES),
    'kernel_prob': [1, 1, 1, 1, 1, 1],
    'kernel_size': 11,
    'sigma_x': [0.5, 2.0],
    'sigma_y': [0.5, 2.0],
    'betag': [0.5, 4.0],
    'betap': [1.0, 2.0],
}
NEW_STEPS = {
    'kernel_blur': KERNEL_BLUR,
    'sinc': {'type': 'sinc', 'cutoff': [0.6, 1.2], 'kernel_size': [7, 13]},
    'poisson_noise': {'type': 'poisson_noise', 'scale': [0.5, 2.0], 'gray_prob': 0.5},
    'realesrgan_noise': {'type': 'realesrgan_noise', 'sigma': [5, 20], 'poisson_scale': [0.5, 2.0], 'gray_prob': 0.5},
    'resize': {'type': 'resize', 'scale': [0.4, 0.8]},
}
OLD_STEPS = {
    'blur': {'type': 'blur', 'sigma': 1.5},
    'noise': {'type': 'noise', 'sigma': 10},
    'jpeg': {'type': 'jpeg', 'quality': 20},
}
REAL_WORLD = ('blind_face', 'realesrgan')


def _image(size: int = 48, seed: int = 0) -> np.ndarray:
    """A textured HR image with values inside (0, 1): every degradation changes it visibly."""
    img = np.random.default_rng(seed).random((size, size, 3), dtype=np.float32)
    return (0.1 + 0.8 * cv2.GaussianBlur(img, (5, 5), 1.0)).astype(np.float32)


def _pipeline(step: dict) -> list[dict]:
    return [step, BICUBIC] if step['type'] == 'resize' else [BICUBIC, step]


def _seed_globals(seed: int) -> None:
    np.random.seed(seed)
    random.seed(seed)


@pytest.mark.parametrize('scale', [2, 4])
@pytest.mark.parametrize('name', sorted(NEW_STEPS) + list(REAL_WORLD))
def test_shapes_and_ranges(name, scale):
    spec = name if name in REAL_WORLD else _pipeline(NEW_STEPS[name])
    img, changes = _image(), []
    for key in ('a.png', 'b.png', 'c.png'):
        lq = degrade(img, scale, spec, rng_for_image(key, 1))
        assert lq.shape == (48 // scale, 48 // scale, 3) and lq.dtype == np.float32
        assert 0.0 <= lq.min() and lq.max() <= 1.0
        changes.append(np.abs(lq - downsample_bicubic(img, scale)).max())
    assert max(changes) > 1e-2  # not every draw: a narrow generalized Gaussian kernel may be a near-identity


@pytest.mark.parametrize('name', REAL_WORLD)
def test_test_sets_degrade_reproducibly(name):
    img = _image()
    lq = degrade(img, 4, name, rng_for_image('happy/1.png', 0))
    assert np.array_equal(lq, degrade(img, 4, name, rng_for_image('happy/1.png', 0)))
    assert not np.array_equal(lq, degrade(img, 4, name, rng_for_image('happy/2.png', 0)))
    assert not np.array_equal(lq, degrade(img, 4, name, rng_for_image('happy/1.png', 1)))


def test_global_random_states_are_untouched():
    _seed_globals(123)
    np_state, py_state = np.random.get_state(), random.getstate()
    lq = degrade(_image(), 4, 'realesrgan', rng_for_image('a.png'))
    after = np.random.get_state()
    assert random.getstate() == py_state
    assert all(np.array_equal(a, b) for a, b in zip(after, np_state))
    _seed_globals(7)  # and the LR does not depend on them
    assert np.array_equal(lq, degrade(_image(), 4, 'realesrgan', rng_for_image('a.png')))


@pytest.mark.parametrize('seed', range(6))
def test_kernel_blur_is_basicsrs_random_mixed_kernels(seed):
    kernel = random_kernel(KERNEL_BLUR, np.random.default_rng(seed))
    _seed_globals(draw_seed(np.random.default_rng(seed)))  # the first and only draw of this step
    expected = random_mixed_kernels(
        list(KERNEL_TYPES), [1] * 6, 11, (0.5, 2.0), (0.5, 2.0), (-math.pi, math.pi), (0.5, 4.0), (1.0, 2.0)
    )
    assert kernel.shape == (11, 11) and np.array_equal(kernel, expected)
    img = _image()  # applied with filter2D (reflect-101) on the HR image, then downsampled
    blurred = np.clip(cv2.filter2D(img, -1, expected, borderType=cv2.BORDER_REFLECT_101), 0, 1)
    lq = degrade(img, 2, [KERNEL_BLUR, BICUBIC], np.random.default_rng(seed))
    assert np.array_equal(lq, downsample_bicubic(blurred, 2))


def test_kernel_blur_sinc_choice_and_odd_sizes():
    step = dict(KERNEL_BLUR, sinc_prob=1.0)
    rng = np.random.default_rng(5)
    rng.uniform()  # the sinc choice
    cutoff = rng.uniform(math.pi / 3, math.pi)  # kernel_size 11 < 13: Real-ESRGAN's [pi/3, pi]
    assert np.array_equal(random_kernel(step, np.random.default_rng(5)), circular_lowpass_kernel(cutoff, 11))
    sizes = {random_kernel(dict(KERNEL_BLUR, kernel_size=[7, 21]), rng_for_image(str(i))).shape for i in range(100)}
    assert sizes == {(k, k) for k in range(7, 22, 2)}


@pytest.mark.parametrize('seed', range(3))
def test_poisson_noise_is_basicsrs(seed):
    img = _image()
    lq = degrade(img, 2, _pipeline(NEW_STEPS['poisson_noise']), np.random.default_rng(seed))
    lr = downsample_bicubic(img, 2)
    _seed_globals(draw_seed(np.random.default_rng(seed)))
    assert np.array_equal(lq, random_add_poisson_noise(lr, (0.5, 2.0), gray_prob=0.5).astype(np.float32))


def test_realesrgan_noise_picks_gaussian_or_poisson():
    img, lr = _image(), downsample_bicubic(_image(), 2)
    step = {'type': 'realesrgan_noise', 'sigma': 20, 'poisson_scale': 1.0, 'gaussian_prob': 1.0}
    lq = degrade(img, 2, _pipeline(step), np.random.default_rng(0))
    rng = np.random.default_rng(0)
    rng.uniform()  # the Gaussian-or-Poisson choice
    _seed_globals(draw_seed(rng))
    assert np.array_equal(lq, random_add_gaussian_noise(lr, (20, 20), gray_prob=0).astype(np.float32))
    assert 15 / 255 < np.std(lq - lr) < 25 / 255  # sigma on the 0-255 scale, as for the `noise` step
    lq = degrade(img, 2, _pipeline(dict(step, gaussian_prob=0.0)), np.random.default_rng(0))
    rng = np.random.default_rng(0)
    rng.uniform()
    _seed_globals(draw_seed(rng))
    assert np.array_equal(lq, random_add_poisson_noise(lr, (1.0, 1.0), gray_prob=0).astype(np.float32))


@pytest.mark.parametrize('name', sorted(NEW_STEPS) + sorted(OLD_STEPS))
def test_prob_zero_skips_and_one_applies(name):
    step = {**NEW_STEPS, **OLD_STEPS}[name]
    img, plain = _image(), downsample_bicubic(_image(), 4)
    assert np.array_equal(degrade(img, 4, _pipeline(dict(step, prob=0.0)), rng_for_image('a.png')), plain)
    assert np.abs(degrade(img, 4, _pipeline(dict(step, prob=1.0)), rng_for_image('a.png')) - plain).max() > 1e-3


def _blur_noise_jpeg_by_hand(img: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    """``blur_noise_jpeg`` rebuilt from its definition: the draws of the pipeline before real-world steps."""
    sigma = rng.uniform(0.2, 2.0)
    ksize = 2 * int(np.ceil(3 * sigma)) + 1
    img = cv2.GaussianBlur(img, (ksize, ksize), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    img = downsample_bicubic(img, scale)
    img = np.clip(img + rng.normal(0.0, rng.uniform(1.0, 10.0) / 255.0, img.shape).astype(np.float32), 0, 1)
    quality = int(round(rng.uniform(30, 95)))
    _, buf = cv2.imencode(
        '.jpg', np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0


@pytest.mark.parametrize('scale', [2, 4])
def test_existing_pipelines_draw_as_before(scale):
    img = _image()
    for key in ('a.png', 'sad/b.png'):
        expected = _blur_noise_jpeg_by_hand(img, scale, rng_for_image(key, 3))
        assert np.array_equal(degrade(img, scale, 'blur_noise_jpeg', rng_for_image(key, 3)), expected)
    # the bicubic step from the HR size is still the MATLAB-style one
    assert np.array_equal(degrade(img, scale, 'bicubic'), downsample_bicubic(img, scale))


def test_bicubic_after_resize_makes_the_lr_size():
    img = _image()
    for factor in (0.37, 0.9, 1.3):
        lq = degrade(img, 4, [{'type': 'resize', 'scale': factor, 'modes': ['area']}, BICUBIC])
        assert lq.shape == (12, 12, 3)
    lq = degrade(img, 4, [{'type': 'resize', 'scale': 0.5, 'base': 'lr'}, BICUBIC])  # 6x6, then up to 12x12
    up = cv2.resize(cv2.resize(img, (6, 6), interpolation=cv2.INTER_AREA), (12, 12), interpolation=cv2.INTER_CUBIC)
    assert lq.shape == (12, 12, 3)
    assert np.allclose(
        degrade(img, 4, [{'type': 'resize', 'scale': 0.5, 'base': 'lr', 'modes': ['area']}, BICUBIC]), np.clip(up, 0, 1)
    )


def _kb(**extra) -> list[dict]:
    return [dict(KERNEL_BLUR, **extra), BICUBIC]


BAD_SPECS = [
    (
        _kb(kernel_list=['iso', 'box'], kernel_prob=[1, 1]),
        r"\[0\]\.kernel_list: unknown kernel type 'box'.*plateau_aniso",
    ),
    (_kb(kernel_prob=[1, 1]), r'\[0\]\.kernel_prob: expected 6'),
    (_kb(kernel_prob=[1, 1, 1, 1, 1, -1]), r'\[0\]\.kernel_prob'),
    (_kb(kernel_prob=[0] * 6), r'\[0\]\.kernel_prob'),
    (_kb(kernel_size=10), r'\[0\]\.kernel_size'),
    (_kb(kernel_size=[6, 21]), r'\[0\]\.kernel_size'),
    ([{'type': 'sinc', 'cutoff': 1.0, 'kernel_size': 8}, BICUBIC], r'\[0\]\.kernel_size'),
    (_kb(prob=1.5), r'\[0\]\.prob'),
    (_kb(sinc_prob=-0.1), r'\[0\]\.sinc_prob'),
    ([BICUBIC, {'type': 'jpeg', 'quality': 50, 'prob': 2}], r'\[1\]\.prob'),
    (_kb(sigma_x=[-1.0, 2.0]), r'\[0\]\.sigma_x.*outside'),
    (_kb(sigma_y=0), r'\[0\]\.sigma_y.*outside'),
    (_kb(betag=[2.0, 4.0]), r'\[0\]\.betag'),
    ([{'type': 'blur', 'sigma': -1}, BICUBIC], r'\[0\]\.sigma.*outside'),
    # the plain blur step's kernel_size: the same check, from 3 (a 1x1 kernel does not blur; 2 became 3 silently)
    *(
        ([{'type': 'blur', 'sigma': 2.0, 'kernel_size': size}, BICUBIC], r'\[0\]\.kernel_size: expected an odd size')
        for size in (0, 1, 2, -3, 'big', 5.0, True, [9, 3], [3, 8], [1, 5], [3, 5, 7])
    ),
    ([BICUBIC, {'type': 'noise', 'sigma': [-5, 5]}], r'\[1\]\.sigma.*outside'),
    ([BICUBIC, {'type': 'realesrgan_noise', 'sigma': -1, 'poisson_scale': 1}], r'\[1\]\.sigma.*outside'),
    ([BICUBIC, {'type': 'realesrgan_noise', 'sigma': 1, 'poisson_scale': -1}], r'\[1\]\.poisson_scale'),
    ([BICUBIC, {'type': 'poisson_noise', 'scale': [-1, 1]}], r'\[1\]\.scale.*outside'),
    ([BICUBIC, {'type': 'sinc', 'cutoff': [0, 1]}], r'\[1\]\.cutoff.*outside'),
    ([BICUBIC, {'type': 'sinc', 'cutoff': 3.5}], r'\[1\]\.cutoff.*outside'),
    ([{'type': 'resize', 'scale': 0}, BICUBIC], r'\[0\]\.scale.*outside'),
    ([{'type': 'resize', 'scale': 0.5, 'modes': ['nearest']}, BICUBIC], r"\[0\]\.modes: unknown mode 'nearest'"),
    ([{'type': 'resize', 'scale': 0.5, 'base': 'hr'}, BICUBIC], r'\[0\]\.base'),
    ([BICUBIC, {'type': 'jpeg', 'quality': [30, 101]}], r'\[1\]\.quality.*outside'),
    ([BICUBIC, {'type': 'poisson_noise', 'scale': 1, 'gray_prob': 1.5}], r'\[1\]\.gray_prob'),
    (
        [BICUBIC, {'type': 'realesrgan_noise', 'sigma': 1, 'poisson_scale': 1, 'gaussian_prob': 3}],
        r'\[1\]\.gaussian_prob',
    ),
    ([BICUBIC, {'type': 'resize', 'scale': 0.5}], r'\[1\] \(resize\): resize steps must come before'),
    ([{'type': 'kernel_blur', 'kernel_list': ['iso']}, BICUBIC], r"\[0\] \(kernel_blur\): missing key 'sigma_x'"),
    (_kb(sigma=1.0), r"\[0\] \(kernel_blur\): unknown keys \['sigma'\]"),
    ([{'type': 'bicubic', 'prob': 0.5}], r"\[0\] \(bicubic\): unknown keys \['prob'\]"),
]


@pytest.mark.parametrize('spec, match', BAD_SPECS)
def test_bad_steps_are_rejected_by_name(spec, match):
    with pytest.raises(ValueError, match=r'datasets\.train\.degradation' + match):
        normalize_pipeline(spec, 'datasets.train.degradation')


def test_fixed_values_and_pi_written_in_yaml_are_accepted():
    spec = yaml.safe_load(
        '[{type: kernel_blur, kernel_list: [aniso], sigma_x: 1.0, sigma_y: 2.0, rotation: 0.5},'
        ' {type: bicubic}, {type: sinc, cutoff: [1.0472, 3.1416]}]'
    )
    lq = degrade(_image(), 2, spec, rng_for_image('a.png'))
    assert lq.shape == (24, 24, 3)


@pytest.mark.parametrize('name', REAL_WORLD)
def test_scenarios_describe_and_keep_resize_before_bicubic(name):
    text = describe_pipeline(name)
    assert text.startswith('kernel_blur(') and text.count('bicubic') >= 1
    kinds = [step['type'] for step in SCENARIOS[name]]
    assert 'resize' not in kinds[kinds.index('bicubic') :]


def test_make_lr_and_dataset_with_real_world_scenarios(tiny_fer_root, tmp_path):
    main = runpy.run_path(os.path.join(REPO_ROOT, 'scripts', 'make_lr.py'))['main']
    meta = os.path.join(tiny_fer_root, 'meta_info_val.txt')
    for name in REAL_WORLD:
        dst = str(tmp_path / name)
        assert main(['--src', tiny_fer_root, '--meta', meta, '--dst', dst, '--scenario', name, '--no-progress']) == 0
        record = yaml.safe_load(open(os.path.join(dst, 'degradation.yml'), encoding='utf-8'))
        assert record['degradation'] == normalize_pipeline(name) and record['num_images'] == 8
        opt = {'name': 'x', 'phase': 'val', 'dataroot_gt': tiny_fer_root, 'meta_info_file': meta, 'scale': 4}
        on_the_fly = PairedFERDataset(dict(opt, degradation=name))
        from_disk = PairedFERDataset(dict(opt, dataroot_lq=dst))
        for i in (0, 5):
            assert np.abs(on_the_fly[i]['lq'].numpy() - from_disk[i]['lq'].numpy()).max() <= 0.5 / 255 + 1e-6
    train = PairedFERDataset(dict(opt, phase='train', degradation='realesrgan'))
    assert train[0]['lq'].shape == (3, 8, 8)
