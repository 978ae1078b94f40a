"""Seeds of one benchmark cell variant summarised: mean ± sample std, and differences against a reference variant.

A variant is every ``done`` row with the same classifier (``fer``), backbone, scale, method and ``classifier``
(frozen or adapted) over the seeds. A difference of means is *within seed spread* when its magnitude is at most the
larger of the two variants' standard deviations; a standard deviation needs two seeds, so a one-seed variant takes
no part in that bound, and with no standard deviation at all the difference is marked as one seed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

METRICS = ('acc', 'acc_hr', 'acc_bicubic', 'psnr', 'ssim')
VARIANT_KEYS = ('fer', 'backbone', 'scale', 'method', 'classifier')  # rows of one variant differ only in seed
CONTEXT_KEYS = ('fer', 'backbone', 'scale')  # variants compared with a reference share these
WITHIN_SPREAD = '(within seed spread)'
ONE_SEED = '(one seed)'


def mean_std(values: Iterable[float]) -> tuple[float, float | None, int]:
    """Mean, sample standard deviation (ddof=1) and count of some values.

    Args:
        values: The values (at least one).

    Returns:
        ``(mean, std, n)``; ``std`` is None for a single value.

    Raises:
        ValueError: No values.
    """
    data = [float(v) for v in values]
    if not data:
        raise ValueError('mean_std needs at least one value')
    return statistics.fmean(data), (statistics.stdev(data) if len(data) > 1 else None), len(data)


def _variant(row: dict[str, Any]) -> tuple:
    return tuple(
        int(row[k]) if k == 'scale' else row.get(k, 'frozen' if k == 'classifier' else '') for k in VARIANT_KEYS
    )


def aggregate_rows(rows: Sequence[dict[str, Any]], metrics: Sequence[str] = METRICS) -> list[dict[str, Any]]:
    """One summary per variant of the ``done`` rows, in the order variants first appear.

    Args:
        rows: Benchmark rows (``fer``, ``backbone``, ``scale``, ``method``, ``classifier``, ``seed``, metrics).
        metrics: The metrics to summarise.

    Returns:
        Dicts with the :data:`VARIANT_KEYS`, ``n``, ``seeds`` (sorted) and ``<metric>_mean``/``<metric>_std`` for
        each metric (``std`` None for one seed).
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get('status') == 'done':
            groups.setdefault(_variant(row), []).append(row)
    summaries = []
    for key, members in groups.items():
        summary: dict[str, Any] = dict(zip(VARIANT_KEYS, key))
        summary['n'] = len(members)
        summary['seeds'] = sorted(int(r.get('seed', 0)) for r in members)
        for metric in metrics:
            mean, std, _ = mean_std(float(r[metric]) for r in members)
            summary[f'{metric}_mean'], summary[f'{metric}_std'] = mean, std
        summaries.append(summary)
    return summaries


def within_spread(delta: float, std_a: float | None, std_b: float | None) -> bool | None:
    """Whether ``|delta| <= max(std_a, std_b)`` (stds of one seed left out); None when neither std is known."""
    stds = [s for s in (std_a, std_b) if s is not None and not math.isnan(s)]
    return abs(delta) <= max(stds) if stds else None


def compare_to_reference(
    summaries: Sequence[dict[str, Any]], reference: str, metrics: Sequence[str] = METRICS
) -> list[dict[str, Any]]:
    """Each variant's difference of means against the ``reference`` method of the same classifier, backbone, scale.

    Args:
        summaries: :func:`aggregate_rows`' output.
        reference: The method compared with (e.g. ``both``, ``none``, ``plain``); its own summary is left out.
        metrics: The metrics compared.

    Returns:
        Dicts with the :data:`VARIANT_KEYS`, ``n``, ``n_ref`` and, per metric, ``<metric>_delta`` (mean minus the
        reference's mean) and ``<metric>_within`` (:func:`within_spread`). Variants without a reference are left out.
    """
    references = {tuple(s[k] for k in CONTEXT_KEYS): s for s in summaries if s['method'] == reference}
    out = []
    for summary in summaries:
        ref = references.get(tuple(summary[k] for k in CONTEXT_KEYS))
        if ref is None or summary is ref:
            continue
        row = {k: summary[k] for k in VARIANT_KEYS}
        row.update(n=summary['n'], n_ref=ref['n'])
        for metric in metrics:
            delta = summary[f'{metric}_mean'] - ref[f'{metric}_mean']
            row[f'{metric}_delta'] = delta
            row[f'{metric}_within'] = within_spread(delta, summary[f'{metric}_std'], ref[f'{metric}_std'])
        out.append(row)
    return out


def format_mean_std(mean: float, std: float | None, digits: int) -> str:
    """``mean ± std`` with ``digits`` decimals (the mean alone when ``std`` is None)."""
    return f'{mean:.{digits}f}' if std is None else f'{mean:.{digits}f} ± {std:.{digits}f}'


def format_delta(delta: float, within: bool | None, digits: int) -> str:
    """A signed difference of means, marked :data:`WITHIN_SPREAD` or :data:`ONE_SEED` as :func:`within_spread` says."""
    mark = {True: f' {WITHIN_SPREAD}', False: '', None: f' {ONE_SEED}'}[within]
    return f'{delta:+.{digits}f}{mark}'
