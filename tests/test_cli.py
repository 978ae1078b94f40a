"""The ``srfer`` command and its verbs, the console scripts, and the clone's ``scripts/*.py`` wrappers."""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys

import pytest
from fer_fixtures import REPO_ROOT

from srfer_plugin import cli
from srfer_plugin.utils.shipped_options import shipped_names

TOOL_VERBS = [verb for verb, (module, _, _) in cli.COMMANDS.items() if module.startswith('srfer_plugin.tools.')]


@pytest.fixture(autouse=True)
def keep_argv(monkeypatch):
    """``cli.run`` sets ``sys.argv`` for the command it runs: restore it after each test. With the mmap threshold
    set, ``benchmark-speed`` runs in this process instead of replacing it."""
    monkeypatch.setattr(sys, 'argv', list(sys.argv))
    monkeypatch.setenv('MALLOC_MMAP_THRESHOLD_', str(128 * 1024))


def test_usage_lists_every_verb(capsys):
    assert cli.main(['--help']) == 0
    text = capsys.readouterr().out
    assert all(f'  {verb} ' in text for verb in cli.COMMANDS)
    assert cli.main([]) == 2
    assert cli.main(['no-such-verb']) == 2 and "unknown command 'no-such-verb'" in capsys.readouterr().err
    assert cli.main(['--version']) == 0 and capsys.readouterr().out.startswith('srfer_plugin ')


@pytest.mark.parametrize('verb', list(cli.COMMANDS))
def test_every_verb_has_a_help(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([verb, '--help'])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert 'usage:' in out and (verb in ('train', 'test') or f'srfer {verb}' in out or f'srfer-{verb}' in out)


def test_list_options_names_every_shipped_config(capsys):
    assert cli.main(['list-options', 'fer']) == 0
    assert capsys.readouterr().out.split() == shipped_names('fer', recursive=True)
    assert cli.main(['list-options', 'fer', '--path']) == 0
    first = capsys.readouterr().out.splitlines()[0].split()
    assert first[0].startswith('srfer::fer/') and os.path.isfile(first[1])
    assert cli.main(['list-options', 'no_such']) == 2


def test_a_real_small_call(tmp_path, capsys):
    out = tmp_path / 'faces'
    argv = ['generate-synthetic-faces', '--out', str(out), '--size', '32', '--num-train', '1', '--num-val', '1',
            '--num-test', '1']  # fmt: skip
    assert cli.main(argv) == 0
    assert (out / 'classes.txt').is_file() and (out / 'meta_info_train.txt').read_text().count('\n') == 7


def test_a_command_returning_its_results_exits_zero(monkeypatch):
    """``srfer-demo``: the demo's ``main`` returns the report rows, which must not become the exit status."""
    import srfer_plugin.demo

    seen = []
    monkeypatch.setattr(srfer_plugin.demo, 'main', lambda: seen.append(list(sys.argv)) or {'hr': {'acc': 1.0}})
    monkeypatch.setattr(sys, 'argv', ['/venv/bin/srfer-demo', '--quick'])
    assert cli.demo_script() == 0 and seen == [['/venv/bin/srfer-demo', '--quick']]


@pytest.mark.parametrize('verb', TOOL_VERBS)
def test_clone_scripts_run_the_package_tools(verb, monkeypatch, capsys):
    module = cli.COMMANDS[verb][0].rsplit('.', 1)[1]
    script = os.path.join(REPO_ROOT, 'scripts', f'{module}.py')
    if verb == 'list-options':
        assert not os.path.exists(script), 'a new tool needs no clone script'
        return
    monkeypatch.setattr(sys, 'argv', [script, '--help'])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(script, run_name='__main__')
    assert exit_info.value.code == 0 and 'usage:' in capsys.readouterr().out


def test_console_script_and_module_run_from_any_folder(tmp_path):
    """The installed ``srfer`` (or ``python -m srfer_plugin`` without it) from a folder outside the clone."""
    srfer = shutil.which('srfer')
    command = [srfer] if srfer else [sys.executable, '-m', 'srfer_plugin']
    proc = subprocess.run([*command, 'list-options', 'fer'], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'srfer::fer/resnet18slim_fer7_demo.py' in proc.stdout.split()


@pytest.mark.parametrize(
    ('argv', 'message'),
    [
        (['visualize-attention', '--num', '-1'], 'argument --num: -1 is below 1'),
        (['benchmark', '--iters', '0'], 'argument --iters: 0 is below 1'),
        (['benchmark', '--seed-list', '0', '-2'], 'argument --seed-list: -2 is below 0'),
        (['benchmark-speed', '--steps', '0'], 'argument --steps: 0 is below 1'),
        (['generate-synthetic-faces', '--out', 'x', '--size', '8'], 'argument --size: 8 is below 16'),
        (['prepare-dataset', '--workers', '0'], 'argument --workers: 0 is below 1'),
        (['fer-taps', 'resnet18_8xb32_in1k', '--num-classes', '0'], 'argument --num-classes: 0 is below 1'),
        (['demo', '--sr-iters', '0'], 'argument --sr-iters: 0 is below 1'),
    ],
)
def test_counts_and_sizes_below_their_minimum_are_refused_by_flag(argv, message, capsys, tmp_path, monkeypatch):
    """A zero or negative count was taken silently (``--num -1`` drew all but the last image) or failed later."""
    from srfer_plugin import cli

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
