"""Tests of one synthetic face: its parameters (srfer_plugin.synthetic.parameters) and drawing (render, features)."""

from __future__ import annotations

import json

import numpy as np

from srfer_plugin import synthetic as sf
from srfer_plugin.data.fer_layout import FER7_CLASSES


def test_image_shape_dtype_and_params():
    img, label, params = sf.generate_face(3, sf.face_rng(0, 'train', 3), size=112)
    assert img.shape == (112, 112, 3) and img.dtype == np.uint8
    assert label == 3 and params['class'] == 'surprise'
    assert set(sf.EXPRESSION_PARAMS) <= set(params['expression'])
    json.dumps(params)  # plain python types only
    assert img.std() > 10  # not a blank image


def test_labels_match_drawn_expression():
    rng = np.random.default_rng(0)
    draws = {name: [sf.sample_expression(label, rng) for _ in range(200)] for label, name in enumerate(FER7_CLASSES)}

    def values(name, key):
        return np.array([d[key] for d in draws[name]])

    neutral_curve = values('neutral', 'mouth_curve')
    assert (values('happy', 'mouth_curve') > neutral_curve.max()).all()
    assert (values('sad', 'mouth_curve') < neutral_curve.min()).all()
    assert (values('happy', 'mouth_curve') > 0).all() and (values('sad', 'mouth_curve') < 0).all()
    neutral_eye = values('neutral', 'eye_open')
    for wide in ('surprise', 'fear'):
        assert (values(wide, 'eye_open') > neutral_eye.max()).all()
        assert (values(wide, 'brow_raise') > values('neutral', 'brow_raise').max()).all()
        assert (values(wide, 'mouth_open') > 0.02).all()
    assert (values('neutral', 'mouth_open') < 0.02).all()
    assert (values('angry', 'brow_tilt') < 0).all() and (values('sad', 'brow_tilt') > 0).all()
    assert (values('angry', 'wrinkle_glabella') > 0.5).all()
    assert (values('disgust', 'wrinkle_nose') > 0.5).all()
    assert (values('surprise', 'wrinkle_forehead') > 0.5).all()
    assert (values('neutral', 'intensity') == 0).all() and (values('happy', 'intensity') > 0.5).all()
    # the same draws come back from generate_face
    _, label, params = sf.generate_face(1, 123)
    assert params['expression'] == sf.sample_expression(1, np.random.default_rng(123))


def test_expression_changes_pixels_only_in_the_face():
    rng = np.random.default_rng(5)
    identity, scene = sf.sample_identity(rng), sf.sample_scene(rng)
    neutral = sf.render_face(identity, sf.sample_expression(0, np.random.default_rng(1)), scene)
    happy = sf.render_face(identity, sf.sample_expression(1, np.random.default_rng(1)), scene)
    diff = np.abs(neutral.astype(int) - happy.astype(int)).sum(-1)
    assert diff.max() > 60  # the expression is visible
    assert diff[:, :15].max() == 0 and diff[:, -15:].max() == 0  # background is untouched
