"""A running experiment owns its folder: a second run of the same name stops before it touches anything.

Run A is held at a gate (a training step or the test pass, after its folder and log exist) while the test starts
run B with the same options in the same folder; B must fail at once, naming the folder and A's pid, and leave A's
folder as it was (BasicSR would archive it and start writing a new one). A then finishes normally.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from fer_fixtures import load_options, tiny_train_options, write_options
from training_runs import logged_losses, train_env

from srfer_plugin.data.fer_layout import meta_info_name
from srfer_plugin.utils.run_lock import FolderInUseError, acquire_folder, release_folder

NAME = 'owned'

# Runs srfer-train or srfer-test with SRFERModel held at a gate until the file ``go`` exists in $GATE_DIR (it
# writes ``ready`` there when it arrives): a training step $GATE_ITER, or the test pass.
GATED_ENTRY = """
import os, sys, time

from srfer_plugin.models.srfer_model import SRFERModel

gate_dir, entry = os.environ['GATE_DIR'], sys.argv.pop(1)


def wait_at_gate():
    open(os.path.join(gate_dir, 'ready'), 'w').close()
    while not os.path.exists(os.path.join(gate_dir, 'go')):
        time.sleep(0.05)


if entry == 'train':
    step = SRFERModel.optimize_parameters

    def gated_step(self, current_iter):
        if current_iter == int(os.environ['GATE_ITER']):
            wait_at_gate()
        return step(self, current_iter)

    SRFERModel.optimize_parameters = gated_step
    from srfer_plugin.train import main
else:
    validation = SRFERModel.validation

    def gated_validation(self, *args, **kwargs):
        wait_at_gate()
        return validation(self, *args, **kwargs)

    SRFERModel.validation = gated_validation
    from srfer_plugin.test import main
main()
"""


class GatedRun:
    """A run of ``srfer-train``/``srfer-test`` held at a gate until :meth:`release`."""

    def __init__(self, root: pathlib.Path, tag: str, entry: str, opt_path: str, *extra: str, gate_iter: int = 1):
        self.gate = root / f'gate_{tag}'
        self.gate.mkdir()
        script = root / 'gated_entry.py'
        script.write_text(GATED_ENTRY)
        env = dict(train_env(), GATE_DIR=str(self.gate), GATE_ITER=str(gate_iter))
        self.log = root / f'{tag}.log'
        self.output = open(self.log, 'w', encoding='utf-8')  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, str(script), entry, '-opt', opt_path, *extra],
            cwd=root,
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )

    def wait_at_gate(self, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while not (self.gate / 'ready').exists():
            assert self.proc.poll() is None, f'the run ended before its gate:\n{self.text()[-5000:]}'
            assert time.time() < deadline, 'the run did not reach its gate'
            time.sleep(0.05)

    def release(self) -> int:
        (self.gate / 'go').touch()
        return self.wait()

    def kill(self) -> int:
        self.proc.send_signal(signal.SIGKILL)
        return self.wait()

    def wait(self, timeout: float = 300) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.output.close()

    def text(self) -> str:
        return self.log.read_text(encoding='utf-8')


def _run(root: pathlib.Path, module: str, opt_path: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', module, '-opt', opt_path, *extra],
        cwd=root,
        env=train_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _tree(folder: pathlib.Path) -> list[str]:
    """Every path under ``folder`` (relative), to compare before and after a refused run."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*'))


def _assert_refused(proc: subprocess.CompletedProcess, folder: pathlib.Path, holder_pid: int) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f'the second run was not refused:\n{output[-3000:]}'
    assert 'FolderInUseError' in output and 'in use by a running process' in output, output[-3000:]
    assert repr(str(folder)) in output, 'the error must name the folder'
    assert f'pid {holder_pid}:' in output, 'the error must name the running process'


def _train_options(tiny_fer_root: str, root: pathlib.Path) -> str:
    return write_options(tiny_train_options(tiny_fer_root, name=NAME), str(root / 'train.yml'))


def test_second_training_of_the_same_name_is_refused(tiny_fer_root, tmp_path):
    opt_path = _train_options(tiny_fer_root, tmp_path)
    exp = tmp_path / 'experiments' / NAME
    run_a = GatedRun(tmp_path, 'a', 'train', opt_path, gate_iter=1)
    try:
        run_a.wait_at_gate()
        before = _tree(tmp_path / 'experiments')
        for extra in ((), ('--auto_resume',)):
            _assert_refused(_run(tmp_path, 'srfer_plugin.train', opt_path, *extra), exp, run_a.proc.pid)
            assert _tree(tmp_path / 'experiments') == before, 'the refused run touched the experiments folder'
    finally:
        rc = run_a.release()
    assert rc == 0, run_a.text()[-5000:]
    assert sorted(os.listdir(tmp_path / 'experiments')) == [f'.{NAME}.lock', NAME], 'a folder was archived'
    assert {'net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth'} <= set(os.listdir(exp / 'models'))
    assert len(list(exp.glob('train_*.log'))) == 1
    assert sorted(logged_losses(str(exp))) == [1, 2, 3, 4]


