"""Synthetic expression faces: a deterministic, download-free FER dataset for tests and demos.

Every face is drawn with anti-aliased OpenCV primitives from three parameter groups:

* identity (face shape, skin tone, hair, eye spacing, age wrinkles, freckles),
* scene (pose: rotation/shift/scale, lighting, background clutter, noise),
* expression (eyebrow height/tilt/arch, eye openness, mouth curvature/opening/width, teeth, lip press,
  upper-lip raise and expression wrinkles), drawn from continuous per-class distributions.

The expression lives in fine facial detail (thin brows, eyelids, lip lines, teeth, wrinkles), so it reads clearly
at 112x112 and is weakened, not erased, after x4 bicubic downsampling. The calibration is recorded in
``docs/synthetic_faces.md``.

The dataset is written in the layout of :mod:`srfer_plugin.data.fer_layout`. Image ``i`` of a split has label
``i % 7`` and is drawn from its own random stream ``(seed, split, i)``, so a larger dataset with the same seed
extends a smaller one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from srfer_plugin.data.fer_layout import (
    CLASSES_FILE,
    FER7_CLASSES,
    meta_info_name,
    read_classes,
    read_meta_info,
    write_classes,
    write_meta_info,
)

__all__ = [
    'GENERATOR_VERSION',
    'MANIFEST_NAME',
    'SPLITS',
    'EXPRESSION_PARAMS',
    'NEUTRAL_EXPRESSION',
    'sample_expression',
    'sample_identity',
    'sample_scene',
    'render_face',
    'generate_face',
    'face_rng',
    'write_synthetic_dataset',
    'ensure_synthetic_dataset',
    'bicubic_roundtrip',
]

# Bump whenever the drawing or the parameter distributions change: cached datasets are then regenerated.
GENERATOR_VERSION = 1
MANIFEST_NAME = 'synthetic_faces.json'
SPLITS: tuple[str, ...] = ('train', 'val', 'test')
_SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}

# Expression parameters of a neutral face. Lengths are in face units (1 unit ~ half the face width).
NEUTRAL_EXPRESSION: dict[str, float] = {
    'brow_raise': 0.0,  # brow height above its rest position (+ up)
    'brow_tilt': 0.0,  # inner brow end above the outer end (+ inner up, as in sad/fear; - V shape, as in angry)
    'brow_arch': 0.03,  # curvature of the brow (+ arched)
    'eye_open': 0.42,  # eye height / eye width
    'lower_lid': 0.0,  # lower-lid raise (cheek push, squint)
    'mouth_curve': 0.0,  # mouth-corner elevation (+ smile, - frown)
    'mouth_open': 0.0,  # vertical mouth opening
    'mouth_width': 1.0,  # mouth width relative to the identity's rest width
    'teeth_upper': 0.0,  # visible upper teeth (0..1)
    'teeth_lower': 0.0,  # visible lower teeth (0..1)
    'lip_press': 0.0,  # thinned, pressed lips (0..1)
    'upper_lip_raise': 0.0,  # one-sided upper-lip raise (0..1)
    'wrinkle_forehead': 0.0,  # horizontal forehead lines (0..1)
    'wrinkle_glabella': 0.0,  # vertical lines between the brows (0..1)
    'wrinkle_nose': 0.0,  # nose-bridge wrinkles (0..1)
    'wrinkle_smile': 0.0,  # nasolabial folds and crow's feet (0..1)
}
EXPRESSION_PARAMS: tuple[str, ...] = tuple(NEUTRAL_EXPRESSION)

# Offset of each class from neutral at full intensity; a face's intensity is drawn per sample.
_CLASS_OFFSETS: dict[str, dict[str, float]] = {
    'neutral': {},
    'happy': {
        'mouth_curve': 0.10,
        'mouth_width': 0.14,
        'mouth_open': 0.05,
        'teeth_upper': 1.0,
        'eye_open': -0.10,
        'lower_lid': 0.5,
        'wrinkle_smile': 1.0,
    },
    'sad': {
        'mouth_curve': -0.085,
        'mouth_width': -0.06,
        'brow_tilt': 0.10,
        'brow_raise': 0.015,
        'brow_arch': -0.04,
        'eye_open': -0.09,
    },
    'surprise': {
        'brow_raise': 0.12,
        'brow_arch': 0.05,
        'eye_open': 0.30,
        'mouth_open': 0.20,
        'mouth_width': -0.22,
        'wrinkle_forehead': 1.0,
    },
    'fear': {
        'brow_raise': 0.08,
        'brow_tilt': 0.09,
        'brow_arch': -0.04,
        'eye_open': 0.26,
        'mouth_open': 0.10,
        'mouth_width': 0.14,
        'mouth_curve': -0.035,
        'teeth_upper': 0.8,
        'teeth_lower': 1.0,
        'wrinkle_forehead': 0.8,
    },
    'disgust': {
        'brow_raise': -0.06,
        'brow_tilt': -0.03,
        'eye_open': -0.14,
        'lower_lid': 0.6,
        'mouth_curve': -0.04,
        'mouth_open': 0.035,
        'teeth_upper': 0.7,
        'upper_lip_raise': 1.0,
        'wrinkle_nose': 1.0,
    },
    'angry': {
        'brow_raise': -0.085,
        'brow_tilt': -0.11,
        'eye_open': -0.06,
        'mouth_width': -0.12,
        'mouth_curve': -0.02,
        'lip_press': 1.0,
        'wrinkle_glabella': 1.0,
    },
}

# Per-parameter jitter half-widths (uniform), the source of within-class variation and overlap.
_JITTER: dict[str, float] = {
    'brow_raise': 0.02,
    'brow_tilt': 0.02,
    'brow_arch': 0.015,
    'eye_open': 0.04,
    'lower_lid': 0.15,
    'mouth_curve': 0.015,
    'mouth_open': 0.01,
    'mouth_width': 0.05,
    'teeth_upper': 0.0,
    'teeth_lower': 0.0,
    'lip_press': 0.1,
    'upper_lip_raise': 0.0,
    'wrinkle_forehead': 0.0,
    'wrinkle_glabella': 0.0,
    'wrinkle_nose': 0.0,
    'wrinkle_smile': 0.0,
}
_INTENSITY_RANGE = (0.55, 1.0)
# Visual strength of the fine detail; the calibration knobs (see docs/synthetic_faces.md).
_DETAIL = {
    'brow_width': 0.05,  # brow thickness (face units)
    'line_width': 0.026,  # wrinkle / lid line width (face units)
    'wrinkle_alpha': 0.65,  # opacity of a full-strength wrinkle
    'clutter_wrinkle': 0.22,  # max opacity of identity (age) wrinkles, shown on any class
}
_FACE_SCALE = 0.355  # pixels per face unit / image size


def face_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Return the random stream of image ``index`` of ``split`` (independent of every other image)."""
    return np.random.default_rng([int(seed), _SPLIT_IDS.get(split, 3), int(index), GENERATOR_VERSION])


