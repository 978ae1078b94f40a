"""Lets BasicSR's own entry points find srfer_plugin, without editing BasicSR.

``srfer_plugin_autoload.pth`` (installed into site-packages) runs ``import srfer_plugin_autoload;
srfer_plugin_autoload.install_basicsr_hook()`` at interpreter start-up. Importing this module does nothing by
itself and imports nothing heavy (no torch): it lives outside the ``srfer_plugin`` package because importing that
package registers everything (torch, basicsr, mmpretrain).

:func:`install_basicsr_hook` puts a one-shot finder at the front of ``sys.meta_path``. When something first imports
``basicsr``, the finder takes BasicSR's own module spec and wraps its loader so that

1. the torchvision ``functional_tensor`` shim is installed just before basicsr's code runs (basicsr 1.4.2 imports
   that removed module at import time), and
2. ``srfer_plugin`` is imported right after the ``basicsr`` package has finished importing, so the plugin's archs,
   losses, models and datasets are in BasicSR's registries before ``basicsr.train`` builds anything, and
3. BasicSR's ``parse_options`` is replaced by the plugin's checked one
   (:func:`srfer_plugin.train_loop.guard_parse_options`): the options are checked and the run takes its output
   folder before BasicSR creates or renames anything, as with ``srfer-train`` and ``srfer-test``.

``python -m basicsr.train -opt X.yml`` and ``python basicsr/train.py -opt X.yml`` therefore find the plugin, and a
second run of the same name stops instead of archiving the folder of a running one (the rest of the plugin's
training-loop changes come with ``srfer-train`` only).
The finder removes itself on first use, so it never runs twice and never recurses. Set ``SRFER_NO_AUTOLOAD=1``
to switch off steps 2 and 3 (the plugin is then registered only by ``import srfer_plugin``); the shim of step 1 is
installed either way, so ``import basicsr`` always works. ``import srfer_plugin`` works either way, in any import
order.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
import types

BASICSR = 'basicsr'
FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'


def install_functional_tensor_shim() -> None:
    """Provide ``torchvision.transforms.functional_tensor``, which torchvision >= 0.17 removed.

    basicsr 1.4.2 imports ``rgb_to_grayscale`` from it at import time; the function now lives in
    ``torchvision.transforms.functional``. ``srfer_plugin/__init__.py`` calls this before it imports anything that
    imports basicsr. Idempotent; does nothing on an old torchvision that still has the module.
    """
    if FUNCTIONAL_TENSOR in sys.modules:
        return
    try:
        importlib.import_module(FUNCTIONAL_TENSOR)  # old torchvision still has it
        return
    except ImportError:
        pass
    from torchvision.transforms import functional

    shim = types.ModuleType(FUNCTIONAL_TENSOR)
    shim.rgb_to_grayscale = functional.rgb_to_grayscale
    shim.__doc__ = 'srfer_plugin shim for basicsr 1.4.2: re-exports torchvision.transforms.functional.'
    sys.modules[FUNCTIONAL_TENSOR] = shim


class _RegisteringBasicsrLoader(importlib.abc.Loader):
    """Wraps BasicSR's loader: shim before its code runs; plugin registration and checked parse_options after."""

    def __init__(self, loader: importlib.abc.Loader, register: bool = True):
        """Wrap ``loader``.

        Args:
            loader: BasicSR's own loader.
            register: Whether to import ``srfer_plugin`` and install the checked ``parse_options`` after basicsr has
                imported; with ``False`` only the shim is installed.
        """
        self._loader = loader
        self._register = register

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        install_functional_tensor_shim()
        self._loader.exec_module(module)
        if self._register:
            importlib.import_module('srfer_plugin')  # registration into the now-complete basicsr registries
            importlib.import_module('srfer_plugin.train_loop').guard_parse_options()


class _BasicsrFinder(importlib.abc.MetaPathFinder):
    """One-shot finder for the top-level ``basicsr`` package (see the module docstring)."""

    def __init__(self, register: bool = True):
        """Make the finder.

        Args:
            register: Passed on to the wrapping loader: whether the plugin is registered after basicsr imports.
        """
        self.register = register

    def find_spec(self, fullname, path, target=None):
        if fullname != BASICSR:
            return None
        sys.meta_path.remove(self)  # one shot; also keeps find_spec below from finding this finder again
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _RegisteringBasicsrLoader(spec.loader, register=self.register)
        return spec


def install_basicsr_hook() -> bool:
    """Install the finder once, unless basicsr is already imported.

    With ``SRFER_NO_AUTOLOAD`` set (non-empty) the finder installs only the torchvision shim, so ``import basicsr``
    still works, and registers nothing.

    Returns:
        Whether the finder is in ``sys.meta_path`` now.
    """
    if BASICSR in sys.modules:
        return False
    if not any(isinstance(finder, _BasicsrFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BasicsrFinder(register=not os.environ.get('SRFER_NO_AUTOLOAD')))
    return True
