"""Auto-import of ``*_arch.py``, ``*_loss.py``, ``*_model.py`` and ``*_dataset.py`` files, as BasicSR does."""

from __future__ import annotations

import importlib
import os


def import_modules_with_suffix(package_name: str, package_file: str, suffix: str) -> list:
    """Import every module ``<package>/<name><suffix>.py`` so its classes register themselves.

    Args:
        package_name: Dotted name of the package, e.g. ``srfer_plugin.archs``.
        package_file: The package's ``__file__``.
        suffix: File-name suffix without extension, e.g. ``_arch``.

    Returns:
        The imported modules.
    """
    folder = os.path.dirname(os.path.abspath(package_file))
    names = sorted(f[:-3] for f in os.listdir(folder) if f.endswith(f'{suffix}.py'))
    return [importlib.import_module(f'{package_name}.{name}') for name in names]
