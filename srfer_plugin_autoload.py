"""Registers srfer_plugin in BasicSR whenever ``basicsr`` is imported, without editing BasicSR.

``srfer_plugin_autoload.pth`` (installed into site-packages) imports this module at interpreter start-up. It
imports nothing heavy: it only adds an import hook that

* installs the torchvision ``functional_tensor`` shim just before ``basicsr`` is imported, and
* imports ``srfer_plugin`` right after the ``basicsr`` package has finished importing,

so ``python -m basicsr.train -opt X.yml`` and ``python basicsr/train.py -opt X.yml`` find the plugin's classes.
Set ``SRFER_NO_AUTOLOAD=1`` to switch the hook off.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

_TARGET = 'basicsr'


class _BasicsrLoaderWrapper(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        from srfer_plugin import compat  # noqa: F401  (light: the shim only)

        self._loader.exec_module(module)
        import srfer_plugin  # noqa: F401  (registration into the now-complete basicsr registries)


class _BasicsrFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)  # one shot; also avoids recursion in find_spec below
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _BasicsrLoaderWrapper(spec.loader)
        return spec


def install() -> None:
    """Install the hook once, unless basicsr is already imported or SRFER_NO_AUTOLOAD is set."""
    if os.environ.get('SRFER_NO_AUTOLOAD') or _TARGET in sys.modules:
        return
    if not any(isinstance(finder, _BasicsrFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BasicsrFinder())


install()
