"""Test scenes for face detection without private data: scikit-image's astronaut pasted at known sizes.

``skimage.data.astronaut()`` is a real portrait (public domain, NASA) shipped inside scikit-image. Its face box is
:data:`ASTRONAUT_FACE` (the mean of OpenCV's Haar and dlib's HOG boxes on the full image). :func:`composed_scene`
pastes that face, with some of its surroundings, at a chosen face size onto a face-free background (scikit-image's
``coffee``), so that a detector's recall can be measured per face size. numpy and OpenCV only (no torch).
"""

from __future__ import annotations

import cv2
import numpy as np

# (x, y, w, h) of the face in skimage.data.astronaut() (512 x 512); Haar: (177, 66, 95, 95), dlib HOG: (179, 83, 87, 87)
ASTRONAUT_FACE = (178, 74, 91, 91)
# The pasted patch is the face box grown by this factor (hair, neck and shoulders around the face).
CONTEXT = 1.8


def _skimage_data():
    try:
        from skimage import data
    except ImportError as err:  # scikit-image is a dependency of BasicSR, so this is rare
        raise ImportError('the test scenes need scikit-image (pip install scikit-image)') from err
    return data


def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut portrait, BGR uint8 (512 x 512)."""
    return np.ascontiguousarray(_skimage_data().astronaut()[..., ::-1])


def background_bgr(height: int = 480, width: int = 640) -> np.ndarray:
    """A face-free natural background (scikit-image's ``coffee``, resized), BGR uint8."""
    coffee = np.ascontiguousarray(_skimage_data().coffee()[..., ::-1])
    return cv2.resize(coffee, (width, height), interpolation=cv2.INTER_AREA)


def face_patch(face_size: int, portrait: np.ndarray | None = None) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The astronaut's face with its surroundings, scaled so that the face box is ``face_size`` pixels tall.

    Returns:
        ``(patch, box)``: the BGR patch and the face box ``(x, y, w, h)`` inside it.
    """
    portrait = astronaut_bgr() if portrait is None else portrait
    x, y, w, h = ASTRONAUT_FACE
    side = int(round(max(w, h) * CONTEXT))
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    pad = side
    padded = cv2.copyMakeBorder(portrait, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    crop = padded[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side]
    k = face_size / max(w, h)
    size = max(1, int(round(side * k)))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
    patch = cv2.resize(crop, (size, size), interpolation=interp)
    box = (int(round((x - x0) * k)), int(round((y - y0) * k)), int(round(w * k)), int(round(h * k)))
    return patch, box


def composed_scene(
    face_sizes: list[int] | tuple[int, ...],
    height: int = 480,
    width: int = 640,
    seed: int = 0,
    portrait: np.ndarray | None = None,
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A background with the astronaut's face pasted once per size, without overlaps.

    Args:
        face_sizes: Face heights in pixels (e.g. 24 ... 128).
        height: Scene height.
        width: Scene width.
        seed: Positions (and a mirror flip per face) are drawn from this seed.
        portrait: The face image (default :func:`astronaut_bgr`).

    Returns:
        ``(scene, boxes)``: the BGR scene and the true face boxes ``(x, y, w, h)``, one per size, in order.

    Raises:
        ValueError: The faces do not fit the scene.
    """
    rng = np.random.default_rng(seed)
    scene = background_bgr(height, width)
    portrait = astronaut_bgr() if portrait is None else portrait
    patches = []
    for face_size in sorted(face_sizes, reverse=True):  # big ones first: they are the hardest to place
        patch, (bx, by, bw, bh) = face_patch(int(face_size), portrait)
        if rng.random() < 0.5:
            patch, bx = patch[:, ::-1], patch.shape[1] - bx - bw
        patches.append((int(face_size), patch, (bx, by, bw, bh)))
    for _ in range(100):  # random layouts until one has no overlap
        taken: list[tuple[int, int, int, int]] = []
        for _, patch, _ in patches:
            ph, pw = patch.shape[:2]
            if ph > height or pw > width:
                break
            for _ in range(100):
                px, py = int(rng.integers(0, width - pw + 1)), int(rng.integers(0, height - ph + 1))
                if all(px + pw <= tx or tx + tw <= px or py + ph <= ty or ty + th <= py for tx, ty, tw, th in taken):
                    taken.append((px, py, pw, ph))
                    break
            else:
                break
        if len(taken) == len(patches):
            break
    else:
        raise ValueError(f'faces of sizes {list(face_sizes)} do not fit a {width}x{height} scene')
    boxes = []
    for (face_size, patch, (bx, by, bw, bh)), (px, py, pw, ph) in zip(patches, taken):
        scene[py : py + ph, px : px + pw] = patch
        boxes.append((face_size, (px + bx, py + by, bw, bh)))
    order = {size: i for i, size in enumerate(face_sizes)}
    boxes.sort(key=lambda item: order[item[0]])
    return scene, [box for _, box in boxes]


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
