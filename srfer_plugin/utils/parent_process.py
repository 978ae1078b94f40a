"""Trainings that end with the command that started them (Linux): the benchmark's and the demo's subprocesses.

The starter sets ``SRFER_PARENT_PID`` to its pid in the child's environment; the child calls :func:`end_with_parent`
first thing, and Linux sends it SIGTERM when the starter dies (a killed benchmark leaves no training running on). The
training resumes from its last training state when the command is run again.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_PID_ENV = 'SRFER_PARENT_PID'
PR_SET_PDEATHSIG = 1  # Linux prctl option: the signal a process gets when its parent dies


def end_with_parent() -> None:
    """When ``SRFER_PARENT_PID`` is set (and on Linux), end this process with that parent; at once if it is gone.

    The variable is removed, so processes this one starts do not inherit the rule.
    """
    parent = os.environ.pop(PARENT_PID_ENV, None)
    if not parent or not sys.platform.startswith('linux'):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if str(os.getppid()) != parent:
        os.kill(os.getpid(), signal.SIGTERM)
