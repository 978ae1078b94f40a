"""Installs the plugin's changes into ``basicsr.train`` and ``basicsr.test`` (see the package docstring)."""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable

from srfer_plugin.train_loop.distributed import init_dist_any_device
from srfer_plugin.train_loop.iteration_seeding import IterationSeeding, seeded_prefetcher_classes
from srfer_plugin.train_loop.option_checks import check_option_file, check_options
from srfer_plugin.train_loop.resume import (
    ResumableEnlargedSampler,
    load_resume_state_any_device,
    log_resume_notes,
    skip_trained_batches,
)
from srfer_plugin.train_loop.run_root import resolve_option_argument, rooted_options, run_root
from srfer_plugin.utils.run_lock import FolderInUseError, acquire_folder


def check_train_set_size(dataset: Any, dataset_opt: dict, num_gpu: int, dist: bool, world_size: int) -> None:
    """Fail clearly when the training set is empty or cannot fill one batch (BasicSR drops the last batch).

    Args:
        dataset: The training dataset.
        dataset_opt: ``datasets.train`` options.
        num_gpu: ``num_gpu`` of the options.
        dist: Distributed training.
        world_size: Number of processes.
    """
    name = dataset_opt.get('name', 'train')
    size = len(dataset)
    if size == 0:
        raise ValueError(f'datasets.train ({name}): the training set is empty; check dataroot_gt/meta_info_file')
    batch = int(dataset_opt['batch_size_per_gpu'])
    if not dist:
        batch *= max(int(num_gpu), 1)
    ratio = int(dataset_opt.get('dataset_enlarge_ratio', 1))
    per_process = -(-size * ratio // max(world_size, 1))
    if per_process < batch:
        raise ValueError(
            f'datasets.train ({name}): {size} image(s) x dataset_enlarge_ratio {ratio} / {world_size} process(es) '
            f'= {per_process} per process, fewer than one batch of {batch} (batch_size_per_gpu); the last '
            'incomplete batch is dropped, so training would never step. Use more images, a larger '
            'dataset_enlarge_ratio or a smaller batch_size_per_gpu'
        )


def _checked_build_dataloader(original):
    def build_dataloader(dataset, dataset_opt, num_gpu=1, dist=False, sampler=None, seed=None):
        if dataset_opt.get('phase') == 'train':
            world_size = getattr(sampler, 'num_replicas', 1) if sampler is not None else 1
            check_train_set_size(dataset, dataset_opt, num_gpu, dist, world_size)
        return original(dataset, dataset_opt, num_gpu=num_gpu, dist=dist, sampler=sampler, seed=seed)

    return build_dataloader


def _resumable_create_train_val_dataloader(original):
    """After BasicSR builds the loaders: record ``iters_per_epoch``, seed per iteration, skip trained batches."""

    def create_train_val_dataloader(opt, logger):
        import basicsr.train

        train_loader, train_sampler, val_loaders, total_epochs, total_iters = original(opt, logger)
        opt['iters_per_epoch'] = len(train_loader)  # read by the model (training state, non-finite stop)
        seeding = IterationSeeding.from_options(opt)
        basicsr.train.CPUPrefetcher, basicsr.train.CUDAPrefetcher = seeded_prefetcher_classes(seeding)
        log_resume_notes(opt, logger)  # the first point where BasicSR's log file exists
        skip_trained_batches(opt, train_loader, train_sampler, logger)
        return train_loader, train_sampler, val_loaders, total_epochs, total_iters

    return create_train_val_dataloader


def option_file_argument(argv: list[str]) -> str | None:
    """The ``-opt`` file of a BasicSR command line (``-opt X`` or ``-opt=X``), or None.

    Args:
        argv: Command-line arguments (``sys.argv``).

    Returns:
        The option file as given.
    """
    for i, arg in enumerate(argv):
        if arg == '-opt' and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith('-opt='):
            return arg.split('=', 1)[1]
    return None


def own_output_folder(opt: dict) -> str:
    """Take the run's output folder for this process until it exits, or fail on every rank.

    A training run owns ``path.experiments_root`` (and with it ``tb_logger/<name>``, which is named alike), a test
    run ``path.results_root``. In a distributed run rank 0 takes the folder and tells the other ranks whether it
    could, so they all go on or all fail with the same error (no rank waits for one that has stopped).

    Args:
        opt: Parsed options (``is_train``, ``path``, ``rank``, ``dist``).

    Returns:
        The folder.

    Raises:
        FolderInUseError: Another running process owns the folder (the message names the folder and the process).
    """
    is_train = opt['is_train']
    folder = opt['path']['experiments_root' if is_train else 'results_root']
    refusal = None
    if opt.get('rank', 0) == 0:
        try:
            acquire_folder(folder, 'experiment folder' if is_train else 'result folder')
        except FolderInUseError as err:
            refusal = str(err)
    if opt.get('dist'):
        refusal = _broadcast_from_rank_zero(refusal)
    if refusal is not None:
        raise FolderInUseError(refusal)
    return folder


def _broadcast_from_rank_zero(message: str | None) -> str | None:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return message
    shared = [message]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]


