"""Shared pytest fixtures: tiny data made on the fly, CPU only."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
from fer_fixtures import make_tiny_fer_dataset

import srfer_plugin  # noqa: F401  (registration)

if os.environ.get('PYTEST_XDIST_WORKER'):
    # pytest -n 2: each worker computes on one core (two threads each would oversubscribe two cores, where OpenMP's
    # barriers make ops up to 100x slower); subprocesses (CLI runs) inherit one thread.
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    os.environ.setdefault('MKL_NUM_THREADS', '1')
    torch.set_num_threads(1)
else:
    torch.set_num_threads(2)


@pytest.fixture(scope='session', autouse=True)
def srfer_cache_dir(tmp_path_factory) -> Iterator[str]:
    """Point the plugin's cache (image check verdicts, bad image lists) at a per-session folder, never ~/.cache.

    Session-scoped, so it is set before any other fixture builds a dataset; training subprocesses inherit it.
    """
    with pytest.MonkeyPatch.context() as patch:
        cache_dir = str(tmp_path_factory.mktemp('srfer_cache'))
        patch.setenv('SRFER_CACHE_DIR', cache_dir)
        yield cache_dir


@pytest.fixture(scope='session')
def tiny_fer_root(tmp_path_factory) -> str:
    """A tiny 4-class dataset (32x32, 3 train and 2 val images per class) in the plugin's layout."""
    return make_tiny_fer_dataset(str(tmp_path_factory.mktemp('tiny_fer')))


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread (on a busy 2-core machine OpenMP barriers make two up to 100x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
