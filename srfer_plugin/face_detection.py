"""Faces in photos: a face detector whose weights install with its package, and the crops the networks read.

The detector is dlib's HOG + linear SVM frontal face detector (``dlib.get_frontal_face_detector()``: its model is
compiled into the ``dlib-bin`` wheel, nothing is downloaded at run time), installed by the ``wild`` extra::

    pip install "srfer_plugin[wild]"        # in a clone: pip install -e ".[wild]"

Why this one (measured in ``docs/in_the_wild.md`` with ``scripts/compare_face_detectors.py``): OpenCV 5, which the
plugin installs, has no Haar/LBP cascades any more (``CascadeClassifier`` was removed), OpenCV's YuNet needs an
ONNX file that no wheel ships, MediaPipe 1.x no longer bundles its face model and the last one that did (0.10.x)
brings its own OpenCV wheel and jax. dlib's window is 80 pixels: to find faces down to ``min_face`` pixels the
image is first enlarged by ``80 / min_face`` (capped at ``max_pixels``), which finds the 24-pixel faces of the test
scenes in about two thirds of the time of dlib's own two 2x upsampling steps.

:func:`square_face_crop` cuts the square the classifier was trained on around a box: the box's longer side grown by
``margin``, centred on the box, padded by replicating the border when it leaves the image, and resized (area
interpolation) to the LR size the SR network expects. The default margin, :data:`FACE_MARGIN` = 0.7, is measured on
the training faces the plugin has, the demo's synthetic faces: their 112-pixel images are 172 % of dlib's box
(median of the 118 of 140 test faces found; 10th percentile 144 %). Crops of other training sets may differ (a model
trained on tight crops wants a smaller ``--face-margin``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

WILD_EXTRA = 'pip install "srfer_plugin[wild]" (in a clone: pip install -e ".[wild]")'
FACE_MARGIN = 0.7  # the crop's side is the box's side times 1 + this (the demo's synthetic faces: 172 %)
DLIB_WINDOW = 80  # pixels: the smallest face dlib's frontal detector finds without enlarging the image


class FaceDetectorUnavailable(ImportError):
    """The face detector's package is not installed (the ``wild`` extra)."""