def sample_expression(label: int, rng: np.random.Generator) -> dict[str, float]:
    """Draw the expression parameters of one face of class ``label``.

    Args:
        label: Index into ``FER7_CLASSES``.
        rng: Random stream.

    Returns:
        A dict with every name of ``EXPRESSION_PARAMS`` plus ``intensity``.
    """
    name = FER7_CLASSES[label]
    intensity = 0.0 if name == 'neutral' else float(rng.uniform(*_INTENSITY_RANGE))
    params = {}
    for key, rest in NEUTRAL_EXPRESSION.items():
        value = rest + intensity * _CLASS_OFFSETS[name].get(key, 0.0) + rng.uniform(-1, 1) * _JITTER[key]
        if key in ('teeth_upper', 'teeth_lower', 'lip_press', 'upper_lip_raise', 'lower_lid') or key.startswith(
            'wrinkle'
        ):
            value = min(max(value, 0.0), 1.0)
        params[key] = float(value)
    params['mouth_open'] = max(params['mouth_open'], 0.0)
    params['eye_open'] = max(params['eye_open'], 0.12)
    params['intensity'] = intensity
    return params


def sample_identity(rng: np.random.Generator) -> dict[str, Any]:
    """Draw identity parameters: face shape, skin tone, hair, eye spacing, age wrinkles, freckles."""
    tone = rng.uniform(0, 1)
    skin = (1 - tone) * np.array([0.97, 0.82, 0.71]) + tone * np.array([0.40, 0.26, 0.18])
    skin = np.clip(skin + rng.uniform(-0.04, 0.04, 3), 0, 1)
    hair_palette = np.array(
        [
            [0.08, 0.06, 0.05],
            [0.30, 0.18, 0.10],
            [0.55, 0.38, 0.20],
            [0.85, 0.72, 0.45],
            [0.60, 0.25, 0.10],
            [0.65, 0.65, 0.65],
        ]
    )
    hair = np.clip(hair_palette[rng.integers(len(hair_palette))] + rng.uniform(-0.05, 0.05, 3), 0, 1)
    brow_color = np.clip(0.35 * hair + 0.65 * np.minimum(hair, skin * 0.35), 0, 1)
    return {
        'skin': skin.tolist(),
        'hair': hair.tolist(),
        'brow_color': brow_color.tolist(),
        'iris': np.clip(
            rng.choice([[0.25, 0.15, 0.08], [0.2, 0.35, 0.55], [0.3, 0.4, 0.25]]) + rng.uniform(-0.05, 0.05, 3), 0, 1
        ).tolist(),
        'lip_tint': float(rng.uniform(0.0, 1.0)),
        'face_rx': float(rng.uniform(0.80, 0.93)),
        'face_ry': float(rng.uniform(1.02, 1.16)),
        'chin': float(rng.uniform(0.0, 1.0)),
        'eye_sep': float(rng.uniform(0.32, 0.41)),
        'eye_size': float(rng.uniform(0.14, 0.17)),
        'eye_y': float(rng.uniform(-0.16, -0.08)),
        'brow_gap': float(rng.uniform(0.17, 0.23)),
        'brow_width': float(rng.uniform(0.8, 1.25)),
        'mouth_y': float(rng.uniform(0.47, 0.56)),
        'mouth_size': float(rng.uniform(0.24, 0.29)),
        'lip_size': float(rng.uniform(0.8, 1.2)),
        'nose_len': float(rng.uniform(0.22, 0.30)),
        'hair_style': int(rng.integers(4)),
        'hairline': float(rng.uniform(-0.95, -0.85)),
        'age': float(rng.uniform(0, 1) ** 2),
        'freckles': int(rng.integers(0, 12)) if rng.uniform() < 0.25 else 0,
        'clothes': rng.uniform(0.1, 0.9, 3).tolist(),
    }


