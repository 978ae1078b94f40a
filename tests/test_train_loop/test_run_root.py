"""``-opt srfer::NAME`` and where ``python -m basicsr.train`` of an installed BasicSR writes (run_root)."""

from __future__ import annotations

import copy
import os
import site

from srfer_plugin.train_loop import resolve_option_argument, run_root
from srfer_plugin.train_loop.run_root import rooted_options
from srfer_plugin.utils.shipped_options import shipped_path


def test_opt_argument_names_a_shipped_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = shipped_path('tests/train_srfer_tiny_cpu.yml')
    argv = ['srfer-train', '-opt', 'srfer::tests/train_srfer_tiny_cpu.yml', '--auto_resume']
    assert resolve_option_argument(argv) == ['srfer-train', '-opt', tiny, '--auto_resume']
    assert resolve_option_argument(['x', '-opt=options/tests/train_srfer_tiny_cpu.yml']) == ['x', f'-opt={tiny}']
    mine = ['x', '-opt', 'mine.yml', '--debug']
    assert resolve_option_argument(mine) == mine and resolve_option_argument(['x']) == ['x']


def test_an_installed_basicsr_is_rooted_at_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for installed in site.getsitepackages():
        assert run_root(installed) == str(tmp_path)
    assert run_root('/opt/venv/lib/python3.11/site-packages') == str(tmp_path)
    clone = str(tmp_path / 'BasicSR')  # python basicsr/train.py in a BasicSR clone keeps the clone
    assert run_root(clone) == clone


def test_rooted_options_keep_their_root_when_basicsr_reassigns_it(tmp_path):
    opt = rooted_options({'name': 'x', 'logger': {'use_tb_logger': True}}, str(tmp_path))
    opt['root_path'] = '/usr/lib/python3/site-packages'  # what BasicSR's train_pipeline does after parsing
    assert opt['root_path'] == str(tmp_path) and os.path.join(opt['root_path'], 'tb_logger') == str(
        tmp_path / 'tb_logger'
    )
    opt['name'] = 'y'
    assert opt['name'] == 'y'
    again = copy.deepcopy(opt)
    assert again == opt and type(again) is type(opt)
    assert rooted_options({'root_path': '/elsewhere'}, str(tmp_path))['root_path'] == str(tmp_path)
