"""Where a run reads its option file from and writes its folders, for every entry point.

* ``-opt srfer::NAME`` (a shipped option file, :mod:`srfer_plugin.utils.shipped_options`) and the clone path
  ``-opt options/NAME`` run from any folder: the argument is replaced by the file before BasicSR reads it.
* ``python -m basicsr.train`` / ``basicsr.test`` of a pip-installed BasicSR root the run at the folder above the
  ``basicsr`` package, i.e. site-packages. The checked ``parse_options`` roots such a run at the current folder
  instead (``experiments/``, ``tb_logger/``, ``results/``), as ``srfer-train`` and ``srfer-test`` do; a BasicSR
  clone (``python basicsr/train.py``) keeps its own root.
"""

from __future__ import annotations

import os
import site
import sysconfig
from collections import OrderedDict

from srfer_plugin.utils.shipped_options import resolve_path


def resolve_option_argument(argv: list[str]) -> list[str]:
    """``argv`` with the value of ``-opt`` (``-opt X`` or ``-opt=X``) resolved to a file.

    Args:
        argv: Command-line arguments (``sys.argv``).

    Returns:
        A new list; ``srfer::NAME`` and a missing ``options/NAME`` become the shipped file, anything else is kept.

    Raises:
        FileNotFoundError: A ``srfer::`` name that is not shipped.
    """
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == '-opt' and i + 1 < len(out):
            out[i + 1] = resolve_path(out[i + 1])
            break
        if arg.startswith('-opt='):
            out[i] = '-opt=' + resolve_path(arg.split('=', 1)[1])
            break
    return out


def _install_folders() -> set[str]:
    folders = set(site.getsitepackages()) | {sysconfig.get_path('purelib'), sysconfig.get_path('platlib')}
    if site.ENABLE_USER_SITE:
        folders.add(site.getusersitepackages())
    return {os.path.realpath(f) for f in folders if f}


def run_root(root_path: str) -> str:
    """The folder a run writes under: the current one when BasicSR was given its install folder.

    Args:
        root_path: What BasicSR's entry point passed (the folder above the ``basicsr`` package it ran from).

    Returns:
        ``os.getcwd()`` when ``root_path`` is a site-packages folder, else ``root_path``.
    """
    real = os.path.realpath(root_path)
    if os.path.basename(real) in ('site-packages', 'dist-packages') or real in _install_folders():
        return os.getcwd()
    return root_path


class RootedOptions(OrderedDict):
    """Parsed options whose ``root_path``, once set, stays.

    BasicSR's ``train_pipeline`` sets ``opt['root_path']`` to its own argument after parsing; for a run rerooted by
    :func:`run_root` that is the install folder, and ``tb_logger/`` would be written there.
    """

    def __setitem__(self, key, value) -> None:
        if key == 'root_path' and key in self:
            return
        super().__setitem__(key, value)


def rooted_options(opt: dict, root_path: str) -> RootedOptions:
    """``opt`` as :class:`RootedOptions` with ``root_path`` set (BasicSR's later assignment is ignored)."""
    rooted = RootedOptions(opt)
    OrderedDict.__setitem__(rooted, 'root_path', root_path)
    return rooted
