"""FER classifier pre-training with mmengine's Runner on the plugin's dataset layout.

``srfer train-fer`` (:mod:`srfer_plugin.tools.train_fer`) is the command line of :func:`train_fer`; the demo calls it
directly.
"""

from __future__ import annotations

import copy
import glob
import hashlib
import json
import os
import os.path as osp
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from srfer_plugin.utils.shipped_options import resolve_path

if TYPE_CHECKING:
    import torch

SUMMARY_NAME = 'fer_test_accuracy.json'
FINAL_NAME = 'fer_final.pth'
# The cleaned initial weights handed to the Runner as ``load_from`` (tensors only, see :func:`prepare_init_weights`).
INIT_NAME = 'init_weights.pth'


def set_data_root(cfg, data_root: str) -> None:
    """Point the train/val/test dataloaders of an mmpretrain config at a dataset root in the plugin layout."""
    from srfer_plugin.data.fer_layout import CLASSES_FILE, read_classes

    if not osp.isdir(data_root):
        raise FileNotFoundError(f'--data-root {data_root!r} does not exist')
    classes_file = osp.join(data_root, CLASSES_FILE)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        loader.dataset.data_root = data_root
        if osp.isfile(classes_file):
            loader.dataset.classes = read_classes(classes_file)


def set_max_epochs(cfg, max_epochs: int) -> None:
    """Change ``train_cfg.max_epochs`` and stretch the epoch-based LR schedule (``end``, ``T_max``) to match."""
    old = int(cfg.train_cfg.max_epochs)
    cfg.train_cfg.max_epochs = int(max_epochs)
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    kept = []
    for scheduler in schedulers:
        if int(scheduler.get('begin', 0)) >= int(max_epochs):
            continue  # e.g. the cosine phase after a warm-up epoch, in a 1-epoch run
        if scheduler.get('end') == old or int(scheduler.get('end', 0)) > int(max_epochs):
            scheduler['end'] = int(max_epochs)
            if 'T_max' in scheduler:
                scheduler['T_max'] = int(max_epochs) - int(scheduler.get('begin', 0))
        kept.append(scheduler)
    cfg.param_scheduler = kept


def build_config(
    config: str,
    work_dir: str | None = None,
    data_root: str | None = None,
    cfg_options: dict[str, Any] | None = None,
    seed: int | None = None,
    device: str = 'auto',
    max_epochs: int | None = None,
):
    """Load an mmpretrain config and apply the overrides.

    Args:
        config: mmpretrain config file, or a shipped one by name (``srfer::fer/resnet18_fer7.py``).
        work_dir: Output folder. Default: the config's, else ``work_dirs/<config name>``.
        data_root: Dataset root in the plugin layout (overrides the config's).
        cfg_options: ``key.sub=value`` overrides, as mmengine's ``--cfg-options``.
        seed: Random seed (overrides ``randomness.seed``).
        device: ``cpu`` selects the gloo backend; ``auto``/``cuda`` keep the config's.
        max_epochs: Training epochs; the epoch-based LR schedule is stretched to match.

    Returns:
        The ``mmengine.Config`` handed to ``Runner.from_cfg``.
    """
    from mmengine.config import Config

    path = resolve_path(config)
    if not osp.isfile(path):
        raise FileNotFoundError(f'FER config {config!r} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if max_epochs is not None:
        set_max_epochs(cfg, max_epochs)
    if data_root:
        set_data_root(cfg, data_root)
    if work_dir:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(config))[0])
    if seed is not None:
        cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.setdefault('default_scope', 'mmpretrain')
    cfg.launcher = 'none'
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if device == 'cpu' or not dist_cfg.get('backend'):
        dist_cfg['backend'] = 'gloo'
    # mmengine reads load_from/resume files with torch.load(weights_only=True) (torch >= 2.6), which rejects the
    # HistoryBuffer of its own Runner checkpoints; train_fer reads a load_from through the safe loader instead
    # (prepare_init_weights). Start from scratch unless the config asks otherwise.
    cfg.setdefault('load_from', None)
    cfg.setdefault('resume', False)
    return cfg


