"""Pretrained starts of ``srfer train-fer``: checkpoints (paths or URLs) read with the plugin's safe loader, matched
against the model and written as the tensors-only ``init_weights.pth`` the Runner loads.

:mod:`srfer_plugin.fer_pretrain` re-exports these names.
"""

from __future__ import annotations

import copy
import os
import os.path as osp
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    import torch

# The cleaned initial weights handed to the Runner as ``load_from`` (tensors only, see :func:`prepare_init_weights`).
INIT_NAME = 'init_weights.pth'


def _is_url(path: str) -> bool:
    return urlparse(path).scheme in ('http', 'https')


def fetch_checkpoint(path_or_url: str, what: str = '--pretrained') -> str:
    """Return a local checkpoint path; a URL is downloaded once into torch hub's checkpoint folder.

    Args:
        path_or_url: Local file or ``http(s)://`` URL.
        what: Name of the setting, for error messages.

    Returns:
        The local file (for a URL: ``<torch.hub.get_dir()>/checkpoints/<file name>``).

    Raises:
        FileNotFoundError: A local file that does not exist.
    """
    if _is_url(path_or_url):
        import torch.hub

        folder = osp.join(torch.hub.get_dir(), 'checkpoints')
        local = osp.join(folder, osp.basename(urlparse(path_or_url).path) or 'checkpoint.pth')
        if not osp.isfile(local):
            os.makedirs(folder, exist_ok=True)
            print(f'{what}: downloading {path_or_url} -> {local}', flush=True)
            torch.hub.download_url_to_file(path_or_url, local, progress=True)  # temp file, then rename
        return local
    local = osp.expanduser(path_or_url)
    if not osp.isfile(local):
        raise FileNotFoundError(f'{what} {path_or_url!r} does not exist')
    return local


def read_weights(path_or_url: str, what: str = '--pretrained') -> dict[str, torch.Tensor]:
    """Read the weights of a checkpoint with the plugin's safe loader (no pickled code runs).

    Accepts mmpretrain/mmengine files (``{'state_dict', 'meta', ...}``, Runner checkpoints included), BasicSR
    params, plain state dicts, and ``module.``-prefixed keys (DDP).

    Args:
        path_or_url: Local file or URL (see :func:`fetch_checkpoint`).
        what: Name of the setting, for messages.

    Returns:
        Flat mapping from parameter names to tensors.

    Raises:
        FileNotFoundError: Missing local file.
        srfer_plugin.utils.checkpoint.UnsafeCheckpointError: The file references code outside the allow-list.
    """
    from srfer_plugin.utils.checkpoint import extract_state_dict, safe_load, strip_key_prefix

    local = fetch_checkpoint(path_or_url, what)
    return dict(strip_key_prefix(extract_state_dict(safe_load(local), local)))


