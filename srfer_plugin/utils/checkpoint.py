"""The one safe checkpoint loader of the plugin: SR weights, FER weights and training states.

Nothing here ever executes pickled code. A file is first read with ``torch.load(weights_only=True)``. Files that
torch's weights-only unpickler refuses only because they carry harmless bookkeeping objects (mmengine Runner
checkpoints hold a ``HistoryBuffer`` in ``message_hub``; numpy scalars in ``meta``) are read again with a
restricted unpickler: it accepts torch's own allow-list plus numpy's array/scalar constructors, turns mmengine
bookkeeping objects into inert placeholders, and refuses every other global with :class:`UnsafeCheckpointError`.
A file that cannot be read at all (empty, truncated, not a checkpoint) raises :class:`CheckpointReadError`, which
names the file and what is wrong with it.

Saves are atomic: :func:`atomic_torch_save` (and :func:`atomic_write_json` for the JSON records) writes a hidden
temporary file beside the destination (:data:`TEMP_FILE_PATTERN`) with the permissions the user's umask gives,
syncs it, and renames it over the destination. A kill during a save leaves that temporary file behind;
:func:`remove_stale_temp_files` removes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

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


# Hidden temporary files of atomic_torch_save: ``.<destination file name>.<8 random characters>.tmp``.
TEMP_FILE_PATTERN = re.compile(r'^\.(?P<target>.+\.(?:pth|state))\.[a-z0-9_]{8}\.tmp$')
_TEMP_NAME_CHARACTERS = 'abcdefghijklmnopqrstuvwxyz0123456789_'
_ZIP_START = b'PK\x03\x04'
_ZIP_END_RECORD = b'PK\x05\x06'
_ZIP_END_SEARCH_BYTES = 65535 + 22  # the end record: 22 bytes and a comment of at most 65535
_PICKLE_PROTOCOL_OPCODE = 0x80
# Failures of the machine, not of the file: never reported as a damaged checkpoint.
_RESOURCE_ERRORS = (MemoryError, torch.cuda.OutOfMemoryError)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """Raised when a checkpoint references code outside the allow-list."""


class CheckpointReadError(RuntimeError):
    """Raised when a checkpoint or training state cannot be read (empty, truncated, damaged, not a checkpoint).

    Attributes:
        path: The file.
        problem: What is wrong with it, in words.
    """

    def __init__(self, path: str, problem: str, detail: str):
        super().__init__(f'cannot load checkpoint {path!r}: the file is {problem} ({detail})')
        self.path = path
        self.problem = problem


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


def _ends_with_zip_end_record(tail: bytes) -> bool:
    """Whether ``tail`` (the last bytes of a file) ends with a whole zip end record (22 bytes + its comment)."""
    position = tail.rfind(_ZIP_END_RECORD)
    while position >= 0:
        if position + 22 <= len(tail):
            comment_length = int.from_bytes(tail[position + 20 : position + 22], 'little')
            if position + 22 + comment_length == len(tail):
                return True
        position = tail.rfind(_ZIP_END_RECORD, 0, position)
    return False


def describe_unreadable_file(path: str) -> str:
    """Say, from its size and first and last bytes, why a file that torch could not load is unreadable.

    Args:
        path: The file.

    Returns:
        ``'empty (0 bytes)'``, ``'truncated ...'``, ``'damaged ...'`` or ``'not a checkpoint ...'``.
    """
    size = os.path.getsize(path)
    if size == 0:
        return 'empty (0 bytes; its write never happened or was cut off)'
    with open(path, 'rb') as f:
        head = f.read(len(_ZIP_START))
        f.seek(max(0, size - _ZIP_END_SEARCH_BYTES))
        tail = f.read()
    if _ZIP_START.startswith(head):  # the zip signature, or a file cut off within it
        if not _ends_with_zip_end_record(tail):
            return f'truncated ({size} bytes, the end of its zip archive is missing; the write or copy was cut off)'
        return f'damaged ({size} bytes; a complete zip archive whose contents torch cannot read)'
    if head[0] == _PICKLE_PROTOCOL_OPCODE:
        return f'truncated or damaged ({size} bytes in the legacy torch.save format)'
    return f'not a checkpoint ({size} bytes that are neither a torch zip archive nor a pickle)'


def _read_error(path: str, err: Exception) -> CheckpointReadError:
    try:
        problem = describe_unreadable_file(path)
    except OSError as probe_err:
        problem = f'unreadable ({probe_err})'
    return CheckpointReadError(path, problem, f'{type(err).__name__}: {err}' if str(err) else type(err).__name__)


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
        CheckpointReadError: The file is empty, truncated, damaged or not a checkpoint (the original error is its
            ``__cause__``).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except _RESOURCE_ERRORS:
        raise
    except pickle.UnpicklingError:
        pass  # a global outside torch's list, or a damaged pickle: the restricted unpickler below tells them apart
    except Exception as err:  # torch reports a cut-off file as OSError (EINVAL), EOFError, RuntimeError, KeyError
        raise _read_error(path, err) from err
    try:
        return torch.load(
            path, map_location=map_location, weights_only=False, pickle_module=_restricted_pickle_module(path)
        )
    except (UnsafeCheckpointError, *_RESOURCE_ERRORS):
        raise
    except Exception as err:
        raise _read_error(path, err) from err


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
    if param_key and param_key not in checkpoint:
        raise KeyError(f'checkpoint {path!r} has no key {param_key!r}; keys: {list(checkpoint)[:10]}')
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


def weights_fingerprint(network: torch.nn.Module) -> str:
    """SHA-256 of a network's state dict (names, dtypes, shapes and values, in name order).

    Args:
        network: The network (a DDP/DataParallel wrapper is read through ``module``).

    Returns:
        The hex digest: equal for networks with equal weights, whatever file they were read from.
    """
    network = getattr(network, 'module', network)
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        value = tensor.detach().cpu().contiguous().reshape(-1)  # 1-D: a 0-dim tensor cannot be viewed as bytes
        digest.update(f'{name}|{value.dtype}|{tuple(value.shape)}|'.encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b'')
    return digest.hexdigest()


def strip_key_prefix(state_dict: Mapping[str, Any], prefix: str = 'module.') -> OrderedDict:
    """Drop ``prefix`` from every key that starts with it (DDP/DataParallel save their weights under ``module.``).

    Args:
        state_dict: Parameter names to tensors.
        prefix: The prefix to remove.

    Returns:
        A new ordered mapping with the same values.
    """
    return OrderedDict((k[len(prefix) :] if k.startswith(prefix) else k, v) for k, v in state_dict.items())


def _create_temp_file(folder: str, target_name: str) -> tuple[int, str]:
    """Create ``.<target_name>.<8 random characters>.tmp`` in ``folder`` (mode 0o666 less the umask)."""
    for _ in range(100):
        suffix = ''.join(secrets.choice(_TEMP_NAME_CHARACTERS) for _ in range(8))
        tmp_path = os.path.join(folder, f'.{target_name}.{suffix}.tmp')
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0)
            return os.open(tmp_path, flags, 0o666), tmp_path
        except FileExistsError:
            continue
    raise FileExistsError(f'no free temporary file name for {target_name!r} in {folder!r}')


def _sync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (where the OS can open folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path``.

    A kill during the save leaves the previous file intact (and a temporary file that
    :func:`remove_stale_temp_files` removes). The file gets the permissions a plain ``open`` would give it
    (``0o666`` less the umask).

    Args:
        obj: What to save.
        path: Destination file.
    """
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_json(obj: Any, path: str, indent: int | None = 2) -> None:
    """``json.dump`` (UTF-8) to a temporary file in the same folder, then rename it over ``path``.

    A crash leaves the previous file or the new one, never a part of either.

    Args:
        obj: What to write (JSON-serialisable).
        path: Destination file.
        indent: ``json.dump``'s indent.
    """
    _atomic_write(path, lambda f: f.write(json.dumps(obj, indent=indent).encode('utf-8')))