def _is_url(path: str) -> bool:
    return urlparse(path).scheme in ('http', 'https')


def fetch_checkpoint(path_or_url: str, what: str = '--pretrained') -> str:
    """Return a local checkpoint path; a URL is downloaded once into torch hub's checkpoint folder.

    Args:
        path_or_url: Local file or ``http(s)://`` URL.
        what: Name of the setting, for error messages.

    Returns:
        The local file (for a URL: ``<torch.hub.get_dir()>/checkpoints/<file name>``).

    Raises:
        FileNotFoundError: A local file that does not exist.
    """
    if _is_url(path_or_url):
        import torch.hub

        folder = osp.join(torch.hub.get_dir(), 'checkpoints')
        local = osp.join(folder, osp.basename(urlparse(path_or_url).path) or 'checkpoint.pth')
        if not osp.isfile(local):
            os.makedirs(folder, exist_ok=True)
            print(f'{what}: downloading {path_or_url} -> {local}', flush=True)
            torch.hub.download_url_to_file(path_or_url, local, progress=True)  # temp file, then rename
        return local
    local = osp.expanduser(path_or_url)
    if not osp.isfile(local):
        raise FileNotFoundError(f'{what} {path_or_url!r} does not exist')
    return local


def read_weights(path_or_url: str, what: str = '--pretrained') -> dict[str, torch.Tensor]:
    """Read the weights of a checkpoint with the plugin's safe loader (no pickled code runs).

    Accepts mmpretrain/mmengine files (``{'state_dict', 'meta', ...}``, Runner checkpoints included), BasicSR
    params, plain state dicts, and ``module.``-prefixed keys (DDP).

    Args:
        path_or_url: Local file or URL (see :func:`fetch_checkpoint`).
        what: Name of the setting, for messages.

    Returns:
        Flat mapping from parameter names to tensors.

    Raises:
        FileNotFoundError: Missing local file.
        srfer_plugin.utils.checkpoint.UnsafeCheckpointError: The file references code outside the allow-list.
    """
    from srfer_plugin.utils.checkpoint import extract_state_dict, safe_load, strip_key_prefix

    local = fetch_checkpoint(path_or_url, what)
    return dict(strip_key_prefix(extract_state_dict(safe_load(local), local)))


