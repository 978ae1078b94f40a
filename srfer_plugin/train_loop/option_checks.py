"""Option values that BasicSR would misread or train on with a wrong meaning, refused before anything is created.

:func:`check_option_file` reads the ``-opt`` file before BasicSR's ``parse_options`` does (which itself fails
obscurely on a file that is not a mapping or on a non-integer ``manual_seed``); :func:`check_options` checks the
parsed options before any folder exists. Every error names the YAML key path and the value.

BasicSR reads YAML 1.1, where a number in exponent notation without a dot (``1e-4``, ``5e3``) is a *string*; such a
string that parses as a number is accepted and replaced by the number, anything else is refused.

Option keys (required, unknown or misspelt keys, dataset names, ``val.metrics``, ``path``) are checked by
:mod:`srfer_plugin.train_loop.option_keys`, called from :func:`check_options`. Checked elsewhere, not here: the GAN
sections (``check_gan_options``), the classifier and joint-learning options
(``check_fer_options``) and the size of the training set (``check_train_set_size``). The plugin's own loss classes
check ``loss_weight`` and ``p`` again in their constructors, for losses built without these options.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from srfer_plugin.utils.renamed_options import check_renamed_options

# numpy's seeding (BasicSR's set_random_seed) takes 0 <= seed < 2**32, and BasicSR adds the rank to the seed.
MAX_SEED = 2**31 - 1


# Flags read as truth values; a string such as 'false' would turn them on.
DATASET_FLAGS = ('use_hflip', 'use_rot', 'use_shuffle', 'pin_memory', 'persistent_workers')
SECTION_FLAGS = {
    'train': (
        'use_amp', 'channels_last', 'seed_per_iter', 'cache_hr_reference', 'train_network_fer', 'train_network_g',
    ),
    'val': ('save_img', 'pbar'),
    'logger': ('use_tb_logger',),
}  # fmt: skip


class OptionError(ValueError):
    """An option file or value that BasicSR would misread or train on with a wrong meaning."""


def load_option_file(path: str) -> dict:
    """Read an option file as BasicSR does (its ordered YAML loader) and insist on a mapping.

    Args:
        path: The ``-opt`` YAML file.

    Returns:
        The options.

    Raises:
        OptionError: The file is empty or holds something other than a mapping (a list, a scalar).
    """
    from basicsr.utils.options import ordered_yaml

    try:
        with open(path, encoding='utf-8') as f:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
    except UnicodeDecodeError as err:
        raise OptionError(f'option file {path!r} is not UTF-8 text (byte {err.start}): save it as UTF-8') from err
    if not isinstance(opt, dict):
        held = 'nothing (the file is empty)' if opt is None else f'a {type(opt).__name__} ({_short(opt)})'
        raise OptionError(
            f'option file {path!r} must be a YAML mapping of options (name: ..., datasets: ...); it holds {held}'
        )
    return opt


def check_option_file(path: str, is_train: bool = True) -> None:
    """Check what BasicSR's ``parse_options`` uses before it can report a problem itself.

    Args:
        path: The ``-opt`` YAML file.
        is_train: A training run (``parse_options`` writes into ``logger`` in debug mode) rather than a test run.

    Raises:
        OptionError: The file is not a mapping, ``name`` is not a non-empty string, ``datasets``/``path`` (and in
            training ``logger``) are not mappings, ``num_gpu`` is missing or neither ``auto`` nor a whole number
            >= 0, or ``manual_seed`` is not an integer.
    """
    from srfer_plugin.train_loop.option_keys import check_num_gpu

    opt = load_option_file(path)
    _check_name(opt.get('name'), path)
    for section in ('datasets', 'path') + (('logger',) if is_train else ()):
        if section not in opt:
            raise OptionError(f'{section} is missing in {path!r}')
        if not isinstance(opt.get(section), dict):
            raise OptionError(f'{section} must be a mapping; got {_short(opt.get(section))} in {path!r}')
    check_num_gpu(opt, path)
    for key, dataset in opt['datasets'].items():
        if not isinstance(dataset, dict):
            raise OptionError(f'datasets.{key} must be a mapping of dataset options; got {_short(dataset)}')
    _check_seed(opt.get('manual_seed'))


def check_options(opt: dict, is_train: bool, opt_file: str | None = None) -> None:
    """Check parsed options before any folder is created; numbers written as strings become numbers in place.

    Args:
        opt: The options as BasicSR's ``parse_options`` returns them.
        is_train: A training run (the ``train`` section is checked) rather than a test run.
        opt_file: The option file, named in the messages about missing keys.

    Raises:
        OptionError: A value would be misread or would train with a wrong meaning (the message names the key
            path and the value).
        RenamedOptionError: A key was renamed (the message names the new key).
    """
    from srfer_plugin.train_loop.option_keys import check_option_keys

    check_renamed_options(opt)
    _check_seed(opt.get('manual_seed'))
    for key, dataset in opt['datasets'].items():
        where = f'datasets.{key}'
        if 'batch_size_per_gpu' in dataset or (is_train and key == 'train'):
            _check_positive_int(dataset, 'batch_size_per_gpu', where)
        for int_key in ('gt_size', 'dataset_enlarge_ratio'):
            if dataset.get(int_key) is not None:
                _check_number(dataset, int_key, where, 'a whole number > 0', _positive_whole)
                dataset[int_key] = int(dataset[int_key])
        _check_flags(dataset, DATASET_FLAGS, where)
    if is_train and not isinstance(opt.get('train'), dict):
        raise OptionError(f'train must be a mapping of training options; got {_short(opt.get("train"))}')
    for section, flags in SECTION_FLAGS.items():
        if isinstance(opt.get(section), dict):
            _check_flags(opt[section], flags, section)
    metrics = opt['val'].get('metrics') if isinstance(opt.get('val'), dict) else None
    if isinstance(metrics, dict):
        for name, metric in metrics.items():
            if isinstance(metric, dict):
                _check_flags(metric, ('test_y_channel',), f'val.metrics.{name}')
    check_option_keys(opt, is_train, opt_file)
    if not is_train:
        return
    train_opt = opt['train']
    _check_total_iter(train_opt)
    for key, optim_opt in train_opt.items():
        if key.startswith('optim_') and optim_opt is not None:
            _check_learning_rate(optim_opt, f'train.{key}')
            _check_betas(optim_opt, f'train.{key}')
        if key.startswith('scheduler') and isinstance(train_opt[key], dict):
            _check_scheduler(train_opt[key], f'train.{key}')
    if 'warmup_iter' in train_opt:  # BasicSR's learning-rate warm-up; -1 = none
        _check_number(train_opt, 'warmup_iter', 'train', 'a whole number (-1 for none)', _whole_from_minus_one)
        train_opt['warmup_iter'] = int(train_opt['warmup_iter'])
    if 'max_nonfinite_steps' in train_opt:  # 0: never stop
        _check_number(train_opt, 'max_nonfinite_steps', 'train', 'a whole number >= 0 (0: never stop)', _whole)
        train_opt['max_nonfinite_steps'] = int(train_opt['max_nonfinite_steps'])
    if 'ema_decay' in train_opt:
        _check_number(train_opt, 'ema_decay', 'train', 'a number in [0, 1) (0 = no EMA)', lambda v: 0 <= v < 1)
    for key, loss_opt in train_opt.items():
        if key.endswith('_opt') and loss_opt is not None:
            for parent, where in _mappings(loss_opt, f'train.{key}'):
                if 'loss_weight' in parent:
                    _check_number(parent, 'loss_weight', where, 'a number >= 0', lambda weight: weight >= 0)
    attention_opt = train_opt.get('attention_opt')
    if isinstance(attention_opt, dict) and 'p' in attention_opt:
        _check_number(attention_opt, 'p', 'train.attention_opt', 'a number > 0 (the exponent of |F|)', _positive)
    if isinstance(attention_opt, dict) and attention_opt.get('stage_weights') is not None:
        from srfer_plugin.losses.consistency_loss import check_stage_weights

        try:
            check_stage_weights(attention_opt['stage_weights'], 'train.attention_opt.stage_weights')
        except ValueError as err:
            raise OptionError(str(err)) from None
    fer_opt = train_opt.get('fer_opt')
    if isinstance(fer_opt, dict) and 'label_smoothing' in fer_opt:
        _check_number(fer_opt, 'label_smoothing', 'train.fer_opt', 'a number in [0, 1)', lambda value: 0 <= value < 1)
    prediction_opt = train_opt.get('prediction_opt')
    if isinstance(prediction_opt, dict) and 'temperature' in prediction_opt:
        _check_number(prediction_opt, 'temperature', 'train.prediction_opt', 'a number > 0', _positive)
    # BasicSR takes `current_iter % freq`: 0 divides by zero after the first step, a fraction never fires.
    for section, key in (('logger', 'print_freq'), ('logger', 'save_checkpoint_freq'), ('val', 'val_freq')):
        parent = opt.get(section)
        if isinstance(parent, dict) and key in parent:
            _check_number(parent, key, section, 'a whole number > 0', _positive_whole)
            parent[key] = int(parent[key])
    _check_model_options(opt)


def _check_model_options(opt: dict) -> None:
    """The checks an SR-FER model makes when it is built, made here from the options alone."""
    if not opt.get('network_fer'):
        return
    from basicsr.utils.registry import MODEL_REGISTRY

    from srfer_plugin.models.fer_option_checks import check_training_options

    try:
        model_class = MODEL_REGISTRY.get(opt.get('model_type'))
    except KeyError:
        return  # BasicSR names an unknown model_type itself
    loss_options = getattr(model_class, 'LOSS_OPTIONS', None)
    if loss_options is not None:
        check_training_options(opt, tuple(loss_options))


def _check_name(name: Any, path: str) -> None:
    """``name`` becomes ``experiments/<name>`` and ``results/<name>``: one plain folder name, nothing else."""
    if not (isinstance(name, str) and name.strip()):
        raise OptionError(f'name must be a non-empty string (it names the output folder); got {name!r} in {path!r}')
    if '/' in name or '\\' in name or name.startswith('.') or name != name.strip() or '\x00' in name:
        raise OptionError(
            f'name must be one plain folder name (no path separator, no leading dot or space: it becomes '
            f'experiments/<name> and results/<name>, and BasicSR archives an existing folder of that name); got '
            f'{name!r} in {path!r}'
        )
    if 'debug' in name:
        warnings.warn(
            f'name {name!r} contains "debug": BasicSR then validates and saves every 8 iterations and turns the '
            'tensorboard logger off (its debug mode)',
            stacklevel=2,
        )


def _check_seed(seed: Any) -> None:
    if seed is None:  # BasicSR draws one
        return
    if not (_is_int(seed) and 0 <= seed <= MAX_SEED):
        raise OptionError(f'manual_seed must be an integer in [0, {MAX_SEED}] (or ~ for a random one); got {seed!r}')


def _check_total_iter(train_opt: dict) -> None:
    total_iter = _as_number(train_opt.get('total_iter'))
    if total_iter is None or total_iter <= 0 or total_iter != int(total_iter):
        raise OptionError(f'train.total_iter must be a positive integer; got {train_opt.get("total_iter")!r}')
    train_opt['total_iter'] = int(total_iter)


def _check_learning_rate(optim_opt: Any, where: str) -> None:
    if not isinstance(optim_opt, dict):
        raise OptionError(f'{where} must be a mapping (type: Adam, lr: ...); got {_short(optim_opt)}')
    if 'lr' not in optim_opt:
        raise OptionError(f'{where}.lr is missing (the learning rate, a number > 0)')
    _check_number(optim_opt, 'lr', where, 'a number > 0', _positive)


def _check_betas(optim_opt: dict, where: str) -> None:
    betas = optim_opt.get('betas')
    if betas is None:
        return
    numbers = [_as_number(beta) for beta in betas] if isinstance(betas, (list, tuple)) else []
    if len(numbers) != 2 or any(beta is None or not 0 <= beta < 1 for beta in numbers):
        raise OptionError(f'{where}.betas must be two numbers in [0, 1), e.g. [0.9, 0.99]; got {betas!r}')
    optim_opt['betas'] = list(numbers)


def _check_scheduler(scheduler_opt: dict, where: str) -> None:
    """Milestones and periods must be iteration counts; YAML's ``2e5`` (a string) would never match one."""
    for key in ('milestones', 'periods'):
        if key in scheduler_opt:
            values = scheduler_opt[key]
            numbers = [_as_number(value) for value in values] if isinstance(values, (list, tuple)) else [None]
            if not numbers or any(value is None or value <= 0 or value != int(value) for value in numbers):
                raise OptionError(f'{where}.{key} must be a list of whole numbers > 0 (iterations); got {values!r}')
            scheduler_opt[key] = [int(value) for value in numbers]
    if 'restart_weights' in scheduler_opt:
        values = scheduler_opt['restart_weights']
        numbers = [_as_number(value) for value in values] if isinstance(values, (list, tuple)) else [None]
        if any(value is None or value < 0 for value in numbers):
            raise OptionError(f'{where}.restart_weights must be a list of numbers >= 0; got {values!r}')
        scheduler_opt['restart_weights'] = numbers
    if 'gamma' in scheduler_opt:
        _check_number(scheduler_opt, 'gamma', where, 'a number > 0', _positive)
    if 'eta_min' in scheduler_opt:
        _check_number(scheduler_opt, 'eta_min', where, 'a number >= 0', lambda value: value >= 0)


