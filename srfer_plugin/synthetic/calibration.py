"""Helpers of the calibration check: FER accuracy on HR images vs on their x4 bicubic round trip.

Shared by ``srfer calibrate-synthetic-faces`` (trains on synthetic faces) and ``srfer eval-fer-degradation``
(evaluates a trained classifier on a dataset); the numbers are recorded in ``docs/synthetic_faces.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from srfer_plugin.data.degradations import bicubic_roundtrip
from srfer_plugin.utils.fer_report import confusion_matrix, top1_accuracy


def restored_uint8(img: np.ndarray, scale: int) -> np.ndarray:
    """Return :func:`~srfer_plugin.data.degradations.bicubic_roundtrip` of ``img`` rounded to ``uint8``, as if saved."""
    return np.clip(np.round(bicubic_roundtrip(img, scale) * 255), 0, 255).astype(np.uint8)


def accuracy_and_confusion(labels: Sequence[int], preds: Sequence[int], num_classes: int) -> tuple[float, np.ndarray]:
    """Return the accuracy in percent and the confusion matrix ``C[true, pred]`` of ``preds``.

    Args:
        labels: True labels.
        preds: Predicted labels (same length).
        num_classes: Number of classes.

    Returns:
        ``(accuracy, matrix)``: accuracy in percent, ``(num_classes, num_classes)`` int64 counts.
    """
    matrix = confusion_matrix(labels, preds, num_classes)
    return top1_accuracy(labels, preds), matrix


def print_and_save(result: Mapping[str, Any], title: str, out: str | None, class_names: Sequence[str] = ()) -> None:
    """Print ``title`` and the rows of ``result['confusion_bicubic']``, then write ``result`` as json to ``out``.

    Args:
        result: Result with a ``confusion_bicubic`` list of rows.
        title: Line printed above the rows.
        out: Json path, or None to write nothing.
        class_names: Row names, printed right-aligned before each row; none by default.
    """
    print(title)
    for i, row in enumerate(result['confusion_bicubic']):
        name = f'{class_names[i]:>9s} ' if class_names else ' '
        print(f'  {name}{row}')
    if out:
        with open(out, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2)