def _apply_load_pre_hooks(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Run the model's own ``load_state_dict`` pre-hooks on ``state`` in place, as ``load_state_dict`` would.

    mmpretrain uses them to adapt checkpoints, e.g. VisionTransformer resizes ``pos_embed`` to its ``img_size``.
    """
    for name, module in model.named_modules():
        prefix = f'{name}.' if name else ''
        for hook in getattr(module, '_load_state_dict_pre_hooks', {}).values():
            hook(state, prefix, {}, False, [], [], [])


def match_weights(
    model: torch.nn.Module, state: dict[str, torch.Tensor], source: str, what: str = '--pretrained'
) -> dict[str, Any]:
    """Keep the tensors of ``state`` that fit ``model``, after the model's own checkpoint adaptations.

    Args:
        model: The model to initialise.
        state: Checkpoint weights (:func:`read_weights`).
        source: The checkpoint's path or URL, for messages.
        what: Name of the setting, for messages.

    Returns:
        ``{'state_dict': matching tensors, 'shape_mismatch': {key: (checkpoint shape, model shape)},
        'unexpected': [keys not in the model], 'missing': [model keys not in the checkpoint]}``.

    Raises:
        ValueError: No tensor matches the model, not even with a ``backbone.`` prefix (a backbone-only file).
    """
    state = dict(state)
    _apply_load_pre_hooks(model, state)
    target = model.state_dict()
    if not any(k in target for k in state) and any(f'backbone.{k}' in target for k in state):
        state = {f'backbone.{k}': v for k, v in state.items()}  # a backbone-only checkpoint
    matched, mismatch, unexpected = {}, {}, []
    for key, value in state.items():
        if key not in target:
            unexpected.append(key)
        elif tuple(value.shape) != tuple(target[key].shape):
            mismatch[key] = (tuple(value.shape), tuple(target[key].shape))
        else:
            matched[key] = value.detach().to(dtype=target[key].dtype).contiguous()
    if not matched:
        raise ValueError(
            f'{what} {source}: none of its {len(state)} tensors match the model (checkpoint keys '
            f'{list(state)[:3]}..., model keys {list(target)[:3]}...); is it a checkpoint of this architecture?'
        )
    missing = [k for k in target if k not in matched]
    return {'state_dict': matched, 'shape_mismatch': mismatch, 'unexpected': unexpected, 'missing': missing}


def prepare_init_weights(cfg, source: str, what: str = '--pretrained') -> str:
    """Turn a pretrained checkpoint into a tensors-only file the Runner loads as ``load_from``.

    The file is read with the safe loader, matched against the config's model (tensors whose shape differs, such
    as a 1000-class ImageNet head, are skipped and logged) and written to ``<work_dir>/init_weights.pth``. The
    Runner loads ``load_from`` after ``init_weights()``, so these weights are the ones training starts from.

    Args:
        cfg: The training config (``model``, ``data_preprocessor``, ``work_dir``); ``cfg.load_from`` is set.
        source: Local path or URL of the checkpoint.
        what: Name of the setting, for messages.

    Returns:
        The path of the written file.
    """
    from mmpretrain.registry import MODELS

    from srfer_plugin.utils.checkpoint import atomic_torch_save

    state = read_weights(source, what)  # fails before anything is built or written
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    model = MODELS.build(model_cfg)
    result = match_weights(model, state, source, what)
    del model
    loaded, mismatch = result['state_dict'], result['shape_mismatch']
    print(f'{what} {source}: initialising {len(loaded)} of {len(loaded) + len(result["missing"])} model tensors')
    if mismatch:
        listed = ', '.join(f'{k} {list(a)} vs {list(b)}' for k, (a, b) in list(mismatch.items())[:6])
        more = f' and {len(mismatch) - 6} more' if len(mismatch) > 6 else ''
        print(f'{what}: skipped {len(mismatch)} tensors whose shape differs from the model: {listed}{more}')
    unexpected = result['unexpected']
    if unexpected:
        print(f'{what}: ignored {len(unexpected)} tensors the model does not have: {unexpected[:6]}')
    missing = [k for k in result['missing'] if k not in mismatch]
    if missing:
        print(f'{what}: {len(missing)} model tensors are not in the checkpoint and keep their initialisation')
    meta = {
        'source': source,
        'skipped_shape_mismatch': {k: [list(a), list(b)] for k, (a, b) in mismatch.items()},
        'ignored_unexpected': unexpected,
    }
    path = osp.join(osp.abspath(cfg.work_dir), INIT_NAME)
    atomic_torch_save({'state_dict': loaded, 'meta': meta}, path)
    cfg.load_from = path
    return path


def _checkpoint_paths(work_dir: str) -> dict[str, str | None]:
    last = None
    last_file = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last_file):
        with open(last_file, encoding='utf-8') as f:
            last = f.read().strip() or None
    best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')), key=osp.getmtime)
    return {'last': last, 'best': best[-1] if best else None}


def config_digest(config: str) -> str:
    """SHA-256 of an mmpretrain config's content with its ``_base_`` files merged in (not of its path), so the same
    config reads the same from any checkout and an edited one, or an edited base, reads differently."""
    from mmengine.config import Config

    content = Config.fromfile(resolve_path(config)).to_dict()
    return hashlib.sha256(json.dumps(_plain(content), sort_keys=True, default=repr).encode()).hexdigest()


def _plain(value: Any) -> Any:
    """Convert numpy/torch scalars and containers into plain Python types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if hasattr(value, 'item'):
        return value.item()
    return str(value)


