"""Where a conversion writes: never into its source, and into ``--dst`` only once the new output is complete.

A conversion builds its output in a working folder beside ``--dst`` (``.<dst>.partial-<pid>-<tag>``, same parent,
so renames stay on one file system) and swaps it in at the end: the parts of an earlier output are renamed aside
(``.<dst>.replaced-<pid>-<tag>``), the new parts renamed in, and only then the old parts deleted. A failed or
interrupted conversion removes its working folder, and one that is killed leaves the earlier output as it was.
Only what an earlier conversion wrote (see :func:`~srfer_plugin.converters.writer.previous_output_paths`) is
replaced; other files in ``--dst`` are kept. A folder named like a split is the converter's only when its
``meta_info_<split>.txt`` lies beside it or the earlier ``prepare_report.json`` lists it; and an earlier split folder
holding files its meta_info does not list (the user's notes, an image added by hand) is not replaced at all: the run
stops naming those files (:func:`~srfer_plugin.converters.writer.check_replaceable`), before the source is read and
again right before the swap.

While it works, a conversion holds the OS-level lock of ``--dst`` (:mod:`srfer_plugin.utils.run_lock`, released
by the kernel when the process exits or is killed). So any ``.<dst>.partial-*`` folder found while holding the
lock was left by a run that is dead, whatever its pid says (pids are reused, and a pid of another machine or
container means nothing here): it is deleted. A ``.<dst>.replaced-*`` folder is only reported, never deleted: a
run killed in the middle of its swap leaves parts of the earlier output there, and they may be the only copy.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from srfer_plugin.converters.records import PrepareError
from srfer_plugin.converters.writer import check_replaceable, previous_output_paths
from srfer_plugin.utils.run_lock import FolderInUseError, acquire_folder, release_folder

logger = logging.getLogger(__name__)


def _contains(outer: str, inner: str) -> bool:
    """Whether real path ``inner`` is ``outer`` or lies inside it."""
    outer, inner = os.path.normcase(outer), os.path.normcase(inner)
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_sources_apart(sources: Mapping[str, str | None], dst: str) -> None:
    """Refuse a ``--dst`` that is, contains or lies inside a source path (after resolving symlinks).

    Args:
        sources: Option name (``--src``, ``--image-root``, ...) -> path, None when not given.
        dst: The ``--dst`` folder.

    Raises:
        PrepareError: ``dst`` and a source overlap; nothing has been written or deleted.
    """
    real_dst = os.path.realpath(dst)
    for option, path in sources.items():
        if not path:
            continue
        real_src = os.path.realpath(path)
        if _contains(real_src, real_dst) and _contains(real_dst, real_src):
            how = 'is the same folder as'
        elif _contains(real_src, real_dst):
            how = 'lies inside'
        elif _contains(real_dst, real_src):
            how = 'contains'
        else:
            continue
        raise PrepareError(
            f'--dst {dst!r} ({real_dst}) {how} {option} {path!r} ({real_src}); the output would overwrite or '
            'mix with the source. Choose a --dst outside the source (nothing was written or deleted)'
        )


def _new_folder(workspace: str, name: str, kind: str) -> str:
    """Create ``workspace/.<name>.<kind>-<pid>-<tag>`` (usual permissions, unlike ``mkdtemp``'s 0700)."""
    path = os.path.join(workspace, f'.{name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}')
    os.mkdir(path)
    return path


def _clean_leftovers(workspace: str, name: str) -> None:
    """Delete working folders of dead runs; report folders of replaced parts (called with the lock held)."""
    for entry in sorted(os.listdir(workspace)):
        path = os.path.join(workspace, entry)
        if entry.startswith(f'.{name}.partial-') and os.path.isdir(path):
            logger.warning('removing %s, the unfinished output of an earlier run that was killed', path)
            shutil.rmtree(path, ignore_errors=True)
        elif entry.startswith(f'.{name}.replaced-'):
            logger.warning(
                '%s holds output parts set aside by an earlier run that was killed while replacing them; '
                'delete it once %s looks right',
                path,
                os.path.join(workspace, name),
            )


def _workspace(real_dst: str) -> str:
    """The folder that holds the working folders: beside ``--dst``, or inside it when renames from beside it fail.

    That is when ``--dst`` is an existing folder whose parent is read-only or on another file system (a mounted
    volume, say); working folders inside ``--dst`` are hidden dot folders that no conversion counts as output.
    """
    parent = os.path.dirname(real_dst)
    os.makedirs(parent, exist_ok=True)
    if not os.path.isdir(real_dst):
        return parent
    if os.access(parent, os.W_OK) and os.stat(parent).st_dev == os.stat(real_dst).st_dev:
        return parent
    return real_dst


def _move(pairs: list[tuple[str, str]]) -> None:
    """Rename each ``(source, target)``; on failure rename the done ones back and re-raise."""
    done = []
    try:
        for source, target in pairs:
            os.rename(source, target)
            done.append((source, target))
    except BaseException:
        for source, target in reversed(done):
            try:
                os.rename(target, source)
            except OSError as err:  # pragma: no cover - the file system failed twice
                logger.error('could not move %s back to %s: %s', target, source, err)
        raise


def swap_in(work: str, real_dst: str, overwrite: bool, workspace: str) -> None:
    """Replace the converter's parts of ``real_dst`` with the contents of ``work``; other files stay.

    Args:
        work: The complete new output.
        real_dst: The output folder (symlinks resolved); created when missing.
        overwrite: Whether an earlier output may be replaced.
        workspace: Folder for the aside folder (same file system as ``real_dst``).

    Raises:
        PrepareError: An output appeared in ``real_dst`` meanwhile without ``overwrite``, a new part would
            replace something the converter did not write, or a part to replace holds files the earlier conversion
            did not write. ``real_dst`` is then unchanged.
    """
    if not os.path.lexists(real_dst):
        try:
            os.rename(work, real_dst)  # one atomic step
            return
        except OSError:
            if not os.path.isdir(real_dst):  # not a folder that appeared meanwhile: a real failure
                raise
    previous = previous_output_paths(real_dst)
    old = {os.path.basename(p) for p in previous}
    if old and not overwrite:
        raise PrepareError(f'--dst {real_dst!r} received a prepared dataset while converting; pass --overwrite')
    check_replaceable(real_dst, previous)  # again: files may have been added while converting
    new = sorted(os.listdir(work))
    foreign = [n for n in new if n not in old and os.path.lexists(os.path.join(real_dst, n))]
    if foreign:
        raise PrepareError(
            f'--dst {real_dst!r} already has {foreign} that this converter did not write; move them away '
            'or choose other split names (nothing was replaced)'
        )
    aside = _new_folder(workspace, os.path.basename(real_dst), 'replaced')
    to_aside = [(os.path.join(real_dst, n), os.path.join(aside, n)) for n in sorted(old)]
    to_dst = [(os.path.join(work, n), os.path.join(real_dst, n)) for n in new]
    _move(to_aside)
    try:
        _move(to_dst)
    except BaseException:
        _move([(target, source) for source, target in to_aside])
        os.rmdir(aside)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    if os.path.lexists(aside):
        logger.warning('could not delete %s (the replaced output); delete it by hand', aside)


@contextmanager
def staged_output(dst: str, overwrite: bool) -> Iterator[str]:
    """Own ``dst`` for the block, which writes into the yielded working folder; swap it in if the block succeeds.

    If the block raises (or is interrupted), the working folder is deleted and ``dst`` is left as it was.

    Args:
        dst: The ``--dst`` folder.
        overwrite: Whether an earlier output in ``dst`` may be replaced.

    Yields:
        The working folder to write the new output into.

    Raises:
        PrepareError: Another running process owns ``dst``, or :func:`swap_in` refused.
    """
    real_dst = os.path.realpath(dst)
    workspace = _workspace(real_dst)
    owner = os.path.join(workspace, os.path.basename(real_dst))
    try:
        acquire_folder(owner, 'output folder')
    except FolderInUseError as err:
        raise PrepareError(f'--dst {dst!r}: {err}') from None
    try:
        _clean_leftovers(workspace, os.path.basename(real_dst))
        work = _new_folder(workspace, os.path.basename(real_dst), 'partial')
        try:
            yield work
            swap_in(work, real_dst, overwrite, workspace)
        finally:
            shutil.rmtree(work, ignore_errors=True)  # gone already after a swap into a new dst
    finally:
        release_folder(owner)
