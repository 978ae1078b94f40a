"""The report of the ``baselines`` preset: accuracy per face type and classifier, and where SR-FER is not best.

Per condition (test scale and degradation): the accuracy of each face type (bicubic, plain SR, SR-FER guided by
the HR or the multi-resolution classifier) under each classifier (HR-trained, LR-trained, multi-resolution), mean ±
std over seeds, the differences against SR-FER with the seed-spread rule of :mod:`.aggregate`, and a line per
condition naming the best pipeline, stating plainly where SR-FER is not it. The cells are :mod:`.baselines`'.
"""

from __future__ import annotations

import os
from typing import Any

from srfer_plugin.studies.aggregate import (
    METRICS,
    VARIANT_KEYS,
    aggregate_rows,
    format_delta,
    format_mean_std,
    mean_std,
    within_spread,
)
from srfer_plugin.studies.baselines import (
    FACE_TITLES,
    FACES,
    METHODS,
    ROLE_TITLES,
    ROLES,
    SRFER_FACES,
    BaselineCell,
    describe,
)
from srfer_plugin.studies.benchmark_cells import Classifier
from srfer_plugin.studies.benchmark_report import (
    DIGITS,
    SPREAD_NOTE,
    display_path,
    markdown_table,
    row_columns,
    write_csv,
)


