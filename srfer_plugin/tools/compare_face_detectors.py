"""Compare face detectors on composed scenes: recall per face size and CPU time per image.

Each scene (640 x 480) is scikit-image's ``coffee`` with scikit-image's astronaut face pasted once at each size
(:mod:`srfer_plugin.face_scenes`); a face counts as found when a detection overlaps its true box with IoU > 0.5
(``--iou``). Detections that match no face are false positives. Background-only scenes give the false positives of
a face-free image. Time: the median wall time of one scene, one thread (``cv2.setNumThreads(1)``).

The detectors are the ones importable in this environment (each one's package is installed in its own virtual
environment, since OpenCV 4's Haar cascades and OpenCV 5 cannot share one); ``--detectors`` chooses. Run as a
file, this module needs only numpy, OpenCV and scikit-image (no torch), so it runs in such a small environment::

    srfer compare-face-detectors --scenes 20                              # in the plugin's environment
    <small-venv>/bin/python srfer_plugin/tools/compare_face_detectors.py   # in a clone, a venv with opencv 4.x
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np

from srfer_plugin.utils.cli_args import at_least

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = (24, 32, 40, 48, 64, 96, 128)
Box = tuple[int, int, int, int]


def _scenes_module():
    """:mod:`srfer_plugin.face_scenes` loaded from its file (importing the package would import torch)."""
    path = os.path.join(PACKAGE, 'face_scenes.py')
    spec = importlib.util.spec_from_file_location('srfer_face_scenes', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def haar(name: str) -> Callable[[np.ndarray], list[Box]]:
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, name))

    def detect(bgr: np.ndarray) -> list[Box]:
        gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(20, 20))
        return [tuple(int(v) for v in box) for box in found]

    return detect


def dlib_hog(upsample: int) -> Callable[[np.ndarray], list[Box]]:
    import dlib

    detector = dlib.get_frontal_face_detector()

    def detect(bgr: np.ndarray) -> list[Box]:
        rects = detector(np.ascontiguousarray(bgr[..., ::-1]), upsample)
        return [(r.left(), r.top(), r.width(), r.height()) for r in rects]

    return detect


def dlib_hog_resized(min_face: int) -> Callable[[np.ndarray], list[Box]]:
    """dlib's HOG on the image enlarged so that a ``min_face`` face fills its 80-pixel window (no pyramid step)."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    k = max(1.0, 80 / min_face)

    def detect(bgr: np.ndarray) -> list[Box]:
        big = cv2.resize(bgr[..., ::-1], None, fx=k, fy=k, interpolation=cv2.INTER_LINEAR) if k > 1 else bgr[..., ::-1]
        rects = detector(np.ascontiguousarray(big), 0)
        return [(round(r.left() / k), round(r.top() / k), round(r.width() / k), round(r.height() / k)) for r in rects]

    return detect


def mediapipe_short(confidence: float = 0.5) -> Callable[[np.ndarray], list[Box]]:
    from mediapipe.python.solutions import face_detection

    model = face_detection.FaceDetection(model_selection=0, min_detection_confidence=confidence)

    def detect(bgr: np.ndarray) -> list[Box]:
        h, w = bgr.shape[:2]
        result = model.process(np.ascontiguousarray(bgr[..., ::-1]))
        boxes = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            boxes.append((int(b.xmin * w), int(b.ymin * h), int(b.width * w), int(b.height * h)))
        return boxes

    return detect


CANDIDATES: dict[str, Callable[[], Callable[[np.ndarray], list[Box]]]] = {
    'haar_default': lambda: haar('haarcascade_frontalface_default.xml'),
    'haar_alt2': lambda: haar('haarcascade_frontalface_alt2.xml'),
    'dlib_hog_up0': lambda: dlib_hog(0),
    'dlib_hog_up1': lambda: dlib_hog(1),
    'dlib_hog_up2': lambda: dlib_hog(2),
    'dlib_hog_min24': lambda: dlib_hog_resized(24),
    'dlib_hog_min32': lambda: dlib_hog_resized(32),
    'dlib_hog_min48': lambda: dlib_hog_resized(48),
    'mediapipe_short': mediapipe_short,
}


def available(names: list[str]) -> dict[str, Callable[[np.ndarray], list[Box]]]:
    detectors = {}
    for name in names:
        try:
            detectors[name] = CANDIDATES[name]()
        except Exception as err:  # noqa: BLE001  (a candidate that is not installed here is only reported)
            print(f'{name}: not available here ({type(err).__name__}: {err})')
    return detectors


def measure(detect: Callable[[np.ndarray], list[Box]], scenes, backgrounds, iou_min: float) -> dict:
    scenes_mod = _scenes_module()
    found = dict.fromkeys(SIZES, 0)
    false_pos, bg_false_pos, times = 0, 0, []
    for scene, boxes in scenes:
        start = time.perf_counter()
        dets = detect(scene)
        times.append(time.perf_counter() - start)
        used = set()
        for size, box in zip(SIZES, boxes):
            scores = [(scenes_mod.iou(box, d), i) for i, d in enumerate(dets) if i not in used]
            best = max(scores, default=(0.0, -1))
            if best[0] > iou_min:
                found[size] += 1
                used.add(best[1])
        false_pos += len(dets) - len(used)
    for bg in backgrounds:
        bg_false_pos += len(detect(bg))
    return {
        'recall': {size: found[size] / len(scenes) for size in SIZES},
        'fp_per_scene': false_pos / len(scenes),
        'fp_background': bg_false_pos,
        'ms': 1000 * statistics.median(times),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scenes', type=at_least(1), default=20, help='composed scenes (each has one face per size)')
    parser.add_argument('--iou', type=float, default=0.5, help='IoU above which a detection finds a face')
    parser.add_argument('--detectors', nargs='+', default=list(CANDIDATES), choices=list(CANDIDATES))
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    scenes_mod = _scenes_module()
    portrait = scenes_mod.astronaut_bgr()
    scenes = [scenes_mod.composed_scene(SIZES, seed=seed, portrait=portrait) for seed in range(args.scenes)]
    bg = scenes_mod.background_bgr()
    backgrounds = [bg, bg[:, ::-1].copy(), bg[::-1].copy(), cv2.resize(bg[60:420, 80:560], (640, 480))]
    print(f'{args.scenes} scenes of 640x480, faces of {", ".join(map(str, SIZES))} px; IoU > {args.iou}')
    header = ['detector', *[f'{s}px' for s in SIZES], 'FP/scene', 'FP bg(4)', 'ms/image']
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header))
    for name, detect in available(args.detectors).items():
        r = measure(detect, scenes, backgrounds, args.iou)
        cells = [name, *[f'{r["recall"][s]:.2f}' for s in SIZES]]
        cells += [f'{r["fp_per_scene"]:.2f}', str(r['fp_background']), f'{r["ms"]:.0f}']
        print('| ' + ' | '.join(cells) + ' |', flush=True)


if __name__ == '__main__':
    main()
