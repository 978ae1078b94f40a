"""The facial features whose geometry carries the expression: brows, eyes, nose, mouth and wrinkles.

Each ``draw_*`` function draws one feature of a face onto a :class:`~srfer_plugin.synthetic.canvas.Canvas` in face
units, from the identity (:func:`~srfer_plugin.synthetic.parameters.sample_identity`) and the expression
(:func:`~srfer_plugin.synthetic.parameters.sample_expression`); ``dx`` shifts the features sideways.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from srfer_plugin.synthetic.canvas import Canvas, curve, ellipse

# Visual strength of the fine detail; the calibration knobs (see docs/synthetic_faces.md).
_DETAIL = {
    'brow_width': 0.05,  # brow thickness (face units)
    'line_width': 0.026,  # wrinkle / lid line width (face units)
    'wrinkle_alpha': 0.65,  # opacity of a full-strength wrinkle
    'clutter_wrinkle': 0.22,  # max opacity of identity (age) wrinkles, shown on any class
}


def draw_brows(c: Canvas, ident: Mapping[str, Any], expr: Mapping[str, float], dx: float) -> None:
    """Draw both eyebrows: height, tilt and arch carry the expression."""
    color = ident['brow_color']
    base = ident['eye_y'] - ident['brow_gap'] - expr['brow_raise']
    width = _DETAIL['brow_width'] * ident['brow_width']
    t = np.linspace(0, 1, 12)  # 0 = inner end, 1 = outer end
    for side in (-1, 1):
        xs = dx + side * (0.09 + t * (ident['eye_sep'] + 0.12))
        ys = base - expr['brow_tilt'] * (0.5 - t) - expr['brow_arch'] * 4 * t * (1 - t)
        half = width * (1.15 - 0.6 * t) / 2
        c.fill(np.concatenate([curve(xs, ys - half), curve(xs[::-1], (ys + half)[::-1])]), color, 0.95)


def draw_eyes(c: Canvas, ident: Mapping[str, Any], expr: Mapping[str, float], dx: float, gaze: np.ndarray) -> None:
    """Draw both eyes (white, iris, pupil, lids, crease) with the expression's opening and lower-lid raise."""
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
        eye = np.concatenate([curve(xs, up), curve(xs[::-1], lo[::-1])])
        white = c.mask_fill(eye)
        eye_box = c.bbox
        c.blend(white, [0.93, 0.92, 0.9])
        iris_r = 0.45 * ew
        cx, cy = ex + gaze[0] * ew * 0.25, ey - 0.1 * open_up + gaze[1] * ew * 0.1
        iris = c.mask_fill(ellipse(cx, cy, iris_r, iris_r, 24))
        c.blend(((iris.astype(np.uint16) * white) // 255).astype(np.uint8), ident['iris'], bbox=eye_box)
        pupil = c.mask_fill(ellipse(cx, cy, iris_r * 0.45, iris_r * 0.45, 16))
        c.blend(((pupil.astype(np.uint16) * white) // 255).astype(np.uint8), [0.03, 0.03, 0.03], bbox=eye_box)
        c.line(curve(xs, up), [0.08, 0.06, 0.05], line_w * 1.5)  # upper lid and lashes
        c.line(curve(xs, lo), skin * 0.55, line_w, 0.7)  # lower lid
        c.line(curve(ex + 0.9 * ew * t, up - 0.035 - 0.3 * open_up * shape), skin * 0.6, line_w, 0.45)  # crease
        if expr['lower_lid'] > 0.05:  # cheek bulge under a squinting eye
            c.line(curve(ex + 0.8 * ew * t, lo + 0.03 + 0.01 * shape), skin * 0.7, line_w, 0.5 * expr['lower_lid'])


def draw_nose(c: Canvas, ident: Mapping[str, Any], expr: Mapping[str, float], dx: float) -> None:
    """Draw the nose sides and nostrils; the nostrils flare with ``wrinkle_nose``."""
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
        c.fill(ellipse(dx + side * 0.055 * flare, tip + 0.012, 0.028 * flare, 0.013, 16), skin * 0.35, 0.8)


def draw_mouth(c: Canvas, ident: Mapping[str, Any], expr: Mapping[str, float], dx: float, side_sign: int) -> None:
    """Draw lips, opening, teeth and corner dimples; ``side_sign`` picks the side of an upper-lip raise."""
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
    c.fill(np.concatenate([curve(xs, top - upper_t), curve(xs[::-1], top[::-1])]), lip)
    c.fill(np.concatenate([curve(xs, bot), curve(xs[::-1], (bot + lower_t)[::-1])]), lip * 1.05)
    opening = bot - top
    if opening.max() * c.scale > 0.3:
        c.fill(np.concatenate([curve(xs, top), curve(xs[::-1], bot[::-1])]), [0.22, 0.05, 0.06])
        teeth_h = 0.045
        if expr['teeth_upper'] > 0:
            low = top + np.minimum(teeth_h, opening)
            c.fill(
                np.concatenate([curve(xs, top), curve(xs[::-1], low[::-1])]), [0.95, 0.94, 0.88], expr['teeth_upper']
            )
        if expr['teeth_lower'] > 0:
            high = bot - np.minimum(teeth_h * 0.8, opening)
            c.fill(
                np.concatenate([curve(xs, high), curve(xs[::-1], bot[::-1])]), [0.92, 0.91, 0.85], expr['teeth_lower']
            )
    c.line(curve(xs, top + 0.3 * (bot - top)), [0.25, 0.08, 0.08], _DETAIL['line_width'], 0.8)  # lip seam
    # little dimples at the mouth corners carry the corner direction
    for s in (-1, 1):
        cx, cy = dx + s * mw, my - expr['mouth_curve']
        c.line(
            np.array([[cx + s * 0.0, cy], [cx + s * 0.03, cy - 1.2 * expr['mouth_curve'] - 0.005]]),
            skin * 0.5,
            _DETAIL['line_width'],
            0.6,
        )


def draw_wrinkles(
    c: Canvas, ident: Mapping[str, Any], expr: Mapping[str, float], dx: float, age_rng: np.random.Generator
) -> None:
    """Draw forehead, glabella, nose and smile wrinkles: the expression's, or fainter age lines from ``age_rng``."""
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
            c.line(curve(dx + half * x, y0 - 0.025 * (1 - x**2) - wave), dark, lw, a)
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
