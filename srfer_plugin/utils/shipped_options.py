"""The option files and mmpretrain configs shipped inside the package, and their ``srfer::`` names.

The repository's ``options/`` folder is package data: it lives at ``srfer_plugin/options/`` and a clone's
``options`` is a link to it. ``srfer::PATH`` names the shipped file ``options/PATH`` from any folder and in any
install (wheel, editable, clone), as ``mmpretrain::PATH`` names a config that mmpretrain ships::

    network_fer:
      config: srfer::fer/resnet18_fer7.py

    srfer train-fer srfer::fer/resnet18_fer7.py --data-root datasets/RAF-DB
    srfer-train -opt srfer::tests/train_srfer_tiny_cpu.yml

Every place the plugin reads an option file or a FER config resolves the name with :func:`resolve_path`. A clone
path (``options/fer/resnet18_fer7.py``) keeps working: it is used as given where it exists (relative to the
current folder) and names the shipped file otherwise, so commands written for a clone run from any folder and after
``pip install``. ``_base_`` entries inside the shipped configs are relative to their file and ship with them.
"""

from __future__ import annotations

import os

SCOPE = 'srfer'
PREFIX = f'{SCOPE}::'
CLONE_FOLDER = 'options'  # the clone's name of the shipped folder
_SUFFIXES = ('.py', '.yml', '.yaml')


def options_root() -> str:
    """Absolute path of the shipped ``options`` folder (``srfer_plugin/options``)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'options')


def is_scoped(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a ``srfer::`` name."""
    return os.fspath(path).startswith(PREFIX)


def shipped_path(name: str) -> str:
    """Absolute path of a shipped file.

    Args:
        name: ``fer/resnet18_fer7.py``, with or without ``srfer::`` (``/``-separated, inside ``options/``).

    Returns:
        The file's absolute path.

    Raises:
        FileNotFoundError: Nothing is shipped under that name (the message lists what its folder holds).
    """
    rel = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    root = options_root()
    parts = [p for p in rel.replace('\\', '/').split('/') if p not in ('', '.')]
    path = os.path.join(root, *parts)
    if not parts or '..' in parts or not os.path.isfile(path):
        folder = os.path.dirname(path) if parts and '..' not in parts else root
        near = shipped_names(os.path.relpath(folder, root)) if os.path.isdir(folder) else []
        hint = f'; shipped there: {", ".join(near)}' if near else '; `srfer list-options` lists them'
        raise FileNotFoundError(f'{PREFIX}{rel} is not shipped with srfer_plugin ({path} does not exist){hint}')
    return path


def resolve_path(path: str | os.PathLike) -> str:
    """The file an option file or FER config path names.

    Args:
        path: ``srfer::NAME`` (a shipped file), a clone path ``options/NAME``, or any other path.

    Returns:
        The shipped file for ``srfer::NAME``, and for ``options/NAME`` where that does not exist relative to the
        current folder; any other path unchanged (its caller reports it when it does not exist).

    Raises:
        FileNotFoundError: A ``srfer::`` name that is not shipped.
    """
    path = os.fspath(path)
    if path.startswith(PREFIX):
        return shipped_path(path)
    if not os.path.isabs(path) and not os.path.exists(path):
        parts = os.path.normpath(path).split(os.sep)
        if len(parts) > 1 and parts[0] == CLONE_FOLDER:
            candidate = os.path.join(options_root(), *parts[1:])
            if os.path.isfile(candidate):
                return candidate
    return path


def shipped_names(folder: str = '', recursive: bool = False) -> list[str]:
    """``srfer::`` names of the shipped option files and configs (``_base_`` parts left out), sorted.

    Args:
        folder: A folder inside ``options/`` (``fer``, ``benchmark``; default: the top).
        recursive: Include the sub-folders.

    Returns:
        The names, e.g. ``['srfer::fer/convnext-atto_fer7.py', ...]``.
    """
    root = options_root()
    top = os.path.normpath(os.path.join(root, folder))
    names = []
    for current, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if recursive and d != '_base_' and not d.startswith(('.', '__')))
        for file in files:
            if file.endswith(_SUFFIXES):
                rel = os.path.relpath(os.path.join(current, file), root)
                names.append(PREFIX + rel.replace(os.sep, '/'))
    return sorted(names)


def display_name(path: str | None) -> str:
    """``srfer::NAME`` for a file inside the shipped folder, else ``path`` as it is ('' for None)."""
    if not path:
        return ''
    rel = os.path.relpath(os.path.abspath(path), options_root())
    return path if rel.startswith('..') or os.path.isabs(rel) else PREFIX + rel.replace(os.sep, '/')
