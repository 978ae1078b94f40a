"""Evaluation reports of ``srfer-test``: summary, per-class accuracy and confusion matrices."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any


def write_fer_reports(
    results_root: str,
    dataset_name: str,
    metrics: dict[str, float],
    records: dict[str, list] | None,
    class_names: Sequence[str] | None,
) -> None:
    """Write ``summary.csv`` (one row per test set; rows of earlier sets are kept) under ``results_root``.

    Args:
        results_root: ``results/<name>``.
        dataset_name: The test set's name.
        metrics: Metric name -> value (psnr, ssim, acc, acc_hr, acc_bicubic).
        records: Per-image ``path``, ``label``, ``pred_sr``, ``pred_hr``, ``pred_bicubic`` (None without labels).
        class_names: Class names by label.
    """
    os.makedirs(results_root, exist_ok=True)
    path = os.path.join(results_root, 'summary.csv')
    rows: list[dict[str, Any]] = []
    if os.path.exists(path):
        with open(path, newline='', encoding='utf-8') as f:
            rows = [row for row in csv.DictReader(f) if row['dataset'] != dataset_name]
    rows.append({'dataset': dataset_name, **{k: f'{v:.4f}' for k, v in metrics.items()}})
    fields = ['dataset'] + sorted({k for row in rows for k in row} - {'dataset'})
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
