"""Helpers for tests that run real training processes (``python -m srfer_plugin.train``) and read their logs."""

from __future__ import annotations

import glob
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

LOSS_LINE = re.compile(r'\[epoch:\s*(\d+), iter:\s*([\d,]+), lr:\([^)]*\)\].*?\]\s+(.*)$')


def train_env() -> dict[str, str]:
    """Environment of a CPU training subprocess: no GPU, one thread.

    One thread: tiny tensors gain nothing from two, and on a busy 2-core machine OpenMP's barriers make two
    threads up to 100x slower per op.
    """
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONHASHSEED='0')
    return env


def train_cmd(opt_path: str, *extra: str) -> list[str]:
    """The command line of ``python -m srfer_plugin.train``."""
    return [sys.executable, '-m', 'srfer_plugin.train', '-opt', opt_path, *extra]


def run_training(opt_path: str, cwd: str, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a training to its end; fail with its output when it fails."""
    proc = subprocess.run(
        train_cmd(opt_path, *extra), cwd=cwd, env=train_env(), capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f'training failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return proc


def kill_when(opt_path: str, cwd: str, marker: str, timeout: float = 300) -> int:
    """Start a training and SIGKILL it as soon as ``marker`` (a path relative to ``cwd``) exists.

    Returns:
        The process' return code (negative: killed).
    """
    proc = subprocess.Popen(
        train_cmd(opt_path), cwd=cwd, env=train_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + timeout
    try:
        while proc.poll() is None and time.time() < deadline:
            if os.path.exists(os.path.join(cwd, marker)):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def logged_losses(exp_dir: str) -> dict[int, str]:
    """``{iteration: 'l_pix: ... l_att: ...'}`` from every ``train_*.log`` of an experiment (later logs win)."""
    losses: dict[int, str] = {}
    for log in sorted(glob.glob(os.path.join(exp_dir, 'train_*.log')), key=os.path.getmtime):
        with open(log, encoding='utf-8') as f:
            for line in f:
                match = LOSS_LINE.search(line)
                if match:
                    losses[int(match.group(2).replace(',', ''))] = match.group(3).strip()
    return losses


def full_and_killed_runs(opt_path: str, root, marker: str) -> tuple[pathlib.Path, pathlib.Path]:
    """Run a training to its end in ``root/full``, and start it again in ``root/killed``, SIGKILLed as soon as
    ``marker`` (relative to that folder) exists.

    Returns:
        ``(full_dir, killed_dir)``.
    """
    full_dir, killed_dir = pathlib.Path(root, 'full'), pathlib.Path(root, 'killed')
    full_dir.mkdir()
    killed_dir.mkdir()
    run_training(opt_path, str(full_dir))
    rc = kill_when(opt_path, str(killed_dir), marker)
    assert rc != 0, 'the training finished before it could be killed'
    return full_dir, killed_dir
