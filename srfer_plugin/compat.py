"""Every fix that basicsr 1.4.2 needs on current torch/torchvision, applied in one place.

``srfer_plugin/__init__.py`` imports this module before anything imports ``basicsr``; the shim below runs at
import. The training fixes are applied by :func:`patch_basicsr_train` (called by ``srfer_plugin.train``). They
replace names that ``basicsr.train.train_pipeline`` and ``basicsr.utils.options.parse_options`` look up at call
time, so BasicSR's own training loop runs unchanged:

* ``load_resume_state``: no ``.cuda()`` (CPU resume), checkpoints read by :func:`safe_load` (no pickled code),
  and the resume position is remembered for the sampler below.
* ``init_dist``: torchrun / ``torch.distributed.launch`` on GPUs (nccl) and CPUs (gloo), ``LOCAL_RANK``.
* ``EnlargedSampler``: on resume, skips the samples of the resumed epoch that were already trained on.
* ``CPUPrefetcher`` / ``CUDAPrefetcher``: reseed python/numpy/torch RNGs before fetching batch ``i`` from
  ``(manual_seed, rank, i)``, so the data and any model randomness of an iteration do not depend on what ran
  before it (validation, a restart). Together with the sampler this makes a resumed run reproduce the losses
  of an uninterrupted one (bit-exact on CPU with ``num_worker_per_gpu: 0``). ``train.seed_per_iter: false``
  switches the reseeding off.
* ``build_dataloader``: a clear error for an empty training set or one smaller than a batch.
"""

from __future__ import annotations

import os
import random
from typing import Any

from srfer_plugin_autoload import install_functional_tensor_shim

install_functional_tensor_shim()

# State shared by the patched BasicSR functions of one training run (set before the train loop starts).
_TRAIN_CONTEXT: dict[str, Any] = {'resume': None, 'seed': 0, 'rank': 0, 'seed_per_iter': True}


def default_dist_backend(opt: dict | None = None) -> str:
    """The process-group backend: ``dist_params.backend`` if set, else nccl with CUDA and gloo without.

    Args:
        opt: Parsed options (or None).

    Returns:
        ``'nccl'``, ``'gloo'`` or the configured backend.
    """
    import torch

    backend = ((opt or {}).get('dist_params') or {}).get('backend')
    if backend:
        return str(backend)
    use_cuda = torch.cuda.is_available() and (opt or {}).get('num_gpu', 1) != 0
    return 'nccl' if use_cuda else 'gloo'


def init_dist_any_device(launcher: str, backend: str | None = None, **kwargs: Any) -> None:
    """BasicSR's ``init_dist`` for GPUs and CPUs: picks nccl/gloo, honours ``LOCAL_RANK`` (torchrun).

    Args:
        launcher: ``pytorch`` (torchrun, ``torch.distributed.launch``) or ``slurm``.
        backend: Process-group backend. Default: the one :func:`configure_dist_backend` chose from the options,
            else ``SRFER_DIST_BACKEND``, else nccl with CUDA and gloo without.
        **kwargs: Passed to ``init_process_group`` (pytorch) or BasicSR's slurm initialiser (``port``).
    """
    import torch
    import torch.distributed as dist
    from basicsr.utils import dist_util

    backend = backend or _TRAIN_CONTEXT.get('backend') or os.environ.get('SRFER_DIST_BACKEND') or default_dist_backend()
    if launcher == 'slurm':
        if backend == 'nccl':
            dist_util._init_dist_slurm(backend, **kwargs)
        else:  # BasicSR's slurm path calls CUDA: set the environment ourselves
            import subprocess

            proc_id = int(os.environ['SLURM_PROCID'])
            addr = subprocess.getoutput(f'scontrol show hostname {os.environ["SLURM_NODELIST"]} | head -n1')
            os.environ.setdefault('MASTER_PORT', str(kwargs.get('port') or 29500))
            os.environ['MASTER_ADDR'] = addr
            os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
            os.environ['RANK'] = str(proc_id)
            os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
            dist.init_process_group(backend=backend)
        return
    if launcher != 'pytorch':
        raise ValueError(f'Invalid launcher type: {launcher}')
    rank = int(os.environ['RANK'])
    if backend == 'nccl':
        num_gpus = torch.cuda.device_count()
        if num_gpus == 0:
            raise RuntimeError('dist_params.backend nccl needs CUDA GPUs; use gloo on CPU')
        local_rank = int(os.environ.get('LOCAL_RANK', rank % num_gpus))
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, **kwargs)


