"""Parameter distributions of the synthetic faces: expression (per class), identity and scene.

An expression is the neutral rest pose plus a per-class offset scaled by a random intensity, plus uniform jitter,
so the classes overlap a little, as real expressions do. Identity and scene parameters do not depend on the class.
Every function draws from the caller's random stream in a fixed order: changing that order or a distribution
changes every dataset, so bump :data:`srfer_plugin.synthetic.dataset.GENERATOR_VERSION` with it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from srfer_plugin.data.fer_layout import FER7_CLASSES

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

# Identity measures drawn uniformly from (low, high), in this order (face units unless a factor).
_IDENTITY_RANGES: dict[str, tuple[float, float]] = {
    'lip_tint': (0.0, 1.0),  # lip colour, from skin-toned to tinted
    'face_rx': (0.80, 0.93),  # face half-width
    'face_ry': (1.02, 1.16),  # face half-height
    'chin': (0.0, 1.0),  # narrowing of the lower face towards the chin
    'eye_sep': (0.32, 0.41),  # distance of each eye centre from the midline
    'eye_size': (0.14, 0.17),  # eye half-width
    'eye_y': (-0.16, -0.08),  # eye height (- up)
    'brow_gap': (0.17, 0.23),  # brow height above the eyes
    'brow_width': (0.8, 1.25),  # brow thickness factor
    'mouth_y': (0.47, 0.56),  # mouth height
    'mouth_size': (0.24, 0.29),  # mouth half-width at rest
    'lip_size': (0.8, 1.2),  # lip thickness factor
    'nose_len': (0.22, 0.30),  # nose length
}


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
    iris = rng.choice([[0.25, 0.15, 0.08], [0.2, 0.35, 0.55], [0.3, 0.4, 0.25]]) + rng.uniform(-0.05, 0.05, 3)
    return {
        'skin': skin.tolist(),
        'hair': hair.tolist(),
        'brow_color': brow_color.tolist(),
        'iris': np.clip(iris, 0, 1).tolist(),
        **{key: float(rng.uniform(low, high)) for key, (low, high) in _IDENTITY_RANGES.items()},
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
