"""A full decode check of every dataset image, run in threads and cached, so bad files show up when a dataset is built.

Each image is decoded with ``cv2.imdecode`` (as the datasets read it). A JPEG must also end with its end-of-image
marker after its last scan: OpenCV 4.x (e.g. 4.10) decodes a truncated baseline JPEG without an error, grey-filling
the missing rows. A path that is not a regular file (a FIFO, device, socket or folder named ``*.png``) is a bad
image, found before it is opened: opening a FIFO would block forever and a device may never end.

Verdicts are cached per dataset root in the user's cache folder (:func:`srfer_cache_dir`), keyed by
``(path, size, mtime_ns, ctime_ns, inode)`` on disk and by the same identity of the lmdb's ``data.mdb`` plus the key
for lmdb, so a second build or a resumed run only stats the files. The ctime and inode catch a file rewritten in
place at the same size with its mtime restored (``cp -p``, ``rsync -a``, ``tar x``): ctime changes on every write
and cannot be set by users.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
from tqdm import tqdm

# Bump when the check changes: cache entries written by an older check are checked again.
CHECK_VERSION = 2
# Sets with at least this many images to stat or decode show a progress bar.
PROGRESS_MIN_IMAGES = 1000
_BATCH = 32  # images per thread pool task (one future per image costs more than a cached check)
_BATCHES_IN_FLIGHT = 256  # tasks submitted at a time (bounds the futures held at once)

_FILE_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISDIR, 'a folder'),
    (stat.S_ISFIFO, 'a FIFO (named pipe)'),
    (stat.S_ISCHR, 'a character device'),
    (stat.S_ISBLK, 'a block device'),
    (stat.S_ISSOCK, 'a socket'),
)
# Identity of a file for the cache: (size, mtime_ns, ctime_ns, inode).
Identity = tuple[int, int, int, int]

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b'\x89PNG\r\n\x1a\n', 'PNG'),
    (b'\xff\xd8\xff', 'JPEG'),
    (b'GIF8', 'GIF'),
    (b'BM', 'BMP'),
    (b'II*\x00', 'TIFF'),
    (b'MM\x00*', 'TIFF'),
)


# How the plugin decodes image files it converts or infers on: any depth and colour kind (16-bit kept), the EXIF
# orientation applied (as the datasets' IMREAD_COLOR applies it, so a phone photo is upright everywhere), alpha
# dropped.
DECODE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def srfer_cache_dir() -> str:
    """The plugin's cache folder: ``$SRFER_CACHE_DIR``, else ``$XDG_CACHE_HOME/srfer_plugin``, else
    ``~/.cache/srfer_plugin``."""
    if os.environ.get('SRFER_CACHE_DIR'):
        return os.path.expanduser(os.environ['SRFER_CACHE_DIR'])
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'srfer_plugin')


@dataclass(frozen=True)
class ImageCheck:
    """The verdict on one image.

    Attributes:
        problem: Why the image cannot be used; None when it decodes.
        height: Height of the decoded image (0 when it does not decode).
        width: Width of the decoded image.
        missing: The file (or lmdb key) does not exist.
    """

    problem: str | None = None
    height: int = 0
    width: int = 0
    missing: bool = False

    @property
    def ok(self) -> bool:
        """True when the image decodes."""
        return self.problem is None


def image_format(data: bytes) -> str | None:
    """The format named by the first bytes of an image file (PNG, JPEG, WEBP, ...), or None when unknown."""
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return 'WEBP'
    if len(data) > 2 and data[:1] == b'P' and data[1:2] in b'123456' and data[2:3].isspace():
        return 'PNM'
    return None


def jpeg_is_truncated(data: bytes) -> bool:
    """True when a JPEG lacks its end-of-image marker (FFD9) after its last start-of-scan marker (FFDA).

    Entropy-coded scan data never holds FFD9 (0xFF is stuffed as FF00), so a file cut inside a scan has no FFD9
    after its last FFDA; data appended after a complete image (camera trailers) does not count as truncation.
    """
    if data.rstrip(b'\x00\r\n\t ').endswith(b'\xff\xd9'):
        return False
    return data.rfind(b'\xff\xd9') < data.rfind(b'\xff\xda')


def inspect_image_bytes(data: bytes) -> ImageCheck:
    """Decode an image file's bytes as the datasets do and say whether it can be used.

    Args:
        data: The file's bytes.

    Returns:
        The verdict, with the decoded size when it decodes.
    """
    if not data:
        return ImageCheck('empty file (0 bytes)')
    fmt = image_format(data)
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as err:
        img, detail = None, str(err).strip().splitlines()[-1][:200]
    else:
        detail = ''
    if img is None:
        what = f'corrupt or truncated {fmt}' if fmt else 'not an image (unknown format)'
        return ImageCheck(f'{what}: OpenCV cannot decode it' + (f' ({detail})' if detail else ''))
    if fmt == 'JPEG' and jpeg_is_truncated(data):
        return ImageCheck('truncated JPEG: no end-of-image marker after its last scan')
    return ImageCheck(None, int(img.shape[0]), int(img.shape[1]))


class NotRegularFileError(OSError):
    """A path that is a FIFO, device, socket or folder, refused before it is read (``kind`` says which)."""

    def __init__(self, path: str, kind: str):
        super().__init__(f'{path!r}: not a regular file: {kind}')
        self.kind = kind


def file_kind(mode: int) -> str | None:
    """What a file of ``st_mode`` ``mode`` is when it is not a regular file (``'a FIFO (named pipe)'``), else None."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _FILE_KINDS if test(mode)), 'a special file')


