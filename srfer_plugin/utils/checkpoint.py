"""The one safe checkpoint loader of the plugin: SR weights, FER weights and training states.

Nothing here ever executes pickled code. A file is first read with ``torch.load(weights_only=True)``. Files that
torch's weights-only unpickler refuses only because they carry harmless bookkeeping objects (mmengine Runner
checkpoints hold a ``HistoryBuffer`` in ``message_hub``; numpy scalars in ``meta``) are read again with a
restricted unpickler: it accepts torch's own allow-list plus numpy's array/scalar constructors, turns mmengine
bookkeeping objects into inert placeholders, and refuses every other global with :class:`UnsafeCheckpointError`.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

# Globals that only rebuild plain data. numpy's reconstructors build arrays/scalars from raw bytes.
_NUMPY_SAFE_GLOBALS: dict[str, Any] = {
    'numpy.ndarray': np.ndarray,
    'numpy.dtype': np.dtype,
    'numpy._core.multiarray._reconstruct': np._core.multiarray._reconstruct,
    'numpy._core.multiarray.scalar': np._core.multiarray.scalar,
    'numpy.core.multiarray._reconstruct': np._core.multiarray._reconstruct,
    'numpy.core.multiarray.scalar': np._core.multiarray.scalar,
}
# Modules whose objects may appear as bookkeeping in checkpoints; they are replaced by inert placeholders.
_INERT_MODULE_PREFIXES: tuple[str, ...] = ('mmengine.logging.', 'mmengine.utils.', 'numpy.dtypes')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """Raised when a checkpoint references code outside the allow-list."""


class _InertObject:
    """Stands in for a bookkeeping object (e.g. mmengine's HistoryBuffer); keeps no state and runs no code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _InertObject:
        return _InertObject()


def _inert_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to placeholders: pickles of bound methods of bookkeeping classes use it."""
    if obj is _InertObject or isinstance(obj, _InertObject):
        return _InertObject()
    raise UnsafeCheckpointError(f'refusing getattr({type(obj).__name__}, {name!r}) while loading a checkpoint')


def _allowed_globals() -> dict[str, Any]:
    allowed = dict(_NUMPY_SAFE_GLOBALS)
    try:  # torch's own weights-only allow-list (tensors, storages, dtypes, OrderedDict, Counter, ...)
        from torch import _weights_only_unpickler

        allowed.update(_weights_only_unpickler._get_allowed_globals())
    except (ImportError, AttributeError):  # pragma: no cover - older/newer torch: keep the essentials
        allowed.update(
            {
                'collections.OrderedDict': __import__('collections').OrderedDict,
                'torch._utils._rebuild_tensor_v2': torch._utils._rebuild_tensor_v2,
                'torch._utils._rebuild_parameter': torch._utils._rebuild_parameter,
            }
        )
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    allowed: dict[str, Any] = {}
    source: str = '<checkpoint>'

    def find_class(self, module: str, name: str) -> Any:
        key = f'{module}.{name}'
        if key in self.allowed:
            return self.allowed[key]
        if module.startswith('torch') and name.endswith('Storage'):
            return super().find_class(module, name)
        if module.startswith(_INERT_MODULE_PREFIXES):
            return _InertObject
        if module in ('builtins', '__builtin__') and name == 'getattr':
            return _inert_getattr
        raise UnsafeCheckpointError(
            f'refusing to load {self.source!r}: it references {key}, which is not on the allow-list of safe '
            'globals (a checkpoint should hold tensors and plain data only)'
        )


def _restricted_pickle_module(source: str) -> Any:
    unpickler = type('RestrictedUnpickler', (_RestrictedUnpickler,), {'allowed': _allowed_globals(), 'source': source})
    return type('RestrictedPickle', (), {'Unpickler': unpickler, 'load': pickle.load, '__name__': 'pickle'})


def safe_load(path: str, map_location: str | torch.device = 'cpu') -> Any:
    """Load a checkpoint without executing pickled code.

    Args:
        path: Checkpoint file (torch.save output: state dict, BasicSR params, mmengine Runner checkpoint,
            BasicSR training state).
        map_location: Where to put the tensors.

    Returns:
        The loaded object. mmengine bookkeeping objects (``message_hub``) come back as inert placeholders.

    Raises:
        FileNotFoundError: The file does not exist.
        UnsafeCheckpointError: The file references code outside the allow-list.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        pass  # a global outside torch's list: retry with the restricted unpickler below
    except RuntimeError as err:
        raise RuntimeError(f'cannot read checkpoint {path!r}: {err}') from err
    return torch.load(
        path, map_location=map_location, weights_only=False, pickle_module=_restricted_pickle_module(path)
    )


def extract_state_dict(checkpoint: Any, path: str, param_key: str | None = None) -> dict[str, torch.Tensor]:
    """Return the weights of a loaded checkpoint in any of the supported formats.

    Args:
        checkpoint: What :func:`safe_load` returned.
        path: The file it came from (for error messages).
        param_key: Preferred key (e.g. BasicSR's ``params_ema``). Default: ``state_dict`` (mmengine),
            then ``params_ema``/``params`` (BasicSR), then the mapping itself (plain state dict).

    Returns:
        A flat mapping from parameter names to tensors.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'checkpoint {path!r} holds a {type(checkpoint).__name__}, not a dict of weights')
    keys = [param_key] if param_key else []
    keys += ['state_dict', 'params_ema', 'params', 'model']
    for key in keys:
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            checkpoint = checkpoint[key]
            break
    else:
        if param_key:
            raise KeyError(f'checkpoint {path!r} has no key {param_key!r}; keys: {list(checkpoint)}')
    state_dict = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if not state_dict:
        raise ValueError(f'checkpoint {path!r} holds no tensors; top-level keys: {list(checkpoint)[:10]}')
    return state_dict


def strip_key_prefix(state_dict: Mapping[str, Any], prefix: str = 'module.') -> OrderedDict:
    """Drop ``prefix`` from every key that starts with it (DDP/DataParallel save their weights under ``module.``).

    Args:
        state_dict: Parameter names to tensors.
        prefix: The prefix to remove.

    Returns:
        A new ordered mapping with the same values.
    """
    return OrderedDict((k[len(prefix) :] if k.startswith(prefix) else k, v) for k, v in state_dict.items())


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path``.

    A kill during the save leaves the previous file intact.

    Args:
        obj: What to save.
        path: Destination file.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
