"""BasicSR's checkpoint files, read and written safely: the file side of ``SafeSRModel``'s IO methods.

Network files keep BasicSR's format (``{'params': ..., 'params_ema': ...}`` in ``<label>_<iter>.pth``); every file
is read with ``safe_load`` (no pickled code runs) and written atomically, with retries on an OSError.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import torch
from basicsr.utils import get_root_logger

from srfer_plugin.utils.checkpoint import atomic_torch_save, safe_load, strip_key_prefix

SAVE_ATTEMPTS = 3


def save_with_retry(obj: Any, path: str) -> None:
    """Write ``obj`` to ``path`` atomically; retry after an OSError, :data:`SAVE_ATTEMPTS` times in all.

    Raises:
        OSError: Every attempt failed (the previous file at ``path``, if any, is intact).
    """
    for attempt in range(SAVE_ATTEMPTS):
        try:
            atomic_torch_save(obj, path)
            return
        except OSError as err:
            remaining = SAVE_ATTEMPTS - 1 - attempt
            get_root_logger().warning(f'Save error: {err}, remaining retry times: {remaining}')
            if remaining:
                time.sleep(1)
    raise OSError(f'cannot save {path} after {SAVE_ATTEMPTS} attempts; the previous checkpoint (if any) is intact')


def read_network_weights(load_path: str, param_key: str | None) -> tuple[OrderedDict, str | None]:
    """The weights of a network file, as BasicSR's ``load_network`` reads them.

    Args:
        load_path: The ``.pth`` file.
        param_key: The entry to read (``params``, ``params_ema``; ``params`` when the file lacks it); None: the
            file is the state dict itself.

    Returns:
        The state dict (``module.`` prefixes stripped) and the key it was read from.

    Raises:
        KeyError: The file has neither ``param_key`` nor ``params``.
        UnsafeCheckpointError: The file references code outside the allow-list of safe globals.
    """
    weights = safe_load(load_path)
    if param_key is not None:
        if param_key not in weights and 'params' in weights:
            param_key = 'params'
            get_root_logger().info('Loading: params_ema does not exist, use params.')
        if param_key not in weights:
            raise KeyError(f'checkpoint {load_path!r} has no key {param_key!r}; keys: {list(weights)[:10]}')
        weights = weights[param_key]
    return strip_key_prefix(weights), param_key


def network_file_contents(nets: list[torch.nn.Module], param_keys: list[str]) -> dict[str, OrderedDict]:
    """BasicSR's network file: each (bare) network's state dict on the CPU under its key.

    Raises:
        ValueError: ``nets`` and ``param_keys`` differ in length.
    """
    if len(nets) != len(param_keys):
        raise ValueError('The lengths of net and param_key should be the same.')
    return {
        key: strip_key_prefix(OrderedDict((name, value.cpu()) for name, value in net.state_dict().items()))
        for net, key in zip(nets, param_keys)
    }
