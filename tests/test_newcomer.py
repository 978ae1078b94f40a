"""The docs and the shipped recipes agree: dataset roots, device choice, the demo's joint setting, NIQE tracking."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fer_fixtures import REPO_ROOT

from srfer_plugin.studies.synthetic import DEMO_FER_DISTILL, DEMO_JOINT_LEARNING

DATASETS_DOC = os.path.join(REPO_ROOT, 'docs', 'datasets.md')
JOINT_RECIPE = 'train_RCAN_srfer_joint_x4.yml'


def recipe_files() -> list[str]:
    """The top-level recipes (``options/*.yml``), wherever the options folder lives, each once."""
    found = {}
    for folder in (os.path.join(REPO_ROOT, 'options'), os.path.join(REPO_ROOT, 'srfer_plugin', 'options')):
        for path in glob.glob(os.path.join(folder, '*.yml')):
            found.setdefault(os.path.realpath(path), path)
    return sorted(found.values(), key=os.path.basename)


def load_recipe(path: str) -> dict[str, Any]:
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


def recipe(name: str) -> dict[str, Any]:
    return load_recipe(next(p for p in recipe_files() if os.path.basename(p) == name))


def dataset_paths(node: Any, where: str = '') -> Iterator[tuple[str, str]]:
    """``(key path, value)`` of every ``dataroot_*`` and ``meta_info_file`` that holds a path."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f'{where}.{key}' if where else str(key)
            if (str(key).startswith('dataroot_') or key == 'meta_info_file') and isinstance(value, str):
                yield here, value
            else:
                yield from dataset_paths(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from dataset_paths(value, f'{where}[{i}]')


def documented_roots() -> set[str]:
    """The ``--dst`` folders docs/datasets.md tells the user to create."""
    with open(DATASETS_DOC, encoding='utf-8') as f:
        return {os.path.normpath(m) for m in re.findall(r'--dst\s+(\S+)', f.read()) if m not in ('DIR', 'DST')}


RECIPES = [pytest.param(p, id=os.path.basename(p)) for p in recipe_files()]


def test_there_are_recipes_to_check():
    assert len(RECIPES) >= 5 and any(os.path.basename(p) == JOINT_RECIPE for p in recipe_files())


@pytest.mark.parametrize('path', RECIPES)
def test_recipe_dataset_roots_are_the_ones_docs_datasets_prepares(path):
    roots = documented_roots()
    assert 'datasets/RAF-DB' in roots, 'docs/datasets.md prepares RAF-DB elsewhere than the recipes read it'
    used = list(dataset_paths(load_recipe(path)))
    assert used, 'no dataroot_* or meta_info_file in the recipe'
    for key, value in used:
        value = os.path.normpath(value)
        assert any(value == root or value.startswith(root + os.sep) for root in roots), (
            f'{key}: {value!r} is under none of the folders docs/datasets.md prepares ({sorted(roots)})'
        )


@pytest.mark.parametrize('path', RECIPES)
def test_recipes_choose_the_device_themselves(path):
    # BasicSR's parse_options turns 'auto' into torch.cuda.device_count(): 0 on a CPU-only machine.
    assert load_recipe(path)['num_gpu'] == 'auto'


def test_the_demo_joint_default_is_the_joint_recipe():
    train = recipe(JOINT_RECIPE)['train']
    assert DEMO_JOINT_LEARNING['optim_fer']['type'] == train['optim_fer']['type']
    assert DEMO_JOINT_LEARNING['optim_fer']['lr'] == pytest.approx(float(train['optim_fer']['lr'])) == 1e-4
    assert DEMO_JOINT_LEARNING['joint_opt'] == train['joint_opt']
    assert train['fer_distill_opt'] == DEMO_FER_DISTILL, "the recipe's distillation is the joint preset's distill_1"
    assert DEMO_JOINT_LEARNING['fer_opt'] == train['fer_opt']
    assert DEMO_JOINT_LEARNING['fer_inputs'] == train['fer_inputs']


@pytest.mark.parametrize('path', RECIPES)
def test_niqe_is_tracked_as_lower_is_better(path):
    metrics = (load_recipe(path).get('val') or {}).get('metrics') or {}
    for name, metric in metrics.items():
        if 'niqe' in str(metric.get('type', '')).lower():
            assert metric.get('better') == 'lower', f'val.metrics.{name}: best-model tracking would keep the worst'
