"""What :class:`~srfer_plugin.predictor.SRFERPredictor` returns, and the errors that stop a run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class InferenceError(RuntimeError):
    """A configuration problem that stops the whole run (not one bad image)."""


class ScaleMismatchError(InferenceError, ValueError):
    """``network_g`` does not upscale by the requested scale, or rejects the probe input."""


@dataclass
class Prediction:
    """What :meth:`SRFERPredictor.predict` returns for a batch (tensors on the predictor's device).

    Attributes:
        sr: ``(N, 3, sH, sW)`` SR images, RGB in [0, 1].
        logits: ``(N, K)`` classifier logits; None without a classifier.
        probs: ``(N, K)`` softmax of the logits; None without a classifier.
        labels: ``(N,)`` predicted class indices; None without a classifier.
        label_names: The predicted class names; None without a classifier.
    """

    sr: torch.Tensor
    logits: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    label_names: list[str] | None = None


@dataclass
class ImagePrediction:
    """What :meth:`SRFERPredictor.predict_images` returns for one image.

    Attributes:
        sr: The SR image, ``HW3`` uint8 in the input's channel order, or ``HW`` for a grayscale input.
        probs: ``(K,)`` class probabilities; None without a classifier.
        label: Predicted class index; None without a classifier.
        label_name: Predicted class name; None without a classifier.
        confidence: Probability of the predicted class; None without a classifier.
    """

    sr: np.ndarray
    probs: np.ndarray | None = None
    label: int | None = None
    label_name: str | None = None
    confidence: float | None = None


@dataclass
class FacePrediction(ImagePrediction):
    """What :meth:`SRFERPredictor.predict_photo` returns for one face of a photo (an ImagePrediction plus where).

    Attributes:
        box: The detected face ``(x, y, w, h)`` in pixels of the photo.
        crop_box: The square cut around it ``(x0, y0, side)`` (it may leave the photo; the border is replicated).
        score: The detector's score.
        lr: The LR face crop the SR network read (``lr_size`` square, the photo's channel order).
    """

    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    crop_box: tuple[int, int, int] = (0, 0, 0)
    score: float = 0.0
    lr: np.ndarray | None = None
