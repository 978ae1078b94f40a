"""Option keys that BasicSR would miss, ignore or read only mid-run, refused before anything is created.

Called from :func:`~srfer_plugin.train_loop.option_checks.check_options` (parsed options, after BasicSR's debug mode
has filled in its frequencies). Every error names the YAML key path, and a missing key also the option file:

* required keys: ``num_gpu``, ``model_type``, ``network_g``, each dataset's ``name`` and ``type``; in training
  ``logger`` (``print_freq``, ``save_checkpoint_freq``, ``use_tb_logger``) and ``val.val_freq``; ``val.save_img``
  wherever BasicSR reads it;
* datasets: two evaluated sets of one ``name`` (results and best metrics are kept by name), ``datasets.val``
  without a ``val`` section (never validated), and for the plugin's dataset types unknown keys, ``use_rot: true``
  (faces are not rotated) and ``degradation`` beside ``dataroot_lq`` (LR images are read, not degraded);
* ``val.metrics``: a type that is not registered, a keyword its function does not take, ``crop_border`` that is not
  a whole number >= 0;
* unknown keys in ``train`` and ``path`` (with the closest known key); in a test run, no
  ``path.pretrain_network_g`` for a ``network_g`` that has weights.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Iterable
from copy import deepcopy
from typing import Any

from srfer_plugin.train_loop.option_checks import OptionError

# What the plugin's models (srfer_plugin/models) and BasicSR's (basicsr/models) read under ``train``.
PLUGIN_TRAIN_KEYS = frozenset(
    {
        'total_iter', 'warmup_iter', 'ema_decay', 'optim_g', 'scheduler', 'pixel_opt', 'perceptual_opt',
        'attention_opt', 'prediction_opt', 'fer_opt', 'fer_distill_opt', 'fer_inputs', 'train_network_fer',
        'train_network_g', 'optim_fer', 'scheduler_fer', 'joint_opt', 'consistency_weights', 'cache_hr_reference',
        'gan_opt', 'optim_d', 'net_d_iters', 'net_d_init_iters', 'use_amp', 'amp_dtype', 'channels_last',
        'max_nonfinite_steps', 'seed_per_iter', 'fer_batch_size',
    }
)  # fmt: skip
BASICSR_TRAIN_KEYS = frozenset(
    {
        'dcn_lr_mul', 'feature_matching_opt', 'fix_flow', 'flow_lr_mul', 'ldl_opt', 'lr_flow', 'mixing_prob',
        'net_d_reg_every', 'net_g_reg_every', 'path_batch_shrink', 'path_reg_weight', 'r1_reg_weight', 'tsa_iter',
    }
)  # fmt: skip
TRAIN_KEYS = PLUGIN_TRAIN_KEYS | BASICSR_TRAIN_KEYS
# ``path`` keys BasicSR reads or writes (plus pretrain_/strict_load_/param_key_ of each top-level network_* key).
PATH_KEYS = frozenset(
    {
        'resume_state', 'ignore_resume_networks', 'experiments_root', 'models', 'training_states', 'log',
        'visualization', 'results_root',
    }
)  # fmt: skip
# What the plugin's dataset types read: their own keys, BasicSR's loader keys, and what the option parsers add.
FER_DATASET_KEYS = frozenset(
    {
        'name', 'type', 'phase', 'scale', 'yaml_key', 'log_dir', 'dataroot_gt', 'dataroot_lq', 'meta_info_file',
        'classes', 'num_classes', 'gt_size', 'degradation', 'degradation_seed', 'use_hflip', 'use_rot', 'io_backend',
        'bad_images', 'meta_info_duplicates', 'batch_size_per_gpu', 'num_worker_per_gpu', 'dataset_enlarge_ratio',
        'prefetch_mode', 'pin_memory', 'persistent_workers', 'num_prefetch_queue', 'use_shuffle',
    }
)  # fmt: skip
# Keys of the top level, ``logger`` and ``val`` that are never taken for a misspelling of a missing one.
SECTION_KEYS = {
    '': {'name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'path', 'train', 'val', 'logger'},
    'logger': {'print_freq', 'save_checkpoint_freq', 'use_tb_logger', 'wandb'},
    'val': {'val_freq', 'save_img', 'metrics', 'suffix', 'pbar'},
}
# Top-level keys besides SECTION_KEYS['']: BasicSR's distributed settings and what parse_options and the train loop
# add.
TOP_LEVEL_RUN_KEYS = frozenset(
    {
        'dist_params', 'find_unused_parameters', 'is_train', 'dist', 'rank', 'world_size', 'auto_resume',
        'root_path', 'iters_per_epoch', 'resume_notes', 'resume_position',
    }
)  # fmt: skip
# Arguments BasicSR's validation passes to a metric function from the images, and the metric keys it reads itself.
METRIC_DATA_ARGS = ('img', 'img2')
METRIC_OWN_KEYS = ('type', 'better')


def check_option_keys(opt: dict, is_train: bool, opt_file: str | None = None) -> None:
    """Check the keys of parsed options (see the module docstring).

    Args:
        opt: The options as BasicSR's ``parse_options`` returns them.
        is_train: A training run rather than a test run.
        opt_file: The option file, named in the messages about missing keys.

    Raises:
        OptionError: A key is missing, unknown or holds a value that BasicSR would read only mid-run (the message
            names the key path).
    """
    if is_train and _val_keys(opt) and opt.get('val') is None:
        raise OptionError(
            f'datasets.{_val_keys(opt)[0]} is given but the val section is missing{_in(opt_file)}: BasicSR never '
            'validates without it; add val (val_freq, save_img, metrics) or remove the validation set'
        )
    check_required_keys(opt, is_train, opt_file)
    check_dataset_names(opt, is_train)
    check_dataset_keys(opt)
    check_val_metrics(opt)
    if is_train:
        check_train_keys(opt)
    check_path_keys(opt, is_train)
    check_top_level_and_val_keys(opt)


def check_num_gpu(opt: dict, opt_file: str | None = None) -> None:
    """``num_gpu`` is ``auto`` or a whole number >= 0 (BasicSR's ``parse_options`` itself reads it).

    Raises:
        OptionError: It is missing or holds another value.
    """
    if 'num_gpu' not in opt:
        raise OptionError(f'num_gpu is missing{_in(opt_file)}: set auto (every visible GPU) or a number (0 = CPU)')
    value = opt['num_gpu']
    if value != 'auto' and not (_is_int(value) and value >= 0):
        raise OptionError(f'num_gpu must be auto or a whole number >= 0 (0 = CPU); got {value!r}{_in(opt_file)}')


def check_required_keys(opt: dict, is_train: bool, opt_file: str | None = None) -> None:
    """Keys BasicSR reads with ``opt[key]`` (a bare KeyError, some only after the first iterations).

    Raises:
        OptionError: A required key is missing or not a mapping (the message names the key and the file).
    """
    check_num_gpu(opt, opt_file)
    for key in ('model_type', 'network_g'):
        if opt.get(key) in (None, ''):
            raise OptionError(f'{key} is missing{_in(opt_file)}' + (_suggest(key, opt) if key not in opt else ''))
    _check_registered(opt, opt_file)
    if 'scale' in opt and not (_is_int(opt['scale']) and opt['scale'] >= 1):  # BasicSR copies it to every dataset
        raise OptionError(
            f'scale must be a whole number >= 1 (the upscale factor); got {opt["scale"]!r}{_in(opt_file)}'
        )
    for key, dataset in opt['datasets'].items():
        for field in ('name', 'type'):
            if not (isinstance(dataset.get(field), str) and dataset[field]):
                raise OptionError(f'datasets.{key}.{field} must be a non-empty string; got {dataset.get(field)!r}')
        if is_train and key != 'train' and key.split('_')[0] != 'val':
            raise OptionError(
                f'datasets.{key}: a training run reads datasets.train and validation sets datasets.val, val_2, ... '
                '(BasicSR takes the phase from the key before "_")'
            )
    if is_train and 'train' not in opt['datasets']:
        raise OptionError(f'datasets.train is missing{_in(opt_file)} (the training set)')
    required = {'val': ['save_img'] if not is_train else []}
    if is_train:
        required['logger'] = ['print_freq', 'save_checkpoint_freq', 'use_tb_logger']
        if opt.get('val') is not None:
            required['val'] = ['val_freq'] + (['save_img'] if _val_keys(opt) else [])
    for section, keys in required.items():
        if not keys:
            continue
        if not isinstance(opt.get(section), dict):
            if section not in opt:
                needs = f'{"a training" if is_train else "a test"} run needs {section}.{", ".join(keys)}'
                raise OptionError(f'{section} is missing{_in(opt_file)} ({needs})' + _suggest(section, opt))
            raise OptionError(
                f'{section} must be a mapping with {", ".join(keys)}; got {opt[section]!r}{_in(opt_file)}'
            )
        for key in keys:
            if key not in opt[section]:
                raise OptionError(f'{section}.{key} is missing{_in(opt_file)}' + _suggest(key, opt[section], section))


def check_dataset_names(opt: dict, is_train: bool) -> None:
    """Evaluated sets (validation sets in training, every set in a test run) must have distinct names.

    BasicSR and the plugin keep metrics, best results and reports (``fer/<name>/``, ``summary.csv``) by name.

    Raises:
        OptionError: Two sets share a name (the message names both keys and the name), or a name is not one
            plain folder name (``../x``, ``/abs``: the reports would be written outside the run folder).
    """
    seen: dict[str, str] = {}
    for key, dataset in opt['datasets'].items():
        name = dataset.get('name')
        if isinstance(name, str) and (os.path.basename(name) != name or name in ('.', '..') or '\\' in name):
            raise OptionError(
                f'datasets.{key}.name must be one plain folder name (it names the visualization/<name> and '
                f'fer/<name> folders); got {name!r}'
            )
        if is_train and key.split('_')[0] != 'val':
            continue
        if name in seen:
            raise OptionError(
                f'datasets.{seen[name]} and datasets.{key} are both named {name!r}: give each set its own name '
                '(metrics, best results and reports are kept by name, so one set would overwrite the other)'
            )
        seen[name] = key


def check_dataset_keys(opt: dict) -> None:
    """The plugin's dataset types take no key they do not read, no rotation, and no degradation beside LR images.

    Raises:
        OptionError: An unknown key (with the closest known one), ``use_rot: true``, ``use_shuffle: false`` in
            training, or ``degradation`` together with ``dataroot_lq``.
    """
    from basicsr.utils.registry import DATASET_REGISTRY

    for key, dataset in opt['datasets'].items():
        where = f'datasets.{key}'
        dataset_class = _registered(DATASET_REGISTRY, dataset['type'])
        if dataset_class is None:
            hint = _closest(dataset['type'], DATASET_REGISTRY.keys())
            raise OptionError(f'{where}.type: {dataset["type"]!r} is not a registered dataset type{hint}')
        if not dataset_class.__module__.startswith('srfer_plugin.'):
            continue  # BasicSR's and other plugins' datasets read their own keys
        _refuse_unknown(dataset, FER_DATASET_KEYS, where, dataset['type'])
        if dataset.get('use_rot') is True:
            raise OptionError(
                f'{where}.use_rot: true: {dataset["type"]} does not rotate faces (a classifier reads upright faces); '
                'remove use_rot or set it to false'
            )
        if dataset.get('use_shuffle') is False and key == 'train':  # BasicSR's templates carry use_shuffle: true
            raise OptionError(
                f'{where}.use_shuffle: false would be ignored: BasicSR shuffles the training set with its sampler '
                'whatever use_shuffle says; remove it'
            )
        if dataset.get('dataroot_lq') and dataset.get('degradation') is not None:
            raise OptionError(
                f'{where}.degradation is not used when {where}.dataroot_lq is set (LR images are read from '
                'dataroot_lq, not degraded from HR): remove one of them'
            )


def check_val_metrics(opt: dict) -> None:
    """Each ``val.metrics.<name>`` names a registered metric and only keywords its function takes.

    Raises:
        OptionError: An unknown type or keyword (with the closest known one), a missing argument, or a
            ``crop_border``/``test_y_channel``/``better`` of the wrong kind.
    """
    from basicsr.utils.registry import METRIC_REGISTRY

    import srfer_plugin.metrics  # noqa: F401  (registers the plugin's metrics)

    metrics = (opt.get('val') or {}).get('metrics')
    if metrics is None:
        return
    if not isinstance(metrics, dict):
        raise OptionError(f'val.metrics must be a mapping of metric names to options; got {metrics!r}')
    for name, metric_opt in metrics.items():
        where = f'val.metrics.{name}'
        if not isinstance(metric_opt, dict) or 'type' not in metric_opt:
            raise OptionError(f'{where} must be a mapping with type (e.g. calculate_psnr); got {metric_opt!r}')
        function = _registered(METRIC_REGISTRY, metric_opt['type'])
        if function is None:
            hint = _closest(metric_opt['type'], METRIC_REGISTRY.keys())
            raise OptionError(f'{where}.type: {metric_opt["type"]!r} is not a registered metric{hint}')
        params = {
            name: param
            for name, param in inspect.signature(function).parameters.items()
            if name not in METRIC_DATA_ARGS and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
        }
        _refuse_unknown(metric_opt, set(params) | set(METRIC_OWN_KEYS), where, metric_opt['type'])
        for param in params.values():
            if param.default is param.empty and param.name not in metric_opt:
                raise OptionError(f'{where}.{param.name} is missing ({metric_opt["type"]} needs it)')
        if 'crop_border' in metric_opt and not (_is_int(metric_opt['crop_border']) and metric_opt['crop_border'] >= 0):
            raise OptionError(f'{where}.crop_border must be a whole number >= 0; got {metric_opt["crop_border"]!r}')
        if 'test_y_channel' in metric_opt and not isinstance(metric_opt['test_y_channel'], bool):
            raise OptionError(f'{where}.test_y_channel must be true or false; got {metric_opt["test_y_channel"]!r}')
        if metric_opt.get('better', 'higher') not in ('higher', 'lower'):
            raise OptionError(f'{where}.better must be higher or lower; got {metric_opt["better"]!r}')


def check_train_keys(opt: dict) -> None:
    """``train`` of the plugin's and BasicSR's models takes only the keys their models read.

    Raises:
        OptionError: An unknown key (the message names the closest known one).
    """
    from basicsr.utils.registry import MODEL_REGISTRY

    model_class = _registered(MODEL_REGISTRY, opt['model_type'])
    if model_class.__module__.startswith(('srfer_plugin.', 'basicsr.')):
        _refuse_unknown(opt['train'], TRAIN_KEYS, 'train', opt['model_type'])


def check_top_level_and_val_keys(opt: dict) -> None:
    """The plugin's models read no top-level or ``val`` key but these (other models, e.g. Real-ESRGAN's, read their
    own top-level keys and are left alone).

    Raises:
        OptionError: An unknown key (with the closest known one): ``manual_sead`` trained with a random seed,
            ``val.metric`` without metrics.
    """
    from basicsr.utils.registry import MODEL_REGISTRY

    model_class = _registered(MODEL_REGISTRY, opt['model_type'])
    if not model_class.__module__.startswith('srfer_plugin.'):
        return
    networks = {key for key in opt if key.startswith('network_')}
    _refuse_unknown(opt, SECTION_KEYS[''] | TOP_LEVEL_RUN_KEYS | networks, '', opt['model_type'])
    if isinstance(opt.get('val'), dict):
        _refuse_unknown(opt['val'], SECTION_KEYS['val'], 'val', opt['model_type'])


def check_path_keys(opt: dict, is_train: bool) -> None:
    """``path`` holds only keys BasicSR reads; a test run loads ``network_g`` from ``path.pretrain_network_g``.

    Raises:
        OptionError: An unknown key (with the closest known one), a ``pretrain_network_*`` that is not a file
            (BasicSR would create, or archive, the run folder first), or a test run with no
            ``path.pretrain_network_g`` whose ``network_g`` has weights (it would score a random network).
    """
    known = set(PATH_KEYS)
    for network in (key for key in opt if key.startswith('network_')):
        suffix = network[len('network_') :]
        known |= {f'pretrain_{network}', f'strict_load_{suffix}', f'param_key_{suffix}'}
    _refuse_unknown(opt['path'], known, 'path', 'BasicSR')
    resumes = bool(opt['path'].get('resume_state') or opt.get('auto_resume'))
    ignored = opt['path'].get('ignore_resume_networks') or []
    for network in (key for key in opt if key.startswith('network_')):
        weights = opt['path'].get(f'pretrain_{network}')
        if weights is None or (resumes and network not in ignored):  # a resume loads the state's networks
            continue
        if not (isinstance(weights, str) and os.path.isfile(weights)):
            raise OptionError(
                f'path.pretrain_{network}: {weights!r} is not a file (relative paths are read from '
                f'{os.getcwd()!r}); nothing was created'
            )
    if not is_train and not opt['path'].get('pretrain_network_g') and _has_weights(opt['network_g']):
        raise OptionError(
            f'path.pretrain_network_g is not set: a test run would score network_g ({opt["network_g"].get("type")}) '
            'with random weights; set path.pretrain_network_g to the trained network (net_g_latest.pth)'
        )


def _check_registered(opt: dict, opt_file: str | None) -> None:
    """``model_type`` and each ``network_*.type`` name registered classes (BasicSR looks them up only later)."""
    from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY

    if _registered(MODEL_REGISTRY, opt['model_type']) is None:
        hint = _closest(opt['model_type'], MODEL_REGISTRY.keys())
        raise OptionError(f'model_type: {opt["model_type"]!r} is not a registered model{_in(opt_file)}{hint}')
    for key, network in opt.items():
        if not key.startswith('network_') or network is None:
            continue
        if not isinstance(network, dict) or not network.get('type'):
            raise OptionError(f'{key} must be a mapping with type (the network class); got {network!r}')
        if _registered(ARCH_REGISTRY, network['type']) is None:
            hint = _closest(network['type'], ARCH_REGISTRY.keys())
            raise OptionError(f'{key}.type: {network["type"]!r} is not a registered network{hint}')


def _has_weights(network_opt: dict) -> bool:
    """Whether ``network_g`` has parameters (built on the meta device: no memory, no computation); True when it
    cannot be built so."""
    import torch
    from basicsr.utils.registry import ARCH_REGISTRY

    kwargs = deepcopy(network_opt)
    arch = _registered(ARCH_REGISTRY, kwargs.pop('type'))
    try:
        with torch.device('meta'):
            net = arch(**kwargs)
    except Exception:  # an arch that cannot be built on the meta device: assume it has weights
        return True
    return any(True for _ in net.parameters())


def _refuse_unknown(section: dict, known: Iterable[str], where: str, reader: str) -> None:
    known = set(known)
    for key in section:
        if key not in known:
            raise OptionError(
                f'{where + "." if where else ""}{key} is not an option {reader} reads (it would be ignored)'
                + _closest(key, known, where)
            )


def _closest(value: Any, known: Iterable[str], where: str = '') -> str:
    """``; did you mean X?`` for the closest known key, or an empty string."""
    close = difflib.get_close_matches(str(value), sorted(known), n=1, cutoff=0.6)
    return f'; did you mean {where + "." if where else ""}{close[0]}?' if close else ''


def _suggest(key: str, section: dict, where: str = '') -> str:
    """For a missing ``key``: a key of ``section`` that is no known key and looks like a misspelling of it."""
    known = SECTION_KEYS.get(where, set())
    given = [str(k) for k in section if k not in known and not (not where and str(k).startswith('network_'))]
    close = difflib.get_close_matches(key, given, n=1, cutoff=0.75)
    return f' ({where + "." if where else ""}{close[0]} is given: a misspelling?)' if close else ''


def _registered(registry: Any, name: Any) -> Any:
    """The object ``registry.get`` would return for ``name`` (also under BasicSR's suffix), or None."""
    if not isinstance(name, str):
        return None
    for key in (name, f'{name}_basicsr'):
        if key in registry:
            return registry.get(key)
    return None


def _val_keys(opt: dict) -> list[str]:
    return [key for key in opt['datasets'] if key.split('_')[0] == 'val']


def _in(opt_file: str | None) -> str:
    return f' in {opt_file!r}' if opt_file else ''


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