def sample_scene(rng: np.random.Generator) -> dict[str, Any]:
    """Draw pose (rotation, shift, scale), lighting, background and noise parameters."""
    return {
        'angle': float(rng.uniform(-10, 10)),
        'shift': rng.uniform(-0.05, 0.05, 2).tolist(),
        'scale': float(rng.uniform(0.92, 1.06)),
        'feature_dx': float(rng.uniform(-0.03, 0.03)),
        'bg': rng.uniform(0.05, 0.95, (2, 3)).tolist(),
        'bg_angle': float(rng.uniform(0, 2 * math.pi)),
        'bg_blobs': int(rng.integers(2, 7)),
        'light_dir': float(rng.uniform(0, 2 * math.pi)),
        'light_strength': float(rng.uniform(0.0, 0.45)),
        'brightness': float(rng.uniform(0.78, 1.12)),
        'tint': rng.uniform(0.93, 1.07, 3).tolist(),
        'noise': float(rng.uniform(0.004, 0.025)),
        'clutter_seed': int(rng.integers(2**31)),
    }


class _Canvas:
    """Float RGB image with primitives in face units mapped by a similarity transform, drawn anti-aliased."""

    _SHIFT = 4  # sub-pixel bits for cv2 drawing

    def __init__(self, img: np.ndarray, center: tuple[float, float], scale: float, angle_deg: float):
        self.img = img
        self.size = img.shape[0]
        self.scale = scale
        a = math.radians(angle_deg)
        self._rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        self._center = np.asarray(center, dtype=np.float64)

    def px(self, pts: np.ndarray) -> np.ndarray:
        return np.asarray(pts, dtype=np.float64) @ self._rot.T + self._center

    def _fixed(self, pts: np.ndarray, pad: float = 2.0) -> np.ndarray:
        px = self.px(pts)
        lo = np.floor(px.min(axis=0) - pad).astype(int)
        hi = np.ceil(px.max(axis=0) + pad).astype(int) + 1
        self.bbox = (max(lo[1], 0), min(hi[1], self.size), max(lo[0], 0), min(hi[0], self.size))
        return np.round(px * (1 << self._SHIFT)).astype(np.int32).reshape(-1, 1, 2)

    def mask_fill(self, pts: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.img.shape[:2], np.uint8)
        cv2.fillPoly(mask, [self._fixed(pts)], 255, cv2.LINE_AA, self._SHIFT)
        return mask

    def mask_line(self, pts: np.ndarray, width: float, closed: bool = False) -> tuple[np.ndarray, float]:
        """Return (mask, alpha factor); widths under one pixel become one-pixel lines of reduced opacity."""
        width_px = width * self.scale
        thickness = max(1, int(round(width_px)))
        mask = np.zeros(self.img.shape[:2], np.uint8)
        cv2.polylines(mask, [self._fixed(pts, thickness + 2.0)], closed, 255, thickness, cv2.LINE_AA, self._SHIFT)
        return mask, min(1.0, width_px)

    def blend(self, mask: np.ndarray, color, alpha: float = 1.0, bbox: tuple | None = None) -> None:
        """Blend ``color`` into the image with opacity ``alpha * mask / 255`` inside ``bbox`` (default: last shape)."""
        y0, y1, x0, x1 = self.bbox if bbox is None else bbox
        if alpha <= 0 or y1 <= y0 or x1 <= x0:
            return
        a = mask[y0:y1, x0:x1, None].astype(np.float32) * (alpha / 255.0)
        region = self.img[y0:y1, x0:x1]
        region += (np.asarray(color, np.float32) - region) * a

    def fill(self, pts: np.ndarray, color, alpha: float = 1.0) -> np.ndarray:
        mask = self.mask_fill(pts)
        self.blend(mask, color, alpha)
        return mask

    def line(self, pts: np.ndarray, color, width: float, alpha: float = 1.0, closed: bool = False) -> None:
        mask, factor = self.mask_line(pts, width, closed)
        self.blend(mask, color, alpha * factor)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _curve(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    return np.stack([xs, ys], axis=1)


def _draw_background(img: np.ndarray, scene: Mapping[str, Any], rng: np.random.Generator) -> None:
    size = img.shape[0]
    c0, c1 = np.asarray(scene['bg'], np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    t = np.clip(0.5 + xx * math.cos(scene['bg_angle']) + yy * math.sin(scene['bg_angle']), 0, 1)[..., None]
    img[:] = c0 * (1 - t) + c1 * t
    canvas = _Canvas(img, (0.0, 0.0), float(size), 0.0)
    for _ in range(scene['bg_blobs']):
        color = rng.uniform(0, 1, 3)
        cx, cy = rng.uniform(0, 1, 2)
        if rng.uniform() < 0.5:
            pts = _ellipse(cx, cy, *rng.uniform(0.05, 0.3, 2))
        else:
            w, h = rng.uniform(0.05, 0.4, 2)
            pts = np.array([[cx - w, cy - h], [cx + w, cy - h], [cx + w, cy + h], [cx - w, cy + h]])
        canvas.fill(pts, color, float(rng.uniform(0.1, 0.35)))


def _draw_head(c: _Canvas, ident: Mapping[str, Any], rng: np.random.Generator) -> None:
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
        c.fill(_ellipse(0, -0.12, rx + 0.1, ry + 0.1), hair)
    for side in (-1, 1):  # ears
        c.fill(_ellipse(side * rx * 0.98, -0.02, 0.1, 0.19), skin * 0.9)
    # face: an ellipse whose lower half narrows towards the chin
    t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    xs, ys = rx * np.cos(t), ry * np.sin(t)
    xs = xs * (1 - ident['chin'] * 0.18 * np.clip(ys / ry, 0, 1) ** 2)
    c.fill(_curve(xs, ys), skin)
    if style != 0:  # hair over the top of the forehead
        hl = ident['hairline']
        xs = np.linspace(-rx - 0.1, rx + 0.1, 25)
        top = -0.12 - (ry + 0.1) * np.sqrt(np.clip(1 - (xs / (rx + 0.1)) ** 2, 0, 1))
        edge = hl + 0.12 * (xs / rx) ** 2 + (0.05 * np.sin(xs * 7) if style == 3 else 0)
        c.fill(np.concatenate([_curve(xs, top), _curve(xs[::-1], edge[::-1])]), hair)
    # freckles (identity detail at the scale of the expression cues)
    for _ in range(ident['freckles']):
        fx, fy = rng.uniform(0.15, 0.6) * rng.choice([-1, 1]), rng.uniform(0.05, 0.35)
        c.fill(_ellipse(fx, fy, 0.014, 0.014, 10), skin * 0.7, 0.6)


def _draw_brows(c: _Canvas, ident, expr, dx: float) -> None:
    color = ident['brow_color']
    base = ident['eye_y'] - ident['brow_gap'] - expr['brow_raise']
    width = _DETAIL['brow_width'] * ident['brow_width']
    t = np.linspace(0, 1, 12)  # 0 = inner end, 1 = outer end
    for side in (-1, 1):
        xs = dx + side * (0.09 + t * (ident['eye_sep'] + 0.12))
        ys = base - expr['brow_tilt'] * (0.5 - t) - expr['brow_arch'] * 4 * t * (1 - t)
        half = width * (1.15 - 0.6 * t) / 2
        c.fill(np.concatenate([_curve(xs, ys - half), _curve(xs[::-1], (ys + half)[::-1])]), color, 0.95)


def _draw_eyes(c: _Canvas, ident, expr, dx: float, gaze: np.ndarray) -> None:
    skin = np.asarray(ident['skin'])
    line_w = _DETAIL['line_width']
    ew, ey = ident['eye_size'], ident['eye_y']
    open_up = expr['eye_open'] * ew * 0.62
    open_lo = expr['eye_open'] * ew * 0.38 * (1 - 0.45 * expr['lower_lid'])
    t = np.linspace(-1, 1, 21)
    shape = (1 - t**2) ** 0.6
    for side in (-1, 1):
        ex = dx + side * ident['eye_sep']
        xs = ex + ew * t
        up, lo = ey - open_up * shape, ey + open_lo * shape
        eye = np.concatenate([_curve(xs, up), _curve(xs[::-1], lo[::-1])])
        white = c.mask_fill(eye)
        eye_box = c.bbox
        c.blend(white, [0.93, 0.92, 0.9])
        iris_r = 0.45 * ew
        cx, cy = ex + gaze[0] * ew * 0.25, ey - 0.1 * open_up + gaze[1] * ew * 0.1
        iris = c.mask_fill(_ellipse(cx, cy, iris_r, iris_r, 24))
        c.blend(((iris.astype(np.uint16) * white) // 255).astype(np.uint8), ident['iris'], bbox=eye_box)
        pupil = c.mask_fill(_ellipse(cx, cy, iris_r * 0.45, iris_r * 0.45, 16))
        c.blend(((pupil.astype(np.uint16) * white) // 255).astype(np.uint8), [0.03, 0.03, 0.03], bbox=eye_box)
        c.line(_curve(xs, up), [0.08, 0.06, 0.05], line_w * 1.5)  # upper lid and lashes
        c.line(_curve(xs, lo), skin * 0.55, line_w, 0.7)  # lower lid
        c.line(_curve(ex + 0.9 * ew * t, up - 0.035 - 0.3 * open_up * shape), skin * 0.6, line_w, 0.45)  # crease
        if expr['lower_lid'] > 0.05:  # cheek bulge under a squinting eye
            c.line(_curve(ex + 0.8 * ew * t, lo + 0.03 + 0.01 * shape), skin * 0.7, line_w, 0.5 * expr['lower_lid'])


def _draw_nose(c: _Canvas, ident, expr, dx: float) -> None:
    skin = np.asarray(ident['skin'])
    lw = _DETAIL['line_width']
    tip = ident['eye_y'] + ident['nose_len'] + 0.13
    flare = 1 + 0.25 * expr['wrinkle_nose']
    for side in (-1, 1):
        c.line(
            np.array(
                [
                    [dx + side * 0.05, ident['eye_y'] + 0.06],
                    [dx + side * 0.075, tip - 0.05],
                    [dx + side * 0.085 * flare, tip],
                ]
            ),
            skin * 0.7,
            lw,
            0.5,
        )
        c.fill(_ellipse(dx + side * 0.055 * flare, tip + 0.012, 0.028 * flare, 0.013, 16), skin * 0.35, 0.8)


def _draw_mouth(c: _Canvas, ident, expr, dx: float, side_sign: int) -> None:
    skin = np.asarray(ident['skin'])
    lip = skin * np.array([0.82, 0.55, 0.55]) * (1 - 0.2 * ident['lip_tint']) + 0.05 * ident['lip_tint']
    mw = ident['mouth_size'] * expr['mouth_width']
    my = ident['mouth_y']
    x = np.linspace(-1, 1, 25)
    xs = dx + mw * x
    bump = 1 - x**2
    mid = my - expr['mouth_curve'] * x**2
    raise_ = expr['upper_lip_raise'] * 0.05 * np.exp(-(((x - side_sign * 0.35) / 0.45) ** 2))
    top = mid - expr['mouth_open'] * 0.35 * bump**0.8 - raise_
    bot = mid + expr['mouth_open'] * 0.65 * bump**0.8
    lip_scale = ident['lip_size'] * (1 - 0.65 * expr['lip_press'])
    upper_t = 0.045 * lip_scale * bump**0.5 * (1 - 0.25 * np.exp(-((x / 0.12) ** 2)))  # cupid's bow
    lower_t = 0.06 * lip_scale * bump**0.5
    c.fill(np.concatenate([_curve(xs, top - upper_t), _curve(xs[::-1], top[::-1])]), lip)
    c.fill(np.concatenate([_curve(xs, bot), _curve(xs[::-1], (bot + lower_t)[::-1])]), lip * 1.05)
    opening = bot - top
    if opening.max() * c.scale > 0.3:
        c.fill(np.concatenate([_curve(xs, top), _curve(xs[::-1], bot[::-1])]), [0.22, 0.05, 0.06])
        teeth_h = 0.045
        if expr['teeth_upper'] > 0:
            low = top + np.minimum(teeth_h, opening)
            c.fill(
                np.concatenate([_curve(xs, top), _curve(xs[::-1], low[::-1])]), [0.95, 0.94, 0.88], expr['teeth_upper']
            )
        if expr['teeth_lower'] > 0:
            high = bot - np.minimum(teeth_h * 0.8, opening)
            c.fill(
                np.concatenate([_curve(xs, high), _curve(xs[::-1], bot[::-1])]), [0.92, 0.91, 0.85], expr['teeth_lower']
            )
    c.line(_curve(xs, top + 0.3 * (bot - top)), [0.25, 0.08, 0.08], _DETAIL['line_width'], 0.8)  # lip seam
    # little dimples at the mouth corners carry the corner direction
    for s in (-1, 1):
        cx, cy = dx + s * mw, my - expr['mouth_curve']
        c.line(
            np.array([[cx + s * 0.0, cy], [cx + s * 0.03, cy - 1.2 * expr['mouth_curve'] - 0.005]]),
            skin * 0.5,
            _DETAIL['line_width'],
            0.6,
        )


def _draw_wrinkles(c: _Canvas, ident, expr, dx: float, age_rng: np.random.Generator) -> None:
    skin = np.asarray(ident['skin'])
    dark = skin * 0.5
    lw = _DETAIL['line_width']
    alpha = _DETAIL['wrinkle_alpha']
    clutter = _DETAIL['clutter_wrinkle'] * ident['age']
    brow_y = ident['eye_y'] - ident['brow_gap'] - expr['brow_raise']

    def strength(key: str) -> float:
        return max(expr[key] * alpha, clutter * age_rng.uniform(0.3, 1.0))

    a = strength('wrinkle_forehead')
    if a > 0.01:
        for i in range(3):
            y0 = brow_y - 0.14 - 0.085 * i
            half = 0.38 - 0.07 * i
            x = np.linspace(-1, 1, 15)
            wave = 0.02 * expr['brow_tilt'] / 0.1 * (1 - x**2)
            c.line(_curve(dx + half * x, y0 - 0.025 * (1 - x**2) - wave), dark, lw, a)
    a = strength('wrinkle_glabella')
    if a > 0.01:
        for side in (-1, 1):
            x0 = dx + side * 0.045
            pts = np.array([[x0 + side * 0.01, brow_y - 0.06], [x0, brow_y + 0.02], [x0 - side * 0.005, brow_y + 0.09]])
            c.line(pts, dark, lw, a)
    a = strength('wrinkle_nose')
    if a > 0.01:
        for i in range(3):
            y0 = ident['eye_y'] + 0.02 + 0.05 * i
            c.line(np.array([[dx - 0.08, y0 + 0.015], [dx, y0 - 0.01], [dx + 0.08, y0 + 0.015]]), dark, lw, a)
        for side in (-1, 1):
            x0 = dx + side * (ident['eye_sep'] - ident['eye_size'] - 0.01)
            c.line(np.array([[x0, ident['eye_y'] + 0.03], [x0 - side * 0.06, ident['eye_y'] + 0.1]]), dark, lw, a)
    a = strength('wrinkle_smile')
    if a > 0.01:
        mw = ident['mouth_size'] * expr['mouth_width']
        tip = ident['eye_y'] + ident['nose_len'] + 0.1
        for side in (-1, 1):
            pts = np.array(
                [
                    [0.11, tip - 0.02],
                    [0.17, tip + 0.08],
                    [mw + 0.05, ident['mouth_y'] - 0.02],
                    [mw + 0.07, ident['mouth_y'] + 0.1],
                ]
            )
            pts[:, 0] = dx + side * pts[:, 0]
            c.line(pts, dark, lw * 1.2, a)
            ex = dx + side * (ident['eye_sep'] + ident['eye_size'] + 0.03)
            for k in (-1, 0, 1):
                c.line(
                    np.array([[ex, ident['eye_y'] + 0.02 * k], [ex + side * 0.07, ident['eye_y'] + 0.045 * k]]),
                    dark,
                    lw,
                    a * 0.8,
                )


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
    c = _Canvas(img, center, size * _FACE_SCALE * scene['scale'], scene['angle'])
    _draw_head(c, identity, rng)
    dx = scene['feature_dx']
    gaze = rng.uniform(-1, 1, 2)
    _draw_wrinkles(c, identity, expression, dx, rng)
    _draw_brows(c, identity, expression, dx)
    _draw_eyes(c, identity, expression, dx, gaze)
    _draw_nose(c, identity, expression, dx)
    _draw_mouth(c, identity, expression, dx, int(rng.choice([-1, 1])))
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


def _settings(seed: int, size: int, counts: Mapping[str, int]) -> dict[str, Any]:
    return {
        'generator': 'srfer_plugin.data.synthetic_faces',
        'version': GENERATOR_VERSION,
        'seed': int(seed),
        'size': int(size),
        'per_class': {split: int(counts[split]) for split in SPLITS},
        'classes': list(FER7_CLASSES),
    }


def write_synthetic_dataset(
    root: str, seed: int = 0, size: int = 112, num_train: int = 400, num_val: int = 50, num_test: int = 100
) -> dict[str, Any]:
    """Generate the dataset into ``root`` (layout of :mod:`srfer_plugin.data.fer_layout`).

    Existing split folders, meta_info files and the manifest in ``root`` are replaced; nothing else is touched.

    Args:
        root: Dataset root.
        seed: Random seed; the same seed gives byte-identical files.
        size: Image height and width.
        num_train: Images per class in the train split (likewise ``num_val``, ``num_test``).

    Returns:
        The manifest written to ``root/synthetic_faces.json``.
    """
    counts = {'train': num_train, 'val': num_val, 'test': num_test}
    if min(counts.values()) < 0 or size < 16:
        raise ValueError(f'invalid dataset settings: size={size}, per-class counts={counts}')
    os.makedirs(root, exist_ok=True)
    _remove_generated(root)
    num_classes = len(FER7_CLASSES)
    write_classes(os.path.join(root, CLASSES_FILE), FER7_CLASSES)
    for split in SPLITS:
        items = []
        for name in FER7_CLASSES:
            os.makedirs(os.path.join(root, split, name), exist_ok=True)
        for index in range(counts[split] * num_classes):
            label = index % num_classes
            image, _, _ = generate_face(label, face_rng(seed, split, index), size)
            rel_path = f'{split}/{FER7_CLASSES[label]}/{split}_{index:06d}.png'
            if not cv2.imwrite(os.path.join(root, rel_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
                raise OSError(f'could not write {os.path.join(root, rel_path)}')
            items.append((rel_path, label))
        write_meta_info(os.path.join(root, meta_info_name(split)), items)
    manifest = _settings(seed, size, counts)
    manifest['num_images'] = {split: counts[split] * num_classes for split in SPLITS}
    with open(os.path.join(root, MANIFEST_NAME), 'w', encoding='utf-8') as f:
        json.dump(manifest, f, indent=2)
    return manifest


def _remove_generated(root: str) -> None:
    manifest = os.path.join(root, MANIFEST_NAME)
    if os.path.exists(manifest):
        os.remove(manifest)  # first, so an interrupted rewrite is never taken for a complete dataset
    for split in SPLITS:
        if os.path.isdir(os.path.join(root, split)):
            shutil.rmtree(os.path.join(root, split))
        if os.path.exists(os.path.join(root, meta_info_name(split))):
            os.remove(os.path.join(root, meta_info_name(split)))


def _is_complete(root: str, settings: Mapping[str, Any]) -> bool:
    try:
        with open(os.path.join(root, MANIFEST_NAME), encoding='utf-8') as f:
            manifest = json.load(f)
        if any(manifest.get(key) != value for key, value in settings.items()):
            return False
        if read_classes(os.path.join(root, CLASSES_FILE)) != list(FER7_CLASSES):
            return False
        for split in SPLITS:
            expected = settings['per_class'][split] * len(FER7_CLASSES)
            if expected == 0:
                continue
            items = read_meta_info(os.path.join(root, meta_info_name(split)), len(FER7_CLASSES))
            if len(items) != expected or not all(os.path.isfile(os.path.join(root, p)) for p, _ in items):
                return False
    except (OSError, ValueError):
        return False
    return True


def ensure_synthetic_dataset(
    root: str, seed: int = 0, size: int = 112, num_train: int = 400, num_val: int = 50, num_test: int = 100
) -> str:
    """Return ``root``, generating the dataset unless a complete one with the same settings is already there.

    The manifest ``root/synthetic_faces.json`` records the generator version and settings; a dataset from another
    version or with other settings (seed, size, counts) is regenerated.

    Args:
        root: Dataset root.
        seed: Random seed.
        size: Image height and width.
        num_train: Images per class in the train split (likewise ``num_val``, ``num_test``).

    Returns:
        ``root``.
    """
    counts = {'train': num_train, 'val': num_val, 'test': num_test}
    if not _is_complete(root, _settings(seed, size, counts)):
        write_synthetic_dataset(root, seed, size, num_train, num_val, num_test)
    return root


def bicubic_roundtrip(img: np.ndarray, scale: int = 4) -> np.ndarray:
    """Degrade an image the way the calibration does: MATLAB-bicubic downsample by ``scale``
    (``srfer_plugin.data.degradations.downsample_bicubic``), then cv2 bicubic up.

    Args:
        img: ``uint8`` or float ``[0, 1]`` image, ``(H, W, C)``; H and W divisible by ``scale``.
        scale: Down-sampling factor.

    Returns:
        Float32 ``[0, 1]`` image of the input size.
    """
    from srfer_plugin.data.degradations import downsample_bicubic

    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    lr = downsample_bicubic(img.astype(np.float32), scale)
    up = cv2.resize(lr, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(up, 0, 1).astype(np.float32)
