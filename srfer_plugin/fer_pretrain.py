"""FER classifier pre-training with mmengine's Runner on the plugin's dataset layout.

``scripts/train_fer.py`` is the command line of :func:`train_fer`; the demo calls it directly.
"""

from __future__ import annotations

import glob
import json
import os
import os.path as osp
from typing import Any

SUMMARY_NAME = 'fer_test_accuracy.json'
FINAL_NAME = 'fer_final.pth'


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
        config: mmpretrain config file (``options/fer/*.py``).
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

    if not osp.isfile(config):
        raise FileNotFoundError(f'FER config {config!r} does not exist')
    cfg = Config.fromfile(config)
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
    # Resuming or loading Runner checkpoints goes through torch.load(weights_only=True) on torch >= 2.6, which
    # rejects mmengine's HistoryBuffer; start from scratch unless the config asks otherwise.
    cfg.setdefault('load_from', None)
    cfg.setdefault('resume', False)
    return cfg


def _checkpoint_paths(work_dir: str) -> dict[str, str | None]:
    last = None
    last_file = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last_file):
        with open(last_file, encoding='utf-8') as f:
            last = f.read().strip() or None
    best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')), key=osp.getmtime)
    return {'last': last, 'best': best[-1] if best else None}


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
    work_dir: str | None = None,
    data_root: str | None = None,
    cfg_options: dict[str, Any] | None = None,
    seed: int | None = None,
    device: str = 'auto',
    max_epochs: int | None = None,
    reuse: bool = False,
) -> dict[str, Any]:
    """Train the classifier, test the final model on the test split and write ``fer_final.pth``.

    ``fer_final.pth`` holds ``{'state_dict': ..., 'meta': {...}}`` with tensors and plain Python types only, so it
    loads as ``network_fer.checkpoint`` (the Runner checkpoints load too, through the plugin's safe loader).

    Args:
        config: mmpretrain config file.
        work_dir: Output folder.
        data_root: Dataset root in the plugin layout.
        cfg_options: Config overrides.
        seed: Random seed.
        device: ``cpu`` hides every GPU; ``auto`` lets mmengine pick.
        max_epochs: Training epochs (the LR schedule follows).
        reuse: Return the summary of an earlier run with the same settings instead of training again.

    Returns:
        The summary written to ``fer_test_accuracy.json`` (``accuracy_top1``, ``fer_final``, ``classes``, ...).
    """
    settings = _plain(
        {
            'config': osp.abspath(config),
            'data_root': osp.abspath(data_root) if data_root else None,
            'cfg_options': cfg_options or {},
            'seed': seed,
            'max_epochs': max_epochs,
        }
    )
    cfg = build_config(config, work_dir, data_root, cfg_options, seed, device, max_epochs)
    summary_path = osp.join(cfg.work_dir, SUMMARY_NAME)
    if reuse and osp.isfile(summary_path):
        with open(summary_path, encoding='utf-8') as f:
            previous = json.load(f)
        if previous.get('settings') == settings and osp.isfile(previous.get('fer_final', '')):
            print(
                f'FER classifier: reusing {previous["fer_final"]} (HR test accuracy {previous["accuracy_top1"]:.2f}%)'
            )
            return previous
    if device == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    import torch
    from mmengine.runner import Runner
    from mmpretrain.utils import register_all_modules

    import srfer_plugin  # noqa: F401  (torchvision shim before anything imports basicsr)

    register_all_modules(init_default_scope=False)
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
