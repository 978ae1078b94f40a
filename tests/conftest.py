"""Shared pytest fixtures: tiny data made on the fly, CPU only."""

from __future__ import annotations

import pytest
import torch
from fer_fixtures import make_tiny_fer_dataset

import srfer_plugin  # noqa: F401  (registration)

torch.set_num_threads(2)


@pytest.fixture(scope='session')
def tiny_fer_root(tmp_path_factory) -> str:
    """A tiny 4-class dataset (32x32, 3 train and 2 val images per class) in the plugin's layout."""
    return make_tiny_fer_dataset(str(tmp_path_factory.mktemp('tiny_fer')))
