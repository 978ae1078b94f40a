"""Shipped option files and configs: ``srfer::`` names, clone paths, ``_base_``, and what the wheel carries."""

from __future__ import annotations

import glob
import os

import pytest
import yaml
from fer_fixtures import REPO_ROOT

from srfer_plugin.utils.shipped_options import (
    display_name,
    options_root,
    resolve_path,
    shipped_names,
    shipped_path,
)


def test_the_clone_options_folder_is_the_shipped_one():
    """One copy of every file: the clone's ``options`` is a link to the package's folder."""
    assert os.path.islink(os.path.join(REPO_ROOT, 'options'))
    assert os.path.realpath(os.path.join(REPO_ROOT, 'options')) == os.path.realpath(options_root())


def test_every_shipped_file_has_a_suffix_the_wheel_carries():
    """setup.py's package_data ships ``options/**/*.{py,yml,txt}``: nothing else may live there."""
    files = [p for p in glob.glob(os.path.join(options_root(), '**', '*'), recursive=True) if os.path.isfile(p)]
    files = [p for p in files if '__pycache__' not in p]
    assert files and all(p.endswith(('.py', '.yml', '.txt')) for p in files), files
    with open(os.path.join(REPO_ROOT, 'setup.py'), encoding='utf-8') as f:
        setup_text = f.read()
    assert "'options/**/*.py', 'options/**/*.yml', 'options/**/*.txt'" in setup_text


def test_scoped_name_resolves_from_outside_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = resolve_path('srfer::fer/resnet18_fer7.py')
    assert path == os.path.join(options_root(), 'fer', 'resnet18_fer7.py') and os.path.isfile(path)
    assert resolve_path('srfer::train_RCAN_srfer_x4.yml') == shipped_path('train_RCAN_srfer_x4.yml')


def test_scoped_config_loads_with_its_base_chain_from_outside_the_repository(tmp_path, monkeypatch):
    """``resnet18slim_fer7_demo.py`` -> ``resnet18_fer7.py`` -> ``_base_/models``, ``_base_/datasets`` ..."""
    from srfer_plugin.archs.mmpretrain_config import load_mmpretrain_config
    from srfer_plugin.fer_pretrain import build_config

    monkeypatch.chdir(tmp_path)
    cfg = load_mmpretrain_config('srfer::fer/resnet18slim_fer7_demo.py')
    assert cfg.model.backbone.depth == 18 and cfg.model.backbone.base_channels == 16  # _base_ and the file itself
    assert cfg.model.head.num_classes == 7 and cfg.train_dataloader.dataset.type == 'CustomDataset'
    built = build_config('srfer::fer/resnet18_fer7.py', work_dir=str(tmp_path / 'work'))
    assert built.model.backbone.depth == 18 and built.work_dir == str(tmp_path / 'work')
    assert build_config('srfer::fer/resnet18_fer7.py').work_dir == os.path.join('work_dirs', 'resnet18_fer7')


def test_clone_paths_keep_working_from_any_folder(tmp_path, monkeypatch):
    assert resolve_path('options/fer/resnet18_fer7.py') == 'options/fer/resnet18_fer7.py'  # exists here: as given
    monkeypatch.chdir(tmp_path)
    assert resolve_path('options/fer/resnet18_fer7.py') == shipped_path('fer/resnet18_fer7.py')
    assert resolve_path('options/no_such.yml') == 'options/no_such.yml', 'what is not shipped is left to the caller'
    (tmp_path / 'options').mkdir()
    (tmp_path / 'options' / 'mine.yml').write_text('a: 1\n')
    assert resolve_path('options/mine.yml') == 'options/mine.yml', "the user's own file wins"
    assert resolve_path('my/config.py') == 'my/config.py' and resolve_path('/abs/x.py') == '/abs/x.py'


def test_unknown_or_escaping_names_are_refused_with_what_is_shipped():
    with pytest.raises(FileNotFoundError, match=r'srfer::fer/no_such\.py is not shipped.*srfer::fer/resnet18_fer7\.py'):
        resolve_path('srfer::fer/no_such.py')
    for name in ('srfer::../setup.py', 'srfer::fer/../../version.py', 'srfer::'):
        with pytest.raises(FileNotFoundError, match='is not shipped'):
            resolve_path(name)


def test_names_listing_and_display():
    fer = shipped_names('fer')
    assert 'srfer::fer/resnet18_fer7.py' in fer and not any('_base_' in n for n in fer)
    top = shipped_names()
    assert 'srfer::train_RCAN_srfer_x4.yml' in top and not any('/' in n[len('srfer::') :] for n in top)
    assert 'srfer::tests/train_srfer_tiny_cpu.yml' in shipped_names(recursive=True)
    assert all(os.path.isfile(resolve_path(n)) for n in fer + top)
    assert display_name(shipped_path('fer/resnet18_fer7.py')) == 'srfer::fer/resnet18_fer7.py'
    assert display_name('/elsewhere/x.py') == '/elsewhere/x.py' and display_name(None) == ''


@pytest.mark.parametrize(
    'recipe', sorted(glob.glob(os.path.join(options_root(), '**', '*.yml'), recursive=True)), ids=os.path.basename
)
def test_recipes_name_their_classifier_by_scope(recipe):
    """The shipped recipes run from any folder: their FER config is a ``srfer::`` name that resolves."""
    with open(recipe, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    config = (opt.get('network_fer') or {}).get('config')
    if config is not None:
        assert config.startswith('srfer::') and os.path.isfile(resolve_path(config)), config
