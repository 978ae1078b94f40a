"""The one trainer of the experiments: ``python -m srfer_plugin.train -opt <yml> --auto_resume`` in a subprocess.

An interrupted training resumes from its last training state when it is run again. Its output can feed a progress
bar (BasicSR's ``epoch: N, iter: M`` log lines) and be appended to a log file; a failure raises with the last lines.
On Linux the training ends with the process that started it (:mod:`srfer_plugin.utils.parent_process`).
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import subprocess
import sys
from typing import Any

import yaml
from tqdm import tqdm

from srfer_plugin.utils.parent_process import PARENT_PID_ENV

ITER_RE = re.compile(r'epoch:\s*\d+, iter:\s*([\d,]+)')  # BasicSR's MessageLogger line
TIME_RE = re.compile(r'time \(data\): ([\d.]+) \(([\d.]+)\)')  # BasicSR MessageLogger: avg iter time (data time)
TAIL_LINES = 40  # lines of output quoted when a training fails


def write_options(opt: dict[str, Any], path: str, header: str | None = None) -> str:
    """Write an option dict as YAML (BasicSR's loader reads it).

    Args:
        opt: The options.
        path: The file (its folder is created).
        header: A comment written as the first line, or None.

    Returns:
        ``path``.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        if header:
            f.write(f'# {header}\n')
        yaml.safe_dump(opt, f, sort_keys=False, default_flow_style=None)
    return path


def network_path(exp_root: str, name: str, net: str = 'net_g') -> str:
    """Where training ``name`` in ``exp_root`` leaves a network: ``experiments/<name>/models/<net>_latest.pth``.

    ``net='net_fer'`` is the classifier a joint training fine-tuned.
    """
    return os.path.join(exp_root, 'experiments', name, 'models', f'{net}_latest.pth')


def train_command(opt_path: str) -> list[str]:
    """The command line of one training (``--auto_resume``: an interrupted training continues)."""
    return [sys.executable, '-m', 'srfer_plugin.train', '-opt', opt_path, '--auto_resume']


def run_training(
    opt_path: str,
    exp_root: str,
    progress: str | None = None,
    log_path: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Train (or resume) the options of ``opt_path`` in a subprocess that runs in ``exp_root``.

    Args:
        opt_path: BasicSR option file (its ``name`` and ``train.total_iter`` are read).
        exp_root: Working folder of the training (it receives ``experiments/<name>/``).
        progress: Title of a tqdm bar fed by BasicSR's ``epoch: N, iter: M`` lines; None shows no bar.
        log_path: File the training output is appended to, or None.
        env: Environment variables of the subprocess on top of the current ones.

    Returns:
        The trained ``net_g_latest.pth``.

    Raises:
        RuntimeError: The training exited with an error or left no ``net_g_latest.pth``; the message holds the
            command and the last lines of its output.
    """
    opt_path = os.path.abspath(opt_path)
    with open(opt_path, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    latest = network_path(exp_root, opt['name'])
    cmd = train_command(opt_path)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    total = opt['train']['total_iter']
    with contextlib.ExitStack() as stack:
        pbar = stack.enter_context(tqdm(total=total, desc=progress, unit='it')) if progress else None
        log = stack.enter_context(open(log_path, 'a', encoding='utf-8', buffering=1)) if log_path else None
        proc = subprocess.Popen(
            cmd,
            cwd=exp_root,
            env={**os.environ, **(env or {}), PARENT_PID_ENV: str(os.getpid())},  # the training ends with this process
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors='replace',
        )
        for line in proc.stdout:
            tail.append(line)
            if log:
                log.write(line)
            match = ITER_RE.search(line) if pbar else None
            if match:
                pbar.update(max(0, int(match.group(1).replace(',', '')) - pbar.n))
        proc.wait()
    if proc.returncode != 0 or not os.path.isfile(latest):
        raise RuntimeError(
            f'training {opt["name"]} failed (exit {proc.returncode}); command: {" ".join(cmd)}\n{"".join(tail)}'
        )
    return latest


def train_seconds_per_iter(exp_dir: str) -> float | None:
    """The last iteration time BasicSR logged in ``exp_dir`` (its running average, ``time (data): t (d)``).

    Args:
        exp_dir: ``experiments/<name>`` of a training (its ``train_*.log`` files are read).

    Returns:
        Seconds per iteration, or None when nothing was logged.
    """
    times = []
    for name in sorted(os.listdir(exp_dir)):
        if name.startswith('train_') and name.endswith('.log'):
            with open(os.path.join(exp_dir, name), encoding='utf-8') as f:
                times += [float(m.group(1)) for m in TIME_RE.finditer(f.read())]
    return times[-1] if times else None
