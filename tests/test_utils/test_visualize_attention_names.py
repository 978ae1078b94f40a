"""``srfer visualize-attention`` on odd inputs: image and output folder names that are not UTF-8, a FIFO."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from eval_fixtures import tiny_test_setup


def test_names_that_are_not_utf8_and_a_fifo(tiny_fer_root, tmp_path):
    """cv2.imread and the picture's writing crashed (segfault) on ``caf\\xe9.png`` (not UTF-8): the image is read
    and the picture written by Python, named ``caf\\xe9_attention.png`` as ``srfer infer`` names such a file; a FIFO
    among ``--images`` is skipped with the reason, not waited on. In a child process: a crash fails this test only."""
    opt_path, _ = tiny_test_setup(str(tmp_path), tiny_fer_root)
    images = os.path.join(os.fsencode(str(tmp_path)), b'happy')
    os.makedirs(images)
    face = os.path.join(images, b'caf\xe9.png')
    try:
        shutil.copyfile(os.path.join(tiny_fer_root, 'val', 'happy', 'happy_000.png'), face)
    except (OSError, UnicodeError):
        pytest.skip('this file system does not allow file names that are not UTF-8')
    fifo = os.path.join(images, b'pipe.png')
    if hasattr(os, 'mkfifo'):
        os.mkfifo(fifo)
    out = os.path.join(os.fsencode(str(tmp_path)), b'att\xe9')
    argv = [sys.executable, '-m', 'srfer_plugin.tools.visualize_attention', '--opt', opt_path, '--out', out]
    argv += ['--device', 'cpu', '--images', face] + ([fifo] if hasattr(os, 'mkfifo') else [])
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail('srfer visualize-attention still waits on the FIFO after 300 s')
    printed = (proc.stdout + proc.stderr).decode(errors='replace')
    assert proc.returncode == 0, printed[-3000:]
    assert os.listdir(out) == [b'caf\\xe9_attention.png']
    with open(os.path.join(out, b'caf\\xe9_attention.png'), 'rb') as f:
        picture = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (round((3 * 1.6 + 0.4) * 100), round(5 * 1.6 * 100), 3)  # HR, bicubic, SR-FER rows
    assert 'caf\\xe9_attention.png: HR -> ' in printed
    if hasattr(os, 'mkfifo'):
        assert 'pipe.png: not a regular file (a FIFO (named pipe)): not read' in printed