def _conditions(rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return list(dict.fromkeys((int(r['scale']), r.get('test_degradation', 'bicubic')) for r in rows))


def _done(rows: list[dict[str, Any]], scale: int, degradation: str) -> list[dict[str, Any]]:
    """The ``done`` rows of one condition."""
    return [
        r
        for r in rows
        if r.get('status') == 'done' and (int(r['scale']), r.get('test_degradation', 'bicubic')) == (scale, degradation)
    ]


def face_summaries(rows: list[dict[str, Any]]) -> dict[tuple[int, str, str, str], dict[str, Any]]:
    """Mean, std and n of the accuracy of every face type under every classifier, per condition.

    Args:
        rows: The run's rows (``done`` ones count), with ``role`` and ``test_degradation``.

    Returns:
        ``{(scale, degradation, role, face): {'fer', 'mean', 'std', 'n', 'psnr', 'ssim'}}``; ``bicubic`` comes
        from the ``acc_bicubic`` of the role's plain cells (every cell has it), ``psnr``/``ssim`` are
        :func:`~srfer_plugin.studies.aggregate.aggregate_rows`' means and stds (None for bicubic).
    """
    out = {}
    for scale, degradation in _conditions(rows):
        done = _done(rows, scale, degradation)
        for summary in aggregate_rows(done):
            role = next(r['role'] for r in done if r['fer'] == summary['fer'])
            entry = {'fer': summary['fer'], 'n': summary['n']}
            entry.update(mean=summary['acc_mean'], std=summary['acc_std'])
            entry.update({m: (summary[f'{m}_mean'], summary[f'{m}_std']) for m in ('psnr', 'ssim')})
            out[(scale, degradation, role, summary['method'])] = entry
            if summary['method'] == 'plain':
                plain = [r for r in done if r['fer'] == summary['fer'] and r['method'] == 'plain']
                mean, std, n = mean_std(float(r['acc_bicubic']) for r in plain)
                out[(scale, degradation, role, 'bicubic')] = dict(
                    fer=summary['fer'], mean=mean, std=std, n=n, psnr=None, ssim=None
                )
    return out


def best_face(summaries: dict, scale: int, degradation: str, role: str) -> str | None:
    """The face type with the highest mean accuracy under one classifier (None when none is done)."""
    faces = [f for f in FACES if (scale, degradation, role, f) in summaries]
    return max(faces, key=lambda f: summaries[(scale, degradation, role, f)]['mean']) if faces else None


def _cell(entry: dict[str, Any] | None) -> str:
    return format_mean_std(entry['mean'], entry['std'], DIGITS['acc']) if entry else ''


def _verdict(best: dict[str, Any], srfer: dict[str, Any] | None, best_is_srfer: bool) -> str:
    if best_is_srfer:
        return 'SR-FER is the best choice'
    if srfer is None:
        return 'no SR-FER row'
    delta = best['mean'] - srfer['mean']
    if delta == 0:
        return 'SR-FER ties with the best'
    within = within_spread(delta, best['std'], srfer['std'])
    mark = {True: ', within seed spread', False: '', None: ', one seed'}[within]
    return f'SR-FER is not the best choice: its best is {delta:.2f} points lower{mark}'


def verdict_lines(summaries: dict, conditions: list[tuple[int, str]]) -> tuple[list[str], list[list[Any]]]:
    """The report's plain statements: per condition and classifier, the best face type; per condition, the best
    pipeline (classifier + faces), each saying whether SR-FER is the best choice.

    Args:
        summaries: :func:`face_summaries`.
        conditions: ``(scale, degradation)`` pairs, in order.

    Returns:
        ``(sentences, table)``: one sentence per condition, and the rows of the "best per classifier" table
        ``[condition, classifier, best faces, its accuracy, best SR-FER, its accuracy, verdict]``.
    """
    sentences, table = [], []
    for scale, degradation in conditions:
        condition = f'x{scale} {degradation}'
        pipelines = []
        for role in ROLES:
            best = best_face(summaries, scale, degradation, role)
            if best is None:
                continue
            entry = summaries[(scale, degradation, role, best)]
            srfers = [f for f in SRFER_FACES if (scale, degradation, role, f) in summaries]
            top_srfer = max(srfers, key=lambda f: summaries[(scale, degradation, role, f)]['mean'], default=None)
            srfer_entry = summaries.get((scale, degradation, role, top_srfer)) if top_srfer else None
            table.append([
                condition, f'{ROLE_TITLES[role]} ({entry["fer"]})', FACE_TITLES[best], _cell(entry),
                FACE_TITLES.get(top_srfer, ''), _cell(srfer_entry), _verdict(entry, srfer_entry, best in SRFER_FACES),
            ])  # fmt: skip
            pipelines.append((entry['mean'], role, best, entry, srfer_entry))
        if not pipelines:
            continue
        _, role, best, entry, _ = max(pipelines, key=lambda p: p[0])
        srfer_pipes = [p for p in pipelines if p[4] is not None]
        top = max(srfer_pipes, key=lambda p: p[4]['mean']) if srfer_pipes else None
        text = (
            f'x{scale} {degradation}: the best pipeline is {FACE_TITLES[best]} faces under the {ROLE_TITLES[role]} '
            f'classifier ({_cell(entry)} %)'
        )
        if best in SRFER_FACES:
            sentences.append(text + '; SR-FER is the best choice here.')
            continue
        if top is None:
            sentences.append(text + '; no SR-FER cell is done.')
            continue
        top_entry, top_role = top[4], top[1]
        delta = entry['mean'] - top_entry['mean']
        within = within_spread(delta, entry['std'], top_entry['std'])
        mark = {True: ' (within seed spread)', False: '', None: ' (one seed)'}[within]
        top_face = next(f for f in SRFER_FACES if summaries.get((scale, degradation, top_role, f)) is top_entry)
        if delta == 0:
            sentences.append(
                f'{text}; SR-FER ties with it: {FACE_TITLES[top_face]} under the {ROLE_TITLES[top_role]} classifier.'
            )
            continue
        sentences.append(
            f'{text}; SR-FER is NOT the best choice here: its best, {FACE_TITLES[top_face]} under the '
            f'{ROLE_TITLES[top_role]} classifier ({_cell(top_entry)} %), is {delta:.2f} points lower{mark}.'
        )
    return sentences, table


def result_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The findings of a baselines run: where SR-FER is not the best choice, then per condition the accuracy of each
    face type under each classifier, the differences against SR-FER and the PSNR/SSIM of the SR faces.

    Args:
        rows: Benchmark rows with ``role`` and ``test_degradation`` (``benchmark.csv``'s).

    Returns:
        Markdown lines (``##`` sections).
    """
    conditions = _conditions(rows)
    summaries = face_summaries(rows)
    lines = ['## Where SR-FER is not the best choice', '']
    sentences, table = verdict_lines(summaries, conditions)
    lines += [f'- {s}' for s in sentences] or ['- no finished cells yet']
    lines += ['', 'Best faces per classifier (mean accuracy, %):', '']
    lines += markdown_table(
        ['condition', 'classifier', 'best faces', 'acc', 'best SR-FER', 'acc', 'verdict'], table
    ) + ['', SPREAD_NOTE, '']
    for scale, degradation in conditions:
        lines += [f'## x{scale}, {degradation} test faces: accuracy (%), mean ± std over seeds', '']
        body, deltas, n = [], [], set()
        for role in ROLES:
            entries = {f: summaries.get((scale, degradation, role, f)) for f in FACES}
            label = next((e['fer'] for e in entries.values() if e), None)
            if label is None:
                continue
            n.update(e['n'] for e in entries.values() if e)
            best = best_face(summaries, scale, degradation, role)
            body.append([f'{ROLE_TITLES[role]} ({label})', *(_cell(entries[f]) for f in FACES), FACE_TITLES[best]])
            ref = entries['srfer']
            if ref:
                deltas.append([
                    f'{ROLE_TITLES[role]} ({label})',
                    *(
                        format_delta(e['mean'] - ref['mean'], within_spread(e['mean'] - ref['mean'], e['std'],
                                                                            ref['std']), DIGITS['acc'])
                        if e and f != 'srfer' else ''
                        for f, e in entries.items()
                    ),
                ])  # fmt: skip
        lines += markdown_table(['classifier', *(FACE_TITLES[f] for f in FACES), 'best'], body)
        lines += ['', f'n = {"/".join(map(str, sorted(n)))} seeds.', '']
        if deltas:
            lines += [f'Against {FACE_TITLES["srfer"]} under the same classifier (difference of means):', '']
            lines += markdown_table(['classifier', *(f'Δ {FACE_TITLES[f]}' for f in FACES)], deltas) + ['']
        sr = []
        for method in METHODS:
            entry = summaries.get((scale, degradation, 'hr', method))
            if entry:
                sr.append([FACE_TITLES[method], *(format_mean_std(*entry[m], DIGITS[m]) for m in ('psnr', 'ssim'))])
        if sr:
            lines += ['PSNR/SSIM (Y channel, scale pixels cropped; the same under every classifier):', '']
            lines += markdown_table(['faces', 'psnr', 'ssim'], sr) + ['']
    return lines


def write_report(
    rows: list[dict[str, Any]], out: str, command: str, fers: list[Classifier], cells: list[BaselineCell]
) -> None:
    """Write ``benchmark.csv``, ``benchmark_mean.csv`` and ``benchmark.md`` of a baselines run.

    Args:
        rows: The rows so far (``run_cell``'s, in cell order).
        out: Output folder.
        command: The command line, quoted in ``benchmark.md``.
        fers: The run's classifiers (with weights).
        cells: The planned cells (their role and degradation are added to the rows of the same index).
    """
    rows = [dict(row, role=cell.role, test_degradation=cell.degradation) for row, cell in zip(rows, cells)]
    columns = row_columns(rows)
    columns = columns[: columns.index('method') + 1] + ('role',) + columns[columns.index('method') + 1 :]
    write_csv(os.path.join(out, 'benchmark.csv'), columns, rows)
    roles_of = {}
    for cell in cells:
        roles_of.setdefault(cell.fer.label, {}).setdefault(cell.role, []).append(f'x{cell.scale} {cell.degradation}')
    hr_acc = {r['fer']: r['acc_hr'] for r in rows if r.get('status') == 'done'}
    lines = ['# SR-FER baselines: classifiers trained on low-resolution faces', '', f'Command: `{command}`', '']
    lines += ['## Classifiers', '']
    body = []
    for c in fers:
        for role, where in roles_of.get(c.label, {}).items():
            conds = ', '.join(dict.fromkeys(where))
            body.append([c.label, ROLE_TITLES[role], conds, display_path(c.config), display_path(c.checkpoint),
                         hr_acc.get(c.label)])  # fmt: skip
    lines += markdown_table(['fer', 'role', 'conditions', 'config', 'checkpoint', 'acc_hr'], body)
    lines += [
        '',
        'acc_hr: accuracy (%) on the HR test faces. Faces: '
        + '; '.join(f'{FACE_TITLES[f]} = {describe(f)}' for f in FACES)
        + '. Each condition trains its SR networks on its degradation at its scale and tests on the same.',
        '',
    ]
    lines += result_lines(rows)
    lines += ['## Cells', '']
    lines += markdown_table(list(columns), [[row.get(c) for c in columns] for row in rows])
    lines += [
        '',
        'acc: FER accuracy (%) on the SR output; acc_hr: on HR; acc_bicubic: on bicubic upsampling (the classifier '
        'of the row, `role`). The SR network of a cell is shared by the cells of its training (the note).',
        '',
    ]
    with open(os.path.join(out, 'benchmark.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))
    fields = [*VARIANT_KEYS, 'role', 'test_degradation', 'n', 'seeds']
    fields += [f'{m}_{s}' for m in METRICS for s in ('mean', 'std')]
    means = []
    for scale, degradation in _conditions(rows):
        done = _done(rows, scale, degradation)
        for s in aggregate_rows(done):
            role = next(r['role'] for r in done if r['fer'] == s['fer'])
            means.append(dict(s, role=role, test_degradation=degradation, seeds=' '.join(map(str, s['seeds']))))
    write_csv(os.path.join(out, 'benchmark_mean.csv'), fields, means)