def atomic_write_bytes(data: bytes, path: str, durable: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    The rename replaces the folder entry: a hard or symbolic link at ``path`` is replaced, never written through.

    Args:
        data: The file's content.
        path: Destination file.
        durable: Sync the file and the folder (off for many small files that a rerun can write again).
    """
    _atomic_write(path, lambda f: f.write(data), durable)


def _atomic_write(path: str, write: Callable[[BinaryIO], Any], durable: bool = True) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = _create_temp_file(folder, os.path.basename(path))
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.lexists(tmp_path):
            os.remove(tmp_path)
        raise
    if durable:
        _sync_folder(folder)


def remove_stale_temp_files(folder: str) -> list[str]:
    """Remove the temporary files that saves killed mid-write left in ``folder`` (only :data:`TEMP_FILE_PATTERN`).

    Call it only while no save into ``folder`` runs (e.g. at the start of a training that owns the folder).

    Args:
        folder: A folder of checkpoints (``models/`` or ``training_states/``); a missing folder has none.

    Returns:
        The removed files.
    """
    if not os.path.isdir(folder):
        return []
    removed = []
    for entry in sorted(os.scandir(folder), key=lambda item: item.name):
        if TEMP_FILE_PATTERN.match(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.remove(entry.path)
            except FileNotFoundError:
                continue
            removed.append(entry.path)
    return removed
