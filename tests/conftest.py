"""Shared pytest fixtures: tiny data made on the fly, CPU only."""

from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import srfer_plugin  # noqa: E402,F401  (registration)
from fer_fixtures import make_tiny_fer_dataset  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope='session')
def tiny_fer_root(tmp_path_factory) -> str:
    """A tiny 4-class dataset (32x32, 3 train and 2 val images per class) in the plugin's layout."""
    return make_tiny_fer_dataset(str(tmp_path_factory.mktemp('tiny_fer')))