def record_dataset_keys(opt: dict) -> None:
    """Record in each dataset's options its key under ``datasets`` and the run's log folder, as BasicSR records
    ``phase``: errors then name the YAML key (``datasets.test_2``), and lists of bad images go beside the log.

    Args:
        opt: The parsed options.
    """
    log_dir = (opt.get('path') or {}).get('log')
    for key, dataset_opt in (opt.get('datasets') or {}).items():
        if isinstance(dataset_opt, dict):
            dataset_opt['yaml_key'] = str(key)
            dataset_opt['log_dir'] = log_dir


def _checked_parse_options(original: Callable) -> Callable:
    """BasicSR's ``parse_options``, then the option checks, then the output folder is taken: all before BasicSR
    creates or renames anything. ``-opt srfer::NAME`` names a shipped file, and a run that BasicSR roots at its
    install folder is rooted at the current one (:mod:`.run_root`)."""

    @functools.wraps(original)
    def parse_options(root_path: str, is_train: bool = True) -> tuple[dict, Any]:
        sys.argv[:] = resolve_option_argument(sys.argv)
        opt_file = option_file_argument(sys.argv)
        if opt_file is not None and os.path.isfile(opt_file):
            check_option_file(opt_file, is_train)  # what parse_options itself would fail on obscurely
        root = run_root(root_path)
        opt, args = original(root, is_train=is_train)
        if root != root_path:  # python -m basicsr.train of an installed BasicSR
            opt = rooted_options(opt, root)
        check_options(opt, is_train, opt_file)
        record_dataset_keys(opt)
        own_output_folder(opt)
        return opt, args

    parse_options.srfer_checked = True
    return parse_options


def guard_parse_options() -> None:
    """Make BasicSR's ``parse_options`` check the options and take the output folder (idempotent).

    Replaces it in ``basicsr.utils.options`` (where a later ``from basicsr.utils.options import parse_options``, as
    in ``python -m basicsr.train``, finds it) and in ``basicsr.train`` and ``basicsr.test``, which imported it by
    name.
    """
    import basicsr.test
    import basicsr.train
    import basicsr.utils.options

    checked = basicsr.utils.options.parse_options
    if not getattr(checked, 'srfer_checked', False):
        checked = _checked_parse_options(checked)
        basicsr.utils.options.parse_options = checked
    basicsr.train.parse_options = checked
    basicsr.test.parse_options = checked


def patch_basicsr_train(dist_backend: str | None = None) -> None:
    """Install the changes of :mod:`srfer_plugin.train_loop` into ``basicsr.train`` and its option parser.

    Args:
        dist_backend: Process-group backend for ``--launcher`` runs (from
            :func:`~srfer_plugin.train_loop.distributed.configure_dist_backend`); None picks it at init.
    """
    import basicsr.train
    import basicsr.utils.options

    basicsr.utils.options.init_dist = functools.partial(init_dist_any_device, backend=dist_backend)
    guard_parse_options()
    if getattr(basicsr.train, '_srfer_patched', False):
        return
    basicsr.train.load_resume_state = load_resume_state_any_device
    basicsr.train.EnlargedSampler = ResumableEnlargedSampler
    basicsr.train.build_dataloader = _checked_build_dataloader(basicsr.train.build_dataloader)
    basicsr.train.create_train_val_dataloader = _resumable_create_train_val_dataloader(
        basicsr.train.create_train_val_dataloader
    )
    basicsr.train._srfer_patched = True
