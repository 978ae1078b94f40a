"""RandomLowResolution (srfer_plugin.data.fer_transforms): the mmpretrain transform of the LR-trained classifiers.

The transform, its options' errors, the shipped configs that use it, and a tiny ``srfer train-fer`` run with it.
"""

from __future__ import annotations

import glob
import json
import os

import cv2
import numpy as np
import pytest
from basicsr.utils.matlab_functions import imresize
from fer_fixtures import REPO_ROOT

from srfer_plugin.data.degradations import bicubic_roundtrip, degrade, rng_for_image
from srfer_plugin.data.fer_transforms import RandomLowResolution, degrade_by_factor

FER_DIR = os.path.join(REPO_ROOT, 'srfer_plugin', 'options', 'fer')
CONFIGS = sorted(
    os.path.basename(p)
    for pattern in ('*_multires*.py', '*_lr_x*.py')
    for p in glob.glob(os.path.join(FER_DIR, pattern))
)


@pytest.fixture
def face() -> np.ndarray:
    """A 112 px uint8 BGR image with structure (not constant), as LoadImageFromFile gives."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (112, 112, 3)).astype(np.float32), (0, 0), 1)
    return np.clip(img * 2 - 128, 0, 255).astype(np.uint8)


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def test_factor_4_is_bicubic_down_and_up(face):
    out = RandomLowResolution(factors=[4])({'img': face.copy()})
    assert out['lowres_factor'] == 4.0 and out['img'].shape == face.shape and out['img'].dtype == np.uint8
    assert np.abs(out['img'].astype(int) - face).mean() > 5, 'the face is degraded'
    np.testing.assert_array_equal(out['img'], _u8(bicubic_roundtrip(face, 4)))
    # the same LR face as PairedFERDataset's bicubic pipeline, cv2-bicubic upsampled
    lr = degrade(face.astype(np.float32) / 255.0, 4)
    np.testing.assert_array_equal(
        out['img'], _u8(np.clip(cv2.resize(lr, (112, 112), interpolation=cv2.INTER_CUBIC), 0, 1))
    )
    x8 = RandomLowResolution(factor_range=(8, 8))({'img': face.copy()})['img']
    assert np.abs(x8.astype(int) - face).mean() > np.abs(out['img'].astype(int) - face).mean(), 'x8 loses more'


def test_factor_1_leaves_the_face_unchanged(face):
    for transform in (RandomLowResolution(factors=[1]), RandomLowResolution(factors=[4], prob=0.0)):
        out = transform({'img': face.copy()})
        np.testing.assert_array_equal(out['img'], face)
        assert out['lowres_factor'] == 1.0


def test_fractional_factor_and_gray_and_float(face):
    out = RandomLowResolution(factor_range=(3.3, 3.3))({'img': face.copy()})['img']
    lr = np.clip(imresize(face.astype(np.float32) / 255.0, 1 / 3.3), 0, 1)
    assert lr.shape[:2] == (34, 34)
    np.testing.assert_array_equal(out, _u8(np.clip(cv2.resize(lr, (112, 112), interpolation=cv2.INTER_CUBIC), 0, 1)))
    gray = RandomLowResolution(factors=[4])({'img': face[..., 0].copy()})['img']
    assert gray.shape == (112, 112) and gray.dtype == np.uint8
    np.testing.assert_array_equal(gray, _u8(bicubic_roundtrip(face[..., :1], 4).reshape(112, 112)))
    as_float = RandomLowResolution(factors=[4])({'img': face.astype(np.float32)})['img']
    assert as_float.dtype == np.float32 and np.abs(as_float - out).mean() < 255


def test_random_factors_lie_in_range_and_repeat_with_a_seed(face):
    uniform = RandomLowResolution(factor_range=(1.0, 8.0))
    np.random.seed(3)
    drawn = [uniform.draw_factor() for _ in range(200)]
    assert all(1.0 <= f <= 8.0 for f in drawn) and max(drawn) - min(drawn) > 5, 'spread over [1, 8]'
    np.random.seed(3)
    assert [uniform.draw_factor() for _ in range(200)] == drawn
    choice = RandomLowResolution(factors=[2, 4, 8])
    np.random.seed(0)
    picks = [choice.draw_factor() for _ in range(100)]
    assert set(picks) == {2.0, 4.0, 8.0}
    blind = RandomLowResolution(factor_range=(2.0, 6.0), degradation='blind_face')
    outs = []
    for _ in range(2):
        np.random.seed(7)
        outs.append(blind({'img': face.copy()}))
    assert outs[0]['lowres_factor'] == outs[1]['lowres_factor'] and 2.0 <= outs[0]['lowres_factor'] <= 6.0
    np.testing.assert_array_equal(outs[0]['img'], outs[1]['img'])


def test_blind_face_degrades_more_than_bicubic(face):
    np.random.seed(1)
    blind = RandomLowResolution(factors=[4], degradation='blind_face')({'img': face.copy()})['img']
    bicubic = RandomLowResolution(factors=[4])({'img': face.copy()})['img']
    assert blind.shape == face.shape and not np.array_equal(blind, bicubic)
    # an integer factor runs the dataset's pipeline itself (the same draws from the same generator)
    steps = RandomLowResolution(factors=[4], degradation='blind_face').steps
    img = face.astype(np.float32) / 255.0
    a = degrade_by_factor(img, 4.0, steps, rng_for_image('x'))
    np.testing.assert_array_equal(a, degrade(img, 4, 'blind_face', rng_for_image('x')))
    # a fractional one: blur at HR, bicubic by the factor, noise and JPEG at LR
    b = degrade_by_factor(img, 5.5, steps, rng_for_image('x'))
    assert b.shape == (21, 21, 3) and b.dtype == np.float32 and 0.0 <= b.min() and b.max() <= 1.0


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'factor_range': (8, 1)}, 'RandomLowResolution.factor_range: low 8 is above high 1'),
        ({'factor_range': (0.5, 4)}, 'RandomLowResolution.factor_range: 0.5 is not a down-sampling factor'),
        ({'factor_range': 4}, 'RandomLowResolution.factor_range: 4 is not a pair'),
        ({'factors': [2, 0]}, 'RandomLowResolution.factors[1]: 0 is not a down-sampling factor'),
        ({'factors': '4'}, "RandomLowResolution.factors: '4' is not a non-empty list"),
        ({'factors': []}, 'RandomLowResolution.factors: [] is not a non-empty list'),
        ({'factors': [4], 'factor_range': (1, 8)}, 'give factor_range or factors, not both'),
        ({'degradation': 'nope'}, "RandomLowResolution.degradation: unknown scenario 'nope'"),
        ({'degradation': 'realesrgan'}, 'RandomLowResolution.degradation[1] (resize): pipelines with resize steps'),
        ({'degradation': [{'type': 'noise', 'sigma': 3}]}, 'needs exactly one {type: bicubic} step'),
        ({'prob': 1.5}, 'RandomLowResolution.prob: 1.5 is not a probability'),
    ],
)
def test_bad_options_name_the_key_and_value(kwargs, message):
    with pytest.raises(ValueError) as err:
        RandomLowResolution(**kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize('name', CONFIGS)
def test_configs_build_their_pipelines(name):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import TRANSFORMS

    init_default_scope('mmpretrain')
    cfg = Config.fromfile(os.path.join(FER_DIR, name))
    transforms = [TRANSFORMS.build(step) for step in cfg.train_dataloader.dataset.pipeline]
    (lowres,) = [t for t in transforms if isinstance(t, RandomLowResolution)]
    stem = name[: -len('.py')]
    if '_lr_x' in stem:
        assert lowres.factors == (float(stem.split('_lr_x')[1].split('_')[0]),)
    else:
        assert lowres.factor_range == (1.0, 8.0)
    assert lowres.degradation == ('blind_face' if stem.endswith('_blind') else 'bicubic')
    assert all('RandomLowResolution' not in str(step) for step in cfg.test_dataloader.dataset.pipeline), 'HR test'
    base = Config.fromfile(os.path.join(FER_DIR, 'resnet18slim_fer7_demo.py' if 'slim' in stem else 'resnet18_fer7.py'))
    assert cfg.model == base.model, 'the same classifier, only trained on other faces'


def test_the_baseline_configs_ship():
    assert {'resnet18slim_fer7_demo_multires.py', 'resnet18slim_fer7_demo_lr_x4.py', 'resnet18_fer7_multires.py',
            'resnet18_fer7_lr_x4.py'} <= set(CONFIGS)  # fmt: skip


def test_train_fer_runs_with_the_transform(tmp_path, monkeypatch):
    """``srfer train-fer`` on a tiny config whose pipeline degrades every face (1 epoch, 32 px faces at 48 px)."""
    from srfer_plugin.synthetic import write_synthetic_dataset
    from srfer_plugin.tools import train_fer as train_fer_cli

    data_root = str(tmp_path / 'faces')
    write_synthetic_dataset(data_root, seed=0, size=48, num_train=4, num_val=2, num_test=2)

    config = tmp_path / 'tiny_multires.py'
    config.write_text(
        f"_base_ = ['{os.path.join(FER_DIR, 'resnet18_fer7_tiny.py')}']\n"
        "custom_imports = dict(imports=['srfer_plugin.data.fer_transforms'], allow_failed_imports=False)\n"
        'train_pipeline = [\n'
        "    dict(type='LoadImageFromFile'),\n"
        "    dict(type='Resize', scale=(48, 48)),\n"
        "    dict(type='RandomLowResolution', factor_range=(2.0, 8.0), degradation='blind_face'),\n"
        "    dict(type='PackInputs'),\n"
        ']\n'
        'train_dataloader = dict(dataset=dict(pipeline=train_pipeline))\n'
    )
    factors: list[float] = []
    original = RandomLowResolution.transform

    def spy(self, results):
        results = original(self, results)
        factors.append(results['lowres_factor'])
        return results

    monkeypatch.setattr(RandomLowResolution, 'transform', spy)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', os.environ.get('CUDA_VISIBLE_DEVICES', ''))  # restored after
    work = tmp_path / 'work'
    argv = [str(config), '--data-root', data_root, '--work-dir', str(work), '--device', 'cpu', '--seed', '0',
            '--max-epochs', '1']  # fmt: skip
    assert train_fer_cli.main(argv) == 0
    assert len(factors) >= 12 and all(2.0 <= f <= 8.0 for f in factors), 'every training face is degraded'
    summary = json.loads((work / 'fer_test_accuracy.json').read_text())
    assert os.path.isfile(summary['fer_final']) and summary['accuracy_top1'] is not None
