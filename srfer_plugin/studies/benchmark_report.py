"""The benchmark's outputs: ``benchmark.csv``, ``benchmark.md`` and ``benchmark_acc.png``."""

from __future__ import annotations

import csv
import os
from typing import Any

from srfer_plugin.studies.benchmark_cells import Classifier, size_text
from srfer_plugin.studies.benchmark_options import BACKBONES, REPO_ROOT, SCALES
from srfer_plugin.utils.formatting import format_value

COLUMNS = (
    'fer', 'backbone', 'scale', 'method', 'status', 'acc', 'acc_hr', 'acc_bicubic', 'psnr', 'ssim',
    'train_s_per_iter', 'params', 'iters', 'note',
)  # fmt: skip
METRIC_KEYS = ('acc', 'acc_hr', 'acc_bicubic', 'psnr', 'ssim')


def display_path(path: str | None) -> str:
    """A path relative to the repository when it lies inside it, else as it is ('' for None)."""
    if not path:
        return ''
    rel = os.path.relpath(path, REPO_ROOT)
    return path if rel.startswith('..') else rel


def markdown_table(header: list[str], body: list[list[Any]]) -> list[str]:
    """The lines of a Markdown table (floats with 4 decimals below 1 in magnitude, else 2).

    Args:
        header: Column titles.
        body: Rows of values.

    Returns:
        The table lines.
    """
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    return lines + ['| ' + ' | '.join(format_value(v, None) for v in row) + ' |' for row in body]


def comparison(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Per classifier, backbone and scale: HR, bicubic, plain SR and SR-FER accuracy and SR-FER minus plain.

    Args:
        rows: Benchmark rows (:data:`COLUMNS`); only ``done`` rows count.

    Returns:
        Table rows ``[fer, backbone, scale, acc_hr, acc_bicubic, plain, srfer, srfer - plain]``.
    """
    groups: dict[tuple[str, str, int], dict[str, dict[str, Any]]] = {}
    for row in rows:
        if row.get('status') == 'done':
            groups.setdefault((row['fer'], row['backbone'], int(row['scale'])), {})[row['method']] = row
    body = []
    for (fer, backbone, scale), methods in groups.items():
        any_row = next(iter(methods.values()))
        plain, srfer = (float(methods[m]['acc']) if m in methods else None for m in ('plain', 'srfer'))
        gain = srfer - plain if plain is not None and srfer is not None else None
        body.append([fer, backbone, scale, any_row['acc_hr'], any_row['acc_bicubic'], plain, srfer, gain])
    return body


def write_tables(
    rows: list[dict[str, Any]], out: str, command: str, classifiers: list[Classifier] | None = None
) -> None:
    """Write ``benchmark.csv`` and ``benchmark.md`` (classifiers, every cell, plain vs SR-FER per classifier).

    Args:
        rows: Benchmark rows (:data:`COLUMNS`).
        out: Output folder.
        command: The command line, quoted in ``benchmark.md``.
        classifiers: The classifiers of the run (listed first).
    """
    with open(os.path.join(out, 'benchmark.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    hr_acc = {}
    for row in rows:
        if row.get('status') == 'done':
            hr_acc.setdefault(row['fer'], row['acc_hr'])
    fers = []
    for c in classifiers or []:
        size = size_text(c.input_size) if c.input_size else ''
        fers.append([c.label, display_path(c.config), display_path(c.checkpoint), size, hr_acc.get(c.label)])
    lines = ['# SR-FER benchmark', '', f'Command: `{command}`', '', '## Classifiers', '']
    lines += markdown_table(['fer', 'config', 'checkpoint', 'input_size', 'acc_hr'], fers)
    lines += [
        '',
        'acc_hr: accuracy (%) of the classifier on the HR test faces (the same in all its cells).',
        '',
        '## Cells',
        '',
    ]
    lines += markdown_table(list(COLUMNS), [[row.get(c) for c in COLUMNS] for row in rows])
    lines += [
        '',
        'acc: FER accuracy (%) on the SR output; acc_hr: on HR; acc_bicubic: on bicubic upsampling (the frozen '
        'classifier of the row, test split). psnr/ssim: Y channel, scale pixels cropped. plain = SafeSRModel '
        "(BasicSR's SRModel with the plugin's training fixes; L1, one training per backbone and scale, evaluated "
        "by each classifier), srfer = SRFERModel (L1 + attention and prediction consistency with the row's "
        "classifier). train_s_per_iter: BasicSR's logged average iteration time. params: network_g parameters.",
        '',
        '## Plain SR vs SR-FER under the same classifier',
        '',
    ]
    header = ['fer', 'backbone', 'scale', 'acc_hr', 'acc_bicubic', 'acc plain', 'acc srfer', 'srfer - plain']
    lines += markdown_table(header, comparison(rows))
    lines.append('')
    with open(os.path.join(out, 'benchmark.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))


def plot(rows: list[dict[str, Any]], out: str) -> str:
    """Accuracy per scale, one row of panels per classifier and one column per backbone.

    Args:
        rows: Benchmark rows (:data:`COLUMNS`).
        out: Output folder.

    Returns:
        The written ``benchmark_acc.png``.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    backbones = [b for b in BACKBONES if any(r['backbone'] == b for r in rows)]
    fers = list(dict.fromkeys(r.get('fer', '') for r in rows))
    fig, axes = plt.subplots(
        len(fers), len(backbones), figsize=(3.2 * len(backbones), 3.2 * len(fers)), squeeze=False, sharey=True
    )
    curves = (
        ('plain SR', lambda r: r['method'] == 'plain', 'acc', 'o-'),
        ('SR-FER', lambda r: r['method'] == 'srfer', 'acc', 's-'),
        ('HR', lambda r: True, 'acc_hr', 'k--'),
        ('bicubic', lambda r: True, 'acc_bicubic', 'k:'),
    )
    for fer, panels in zip(fers, axes):
        for ax, backbone in zip(panels, backbones):
            done = [
                r for r in rows if r.get('fer', '') == fer and r['backbone'] == backbone and r.get('status') == 'done'
            ]
            for label, keep, key, style in curves:
                points = dict(sorted((int(r['scale']), float(r[key])) for r in done if keep(r)))
                if points:
                    ax.plot(list(points), list(points.values()), style, label=label)
            ax.set_title(backbone if len(fers) == 1 else f'{backbone} | {fer}', fontsize=9)
            ax.set_xlabel('scale')
            ax.set_xscale('log', base=2)
            ax.set_xticks(SCALES, [f'x{s}' for s in SCALES])
            ax.grid(alpha=0.3)
        panels[0].set_ylabel('FER accuracy (%)' if len(fers) == 1 else f'{fer}\nFER accuracy (%)')
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, 'benchmark_acc.png')
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
