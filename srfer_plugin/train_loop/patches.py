"""Installs the plugin's changes into ``basicsr.train`` (see the package docstring for the list)."""

from __future__ import annotations

import functools
from typing import Any

from srfer_plugin.train_loop.distributed import init_dist_any_device
from srfer_plugin.train_loop.iteration_seeding import IterationSeeding, seeded_prefetcher_classes
from srfer_plugin.train_loop.resume import ResumableEnlargedSampler, load_resume_state_any_device, skip_trained_batches


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
        skip_trained_batches(opt, train_loader, train_sampler, logger)
        return train_loader, train_sampler, val_loaders, total_epochs, total_iters

    return create_train_val_dataloader


def patch_basicsr_train(dist_backend: str | None = None) -> None:
    """Install the changes of :mod:`srfer_plugin.train_loop` into ``basicsr.train`` and its option parser.

    Args:
        dist_backend: Process-group backend for ``--launcher`` runs (from
            :func:`~srfer_plugin.train_loop.distributed.configure_dist_backend`); None picks it at init.
    """
    import basicsr.train
    import basicsr.utils.options

    basicsr.utils.options.init_dist = functools.partial(init_dist_any_device, backend=dist_backend)
    if getattr(basicsr.train, '_srfer_patched', False):
        return
    basicsr.train.load_resume_state = load_resume_state_any_device
    basicsr.train.EnlargedSampler = ResumableEnlargedSampler
    basicsr.train.build_dataloader = _checked_build_dataloader(basicsr.train.build_dataloader)
    basicsr.train.create_train_val_dataloader = _resumable_create_train_val_dataloader(
        basicsr.train.create_train_val_dataloader
    )
    basicsr.train._srfer_patched = True
