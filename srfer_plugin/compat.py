"""Every fix that basicsr 1.4.2 needs on current torch/torchvision, in one place.

Import this module before anything imports ``basicsr`` (``srfer_plugin/__init__.py`` does).
"""

from __future__ import annotations

import sys
import types

_FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'


def install_functional_tensor_shim() -> None:
    """Provide ``torchvision.transforms.functional_tensor``, which torchvision >= 0.17 removed.

    basicsr 1.4.2 imports ``rgb_to_grayscale`` from it at import time; the function now lives in
    ``torchvision.transforms.functional``.
    """
    if _FUNCTIONAL_TENSOR in sys.modules:
        return
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401  (old torchvision still has it)
        return
    except ImportError:
        pass
    from torchvision.transforms import functional

    shim = types.ModuleType(_FUNCTIONAL_TENSOR)
    shim.rgb_to_grayscale = functional.rgb_to_grayscale
    shim.__doc__ = 'srfer_plugin shim for basicsr 1.4.2: re-exports torchvision.transforms.functional.'
    sys.modules[_FUNCTIONAL_TENSOR] = shim


install_functional_tensor_shim()