def not_regular_file(mode: int) -> str | None:
    """Why a file of ``st_mode`` ``mode`` cannot be an image (``not a regular file: a FIFO ...``), or None."""
    kind = file_kind(mode)
    return None if kind is None else f'not a regular file: {kind}'


def file_identity(st: os.stat_result) -> Identity:
    """``(size, mtime_ns, ctime_ns, inode)`` of a file: what changes when its content may have changed."""
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def read_regular_file(path: str) -> bytes:
    """Read a file's bytes, refusing (without blocking) anything that is not a regular file.

    The file is opened non-blocking and checked with ``fstat`` on the open descriptor, so a path swapped for a
    FIFO after an earlier ``stat`` cannot hang the read either.

    Raises:
        NotRegularFileError: The path is a FIFO, device, socket or folder.
        OSError: The path cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) | getattr(os, 'O_BINARY', 0))
    with os.fdopen(fd, 'rb') as f:
        kind = file_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise NotRegularFileError(path, kind)
        return f.read()


def check_disk_images(root: str, rel_paths: Sequence[str], desc: str = 'Checking images') -> list[ImageCheck]:
    """Check the images ``root/rel_path`` (cached by path, size, mtime, ctime and inode).

    A path that is not a regular file (FIFO, device, socket, folder) is reported as bad without being opened.

    Args:
        root: Folder the paths are relative to.
        rel_paths: Image paths relative to ``root``.
        desc: Progress bar label.

    Returns:
        One verdict per path, in order.
    """

    def identify(rel_path: str) -> Identity | ImageCheck | None:
        try:
            st = os.stat(os.path.join(root, rel_path))
        except OSError:
            return None
        problem = not_regular_file(st.st_mode)
        return ImageCheck(problem) if problem else file_identity(st)

    def read(rel_path: str) -> bytes:
        return read_regular_file(os.path.join(root, rel_path))

    cache = _VerdictCache(root, 'disk')
    return _check_all(rel_paths, identify, read, cache, 'file is missing', desc)


def check_lmdb_images(lmdb_path: str, keys: Sequence[str], desc: str = 'Checking images') -> list[ImageCheck]:
    """Check the images stored under ``keys`` in an lmdb (cached by the identity of its data file plus the key).

    Args:
        lmdb_path: The lmdb folder (holding ``data.mdb``).
        keys: lmdb keys (paths without extension).
        desc: Progress bar label.

    Returns:
        One verdict per key, in order.
    """
    import lmdb

    data_file = os.path.join(lmdb_path, 'data.mdb')
    if not os.path.isfile(data_file):
        raise FileNotFoundError(f'{lmdb_path!r} is not an lmdb folder: it has no data.mdb')
    identity = file_identity(os.stat(data_file))
    env = lmdb.open(lmdb_path, readonly=True, lock=False, readahead=False, meminit=False)

    def read(key: str) -> bytes | None:
        with env.begin(write=False) as txn:
            return txn.get(key.encode('utf-8'))

    try:
        # A key missing from the lmdb is never cached, so a cache hit means the key is there.
        return _check_all(
            keys, lambda key: identity, read, _VerdictCache(data_file, 'lmdb'), 'key is missing from the lmdb', desc
        )
    finally:
        env.close()


def _check_all(
    names: Sequence[str],
    identify: Callable[[str], Identity | ImageCheck | None],
    read: Callable[[str], bytes | None],
    cache: _VerdictCache,
    missing_reason: str,
    desc: str,
) -> list[ImageCheck]:
    """Stat, look up and (on a cache miss) decode every image in a thread pool; cv2 releases the GIL.

    ``identify`` returns the image's identity, None when it is missing, or a verdict when it must not be opened.
    """

    def check_one(name: str) -> tuple[ImageCheck, Identity | None, bool]:
        identity = identify(name)
        if identity is None:
            return ImageCheck(missing_reason, missing=True), None, False
        if isinstance(identity, ImageCheck):
            return identity, None, False
        cached = cache.lookup(name, identity)
        if cached is not None:
            return cached, identity, False
        try:
            data = read(name)
        except Exception as err:  # disk (OSError) or lmdb (lmdb.Error): reported with the image, never raised
            return ImageCheck(f'cannot be read: {err}'), None, False
        if data is None:
            return ImageCheck(missing_reason, missing=True), None, False
        return inspect_image_bytes(data), identity, True

    def check_batch(batch: Sequence[str]) -> list[tuple[ImageCheck, Identity | None, bool]]:
        return [check_one(name) for name in batch]

    start, decoded = time.perf_counter(), 0
    results: list[ImageCheck] = []
    show = len(names) >= PROGRESS_MIN_IMAGES and _is_main_process()
    bar = tqdm(total=len(names), desc=desc, unit='img', disable=not show)
    with _quiet_opencv(), ThreadPoolExecutor() as pool, bar:
        for batches in _chunks(list(_chunks(names, _BATCH)), _BATCHES_IN_FLIGHT):
            for batch, checked in zip(batches, pool.map(check_batch, batches)):
                for name, (check, identity, was_decoded) in zip(batch, checked):
                    results.append(check)
                    if was_decoded:
                        decoded += 1
                        cache.store(name, identity, check)
                bar.update(len(batch))
    if decoded:
        cache.save()
    _log_info(
        f'{desc}: {len(names)} image(s) checked in {time.perf_counter() - start:.1f} s ({decoded} decoded, '
        f'{len(names) - decoded} from the cache or missing); cache: {cache.path}'
    )
    return results


class _VerdictCache:
    """Verdicts of one dataset root in a JSON file under :func:`srfer_cache_dir`; a cache that cannot be read or
    written only warns."""

    def __init__(self, root: str, backend: str):
        self.root = os.path.realpath(root)
        digest = hashlib.sha1(f'{backend}:{self.root}'.encode()).hexdigest()[:20]
        self.path = os.path.join(srfer_cache_dir(), 'image_checks', f'{digest}.json')
        self.entries = self._load()
        self.new_entries: dict[str, list] = {}

    def _load(self) -> dict[str, list]:
        if not os.path.isfile(self.path):
            return {}
        try:
            with open(self.path, encoding='utf-8') as f:
                content = json.load(f)
        except (OSError, ValueError) as err:
            warnings.warn(f'ignoring the unreadable image check cache {self.path!r}: {err}', stacklevel=2)
            return {}
        if not isinstance(content, dict) or content.get('version') != CHECK_VERSION:
            return {}
        entries = content.get('entries')
        return entries if isinstance(entries, dict) else {}

    def lookup(self, name: str, identity: Identity) -> ImageCheck | None:
        """The cached verdict of ``name`` when its identity is unchanged; entries are ``[*identity, problem, h, w]``."""
        entry = self.entries.get(name)
        if not isinstance(entry, list) or len(entry) != len(identity) + 3 or tuple(entry[: len(identity)]) != identity:
            return None
        problem, height, width = entry[len(identity) :]
        return ImageCheck(problem, int(height), int(width))

    def store(self, name: str, identity: Identity, check: ImageCheck) -> None:
        self.new_entries[name] = [*identity, check.problem, check.height, check.width]

    def save(self) -> None:
        """Merge the new verdicts into the file (re-read first: another process may have written it meanwhile)."""
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            entries = self._load()
            entries.update(self.new_entries)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), suffix='.tmp')
            try:
                with os.fdopen(fd, 'w', encoding='utf-8') as f:
                    json.dump({'version': CHECK_VERSION, 'root': self.root, 'entries': entries}, f)
                os.replace(tmp, self.path)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
        except OSError as err:
            warnings.warn(
                f'cannot write the image check cache {self.path!r} ({err}); images will be checked again next time '
                '(set SRFER_CACHE_DIR to a writable folder)',
                stacklevel=2,
            )


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines about bad files while checking (every bad file is reported by name)."""
    try:
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:
        yield
        return
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def _is_main_process() -> bool:
    from basicsr.utils.dist_util import get_dist_info

    return get_dist_info()[0] == 0


def _log_info(message: str) -> None:
    from basicsr.utils import get_root_logger

    get_root_logger().info(message)
