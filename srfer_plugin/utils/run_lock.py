"""One running process owns an output folder: an OS-level lock that dies with the process.

A training run owns ``experiments/<name>``, a test run ``results/<name>`` and ``srfer-infer`` its ``-o`` folder.
A second process that asks for the same folder stops before it touches anything, with an error that names the
folder and the process that holds it. The lock is ``fcntl.flock`` (``msvcrt.locking`` on Windows) on a small lock
file beside the folder, so the kernel releases it when the holder exits or is killed: there is never a stale lock,
and ``--auto_resume`` of a killed run takes the folder back at once. The lock file itself is left in place (deleting
it would let two processes lock two different files of the same name).
"""

from __future__ import annotations

import os
import sys
from typing import IO

if sys.platform == 'win32':  # pragma: no cover - not run in CI
    import msvcrt

    def _try_lock(handle: IO[str]) -> bool:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(handle: IO[str]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class FolderInUseError(RuntimeError):
    """Another running process owns the folder."""


# Locks held by this process: lock path -> open handle (closing the handle would release the lock).
_HELD: dict[str, IO[str]] = {}


def lock_path_for(folder: str) -> str:
    """Return the lock file that guards ``folder``: ``.<name>.lock`` beside it (it survives renaming the folder).

    Symbolic links are resolved first, so two spellings of one folder (a link to it, a path through a linked
    parent) share one lock.

    Args:
        folder: The output folder.

    Returns:
        The lock file's absolute path.
    """
    folder = os.path.realpath(folder.rstrip('/\\') or folder)
    parent, name = os.path.split(folder)
    return os.path.join(parent, f'.{name}.lock')


def acquire_folder(folder: str, what: str = 'folder') -> str:
    """Take the folder for this process until it exits, or fail naming the process that holds it.

    Taking a folder this process already holds again is a no-op. The parent folder is created if needed; the
    folder itself is not.

    Args:
        folder: The output folder to own (``experiments/<name>``, ``results/<name>``, an ``-o`` folder).
        what: How the error calls the folder (``'experiment folder'``, ``'output folder'``).

    Returns:
        The lock file's path.

    Raises:
        FolderInUseError: Another running process holds the folder.
    """
    path = lock_path_for(folder)
    if path in _HELD:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Held open for the life of the process; argv may hold non-UTF-8 file names.
    handle = open(path, 'a+', encoding='utf-8', errors='backslashreplace')
    if not _try_lock(handle):
        handle.seek(0)
        holder = handle.read().strip() or 'unknown process'
        handle.close()
        raise FolderInUseError(
            f'{what} {os.path.abspath(folder)!r} is in use by a running process ({holder}); wait for it to finish, '
            f'stop it, or choose another name/folder. (Lock file: {path}; the lock dies with that process.)'
        )
    handle.seek(0)
    handle.truncate()
    handle.write(f'pid {os.getpid()}: {" ".join(sys.argv)}\n')
    handle.flush()
    _HELD[path] = handle
    return path


def release_folder(folder: str) -> None:
    """Give a folder taken by :func:`acquire_folder` back before the process exits (no-op if not held).

    Args:
        folder: The folder given to :func:`acquire_folder`.
    """
    handle = _HELD.pop(lock_path_for(folder), None)
    if handle is not None:
        handle.close()
