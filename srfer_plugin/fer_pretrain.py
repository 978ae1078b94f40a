"""FER classifier pre-training with mmengine's Runner on the plugin's dataset layout.

``srfer train-fer`` (:mod:`srfer_plugin.tools.train_fer`) is the command line of :func:`train_fer`; the demo calls it
directly.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import os.path as osp
from typing import Any

from srfer_plugin.fer_pretrain_weights import (  # noqa: F401  (re-exported: the pretrained start)
    INIT_NAME,
    _is_url,
    fetch_checkpoint,
    match_init_weights,
    match_weights,
    prepare_init_weights,
    read_weights,
    write_init_weights,
)
from srfer_plugin.utils.checkpoint import atomic_torch_save, atomic_write_json
from srfer_plugin.utils.inference_outputs import archive_earlier_results
from srfer_plugin.utils.run_lock import acquire_folder, release_folder
from srfer_plugin.utils.shipped_options import resolve_path

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
        config: mmpretrain config file, or a shipped one by name (``srfer::fer/resnet18_fer7.py``).
        work_dir: Output folder. Default: the config's, else ``work_dirs/<config name>``.
        data_root: Dataset root in the plugin layout (overrides the config's).
        cfg_options: ``key.sub=value`` overrides, as mmengine's ``--cfg-options``.
        seed: Random seed (overrides ``randomness.seed``).
        device: ``cpu`` selects the gloo backend; ``auto``/``cuda`` keep the config's.
        max_epochs: Training epochs; the epoch-based LR schedule is stretched to match.

    Returns:
        The ``mmengine.Config`` handed to ``Runner.from_cfg``.

    Raises:
        FileNotFoundError: A missing config or ``data_root``.
        ValueError: Fewer than one epoch (``max_epochs`` or the config's ``train_cfg.max_epochs``).
    """
    from mmengine.config import Config

    from srfer_plugin.fer_pretrain_checks import check_max_epochs

    path = resolve_path(config)
    if not osp.isfile(path):
        raise FileNotFoundError(f'FER config {config!r} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_max_epochs(cfg, max_epochs)
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
    """Train the classifier, write ``fer_final.pth`` and test the final model on the test split, if there is one.

    ``fer_final.pth`` holds ``{'state_dict': ..., 'meta': {...}}`` with tensors and plain Python types only, so it
    loads as ``network_fer.checkpoint`` (the Runner checkpoints load too, through the plugin's safe loader). It is
    written as soon as training ends, before the test. Before the Runner is built, every split the run reads, its
    classes and labels (against the config's ``model.head.num_classes``) and every image of them are checked; before
    it trains, the results of an earlier run in the work dir are moved to ``archived_<time>/``
    (:mod:`srfer_plugin.fer_pretrain_checks`).

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
        The summary written to ``fer_test_accuracy.json`` (``accuracy_top1``, None without a test split;
        ``fer_final``, ``classes``, ...).

    Raises:
        ValueError: Fewer than one epoch, or a split that is missing, holds bad images, or whose classes or labels do
            not fit ``model.head.num_classes`` (:class:`~srfer_plugin.fer_pretrain_checks.FERDataError`); nothing
            was trained or moved.
        FolderInUseError: Another running process trains into the same work dir.
    """
    from srfer_plugin import fer_pretrain_checks as checks

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
            print(f'FER classifier: reusing {previous["fer_final"]} ({_accuracy_text(previous)})')
            return previous
    if build_options.get('device') == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    from mmpretrain.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    images, missing = checks.read_splits(cfg)  # first: a split or class count that does not fit stops here
    resume = bool(cfg.get('resume'))
    init = None  # the start checkpoint is read before anything is moved or written
    if pretrained:
        if cfg.get('load_from'):
            print(f"--pretrained {pretrained} replaces the config's load_from {cfg.load_from}")
        init = match_init_weights(cfg, pretrained, '--pretrained')
    elif cfg.get('load_from') and not resume:
        init = match_init_weights(cfg, cfg.load_from, 'load_from')
    checks.check_split_images(images)
    work_dir = osp.abspath(cfg.work_dir)
    if init is not None:
        cfg.load_from = osp.join(work_dir, INIT_NAME)  # written below: the Runner reads it when training starts
    acquire_folder(work_dir, 'work dir')  # raises FolderInUseError while another train-fer writes there
    try:
        return _train_and_test(cfg, config, work_dir, init, resume, missing, settings, summary_path)
    finally:
        release_folder(work_dir)


def _train_and_test(
    cfg, config: str, work_dir: str, init: Any, resume: bool, missing: dict, settings: dict, summary_path: str
) -> dict[str, Any]:
    """Build the Runner, train, write ``fer_final.pth``, test and write the summary (the work dir is owned)."""
    from mmengine.runner import Runner

    from srfer_plugin import fer_pretrain_checks as checks

    runner = Runner.from_cfg(cfg)
    # the Runner logs into a new <time>/ folder (with a copy of the config); what training overwrites is moved first
    earlier = checks.earlier_results(work_dir, (FINAL_NAME, SUMMARY_NAME), (INIT_NAME,), resume)
    archive_earlier_results(work_dir, earlier)
    if init is not None:
        write_init_weights(cfg, init)
    runner.train()
    final_path, meta = _save_final(runner, cfg, config, None)  # saved before the test, which may fail
    if 'test' in missing:
        metrics, num_test = {}, 0
        print(f'no test split ({missing["test"]} does not exist): the test is skipped', flush=True)
    else:
        metrics = runner.test()
        num_test = len(runner.test_dataloader.dataset)
        final_path, meta = _save_final(runner, cfg, config, metrics.get('accuracy/top1'))
    checkpoints = _checkpoint_paths(runner.work_dir)
    summary = _plain(
        {
            'accuracy_top1': meta['test_accuracy_top1'],
            'metrics': metrics,
            'num_test_images': num_test,
            'fer_final': osp.abspath(final_path),
            'checkpoint_last': checkpoints['last'],
            'checkpoint_best': checkpoints['best'],
            'settings': settings,
            **{k: meta[k] for k in ('config', 'data_root', 'classes', 'epoch', 'iter')},
        }
    )
    if 'test' in missing:
        summary['test_skipped'] = f'{missing["test"]} does not exist'
    atomic_write_json(summary, summary_path)
    if num_test:
        print(f'HR test accuracy (top-1): {summary["accuracy_top1"]:.2f}% on {num_test} images')
    print(f'plain FER checkpoint:     {final_path}')
    print(f'last Runner checkpoint:   {checkpoints["last"]}')
    print(f'best Runner checkpoint:   {checkpoints["best"]}')
    return summary


def _accuracy_text(summary: dict[str, Any]) -> str:
    """``HR test accuracy 91.23%``, or why there is none."""
    if summary.get('accuracy_top1') is None:
        return f'not tested: {summary.get("test_skipped", "no test split")}'
    return f'HR test accuracy {summary["accuracy_top1"]:.2f}%'


def _save_final(runner, cfg, config: str, accuracy: float | None) -> tuple[str, dict[str, Any]]:
    """Write ``fer_final.pth`` (tensors and plain types; atomically) from the Runner's model.

    Returns:
        ``(path, meta)``; the classes and data root come from the train split.
    """
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    train_set = runner.train_dataloader.dataset
    classes = list(train_set.metainfo['classes'])
    data_root = getattr(train_set, 'data_root', None)
    meta = {
        'config': osp.abspath(config),
        'data_root': osp.abspath(data_root) if data_root else None,
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
    atomic_torch_save({'state_dict': state_dict, 'meta': _plain(meta)}, final_path)
    return final_path, meta
