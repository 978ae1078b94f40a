"""The benchmark's outputs: ``benchmark.csv``, ``benchmark_mean.csv``, ``benchmark.md`` and ``benchmark_acc.png``.

Rows are per seed; with several seeds (always in a study preset) the tables add mean ± std per variant and the
differences of means against the reference variants (:mod:`.aggregate`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from typing import Any

from srfer_plugin.studies.aggregate import (
    METRICS,
    VARIANT_KEYS,
    aggregate_rows,
    compare_to_reference,
    format_delta,
    format_mean_std,
)
from srfer_plugin.studies.benchmark_cells import Classifier, size_text
from srfer_plugin.studies.benchmark_options import BACKBONES, REPO_ROOT, SCALES
from srfer_plugin.utils.formatting import format_value
from srfer_plugin.utils.shipped_options import display_name

COLUMNS = (
    'fer', 'backbone', 'scale', 'method', 'status', 'acc', 'acc_hr', 'acc_bicubic', 'psnr', 'ssim',
    'train_s_per_iter', 'params', 'iters', 'seed', 'classifier', 'note',
)  # fmt: skip
METRIC_KEYS = METRICS
# Columns only some presets fill (the gan preset: NIQE and the degradations); a table has them when a row does.
OPTIONAL_COLUMNS = ('niqe', 'train_degradation', 'test_degradation')
OPTIONAL_METRICS = ('niqe',)
DIGITS = {'acc': 2, 'acc_hr': 2, 'acc_bicubic': 2, 'psnr': 2, 'ssim': 4, 'niqe': 2}
CLASSIFIER_NOTE = (
    'classifier: `frozen` rows are scored by the pre-trained classifier of the row; `adapted` rows (joint '
    'learning: both_joint, plain_finetuned) by the classifier their own training fine-tuned '
    '(`experiments/<training>/models/net_fer_latest.pth`), so their acc, acc_hr and acc_bicubic are that '
    "classifier's. seed: the training's manual_seed."
)
SPREAD_NOTE = (
    'Mean ± sample standard deviation (ddof=1) over the n seeds. A difference of means is marked (within seed '
    'spread) when its magnitude is at most the larger of the two standard deviations (a one-seed variant has none; '
    'with none at all it is marked (one seed)).'
)


def display_path(path: str | None) -> str:
    """A shipped file's ``srfer::`` name, a path relative to the repository when it lies inside it, else as it is
    ('' for None)."""
    if not path:
        return ''
    shipped = display_name(path)
    if shipped != path:
        return shipped
    rel = os.path.relpath(path, REPO_ROOT)
    return path if rel.startswith('..') else rel


def row_columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """:data:`COLUMNS`, with each of :data:`OPTIONAL_COLUMNS` that a row has inserted before ``train_s_per_iter``."""
    extra = tuple(c for c in OPTIONAL_COLUMNS if any(c in row for row in rows))
    at = COLUMNS.index('train_s_per_iter')
    return COLUMNS[:at] + extra + COLUMNS[at:]


def row_metrics(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """:data:`METRICS`, plus each of :data:`OPTIONAL_METRICS` that every ``done`` row has (the means need all)."""
    done = [row for row in rows if row.get('status') == 'done']
    return METRICS + tuple(m for m in OPTIONAL_METRICS if done and all(row.get(m) is not None for row in done))


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


def comparison(rows: list[dict[str, Any]], with_seed: bool = False) -> list[list[Any]]:
    """Per classifier, backbone and scale (and seed): HR, bicubic, plain SR and SR-FER accuracy, SR-FER minus plain.

    Args:
        rows: Benchmark rows (:data:`COLUMNS`); only ``done`` rows count.
        with_seed: One line per seed too (a ``seed`` column after ``scale``).

    Returns:
        Table rows ``[fer, backbone, scale, (seed,) acc_hr, acc_bicubic, plain, srfer, srfer - plain]``.
    """
    groups: dict[tuple, dict[str, dict[str, Any]]] = {}
    for row in rows:
        if row.get('status') == 'done':
            key = (row['fer'], row['backbone'], int(row['scale'])) + ((int(row.get('seed', 0)),) if with_seed else ())
            groups.setdefault(key, {})[row['method']] = row
    body = []
    for key, methods in groups.items():
        any_row = next(iter(methods.values()))
        plain, srfer = (float(methods[m]['acc']) if m in methods else None for m in ('plain', 'srfer'))
        gain = srfer - plain if plain is not None and srfer is not None else None
        body.append([*key, any_row['acc_hr'], any_row['acc_bicubic'], plain, srfer, gain])
    return body


def seed_sections(
    rows: list[dict[str, Any]], references: tuple[str, ...], descriptions: dict[str, str] | None
) -> tuple[list[str], list[dict[str, Any]]]:
    """The Markdown of mean ± std per variant and of the differences against each reference variant.

    Args:
        rows: Benchmark rows (:data:`COLUMNS`).
        references: Methods the other variants are compared with, in order.
        descriptions: ``{method: what it trains}`` of a study preset (a column of the tables; the tables then show
            ``fer`` only when the rows have several classifiers), or None.

    Returns:
        ``(lines, summaries)``: the Markdown lines and :func:`.aggregate.aggregate_rows`' summaries.
    """
    metrics = row_metrics(rows)
    summaries = aggregate_rows(rows, metrics)
    several_fers = len({row.get('fer') for row in rows}) > 1  # a study preset with --fer: name the classifier
    lead = (['fer'] * several_fers + ['method', 'classifier']) if descriptions is not None else list(VARIANT_KEYS)

    def first(item: dict[str, Any]) -> list[Any]:
        return [item[k] for k in lead] + ([descriptions.get(item['method'], '')] if descriptions is not None else [])

    head = lead + (['trains'] if descriptions is not None else [])
    body = [
        first(s) + [s['n']] + [format_mean_std(s[f'{m}_mean'], s[f'{m}_std'], DIGITS[m]) for m in metrics]
        for s in summaries
    ]
    lines = ['## Mean ± std over seeds', ''] + markdown_table(head + ['n', *metrics], body) + ['', SPREAD_NOTE, '']
    for reference in references:
        deltas = compare_to_reference(summaries, reference, metrics)
        body = [
            first(d)
            + [f'{d["n"]}/{d["n_ref"]}']
            + [format_delta(d[f'{m}_delta'], d[f'{m}_within'], DIGITS[m]) for m in metrics]
            for d in deltas
        ]
        lines += [f'## Against {reference} (difference of means)', '']
        lines += markdown_table(head + ['n/n_ref', *(f'Δ {m}' for m in metrics)], body) + ['']
    return lines, summaries


def write_csv(path: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` to the CSV file ``path`` with the header ``columns`` (keys outside them are left out)."""
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)