def test_killed_training_resumes_and_owns_its_folder_again(tiny_fer_root, tmp_path):
    opt_path = _train_options(tiny_fer_root, tmp_path)
    exp = tmp_path / 'experiments' / NAME
    killed = GatedRun(tmp_path, 'killed', 'train', opt_path, gate_iter=3)  # after the checkpoint of iteration 2
    try:
        killed.wait_at_gate()
    finally:
        assert killed.kill() == -signal.SIGKILL
    assert (exp / 'training_states' / '2.state').exists()

    resumed = GatedRun(tmp_path, 'resumed', 'train', opt_path, '--auto_resume', gate_iter=3)
    try:
        resumed.wait_at_gate()  # the lock of the killed run died with it
        _assert_refused(_run(tmp_path, 'srfer_plugin.train', opt_path), exp, resumed.proc.pid)
    finally:
        rc = resumed.release()
    output = resumed.text()
    assert rc == 0, output[-5000:]
    assert 'Resuming training from epoch: 0, iter: 2' in output
    assert not [p for p in os.listdir(tmp_path / 'experiments') if '_archived_' in p]
    assert {'net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth'} <= set(os.listdir(exp / 'models'))


def test_second_test_run_of_the_same_name_is_refused(tiny_fer_root, tmp_path):
    opt = load_options('options/tests/test_srfer_tiny_cpu.yml')
    opt['name'] = NAME
    dataset = opt['datasets']['test_1']
    dataset['dataroot_gt'] = tiny_fer_root
    dataset['meta_info_file'] = os.path.join(tiny_fer_root, meta_info_name('val'))
    # bicubic upsampling as network_g (no weights to load, so no path.pretrain_network_g): only the folder matters here
    opt['network_g'] = {'type': 'BicubicUpsampler', 'upscale': 4}
    opt['path']['pretrain_network_g'] = None
    opt_path = write_options(opt, str(tmp_path / 'test.yml'))
    results = tmp_path / 'results' / NAME
    run_a = GatedRun(tmp_path, 'a', 'test', opt_path)
    try:
        run_a.wait_at_gate()
        before = _tree(tmp_path / 'results')
        _assert_refused(_run(tmp_path, 'srfer_plugin.test', opt_path), results, run_a.proc.pid)
        assert _tree(tmp_path / 'results') == before, 'the refused run touched the results folder'
    finally:
        rc = run_a.release()
    assert rc == 0, run_a.text()[-5000:]
    assert sorted(os.listdir(tmp_path / 'results')) == [f'.{NAME}.lock', NAME], 'a folder was archived'
    assert len(list(results.glob('test_*.log'))) == 1
    assert list((results / 'visualization').rglob('*.png')), 'the test run saved no images'


def test_every_rank_of_a_distributed_run_stops_when_the_folder_is_taken(tiny_fer_root, tmp_path):
    """Rank 0 takes the lock and tells rank 1: both stop with the error, neither waits for the other."""
    opt = tiny_train_options(tiny_fer_root, name=NAME)
    opt['datasets']['train']['batch_size_per_gpu'] = 2
    opt_path = write_options(opt, str(tmp_path / 'dist.yml'))
    exp = tmp_path / 'experiments' / NAME
    acquire_folder(str(exp), 'experiment folder')  # held by this test process
    try:
        cmd = [
            sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
            '-m', 'srfer_plugin.train', '-opt', opt_path, '--launcher', 'pytorch',
        ]  # fmt: skip
        proc = subprocess.run(cmd, cwd=tmp_path, env=train_env(), capture_output=True, text=True, timeout=300)
    finally:
        release_folder(str(exp))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert output.count(f'FolderInUseError: experiment folder {str(exp)!r}') >= 2, 'both ranks must stop'
    assert f'pid {os.getpid()}:' in output
    assert not exp.exists()


def test_a_folder_reached_through_a_symlink_shares_the_lock_of_the_folder(tmp_path):
    """Two spellings of one folder (the folder, a link to it, a path through a linked parent) are one folder: a
    second process must not own it under the other spelling."""
    (tmp_path / 'real' / 'out').mkdir(parents=True)
    os.symlink(tmp_path / 'real' / 'out', tmp_path / 'out_link')
    os.symlink(tmp_path / 'real', tmp_path / 'parent_link')
    holder_code = (
        'import sys\nfrom srfer_plugin.utils.run_lock import acquire_folder\n'
        "acquire_folder(sys.argv[1], 'output folder')\nprint('holding', flush=True)\nsys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, '-c', holder_code, str(tmp_path / 'real' / 'out')],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=train_env(),
    )
    try:
        assert holder.stdout.readline().strip() == 'holding'
        for spelling in (tmp_path / 'out_link', tmp_path / 'parent_link' / 'out', tmp_path / 'real' / 'out' / '.'):
            with pytest.raises(FolderInUseError):
                acquire_folder(str(spelling), 'output folder')
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