def _check_flags(section: dict, flags: tuple[str, ...], where: str) -> None:
    """Flags must be YAML booleans: BasicSR and the models read them with ``if``/``bool()``, so ``'false'`` is on."""
    for flag in flags:
        if flag in section and not isinstance(section[flag], bool):
            raise OptionError(f'{where}.{flag} must be true or false; got {section[flag]!r}')


def _whole(value: float) -> bool:
    return value >= 0 and value == int(value)


def _whole_from_minus_one(value: float) -> bool:
    return value >= -1 and value == int(value)


def _check_positive_int(parent: dict, key: str, where: str) -> None:
    value = parent.get(key)
    if not (_is_int(value) and value > 0):
        raise OptionError(f'{where}.{key} must be an integer > 0; got {value!r}')


def _check_number(parent: dict, key: str, where: str, wanted: str, accept: Callable[[float], bool]) -> None:
    """``parent[key]`` must be a finite number that ``accept`` accepts; a numeric string is replaced by its float."""
    value = _as_number(parent[key])
    if value is None or not accept(value):
        raise OptionError(f'{where}.{key} must be {wanted}; got {parent[key]!r}')
    if isinstance(parent[key], str):
        parent[key] = value


def _positive(value: float) -> bool:
    return value > 0


def _positive_whole(value: float) -> bool:
    return value > 0 and value == int(value)


def _as_number(value: Any) -> float | int | None:
    """The finite number ``value`` stands for (a numeric string parsed as a float), or None."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _mappings(value: Any, where: str) -> Iterator[tuple[dict, str]]:
    """Every mapping inside ``value`` (itself included), with its key path."""
    if isinstance(value, dict):
        yield value, where
        for key, item in value.items():
            yield from _mappings(item, f'{where}.{key}')
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _mappings(item, f'{where}[{i}]')


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + '...'
