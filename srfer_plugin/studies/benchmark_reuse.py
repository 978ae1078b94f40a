"""Which earlier work a benchmark run reuses: a finished cell or a trained network, only if made with its settings.

A cell's name carries its preset, classifier, backbone, scale, method and seed (a study cell's also its iterations
when they are not the default), but not a matrix cell's iterations (``--iters``) nor the dataset (``--data-root``).
These settings are recorded with each finished cell (``result.json``, key ``settings``) and each training
(``experiments/<name>/benchmark_settings.json`` beside BasicSR's copy of its options, which is read for trainings
made before the record existed; a ``result.json`` without ``settings`` is compared by its ``iters``). A run whose
earlier cells or networks were made with other settings stops before anything trains, naming them: reusing them
would put results of other settings in its tables, and training again would overwrite them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from srfer_plugin.studies.runner import network_path
from srfer_plugin.utils.checkpoint import atomic_write_json
from srfer_plugin.utils.formatting import first_of

SETTINGS_FILE = 'benchmark_settings.json'
LISTED_CONFLICTS = 10  # earlier results named in the error; the rest are counted


class EarlierSettingsError(ValueError):
    """Earlier cells or networks in ``--out`` / ``--exp-root`` were made with other settings than this run."""


def work_settings(opt: dict[str, Any], data_root: str | None) -> dict[str, Any]:
    """The settings of a cell or training that its name does not carry: iterations and dataset.

    Args:
        opt: The training options (a bicubic cell's have no ``datasets``).
        data_root: The run's dataset, for options without a training set.

    Returns:
        ``{'total_iter': int, 'data_root': real path or None}``.
    """
    train_set = (opt.get('datasets') or {}).get('train') or {}
    root = train_set.get('dataroot_gt') or data_root
    return {
        'total_iter': int((opt.get('train') or {}).get('total_iter') or 0),
        'data_root': os.path.realpath(root) if root else None,
    }


def cell_record(result: dict[str, Any]) -> dict[str, Any]:
    """The settings a ``result.json`` records (only ``total_iter`` for results written before the record)."""
    if isinstance(result.get('settings'), dict):
        return result['settings']
    return {'total_iter': int(result['iters'])} if result.get('iters') is not None else {}


def training_record(exp_root: str, name: str) -> dict[str, Any]:
    """The settings a training ``name`` in ``exp_root`` was made with: its record, else BasicSR's copy of its options.

    Returns:
        The settings, empty when nothing tells them.
    """
    folder = os.path.join(exp_root, 'experiments', name)
    record = os.path.join(folder, SETTINGS_FILE)
    if os.path.isfile(record):
        with open(record, encoding='utf-8') as f:
            return json.load(f)
    copied = os.path.join(folder, f'{name}.yml')  # basicsr.utils.options.copy_opt_file, at each launch
    if os.path.isfile(copied):
        with open(copied, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
        if isinstance(opt, dict):
            return work_settings(opt, None)
    return {}


def write_training_record(exp_root: str, name: str, settings: dict[str, Any]) -> None:
    """Record the settings of a finished training beside its network."""
    folder = os.path.join(exp_root, 'experiments', name)
    os.makedirs(folder, exist_ok=True)
    atomic_write_json(settings, os.path.join(folder, SETTINGS_FILE))


def differences(recorded: dict[str, Any], wanted: dict[str, Any]) -> str:
    """``total_iter 2 (this run: 20)``, for each setting both know and that differs; empty when none does."""
    return ', '.join(
        f'{key} {recorded[key]} (this run: {wanted[key]})'
        for key in wanted
        if key in recorded and recorded[key] != wanted[key]
    )


def check_earlier_work(
    out: str,
    exp_root: str,
    data_root: str,
    cells: Sequence[Any],
    options: Callable[[Any], dict[str, Any]],
    skipped: Callable[[Any], bool],
) -> None:
    """Refuse to run when finished cells or trained networks it would reuse were made with other settings.

    Args:
        out: ``--out`` (``cells/<name>/result.json``).
        exp_root: ``--exp-root`` (``experiments/<name>/``).
        data_root: The run's dataset.
        cells: The run's cells.
        options: A cell's training options.
        skipped: Whether a cell is not run at all (unsupported).

    Raises:
        EarlierSettingsError: Naming each earlier result, the setting and both values; nothing was changed.
    """
    conflicts = []
    for cell in cells:
        if skipped(cell):
            continue
        wanted = work_settings(options(cell), data_root)
        result_path = os.path.join(out, 'cells', cell.name, 'result.json')
        if os.path.isfile(result_path):
            with open(result_path, encoding='utf-8') as f:
                diff = differences(cell_record(json.load(f)), wanted)
            if diff:
                conflicts.append(f'{result_path}: {diff}')
            continue  # a finished cell neither trains nor evaluates again
        net_g = network_path(exp_root, cell.train_name) if cell.train_name else None
        if net_g and os.path.isfile(net_g):
            diff = differences(training_record(exp_root, cell.train_name), wanted)
            if diff and not any(c.startswith(f'{net_g}:') for c in conflicts):
                conflicts.append(f'{net_g}: {diff}')
    if conflicts:
        listed = '\n  '.join(first_of(conflicts, LISTED_CONFLICTS))
        raise EarlierSettingsError(
            f'{len(conflicts)} earlier result(s) of these cells were made with other settings than this run, which '
            f'cell names do not tell apart:\n  {listed}\nNothing was trained or changed: rerun with the earlier '
            'settings, give this run its own --out and --exp-root, or move those cells and trainings away.'
        )
