"""Helpers for the evaluation, inference and visualisation tests: tiny test options and a fresh net_g."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import torch
from fer_fixtures import load_options, write_options

from srfer_plugin.data.fer_layout import meta_info_name


def tiny_test_setup(
    work_dir: str,
    data_root: str,
    extra_datasets: dict[str, Any] | None = None,
    network_fer: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Write the tiny CPU test options (pointed at ``data_root``), a random net_g and a random FER checkpoint.

    Args:
        work_dir: Folder for the options file and the weights.
        data_root: A dataset made by ``make_tiny_fer_dataset``.
        extra_datasets: Updates of the first test set, one per extra test set (keyed by its phase name).
        network_fer: Replaces the options' ``network_fer`` (another classifier); None keeps the tiny ResNet.

    Returns:
        ``(options_path, net_g_path)``.
    """
    from basicsr.archs import build_network

    opt = load_options('options/tests/test_srfer_tiny_cpu.yml')
    base = opt['datasets']['test_1']
    base['dataroot_gt'] = data_root
    base['meta_info_file'] = os.path.join(data_root, meta_info_name('val'))
    for phase, update in (extra_datasets or {}).items():
        opt['datasets'][phase] = {**base, **update}
    if network_fer is not None:
        opt['network_fer'] = dict(network_fer)
    torch.manual_seed(0)
    net = build_network(dict(opt['network_g']))
    net_path = os.path.join(work_dir, 'net_g.pth')
    torch.save({'params': net.state_dict()}, net_path)
    opt['path']['pretrain_network_g'] = net_path
    fer = build_network(dict(opt['network_fer']))  # random weights, saved so that every run uses the same
    fer_path = os.path.join(work_dir, 'fer.pth')
    torch.save({'state_dict': fer.model.state_dict()}, fer_path)
    opt['network_fer']['checkpoint'] = fer_path
    return write_options(opt, os.path.join(work_dir, 'test_tiny.yml')), net_path


def run_srfer_test(opt_path: str, cwd: str) -> str:
    """Run ``python -m srfer_plugin.test -opt opt_path`` in ``cwd``; fail the test with its output if it fails.

    Returns:
        The results folder of the tiny test options, ``<cwd>/results/test_srfer_tiny_cpu``.
    """
    proc = subprocess.run(
        [sys.executable, '-m', 'srfer_plugin.test', '-opt', opt_path],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return os.path.join(cwd, 'results', 'test_srfer_tiny_cpu')
