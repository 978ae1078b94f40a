"""Evaluation reports of ``srfer-test``: summary, per-class accuracy and confusion matrices.

``write_fer_reports`` is called once per test set (by ``SRFERModel.write_test_reports``) and writes::

    results/<name>/
      summary.csv                     one row per test set (rows of the sets tested before are kept)
      summary.md                      the same table plus per-class accuracies, in Markdown
      fer/<dataset>/per_class.csv     class, support, acc (SR), acc_hr, acc_bicubic (percent)
      fer/<dataset>/confusion_<img>.csv / .png   rows: true class, columns: predicted class (img: sr, hr, bicubic)
      fer/<dataset>/predictions.csv   path, label, pred_sr, pred_hr, pred_bicubic (class names)

Accuracies are percentages, like ``acc``/``acc_hr``/``acc_bicubic`` in the logs. The ``classifier`` column says
which classifier measured them: ``frozen`` (the pre-trained one) or ``adapted`` (trained by joint learning, so
``acc_hr`` and ``acc_bicubic`` are the adapted classifier's too). ``mean_class_acc*`` is the
mean of the per-class accuracies (classes with test images only); ``gap_closed`` is
``(acc - acc_bicubic) / (acc_hr - acc_bicubic)``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from srfer_plugin.utils.formatting import format_value
from srfer_plugin.utils.inference_outputs import printable_text

# Which prediction of the records each image kind uses, and its accuracy name in the logs.
IMAGE_KINDS: tuple[tuple[str, str, str], ...] = (
    ('sr', 'pred_sr', 'acc'),
    ('hr', 'pred_hr', 'acc_hr'),
    ('bicubic', 'pred_bicubic', 'acc_bicubic'),
)
SUMMARY_FIELDS: tuple[str, ...] = (
    'dataset',
    'classifier',
    'num_images',
    'psnr',
    'ssim',
    'acc',
    'acc_hr',
    'acc_bicubic',
    'gap_closed',
    'mean_class_acc',
    'mean_class_acc_hr',
    'mean_class_acc_bicubic',
)
FER_DIR = 'fer'
# The classifier states of the summary and what each means for the accuracies.
CLASSIFIER_STATES: dict[str, str] = {
    'frozen': 'the pre-trained classifier, unchanged by SR training',
    'adapted': (
        "the classifier trained jointly with the SR network (a joint run's `net_fer_*.pth`); `acc_hr` and "
        "`acc_bicubic` are measured with this adapted classifier too, so they differ from the pre-trained one's"
    ),
}


def confusion_matrix(labels: Sequence[int], preds: Sequence[int], num_classes: int) -> np.ndarray:
    """Count matrix ``C[true, pred]`` (mmpretrain's ``ConfusionMatrix``).

    Args:
        labels: True labels.
        preds: Predicted labels (same length).
        num_classes: Matrix side.

    Returns:
        ``(num_classes, num_classes)`` int64 counts.
    """
    from mmpretrain.evaluation import ConfusionMatrix

    if len(labels) != len(preds):
        raise ValueError(f'confusion_matrix: {len(labels)} labels but {len(preds)} predictions')
    outside = [v for v in (*labels, *preds) if not 0 <= int(v) < num_classes]
    if outside:
        raise ValueError(f'confusion_matrix: label {outside[0]} is outside [0, {num_classes})')
    matrix = ConfusionMatrix.calculate(_as_labels(preds), _as_labels(labels), num_classes=num_classes)
    return matrix.numpy().astype(np.int64)


def top1_accuracy(labels: Sequence[int], preds: Sequence[int]) -> float:
    """Top-1 accuracy in percent (mmpretrain's ``Accuracy``), as the FER reports and validation give it.

    Args:
        labels: True labels.
        preds: Predicted labels (same length, at least one).

    Returns:
        The share of ``preds`` equal to ``labels``, in percent.
    """
    from mmpretrain.evaluation import Accuracy

    if len(labels) != len(preds) or len(labels) == 0:
        raise ValueError(f'top1_accuracy: {len(labels)} labels and {len(preds)} predictions')
    return float(Accuracy.calculate(_as_labels(preds), _as_labels(labels))[0])


def _as_labels(values: Sequence[int]) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, np.int64))


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Per-class accuracy in percent (diagonal / row sum); NaN for classes without images."""
    support = matrix.sum(axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(support > 0, 100.0 * np.diag(matrix) / np.maximum(support, 1), np.nan)


def gap_closed(acc: float | None, acc_hr: float | None, acc_bicubic: float | None) -> float | None:
    """``(acc - acc_bicubic) / (acc_hr - acc_bicubic)``, or None when undefined (no gap to close)."""
    if acc is None or acc_hr is None or acc_bicubic is None or abs(acc_hr - acc_bicubic) < 1e-9:
        return None
    return (acc - acc_bicubic) / (acc_hr - acc_bicubic)


def _class_names(records: dict[str, list], class_names: Sequence[str] | None) -> list[str]:
    names = list(class_names or [])
    seen = [v for key in ('label', 'pred_sr', 'pred_hr', 'pred_bicubic') for v in records.get(key) or []]
    num_classes = max([len(names)] + [int(v) + 1 for v in seen])
    return names + [f'class_{i}' for i in range(len(names), num_classes)]


def _write_csv(path: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([printable_text(c) if isinstance(c, str) else c for c in row] for row in rows)  # any name


def save_confusion_png(matrix: np.ndarray, class_names: Sequence[str], path: str, title: str) -> None:
    """Plot a confusion matrix (colour: row-normalised; text: counts) to a PNG file."""
    import matplotlib

    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    n = len(class_names)
    support = matrix.sum(axis=1, keepdims=True)
    normalized = matrix / np.maximum(support, 1)
    side = max(3.5, 0.55 * n + 2.0)
    fig, ax = plt.subplots(figsize=(side + 1.0, side), dpi=100)
    image = ax.imshow(normalized, cmap='Blues', vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label='fraction of the true class')
    ax.set_xticks(range(n), class_names, rotation=45, ha='right')
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                color = 'white' if normalized[i, j] > 0.5 else 'black'
                ax.text(j, i, str(int(matrix[i, j])), ha='center', va='center', color=color, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _dataset_reports(
    folder: str, dataset_name: str, records: dict[str, list], class_names: Sequence[str]
) -> dict[str, float]:
    """Write per-class accuracy, confusion matrices and predictions of one test set; return mean class accs."""
    os.makedirs(folder, exist_ok=True)
    labels = [int(v) for v in records['label']]
    n = len(class_names)
    matrices, accs, extra = {}, {}, {}
    for kind, key, metric in IMAGE_KINDS:
        preds = records.get(key) or []
        if len(preds) != len(labels):
            continue
        matrices[kind] = confusion_matrix(labels, preds, n)
        accs[kind] = per_class_accuracy(matrices[kind])
        valid = accs[kind][~np.isnan(accs[kind])]
        extra[f'mean_class_{metric}'] = float(valid.mean()) if valid.size else float('nan')
        rows = [[name] + [int(v) for v in row] + [int(row.sum())] for name, row in zip(class_names, matrices[kind])]
        _write_csv(os.path.join(folder, f'confusion_{kind}.csv'), ['true\\pred', *class_names, 'total'], rows)
        overall = 100.0 * np.trace(matrices[kind]) / max(len(labels), 1)
        save_confusion_png(
            matrices[kind],
            class_names,
            os.path.join(folder, f'confusion_{kind}.png'),
            f'{dataset_name}: {kind} ({metric} {overall:.2f}%)',
        )
    support = np.bincount(labels, minlength=n)
    header = ['class', 'support'] + [metric for kind, _, metric in IMAGE_KINDS if kind in accs]
    rows = [
        [name, int(support[i])] + [format_value(float(accs[kind][i]), 2) for kind, _, _ in IMAGE_KINDS if kind in accs]
        for i, name in enumerate(class_names)
    ]
    _write_csv(os.path.join(folder, 'per_class.csv'), header, rows)
    keys = [key for _, key, _ in IMAGE_KINDS if len(records.get(key) or []) == len(labels)]
    paths = records.get('path') or [''] * len(labels)
    _write_csv(
        os.path.join(folder, 'predictions.csv'),
        ['path', 'label', *keys],
        [
            [paths[i], class_names[labels[i]]] + [class_names[int(records[key][i])] for key in keys]
            for i in range(len(labels))
        ],
    )
    return extra


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(str(v) for v in row) + ' |' for row in rows]
    return lines


def _write_summary_md(results_root: str, rows: list[dict[str, str]], fields: Sequence[str]) -> None:
    lines = [f'# FER evaluation: {os.path.basename(os.path.normpath(results_root))}', '']
    lines += [
        'Accuracies in percent: `acc` on SR, `acc_hr` on HR, `acc_bicubic` on bicubic-upsampled LR; '
        '`mean_class_*` average the per-class accuracies; `gap_closed` = (acc - acc_bicubic) / '
        '(acc_hr - acc_bicubic).',
        '',
    ]
    states = sorted({row.get('classifier') for row in rows} & set(CLASSIFIER_STATES))
    lines += [f'Classifier `{state}` (column `classifier`): {CLASSIFIER_STATES[state]}.' for state in states]
    lines += [''] if states else []
    lines += _markdown_table(fields, [[row.get(k, '') for k in fields] for row in rows])
    for row in rows:
        folder = os.path.join(FER_DIR, row['dataset'])
        per_class = os.path.join(results_root, folder, 'per_class.csv')
        if not os.path.isfile(per_class):
            continue
        with open(per_class, newline='', encoding='utf-8') as f:
            table = list(csv.reader(f))
        lines += ['', f'## {row["dataset"]}', '', 'Per-class accuracy (%):', '']
        lines += _markdown_table(table[0], table[1:])
        pngs = [
            f'confusion_{kind}.png'
            for kind, _, _ in IMAGE_KINDS
            if os.path.isfile(os.path.join(results_root, folder, f'confusion_{kind}.png'))
        ]
        if pngs:
            lines += ['', 'Confusion matrices: ' + ', '.join(f'[{p}]({folder}/{p})' for p in pngs)]
    with open(os.path.join(results_root, 'summary.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')


def write_fer_reports(
    results_root: str,
    dataset_name: str,
    metrics: dict[str, float],
    records: dict[str, list] | None,
    class_names: Sequence[str] | None,
    classifier: str | None = None,
) -> None:
    """Write the reports of one test set and refresh ``summary.csv``/``summary.md`` (see the module docstring).

    Args:
        results_root: ``results/<name>``.
        dataset_name: The test set's name.
        metrics: Metric name -> value (psnr, ssim, acc, acc_hr, acc_bicubic).
        records: Per-image ``path``, ``label``, ``pred_sr``, ``pred_hr``, ``pred_bicubic`` (None without labels).
        class_names: Class names by label.
        classifier: ``'frozen'`` or ``'adapted'`` (see :data:`CLASSIFIER_STATES`); None writes no state.
    """
    if classifier is not None and classifier not in CLASSIFIER_STATES:
        raise ValueError(f'write_fer_reports: classifier {classifier!r} is not one of {sorted(CLASSIFIER_STATES)}')
    os.makedirs(results_root, exist_ok=True)
    row: dict[str, Any] = {'dataset': dataset_name, 'classifier': classifier, **metrics}
    if records and records.get('label'):
        names = _class_names(records, class_names)
        row['num_images'] = len(records['label'])
        row.update(_dataset_reports(os.path.join(results_root, FER_DIR, dataset_name), dataset_name, records, names))
        row['gap_closed'] = gap_closed(metrics.get('acc'), metrics.get('acc_hr'), metrics.get('acc_bicubic'))
    row = {k: format_value(v) for k, v in row.items()}

    path = os.path.join(results_root, 'summary.csv')
    rows: list[dict[str, str]] = []
    if os.path.exists(path):
        with open(path, newline='', encoding='utf-8') as f:
            rows = [old for old in csv.DictReader(f) if old['dataset'] != dataset_name]
    rows.append(row)
    present = {k for r in rows for k, v in r.items() if v not in ('', None)}
    fields = [k for k in SUMMARY_FIELDS if k in present or k == 'dataset']
    fields += sorted(present - set(fields))
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction='ignore', restval='')
        writer.writeheader()
        writer.writerows(rows)
    _write_summary_md(results_root, rows, fields)
