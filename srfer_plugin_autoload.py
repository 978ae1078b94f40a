"""Registers srfer_plugin in BasicSR whenever ``basicsr`` is imported, without editing BasicSR.

``srfer_plugin_autoload.pth`` (installed into site-packages) imports this top-level module at interpreter
start-up. It lives outside the ``srfer_plugin`` package because importing that package registers everything
(torch, basicsr, mmpretrain); this module imports nothing heavy. It only adds an import hook that

* installs the torchvision ``functional_tensor`` shim just before ``basicsr`` is imported, and
* imports ``srfer_plugin`` right after the ``basicsr`` package has finished importing,

so ``python -m basicsr.train -opt X.yml`` and ``python basicsr/train.py -opt X.yml`` find the plugin's classes.
Set ``SRFER_NO_AUTOLOAD=1`` to switch the hook off.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
import types

_TARGET = 'basicsr'
_FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'


def install_functional_tensor_shim() -> None:
    """Provide ``torchvision.transforms.functional_tensor``, which torchvision >= 0.17 removed.

    basicsr 1.4.2 imports ``rgb_to_grayscale`` from it at import time; the function now lives in
    ``torchvision.transforms.functional``. ``srfer_plugin.compat`` calls this before anything imports basicsr.
    """
    if _FUNCTIONAL_TENSOR in sys.modules:
        return
    try:
        importlib.import_module(_FUNCTIONAL_TENSOR)  # old torchvision still has it
        return
    except ImportError:
        pass
    from torchvision.transforms import functional

    shim = types.ModuleType(_FUNCTIONAL_TENSOR)
    shim.rgb_to_grayscale = functional.rgb_to_grayscale
    shim.__doc__ = 'srfer_plugin shim for basicsr 1.4.2: re-exports torchvision.transforms.functional.'
    sys.modules[_FUNCTIONAL_TENSOR] = shim


class _BasicsrLoaderWrapper(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        install_functional_tensor_shim()
        self._loader.exec_module(module)
        importlib.import_module('srfer_plugin')  # registration into the now-complete basicsr registries


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
