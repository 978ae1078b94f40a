"""Face detection on composed scenes (scikit-image's astronaut pasted at known sizes) and the square crops."""

from __future__ import annotations

import numpy as np
import pytest

from srfer_plugin.face_scenes import background_bgr, composed_scene, iou

dlib = pytest.importorskip('dlib', reason='face detection needs the wild extra: pip install -e ".[wild]"')

from srfer_plugin.face_detection import DlibFaceDetector, FaceBox, square_face_crop  # noqa: E402

SIZES = (24, 32, 48, 64, 96, 128)


@pytest.fixture(scope='module')
def detector():
    return DlibFaceDetector(min_face=24)


@pytest.mark.parametrize('seed', [0, 1])
def test_composed_scene_faces_are_found(detector, seed):
    scene, boxes = composed_scene(SIZES, seed=seed)
    faces = detector.detect(scene)
    for size, box in zip(SIZES, boxes):
        best = max((iou(box, face.xywh) for face in faces), default=0.0)
        assert best > 0.5, f'the {size}-pixel face at {box} was missed (best IoU {best:.2f})'
    assert len(faces) == len(SIZES)  # no false positive on the background
    assert [f.h for f in faces] == sorted((f.h for f in faces), reverse=True)  # largest first


def test_background_only_gives_no_face(detector):
    assert detector.detect(background_bgr()) == []


def test_min_face_skips_smaller_faces():
    scene, boxes = composed_scene((24, 96), seed=3)
    faces = DlibFaceDetector(min_face=64).detect(scene)
    assert len(faces) == 1 and iou(faces[0].xywh, boxes[1]) > 0.5


def test_max_pixels_caps_the_zoom():
    det = DlibFaceDetector(min_face=10, max_pixels=640 * 480 * 4)
    assert det.zoom((480, 640)) == pytest.approx(2.0)
    assert det.effective_min_face((480, 640)) == 40


def test_square_crop_pads_at_the_border():
    image = np.arange(100 * 80 * 3, dtype=np.uint8).reshape(100, 80, 3)
    crop, (x0, y0, side) = square_face_crop(image, FaceBox(-5, 10, 20, 40), size=16, margin=0.5)
    assert crop.shape == (16, 16, 3) and side == 60 and (x0, y0) == (-25, 0)
    crop, square = square_face_crop(image, (20, 20, 40, 40), size=None, margin=0.0)
    assert square == (20, 20, 40) and np.array_equal(crop, image[20:60, 20:60])
