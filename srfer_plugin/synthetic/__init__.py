"""Synthetic expression faces: a deterministic, download-free FER dataset for tests and demos (an offline tool).

Every face is drawn with anti-aliased OpenCV primitives from three parameter groups
(:mod:`~srfer_plugin.synthetic.parameters`):

* identity (face shape, skin tone, hair, eye spacing, age wrinkles, freckles),
* scene (pose: rotation/shift/scale, lighting, background clutter, noise),
* expression (eyebrow height/tilt/arch, eye openness, mouth curvature/opening/width, teeth, lip press,
  upper-lip raise and expression wrinkles), drawn from continuous per-class distributions.

The expression lives in fine facial detail (thin brows, eyelids, lip lines, teeth, wrinkles;
:mod:`~srfer_plugin.synthetic.features`), so it reads clearly at 112x112 and is weakened, not erased, after x4
bicubic downsampling. The calibration is recorded in ``docs/synthetic_faces.md``. Modules: ``canvas`` (drawing
primitives), ``features``, ``parameters``, ``render`` (one face), ``dataset`` (writing and caching the dataset),
``calibration`` (helpers of the HR vs bicubic-restored accuracy check).
"""

from srfer_plugin.synthetic.dataset import (
    GENERATOR_VERSION,
    MANIFEST_NAME,
    SPLITS,
    SyntheticRootError,
    ensure_synthetic_dataset,
    face_rng,
    write_synthetic_dataset,
)
from srfer_plugin.synthetic.parameters import (
    EXPRESSION_PARAMS,
    NEUTRAL_EXPRESSION,
    sample_expression,
    sample_identity,
    sample_scene,
)
from srfer_plugin.synthetic.render import generate_face, render_face

__all__ = [
    'GENERATOR_VERSION',
    'MANIFEST_NAME',
    'SPLITS',
    'SyntheticRootError',
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
]