def configure_dist_backend(opt_path: str) -> str:
    """Choose the process-group backend of a run from its option file (see :func:`default_dist_backend`).

    Args:
        opt_path: The ``-opt`` YAML file.

    Returns:
        The chosen backend (also used by :func:`init_dist_any_device`).
    """
    import yaml

    with open(opt_path, encoding='utf-8') as f:
        opt = yaml.safe_load(f) or {}
    _TRAIN_CONTEXT['backend'] = default_dist_backend(opt)
    return _TRAIN_CONTEXT['backend']


def normalize_launcher_argv(argv: list[str]) -> list[str]:
    """Accept ``--local-rank`` (``torch.distributed.launch``) where BasicSR's parser expects ``--local_rank``.

    Also exports ``LOCAL_RANK`` when only the argument carries it.

    Args:
        argv: Command-line arguments (``sys.argv``).

    Returns:
        The arguments with ``--local-rank`` spelt ``--local_rank``.
    """
    out = []
    for i, arg in enumerate(argv):
        if arg.startswith('--local-rank'):
            arg = '--local_rank' + arg[len('--local-rank') :]
        if arg.startswith('--local_rank'):
            value = arg.split('=', 1)[1] if '=' in arg else (argv[i + 1] if i + 1 < len(argv) else None)
            if value is not None:
                os.environ.setdefault('LOCAL_RANK', value)
        out.append(arg)
    return out


def load_resume_state_any_device(opt: dict) -> dict | None:
    """BasicSR's ``load_resume_state`` for any device, reading the state with :func:`safe_load`.

    Args:
        opt: The parsed options (``auto_resume``, ``name``, ``path.resume_state``, ``num_gpu``).

    Returns:
        The training state, or None when there is nothing to resume.
    """
    import torch
    from basicsr.utils import check_resume, scandir

    from srfer_plugin.utils.checkpoint import safe_load

    resume_state_path = None
    if opt['auto_resume']:
        state_path = os.path.join('experiments', opt['name'], 'training_states')
        if os.path.isdir(state_path):
            states = [float(v.split('.state')[0]) for v in scandir(state_path, suffix='state', recursive=False)]
            if states:
                resume_state_path = os.path.join(state_path, f'{max(states):.0f}.state')
                opt['path']['resume_state'] = resume_state_path
    elif opt['path'].get('resume_state'):
        resume_state_path = opt['path']['resume_state']
    _TRAIN_CONTEXT['resume'] = None
    if resume_state_path is None:
        return None
    use_cuda = opt.get('num_gpu', 0) != 0 and torch.cuda.is_available()
    device = torch.device('cuda', torch.cuda.current_device()) if use_cuda else torch.device('cpu')
    resume_state = safe_load(resume_state_path, map_location=device)
    if not isinstance(resume_state, dict) or 'iter' not in resume_state:
        raise ValueError(f'resume_state {resume_state_path!r} is not a BasicSR training state')
    check_resume(opt, resume_state['iter'])
    _TRAIN_CONTEXT['resume'] = {
        'iter': int(resume_state['iter']),
        'epoch': int(resume_state['epoch']),
        'iters_per_epoch': resume_state.get('iters_per_epoch'),
    }
    return resume_state


def seed_iteration(seed: int, rank: int, iteration: int) -> None:
    """Seed python, numpy and torch RNGs from ``(seed, rank, iteration)``.

    Args:
        seed: ``manual_seed`` of the options.
        rank: Process rank.
        iteration: The iteration whose batch is about to be fetched.
    """
    import numpy as np
    import torch

    state = np.random.SeedSequence([int(seed), int(rank), int(iteration)]).generate_state(3)
    random.seed(int(state[0]))
    np.random.seed(int(state[1]))
    torch.manual_seed(int(state[2]))


