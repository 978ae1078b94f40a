"""The subprocess trainer: progress from BasicSR's log lines, the log file, the error with the log tail."""

from __future__ import annotations

import os
import sys

import pytest
import yaml

from srfer_plugin.studies import runner


def _fake_training(script: str):
    """A stand-in for ``python -m srfer_plugin.train`` that runs ``script`` (no torch, no BasicSR)."""
    return lambda opt_path: [sys.executable, '-c', script, opt_path]


def _options(tmp_path) -> str:
    return runner.write_options({'name': 'tiny', 'train': {'total_iter': 4}}, str(tmp_path / 'opt' / 'tiny.yml'), 'hi')


def test_options_are_written_with_their_header(tmp_path):
    path = _options(tmp_path)
    with open(path, encoding='utf-8') as f:
        text = f.read()
    assert text.startswith('# hi\n') and yaml.safe_load(text) == {'name': 'tiny', 'train': {'total_iter': 4}}


def test_a_training_reports_progress_and_appends_its_log(tmp_path, monkeypatch, capsys):
    exp_root = tmp_path / 'exp'
    latest = runner.network_path(str(exp_root), 'tiny')
    script = (
        'import os, sys\n'
        "print('epoch:  1, iter:       2, lr:(5.000e-04,)')\n"
        "print('epoch:  1, iter:       4, lr:(5.000e-04,) [eta: 0:00:00, time (data): 0.125 (0.010)]')\n"
        f'os.makedirs(os.path.dirname({latest!r})); open({latest!r}, "w").close()\n'
    )
    monkeypatch.setattr(runner, 'train_command', _fake_training(script))
    os.makedirs(exp_root)
    log = tmp_path / 'train_stdout.log'
    log.write_text('earlier run\n')
    assert runner.run_training(_options(tmp_path), str(exp_root), progress='tiny', log_path=str(log)) == latest
    assert log.read_text().startswith('earlier run\nepoch:  1, iter:       2,'), 'appended'
    assert '4/4' in capsys.readouterr().err, 'the progress bar reached total_iter'
    exp_dir = os.path.dirname(os.path.dirname(latest))
    (tmp_path / 'exp' / 'experiments' / 'tiny' / 'train_tiny.log').write_text(log.read_text())
    assert runner.train_seconds_per_iter(exp_dir) == 0.125


def test_a_failed_training_raises_with_its_last_lines(tmp_path, monkeypatch):
    script = "import sys\nfor i in range(100): print(f'line {i}')\nsys.exit(3)\n"
    monkeypatch.setattr(runner, 'train_command', _fake_training(script))
    with pytest.raises(RuntimeError, match=r'training tiny failed \(exit 3\)') as err:
        runner.run_training(_options(tmp_path), str(tmp_path))
    message = str(err.value)
    assert 'line 99' in message and f'line {99 - runner.TAIL_LINES + 1}\n' in message and 'line 59\n' not in message


def test_a_training_without_a_network_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, 'train_command', _fake_training('pass'))
    with pytest.raises(RuntimeError, match='exit 0'):
        runner.run_training(_options(tmp_path), str(tmp_path))


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='parent-death signal is Linux-only')
def test_a_killed_benchmark_leaves_no_training_running(tmp_path):
    """SIGKILL the process that started a training: the training ends too (else it would run on unseen)."""
    import signal
    import subprocess
    import time

    pid_file = tmp_path / 'child.pid'
    child = (
        'import os, time\n'
        'from srfer_plugin.utils.parent_process import end_with_parent\n'
        'end_with_parent()  # as srfer_plugin.train does first\n'
        f'open({str(pid_file)!r}, "w").write(str(os.getpid()))\n'
        'time.sleep(120)\n'
    )
    parent = (
        'import sys\n'
        'from srfer_plugin.studies import runner\n'
        f'runner.train_command = lambda opt_path: [sys.executable, "-c", {child!r}]\n'
        f'runner.run_training({_options(tmp_path)!r}, {str(tmp_path)!r})\n'
    )
    proc = subprocess.Popen([sys.executable, '-c', parent])
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child_pid = int(pid_file.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return
        with open(f'/proc/{child_pid}/stat', encoding='utf-8') as f:
            if f.read().split(')')[-1].split()[0] == 'Z':  # ended, not yet reaped
                return
        time.sleep(0.1)
    os.kill(child_pid, signal.SIGKILL)
    pytest.fail('the training outlived the process that started it')
