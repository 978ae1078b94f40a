"""One synthetic face: background, head, expression features and lighting, drawn from its parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from srfer_plugin.data.fer_layout import FER7_CLASSES
from srfer_plugin.synthetic.canvas import Canvas, curve, ellipse
from srfer_plugin.synthetic.features import draw_brows, draw_eyes, draw_mouth, draw_nose, draw_wrinkles
from srfer_plugin.synthetic.parameters import sample_expression, sample_identity, sample_scene

_FACE_SCALE = 0.355  # pixels per face unit / image size


def _draw_background(img: np.ndarray, scene: Mapping[str, Any], rng: np.random.Generator) -> None:
    """Fill ``img`` with the scene's gradient and translucent clutter shapes."""
    size = img.shape[0]
    c0, c1 = np.asarray(scene['bg'], np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    t = np.clip(0.5 + xx * math.cos(scene['bg_angle']) + yy * math.sin(scene['bg_angle']), 0, 1)[..., None]
    img[:] = c0 * (1 - t) + c1 * t
    canvas = Canvas(img, (0.0, 0.0), float(size), 0.0)
    for _ in range(scene['bg_blobs']):
        color = rng.uniform(0, 1, 3)
        cx, cy = rng.uniform(0, 1, 2)
        if rng.uniform() < 0.5:
            pts = ellipse(cx, cy, *rng.uniform(0.05, 0.3, 2))
        else:
            w, h = rng.uniform(0.05, 0.4, 2)
            pts = np.array([[cx - w, cy - h], [cx + w, cy - h], [cx + w, cy + h], [cx - w, cy + h]])
        canvas.fill(pts, color, float(rng.uniform(0.1, 0.35)))


def _draw_head(c: Canvas, ident: Mapping[str, Any], rng: np.random.Generator) -> None:
    """Draw shoulders, neck, hair, ears, the face outline and freckles (everything but the features)."""
    skin = np.asarray(ident['skin'])
    hair = np.asarray(ident['hair'])
    rx, ry = ident['face_rx'], ident['face_ry']
    # shoulders and neck
    c.fill(np.array([[-1.6, 3.0], [-1.5, 1.45], [-0.5, 1.05], [0.5, 1.05], [1.5, 1.45], [1.6, 3.0]]), ident['clothes'])
    c.fill(np.array([[-0.36, 0.5], [0.36, 0.5], [0.40, 1.25], [-0.40, 1.25]]), skin * 0.82)
    style = ident['hair_style']
    if style == 2:  # long hair behind the head
        c.fill(np.array([[-rx - 0.18, -0.3], [-rx - 0.25, 1.2], [rx + 0.25, 1.2], [rx + 0.18, -0.3]]), hair)
    if style != 0:
        c.fill(ellipse(0, -0.12, rx + 0.1, ry + 0.1), hair)
    for side in (-1, 1):  # ears
        c.fill(ellipse(side * rx * 0.98, -0.02, 0.1, 0.19), skin * 0.9)
    # face: an ellipse whose lower half narrows towards the chin
    t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    xs, ys = rx * np.cos(t), ry * np.sin(t)
    xs = xs * (1 - ident['chin'] * 0.18 * np.clip(ys / ry, 0, 1) ** 2)
    c.fill(curve(xs, ys), skin)
    if style != 0:  # hair over the top of the forehead
        hl = ident['hairline']
        xs = np.linspace(-rx - 0.1, rx + 0.1, 25)
        top = -0.12 - (ry + 0.1) * np.sqrt(np.clip(1 - (xs / (rx + 0.1)) ** 2, 0, 1))
        edge = hl + 0.12 * (xs / rx) ** 2 + (0.05 * np.sin(xs * 7) if style == 3 else 0)
        c.fill(np.concatenate([curve(xs, top), curve(xs[::-1], edge[::-1])]), hair)
    # freckles (identity detail at the scale of the expression cues)
    for _ in range(ident['freckles']):
        fx, fy = rng.uniform(0.15, 0.6) * rng.choice([-1, 1]), rng.uniform(0.05, 0.35)
        c.fill(ellipse(fx, fy, 0.014, 0.014, 10), skin * 0.7, 0.6)


def render_face(
    identity: Mapping[str, Any], expression: Mapping[str, float], scene: Mapping[str, Any], size: int = 112
) -> np.ndarray:
    """Draw one face.

    Args:
        identity: From :func:`sample_identity`.
        expression: From :func:`sample_expression`.
        scene: From :func:`sample_scene`.
        size: Output height and width in pixels.

    Returns:
        An RGB ``uint8`` image of shape ``(size, size, 3)``.
    """
    rng = np.random.default_rng(scene['clutter_seed'])
    img = np.zeros((size, size, 3), np.float32)
    _draw_background(img, scene, rng)
    center = (size / 2 + scene['shift'][0] * size, size / 2 + scene['shift'][1] * size + 0.02 * size)
    c = Canvas(img, center, size * _FACE_SCALE * scene['scale'], scene['angle'])
    _draw_head(c, identity, rng)
    dx = scene['feature_dx']
    gaze = rng.uniform(-1, 1, 2)
    draw_wrinkles(c, identity, expression, dx, rng)
    draw_brows(c, identity, expression, dx)
    draw_eyes(c, identity, expression, dx, gaze)
    draw_nose(c, identity, expression, dx)
    draw_mouth(c, identity, expression, dx, int(rng.choice([-1, 1])))
    # lighting: directional gradient, brightness and colour tint
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    shade = 1 + scene['light_strength'] * (xx * math.cos(scene['light_dir']) + yy * math.sin(scene['light_dir']))
    img *= (shade * scene['brightness'])[..., None] * np.asarray(scene['tint'], np.float32)
    img += rng.normal(0, scene['noise'], img.shape).astype(np.float32)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def generate_face(label: int, rng: np.random.Generator | int, size: int = 112) -> tuple[np.ndarray, int, dict]:
    """Draw one random face of expression class ``label``.

    Args:
        label: Index into ``FER7_CLASSES``.
        rng: Random stream or an integer seed.
        size: Output height and width in pixels.

    Returns:
        ``(image, label, params)``: the RGB uint8 image, the label, and the drawn parameters
        ``{'class': name, 'expression': {...}, 'identity': {...}, 'scene': {...}}`` (plain Python types).
    """
    if not 0 <= label < len(FER7_CLASSES):
        raise ValueError(f'label {label} is outside [0, {len(FER7_CLASSES)})')
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    expression = sample_expression(label, rng)
    identity = sample_identity(rng)
    scene = sample_scene(rng)
    image = render_face(identity, expression, scene, size)
    params = {'class': FER7_CLASSES[label], 'expression': expression, 'identity': identity, 'scene': scene}
    return image, label, params
