"""Anti-aliased drawing in face units: the primitives every part of a synthetic face is drawn with."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

import cv2
import numpy as np

Color = Union[Sequence[float], np.ndarray]  # RGB in [0, 1]


class Canvas:
    """Float RGB image with primitives in face units mapped by a similarity transform, drawn anti-aliased.

    Args:
        img: ``(S, S, 3)`` float32 image, drawn into in place.
        center: Pixel position of the face-unit origin.
        scale: Pixels per face unit.
        angle_deg: Rotation of the face units, in degrees.
    """

    _SHIFT = 4  # sub-pixel bits for cv2 drawing

    def __init__(self, img: np.ndarray, center: tuple[float, float], scale: float, angle_deg: float):
        self.img = img
        self.size = img.shape[0]
        self.scale = scale
        a = math.radians(angle_deg)
        self._rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        self._center = np.asarray(center, dtype=np.float64)

    def px(self, pts: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` points from face units to pixels."""
        return np.asarray(pts, dtype=np.float64) @ self._rot.T + self._center

    def _fixed(self, pts: np.ndarray, pad: float = 2.0) -> np.ndarray:
        px = self.px(pts)
        lo = np.floor(px.min(axis=0) - pad).astype(int)
        hi = np.ceil(px.max(axis=0) + pad).astype(int) + 1
        self.bbox = (max(lo[1], 0), min(hi[1], self.size), max(lo[0], 0), min(hi[0], self.size))
        return np.round(px * (1 << self._SHIFT)).astype(np.int32).reshape(-1, 1, 2)

    def mask_fill(self, pts: np.ndarray) -> np.ndarray:
        """Return the ``uint8`` coverage mask of the polygon ``pts`` (and set ``bbox`` to its extent)."""
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

    def blend(self, mask: np.ndarray, color: Color, alpha: float = 1.0, bbox: tuple | None = None) -> None:
        """Blend ``color`` into the image with opacity ``alpha * mask / 255`` inside ``bbox`` (default: last shape)."""
        y0, y1, x0, x1 = self.bbox if bbox is None else bbox
        if alpha <= 0 or y1 <= y0 or x1 <= x0:
            return
        a = mask[y0:y1, x0:x1, None].astype(np.float32) * (alpha / 255.0)
        region = self.img[y0:y1, x0:x1]
        region += (np.asarray(color, np.float32) - region) * a

    def fill(self, pts: np.ndarray, color: Color, alpha: float = 1.0) -> np.ndarray:
        """Fill the polygon ``pts`` with ``color`` at opacity ``alpha``; return its mask."""
        mask = self.mask_fill(pts)
        self.blend(mask, color, alpha)
        return mask

    def line(self, pts: np.ndarray, color: Color, width: float, alpha: float = 1.0, closed: bool = False) -> None:
        """Draw the polyline ``pts``, ``width`` face units wide, with ``color`` at opacity ``alpha``."""
        mask, factor = self.mask_line(pts, width, closed)
        self.blend(mask, color, alpha * factor)


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 48) -> np.ndarray:
    """Return ``n`` points ``(n, 2)`` of the axis-aligned ellipse centred at ``(cx, cy)`` with radii ``rx``, ``ry``."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def curve(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Return the points ``(N, 2)`` of the polyline through ``xs`` and ``ys``."""
    return np.stack([xs, ys], axis=1)