def _make_sampler_class():
    from basicsr.data.data_sampler import EnlargedSampler

    class ResumableEnlargedSampler(EnlargedSampler):
        """BasicSR's EnlargedSampler that can drop the first samples of one epoch (the ones already trained)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._skip: tuple[int, int] | None = None

        def skip_in_epoch(self, epoch: int, num_samples: int) -> None:
            """Leave out the first ``num_samples`` indices of ``epoch`` (once)."""
            self._skip = (int(epoch), int(num_samples))

        def __iter__(self):
            indices = list(super().__iter__())
            if self._skip is not None and self._skip[0] == self.epoch:
                indices = indices[self._skip[1] :]
                self._skip = None
            return iter(indices)

    return ResumableEnlargedSampler


def _next_with_seed(prefetcher: Any, fetch) -> Any:
    if _TRAIN_CONTEXT['seed_per_iter']:
        seed_iteration(_TRAIN_CONTEXT['seed'], _TRAIN_CONTEXT['rank'], prefetcher.fetched + 1)
    batch = fetch()
    if batch is not None:
        prefetcher.fetched += 1
    return batch


def _make_prefetcher_classes():
    from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher

    class SeededCPUPrefetcher(CPUPrefetcher):
        """CPUPrefetcher that reseeds the RNGs from the number of the batch it fetches."""

        def __init__(self, loader: Any) -> None:
            self.fetched = (_TRAIN_CONTEXT['resume'] or {}).get('iter', 0)
            super().__init__(loader)

        def next(self) -> Any:
            return _next_with_seed(self, super().next)

    class SeededCUDAPrefetcher(CUDAPrefetcher):
        """CUDAPrefetcher that reseeds the RNGs from the number of the batch it fetches."""

        def __init__(self, loader: Any, opt: dict) -> None:
            self.fetched = (_TRAIN_CONTEXT['resume'] or {}).get('iter', 0)
            super().__init__(loader, opt)

        def preload(self) -> None:
            def fetch():
                super(SeededCUDAPrefetcher, self).preload()
                return self.batch

            _next_with_seed(self, fetch)

    return SeededCPUPrefetcher, SeededCUDAPrefetcher


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


def _wrap_build_dataloader(original):
    def build_dataloader(dataset, dataset_opt, num_gpu=1, dist=False, sampler=None, seed=None):
        if dataset_opt.get('phase') == 'train':
            world_size = getattr(sampler, 'num_replicas', 1) if sampler is not None else 1
            check_train_set_size(dataset, dataset_opt, num_gpu, dist, world_size)
        return original(dataset, dataset_opt, num_gpu=num_gpu, dist=dist, sampler=sampler, seed=seed)

    return build_dataloader


def _wrap_create_train_val_dataloader(original):
    def create_train_val_dataloader(opt, logger):
        train_loader, train_sampler, val_loaders, total_epochs, total_iters = original(opt, logger)
        iters_per_epoch = len(train_loader)
        opt['iters_per_epoch'] = iters_per_epoch  # read by SRFERModel (training state, non-finite stop)
        _TRAIN_CONTEXT['seed'] = int(opt.get('manual_seed') or 0)
        _TRAIN_CONTEXT['rank'] = int(opt.get('rank', 0))
        _TRAIN_CONTEXT['seed_per_iter'] = bool(opt['train'].get('seed_per_iter', True))
        resume = _TRAIN_CONTEXT['resume']
        if resume is not None and hasattr(train_sampler, 'skip_in_epoch'):
            saved = resume.get('iters_per_epoch')
            done = resume['iter'] - resume['epoch'] * iters_per_epoch
            if saved is not None and int(saved) != iters_per_epoch:
                logger.warning(
                    f'Resume: {saved} iterations per epoch when saved, {iters_per_epoch} now; the resumed epoch '
                    'restarts from its first batch'
                )
            elif 0 < done <= iters_per_epoch:
                train_sampler.skip_in_epoch(resume['epoch'], done * train_loader.batch_size)
                logger.info(f'Resume: skipping the {done} batch(es) of epoch {resume["epoch"]} already trained on')
        return train_loader, train_sampler, val_loaders, total_epochs, total_iters

    return create_train_val_dataloader


def patch_basicsr_train() -> None:
    """Apply the training fixes listed in this module's docstring to ``basicsr.train`` and its option parser."""
    import basicsr.train
    import basicsr.utils.options

    if getattr(basicsr.train, '_srfer_patched', False):
        return
    basicsr.train.load_resume_state = load_resume_state_any_device
    basicsr.utils.options.init_dist = init_dist_any_device
    basicsr.train.EnlargedSampler = _make_sampler_class()
    basicsr.train.CPUPrefetcher, basicsr.train.CUDAPrefetcher = _make_prefetcher_classes()
    basicsr.train.build_dataloader = _wrap_build_dataloader(basicsr.train.build_dataloader)
    basicsr.train.create_train_val_dataloader = _wrap_create_train_val_dataloader(
        basicsr.train.create_train_val_dataloader
    )
    basicsr.train._srfer_patched = True
