"""MMPretrain configs for ``network_fer``: loaded by file, shipped name or model name; the edits the wrapper makes."""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Sequence

from srfer_plugin.utils.shipped_options import resolve_path


def resolve_config_file(config: str, where: str) -> str:
    """The path of an mmpretrain ``.py`` config: a file, or a shipped config's name (``srfer::fer/...``).

    Raises:
        FileNotFoundError: No such config (the message starts with ``where``).
    """
    try:
        path = resolve_path(config)
    except FileNotFoundError as err:
        raise FileNotFoundError(f'{where}: {err}') from None
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{where}: mmpretrain config {config!r} does not exist')
    return path


def load_mmpretrain_config(config: str, where: str = 'network_fer.config'):
    """Load an mmpretrain config from a ``.py`` file or a model name (``mmpretrain.list_models()``).

    Args:
        config: Config file path, a shipped config's name (``srfer::fer/resnet18_fer7.py``) or a model name.
        where: Option name for error messages.

    Returns:
        An ``mmengine.Config`` (a copy the caller may change).
    """
    from mmengine import Config

    if str(config).endswith('.py'):
        return Config.fromfile(resolve_config_file(config, where))
    from mmpretrain.apis.model import ModelHub

    try:
        return copy.deepcopy(ModelHub.get(config).config)
    except ValueError as err:
        raise ValueError(
            f'{where}: {config!r} is neither a .py config file nor an mmpretrain model name '
            '(see mmpretrain.list_models())'
        ) from err


def as_hw(size: int | Sequence[int] | None, where: str = 'network_fer.input_size') -> tuple[int, int] | None:
    """An image size as ``(height, width)``: an int is a square; None stays None; anything else is a ValueError."""
    if size is None:
        return None
    hw = (int(size), int(size)) if isinstance(size, (int, float)) else tuple(int(v) for v in size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f'{where}: {size!r} is not a size (an int or [height, width] of positive ints)')
    return hw


def set_num_classes(cfg, num_classes: int, config: str) -> None:
    """Set the class count of every head type: the head's ``num_classes``, else the backbone's (VGG)."""
    head = cfg.model.get('head') or {}
    if 'num_classes' in head:
        cfg.model.head.num_classes = num_classes
    elif 'num_classes' in cfg.model.backbone:
        cfg.model.backbone.num_classes = num_classes
    else:
        raise ValueError(
            f'network_fer.num_classes: neither the head ({head.get("type")}) nor the backbone '
            f'({cfg.model.backbone.get("type")}) of {config!r} has num_classes to set; use a config whose head '
            'classifies (e.g. LinearClsHead with num_classes), or set it through network_fer.cfg_options'
        )
    if cfg.get('data_preprocessor') is not None:
        cfg.data_preprocessor.num_classes = num_classes


def accepts_option(backbone_type, option: str) -> bool:
    """Whether the mmpretrain backbone type (a registry name or class) takes ``option`` in its constructor."""
    from mmpretrain.registry import MODELS

    cls = MODELS.get(backbone_type) if isinstance(backbone_type, str) else backbone_type
    return cls is not None and option in inspect.signature(cls.__init__).parameters