@dataclass(frozen=True)
class FaceBox:
    """A detected face: ``(x, y, w, h)`` in pixels of the image and the detector's score."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def xywh(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


def _import_dlib():
    try:
        import dlib
    except ImportError as err:
        raise FaceDetectorUnavailable(f'face detection needs dlib: {WILD_EXTRA}') from err
    return dlib


class DlibFaceDetector:
    """dlib's HOG frontal face detector, on the image enlarged so that ``min_face``-pixel faces are found.

    Args:
        min_face: Smallest face height to find, in pixels of the input image (dlib's boxes are about the height of
            the face from eyebrows to chin).
        max_pixels: The enlarged image is capped at this many pixels (then the smallest face found is larger,
            see :meth:`effective_min_face`).
        threshold: dlib's score threshold (``adjust_threshold``; higher: fewer, surer faces).
    """

    name = 'dlib-hog'

    def __init__(self, min_face: int = 24, max_pixels: int = 6_000_000, threshold: float = 0.0):
        if int(min_face) < 8:
            raise ValueError(f'min_face must be >= 8 pixels, got {min_face}')
        self.min_face = int(min_face)
        self.max_pixels = int(max_pixels)
        self.threshold = float(threshold)
        self._detector = _import_dlib().get_frontal_face_detector()

    def zoom(self, shape: tuple[int, ...]) -> float:
        """The factor the image of this shape is resized by before detection."""
        h, w = shape[:2]
        want = DLIB_WINDOW / self.min_face
        cap = math.sqrt(self.max_pixels / max(1, h * w))
        return max(min(want, cap), 1e-3)

    def effective_min_face(self, shape: tuple[int, ...]) -> int:
        """The smallest face found in an image of this shape (``min_face`` unless ``max_pixels`` caps the zoom)."""
        return max(self.min_face, math.ceil(DLIB_WINDOW / self.zoom(shape)))

    def detect(self, image: np.ndarray, rgb: bool = False) -> list[FaceBox]:
        """Faces in an image, largest first.

        Args:
            image: ``HW``, ``HW3`` (BGR unless ``rgb``) or ``HW4`` uint8 image.
            rgb: The colour image is RGB.

        Returns:
            The faces at least ``min_face`` pixels tall, largest first.
        """
        image = to_uint8_rgb(image, rgb)
        k = self.zoom(image.shape)
        if abs(k - 1) > 1e-3:
            interp = cv2.INTER_LINEAR if k > 1 else cv2.INTER_AREA
            image = cv2.resize(image, None, fx=k, fy=k, interpolation=interp)
        rects, scores, _ = self._detector.run(np.ascontiguousarray(image), 0, self.threshold)
        h, w = image.shape[:2]
        faces = []
        for rect, score in zip(rects, scores):
            x0, y0 = max(0, rect.left()), max(0, rect.top())
            x1, y1 = min(w, rect.right() + 1), min(h, rect.bottom() + 1)
            box = FaceBox(round(x0 / k), round(y0 / k), round((x1 - x0) / k), round((y1 - y0) / k), float(score))
            if box.w > 0 and box.h >= self.min_face * 0.8:  # dlib's box sizes step with its pyramid
                faces.append(box)
        return sorted(faces, key=lambda b: (-b.w * b.h, b.y, b.x))


def make_face_detector(name: str = 'dlib-hog', min_face: int = 24, **kwargs) -> DlibFaceDetector:
    """The face detector ``name`` (only ``dlib-hog``); FaceDetectorUnavailable names the extra to install."""
    if name not in ('dlib-hog', 'dlib', 'auto'):
        raise ValueError(f'unknown face detector {name!r}: dlib-hog')
    return DlibFaceDetector(min_face=min_face, **kwargs)


def to_uint8_rgb(image: np.ndarray, rgb: bool = False) -> np.ndarray:
    """An ``HW3`` uint8 RGB copy of a grayscale, BGR(A) or RGB(A) image (uint8, uint16 or float in [0, 1])."""
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    image = image[..., :3]
    return np.ascontiguousarray(image if rgb else image[..., ::-1])


def square_around(box: FaceBox | tuple[int, int, int, int], margin: float = FACE_MARGIN) -> tuple[int, int, int]:
    """``(x0, y0, side)``: the square centred on a box, its side the box's longer side times ``1 + margin``."""
    x, y, w, h = box.xywh if isinstance(box, FaceBox) else box
    side = max(1, int(round(max(w, h) * (1 + margin))))
    return int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2)), side


def square_face_crop(
    image: np.ndarray, box: FaceBox | tuple[int, int, int, int], size: int | None, margin: float = FACE_MARGIN
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Cut the square around a face (border replicated outside the image) and resize it to ``size``.

    Args:
        image: ``HW`` or ``HWC`` image.
        box: The face ``(x, y, w, h)``.
        size: Side of the crop (the SR network's LR size); None: as cut.
        margin: The square's side is the box's longer side times ``1 + margin``.

    Returns:
        ``(crop, (x0, y0, side))``: the crop, and the square in image coordinates (it may leave the image).
    """
    x0, y0, side = square_around(box, margin)
    h, w = image.shape[:2]
    pad = (max(0, -y0), max(0, y0 + side - h), max(0, -x0), max(0, x0 + side - w))
    cut = image[max(0, y0) : min(h, y0 + side), max(0, x0) : min(w, x0 + side)]
    if any(pad):
        cut = cv2.copyMakeBorder(cut, *pad, cv2.BORDER_REPLICATE)
    if size and cut.shape[0] != size:
        interp = cv2.INTER_AREA if cut.shape[0] > size else cv2.INTER_CUBIC
        cut = cv2.resize(cut, (int(size), int(size)), interpolation=interp)
    return np.ascontiguousarray(cut), (x0, y0, side)