def train_fer(
    config: str,
    reuse: bool = False,
    pretrained: str | None = None,
    **build_options: Any,
) -> dict[str, Any]:
    """Train the classifier, test the final model on the test split and write ``fer_final.pth``.

    ``fer_final.pth`` holds ``{'state_dict': ..., 'meta': {...}}`` with tensors and plain Python types only, so it
    loads as ``network_fer.checkpoint`` (the Runner checkpoints load too, through the plugin's safe loader).

    Args:
        config: mmpretrain config file, or a shipped one by name (``srfer::fer/resnet18_fer7.py``).
        reuse: Return the summary of an earlier run with the same settings (config content, data root, cfg_options,
            seed, epochs, start checkpoint) instead of training again.
        pretrained: Checkpoint (path or URL) to start from, e.g. ImageNet weights; tensors that do not fit the model
            (the 1000-class head) are skipped. Replaces the config's ``load_from``; a config ``load_from`` is read
            the same safe way (:func:`prepare_init_weights`).
        **build_options: ``work_dir``, ``data_root``, ``cfg_options``, ``seed``, ``device`` and ``max_epochs`` of
            :func:`build_config`; ``device='cpu'`` also hides every GPU.

    Returns:
        The summary written to ``fer_test_accuracy.json`` (``accuracy_top1``, ``fer_final``, ``classes``, ...).
    """
    config = resolve_path(config)
    data_root = build_options.get('data_root')
    settings = _plain(
        {
            'config_sha256': config_digest(config),
            'data_root': osp.abspath(data_root) if data_root else None,
            'cfg_options': build_options.get('cfg_options') or {},
            'seed': build_options.get('seed'),
            'max_epochs': build_options.get('max_epochs'),
        }
    )
    if pretrained:  # only when set, so that summaries of earlier runs still match
        settings['pretrained'] = pretrained if _is_url(pretrained) else osp.abspath(pretrained)
    cfg = build_config(config, **build_options)
    summary_path = osp.join(cfg.work_dir, SUMMARY_NAME)
    if reuse and osp.isfile(summary_path):
        with open(summary_path, encoding='utf-8') as f:
            previous = json.load(f)
        if previous.get('settings') == settings and osp.isfile(previous.get('fer_final', '')):
            print(
                f'FER classifier: reusing {previous["fer_final"]} (HR test accuracy {previous["accuracy_top1"]:.2f}%)'
            )
            return previous
    if build_options.get('device') == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    import torch
    from mmengine.runner import Runner
    from mmpretrain.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    if pretrained:
        if cfg.get('load_from'):
            print(f"--pretrained {pretrained} replaces the config's load_from {cfg.load_from}")
        prepare_init_weights(cfg, pretrained, '--pretrained')
    elif cfg.get('load_from') and not cfg.get('resume'):
        prepare_init_weights(cfg, cfg.load_from, 'load_from')
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    checkpoints = _checkpoint_paths(runner.work_dir)
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    accuracy = metrics.get('accuracy/top1')
    test_set = runner.test_dataloader.dataset
    classes = list(test_set.metainfo['classes'])
    meta = {
        'config': osp.abspath(config),
        'data_root': osp.abspath(test_set.data_root) if test_set.data_root else None,
        'dataset_meta': {'classes': classes},
        'classes': classes,
        'num_classes': len(classes),
        'epoch': int(runner.epoch),
        'iter': int(runner.iter),
        'test_accuracy_top1': accuracy,
        'data_preprocessor': _plain(cfg.get('data_preprocessor', {})),
    }
    state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    final_path = osp.join(runner.work_dir, FINAL_NAME)
    torch.save({'state_dict': state_dict, 'meta': _plain(meta)}, final_path)
    summary = _plain(
        {
            'accuracy_top1': accuracy,
            'metrics': metrics,
            'num_test_images': len(test_set),
            'fer_final': osp.abspath(final_path),
            'checkpoint_last': checkpoints['last'],
            'checkpoint_best': checkpoints['best'],
            'settings': settings,
            **{k: meta[k] for k in ('config', 'data_root', 'classes', 'epoch', 'iter')},
        }
    )
    with open(summary_path, 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=2)
    print(f'HR test accuracy (top-1): {accuracy:.2f}% on {len(test_set)} images')
    print(f'plain FER checkpoint:     {final_path}')
    print(f'last Runner checkpoint:   {checkpoints["last"]}')
    print(f'best Runner checkpoint:   {checkpoints["best"]}')
    return summary