def write_tables(
    rows: list[dict[str, Any]],
    out: str,
    command: str,
    classifiers: list[Classifier] | None = None,
    references: tuple[str, ...] = ('plain',),
    descriptions: dict[str, str] | None = None,
) -> None:
    """Write ``benchmark.csv``, ``benchmark.md`` and, over several seeds, ``benchmark_mean.csv``.

    ``benchmark.md``: the classifiers, every cell (one row per seed), then for a matrix preset plain vs SR-FER per
    classifier, and for a study preset (or several seeds) mean ± std per variant and the differences against
    ``references``.

    Args:
        rows: Benchmark rows (:data:`COLUMNS`).
        out: Output folder.
        command: The command line, quoted in ``benchmark.md``.
        classifiers: The classifiers of the run (listed first).
        references: Methods every other variant is compared with (mean against mean).
        descriptions: ``{method: what it trains}`` of a study preset; None for a matrix preset.
    """
    columns = row_columns(rows)
    write_csv(os.path.join(out, 'benchmark.csv'), columns, rows)
    hr_acc = {}
    for row in rows:
        if row.get('status') == 'done' and row.get('classifier', 'frozen') == 'frozen':
            hr_acc.setdefault(row['fer'], row['acc_hr'])
    fers = []
    for c in classifiers or []:
        size = size_text(c.input_size) if c.input_size else ''
        fers.append([c.label, display_path(c.config), display_path(c.checkpoint), size, hr_acc.get(c.label)])
    lines = ['# SR-FER benchmark', '', f'Command: `{command}`', '', '## Classifiers', '']
    lines += markdown_table(['fer', 'config', 'checkpoint', 'input_size', 'acc_hr'], fers)
    lines += [
        '',
        'acc_hr: accuracy (%) of the classifier on the HR test faces (the same in all its frozen cells).',
        '',
        '## Cells',
        '',
    ]
    lines += markdown_table(list(columns), [[row.get(c) for c in columns] for row in rows])
    lines += [
        '',
        'acc: FER accuracy (%) on the SR output; acc_hr: on HR; acc_bicubic: on bicubic upsampling (the classifier '
        'of the row, test split). psnr/ssim: Y channel, scale pixels cropped. ' + CLASSIFIER_NOTE,
        '',
    ]
    if 'niqe' in columns:
        lines += [
            "niqe: BasicSR's no-reference NIQE of the SR output (Y channel, scale pixels cropped; lower looks more "
            'natural). train_degradation/test_degradation: the scenarios of the training and test LR faces '
            '(srfer_plugin/data/degradations.py; test sets degrade deterministically per image).',
            '',
        ]
    several_seeds = len({int(r.get('seed', 0)) for r in rows if r.get('status') == 'done'}) > 1
    if descriptions is None:
        lines += [
            "plain = SafeSRModel (BasicSR's SRModel with the plugin's training fixes; L1, one training per seed, "
            'backbone and scale, evaluated by each classifier), srfer = SRFERModel (L1 + attention and prediction '
            "consistency with the row's classifier). train_s_per_iter: BasicSR's logged average iteration time. "
            'params: network_g parameters.',
            '',
            '## Plain SR vs SR-FER under the same classifier',
            '',
        ]
        header = ['fer', 'backbone', 'scale', *(['seed'] if several_seeds else [])]
        header += ['acc_hr', 'acc_bicubic', 'acc plain', 'acc srfer', 'srfer - plain']
        lines += markdown_table(header, comparison(rows, several_seeds)) + ['']
    if descriptions is not None or several_seeds:
        section, summaries = seed_sections(rows, references, descriptions)
        lines += section
        fields = [*VARIANT_KEYS, 'n', 'seeds', *(f'{m}_{s}' for m in row_metrics(rows) for s in ('mean', 'std'))]
        means = [dict(s, seeds=' '.join(map(str, s['seeds']))) for s in summaries]
        write_csv(os.path.join(out, 'benchmark_mean.csv'), fields, means)
    with open(os.path.join(out, 'benchmark.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported when a plot is drawn)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def _save_plot(fig: Any, out: str) -> str:
    """Save ``fig`` as ``<out>/benchmark_acc.png``, close it and return the path."""
    fig.tight_layout()
    path = os.path.join(out, 'benchmark_acc.png')
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def plot(rows: list[dict[str, Any]], out: str) -> str:
    """Accuracy per scale, one row of panels per classifier and one column per backbone.

    Args:
        rows: Benchmark rows (:data:`COLUMNS`).
        out: Output folder.

    Returns:
        The written ``benchmark_acc.png``.
    """
    plt = _pyplot()
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
    return _save_plot(fig, out)


def plot_means(rows: list[dict[str, Any]], out: str) -> str:
    """A study's accuracy per variant, mean ± std over seeds (adapted classifiers hatched): ``benchmark_acc.png``.

    The HR and bicubic lines are the frozen classifier's, drawn when there is one classifier; with several, each bar
    is labelled with its classifier too. Returns the path written under ``out``.
    """
    summaries = aggregate_rows(rows)
    several_fers = len({s['fer'] for s in summaries}) > 1
    fig, ax = _pyplot().subplots(figsize=(1.0 + 0.7 * max(len(summaries), 1), 3.6))
    for i, s in enumerate(summaries):
        hatch = '//' if s['classifier'] == 'adapted' else None
        ax.bar(i, s['acc_mean'], yerr=s['acc_std'] or 0.0, capsize=3, color='#55a868', hatch=hatch, edgecolor='k')
    frozen = [s for s in summaries if s['classifier'] == 'frozen' and not several_fers]
    for key, style, label in (('acc_hr_mean', '--', 'HR'), ('acc_bicubic_mean', ':', 'bicubic')):
        if frozen:
            ax.axhline(frozen[0][key], linestyle=style, color='k', label=f'{label} (frozen classifier)')
    labels = [f'{s["method"]} ({s["fer"]})' if several_fers else s['method'] for s in summaries]
    ax.set_xticks(range(len(summaries)), labels, rotation=45, ha='right', fontsize=8)
    ax.set_ylabel('FER accuracy (%), mean ± std')
    ax.grid(alpha=0.3, axis='y')
    if frozen:
        ax.legend(fontsize=7)
    return _save_plot(fig, out)
