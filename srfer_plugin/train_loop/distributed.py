"""BasicSR's ``init_dist`` for GPUs and CPUs (nccl or gloo), with torchrun's ``LOCAL_RANK`` and ``--local-rank``."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import torch
import torch.distributed as dist
import yaml


def default_dist_backend(opt: dict | None = None) -> str:
    """The process-group backend: ``dist_params.backend`` if set, else nccl with CUDA and gloo without.

    Args:
        opt: Parsed options (or None).

    Returns:
        ``'nccl'``, ``'gloo'`` or the configured backend.
    """
    backend = ((opt or {}).get('dist_params') or {}).get('backend')
    if backend:
        return str(backend)
    use_cuda = torch.cuda.is_available() and (opt or {}).get('num_gpu', 1) != 0
    return 'nccl' if use_cuda else 'gloo'


def configure_dist_backend(opt_path: str) -> str:
    """The backend of a run, chosen from its option file before BasicSR parses it (see :func:`default_dist_backend`).

    Args:
        opt_path: The ``-opt`` YAML file.

    Returns:
        The backend, for :func:`init_dist_any_device` (``patch_basicsr_train(dist_backend=...)``).
    """
    with open(opt_path, encoding='utf-8') as f:
        opt = yaml.safe_load(f) or {}
    return default_dist_backend(opt)


def init_dist_any_device(launcher: str, backend: str | None = None, **kwargs: Any) -> None:
    """BasicSR's ``init_dist`` for GPUs and CPUs: picks nccl/gloo, honours ``LOCAL_RANK`` (torchrun).

    Args:
        launcher: ``pytorch`` (torchrun, ``torch.distributed.launch``) or ``slurm``.
        backend: Process-group backend. Default: ``SRFER_DIST_BACKEND``, else nccl with CUDA and gloo without.
        **kwargs: Passed to ``init_process_group`` (pytorch) or BasicSR's slurm initialiser (``port``).
    """
    from basicsr.utils import dist_util

    backend = backend or os.environ.get('SRFER_DIST_BACKEND') or default_dist_backend()
    if launcher == 'slurm':
        if backend == 'nccl':
            dist_util._init_dist_slurm(backend, **kwargs)
        else:  # BasicSR's slurm path calls CUDA: set the environment ourselves
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