def _apply_load_pre_hooks(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Run the model's own ``load_state_dict`` pre-hooks on ``state`` in place, as ``load_state_dict`` would.

    mmpretrain uses them to adapt checkpoints, e.g. VisionTransformer resizes ``pos_embed`` to its ``img_size``.
    """
    for name, module in model.named_modules():
        prefix = f'{name}.' if name else ''
        for hook in getattr(module, '_load_state_dict_pre_hooks', {}).values():
            hook(state, prefix, {}, False, [], [], [])


def match_weights(
    model: torch.nn.Module, state: dict[str, torch.Tensor], source: str, what: str = '--pretrained'
) -> dict[str, Any]:
    """Keep the tensors of ``state`` that fit ``model``, after the model's own checkpoint adaptations.

    Args:
        model: The model to initialise.
        state: Checkpoint weights (:func:`read_weights`).
        source: The checkpoint's path or URL, for messages.
        what: Name of the setting, for messages.

    Returns:
        ``{'state_dict': matching tensors, 'shape_mismatch': {key: (checkpoint shape, model shape)},
        'unexpected': [keys not in the model], 'missing': [model keys not in the checkpoint]}``.

    Raises:
        ValueError: No tensor matches the model, not even with a ``backbone.`` prefix (a backbone-only file).
    """
    state = dict(state)
    _apply_load_pre_hooks(model, state)
    target = model.state_dict()
    if not any(k in target for k in state) and any(f'backbone.{k}' in target for k in state):
        state = {f'backbone.{k}': v for k, v in state.items()}  # a backbone-only checkpoint
    matched, mismatch, unexpected = {}, {}, []
    for key, value in state.items():
        if key not in target:
            unexpected.append(key)
        elif tuple(value.shape) != tuple(target[key].shape):
            mismatch[key] = (tuple(value.shape), tuple(target[key].shape))
        else:
            matched[key] = value.detach().to(dtype=target[key].dtype).contiguous()
    if not matched:
        raise ValueError(
            f'{what} {source}: none of its {len(state)} tensors match the model (checkpoint keys '
            f'{list(state)[:3]}..., model keys {list(target)[:3]}...); is it a checkpoint of this architecture?'
        )
    missing = [k for k in target if k not in matched]
    return {'state_dict': matched, 'shape_mismatch': mismatch, 'unexpected': unexpected, 'missing': missing}


def prepare_init_weights(cfg, source: str, what: str = '--pretrained') -> str:
    """Turn a pretrained checkpoint into a tensors-only file the Runner loads as ``load_from``.

    The file is read with the safe loader, matched against the config's model (tensors whose shape differs, such
    as a 1000-class ImageNet head, are skipped and logged) and written to ``<work_dir>/init_weights.pth``. The
    Runner loads ``load_from`` after ``init_weights()``, so these weights are the ones training starts from.

    Args:
        cfg: The training config (``model``, ``data_preprocessor``, ``work_dir``); ``cfg.load_from`` is set.
        source: Local path or URL of the checkpoint.
        what: Name of the setting, for messages.

    Returns:
        The path of the written file.
    """
    return write_init_weights(cfg, match_init_weights(cfg, source, what))


def match_init_weights(cfg, source: str, what: str = '--pretrained') -> dict[str, Any]:
    """Read a pretrained checkpoint and keep the tensors that fit the config's model; nothing is written.

    Args:
        cfg: The training config (``model``, ``data_preprocessor``).
        source: Local path or URL of the checkpoint.
        what: Name of the setting, for messages.

    Returns:
        ``{'state_dict': ..., 'meta': ...}``, what :func:`write_init_weights` saves.
    """
    from mmpretrain.registry import MODELS

    state = read_weights(source, what)  # fails before anything is built or written
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    model = MODELS.build(model_cfg)
    result = match_weights(model, state, source, what)
    del model
    loaded, mismatch = result['state_dict'], result['shape_mismatch']
    print(f'{what} {source}: initialising {len(loaded)} of {len(loaded) + len(result["missing"])} model tensors')
    if mismatch:
        listed = ', '.join(f'{k} {list(a)} vs {list(b)}' for k, (a, b) in list(mismatch.items())[:6])
        more = f' and {len(mismatch) - 6} more' if len(mismatch) > 6 else ''
        print(f'{what}: skipped {len(mismatch)} tensors whose shape differs from the model: {listed}{more}')
    unexpected = result['unexpected']
    if unexpected:
        print(f'{what}: ignored {len(unexpected)} tensors the model does not have: {unexpected[:6]}')
    missing = [k for k in result['missing'] if k not in mismatch]
    if missing:
        print(f'{what}: {len(missing)} model tensors are not in the checkpoint and keep their initialisation')
    meta = {
        'source': source,
        'skipped_shape_mismatch': {k: [list(a), list(b)] for k, (a, b) in mismatch.items()},
        'ignored_unexpected': unexpected,
    }
    return {'state_dict': loaded, 'meta': meta}


def write_init_weights(cfg, init: dict[str, Any]) -> str:
    """Save :func:`match_init_weights`' result as ``<work_dir>/init_weights.pth`` and point ``cfg.load_from`` at it.

    Returns:
        The path of the written file.
    """
    from srfer_plugin.utils.checkpoint import atomic_torch_save

    path = osp.join(osp.abspath(cfg.work_dir), INIT_NAME)
    atomic_torch_save(init, path)
    cfg.load_from = path
    return path
