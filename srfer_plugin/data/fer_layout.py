"""The on-disk layout of FER datasets shared by every producer and consumer in the plugin.

A dataset root looks like this (written by ``srfer prepare-dataset`` and the synthetic generator)::

    ROOT/
      classes.txt               one class name per line; line i is label i (text files are UTF-8; a BOM is allowed)
      meta_info_train.txt       lines ``relative/path label`` (path relative to ROOT)
      meta_info_val.txt
      meta_info_test.txt
      train/<class_name>/<image>.png
      val/<class_name>/<image>.png
      test/<class_name>/<image>.png
      lmdb/<split>.lmdb         optional; keys are the relative paths without extension

``PairedFERDataset`` reads either ``dataroot_gt: ROOT`` with ``meta_info_file: ROOT/meta_info_<split>.txt``
or ``dataroot_gt: ROOT/<split>`` (class sub-folders). mmpretrain's ``CustomDataset`` reads the same
meta_info files as ``ann_file`` and ``classes.txt`` as ``classes``.
"""

from __future__ import annotations

import codecs
import os
import posixpath
import re
from collections.abc import Iterable, Sequence

from srfer_plugin.utils.formatting import first_of

# One fixed class order for every format (line i of classes.txt is label i).
FER7_CLASSES: tuple[str, ...] = ('neutral', 'happy', 'sad', 'surprise', 'fear', 'disgust', 'angry')
# AffectNet's optional eighth class.
FER8_CLASSES: tuple[str, ...] = FER7_CLASSES + ('contempt',)

IMAGE_EXTENSIONS: tuple[str, ...] = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')
CLASSES_FILE = 'classes.txt'


def meta_info_name(split: str) -> str:
    """Return the file name of a split's meta_info file, e.g. ``meta_info_train.txt``."""
    return f'meta_info_{split}.txt'


def read_classes(path: str) -> list[str]:
    """Read a ``classes.txt`` file.

    Args:
        path: File with one class name per line.

    Returns:
        The class names; index i is label i.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not UTF-8 (naming its ``file:line``), is empty or lists a class twice.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'classes file {path!r} does not exist')
    names = [line.strip() for line in read_text_lines(path, 'classes file') if line.strip()]
    if not names:
        raise ValueError(f'classes file {path!r} is empty')
    if len(set(names)) != len(names):
        raise ValueError(f'classes file {path!r} lists a class twice: {names}')
    return names


def read_text_lines(path: str, what: str) -> list[str]:
    """Read a UTF-8 text file (a leading byte order mark is dropped) as lines without their line ends.

    Args:
        path: The file.
        what: What the file is, for errors (``meta_info_file``, ``classes file``).

    Returns:
        The lines; ``\n``, ``\r\n`` and ``\r`` all end a line, as in a file opened in text mode.

    Raises:
        ValueError: The file is not UTF-8; the message names ``file:line`` and the offending byte.
    """
    with open(path, 'rb') as f:
        data = f.read()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError(f'{what} {path!r} is UTF-16; save it as UTF-8')
    try:
        text = data.decode('utf-8-sig')
    except UnicodeDecodeError as err:
        start = err.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        before = data[:start].replace(b'\r\n', b'\n').replace(b'\r', b'\n')
        line_no, column = before.count(b'\n') + 1, len(before) - before.rfind(b'\n')
        raise ValueError(
            f'{path}:{line_no}: {what} is not UTF-8 (byte 0x{data[start]:02x} at column {column}: {err.reason}); '
            'save it as UTF-8'
        ) from None
    return text.replace('\r\n', '\n').replace('\r', '\n').split('\n')


def write_classes(path: str, classes: Sequence[str]) -> None:
    """Write a ``classes.txt`` file (one name per line)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(f'{name}\n' for name in classes)


def read_meta_info(path: str, num_classes: int | None = None, allow_duplicates: bool = False) -> list[tuple[str, int]]:
    """Read a meta_info file whose lines are ``relative/path label``.

    Paths must be relative and stay inside the dataset root (no absolute path, no ``..`` that leaves it). A path
    listed twice is an error unless ``allow_duplicates`` (the same path with two different labels always is).
    Every bad line is reported, each as ``file:line``.

    Args:
        path: The meta_info file.
        num_classes: When given, every label must lie in ``[0, num_classes)``.
        allow_duplicates: Keep paths listed more than once (e.g. to oversample them).

    Returns:
        A list of ``(relative_path, label)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not UTF-8 (a byte order mark is allowed), has bad lines, or lists no image.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'meta_info_file {path!r} does not exist')
    items: list[tuple[str, int]] = []
    errors: list[str] = []
    first_seen: dict[str, tuple[int, int]] = {}  # normalized path -> (line number, label)
    for line_no, line in enumerate(read_text_lines(path, 'meta_info_file'), start=1):
        line = line.strip()
        if not line:
            continue
        where = f'{path}:{line_no}'
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            errors.append(f'{where}: expected "relative/path label", got {line!r}')
            continue
        rel_path, label_text = parts
        try:
            label = int(label_text)
        except ValueError:
            errors.append(f'{where}: label {label_text!r} is not an integer')
            continue
        if label < 0 or (num_classes is not None and label >= num_classes):
            errors.append(f'{where}: label {label} is outside [0, {num_classes}) for {rel_path!r}')
            continue
        path_error = _outside_root_error(rel_path)
        if path_error:
            errors.append(f'{where}: {rel_path!r} {path_error}')
            continue
        key = posixpath.normpath(rel_path.replace('\\', '/'))
        if key in first_seen:
            first_line, first_label = first_seen[key]
            if first_label != label:
                errors.append(
                    f'{where}: {rel_path!r} has label {label}, but {path}:{first_line} lists it with label '
                    f'{first_label}'
                )
                continue
            if not allow_duplicates:
                errors.append(f'{where}: {rel_path!r} is listed twice (first at {path}:{first_line})')
                continue
        else:
            first_seen[key] = (line_no, label)
        items.append((rel_path, label))
    if errors:
        raise ValueError(_join_line_errors(path, errors))
    if not items:
        raise ValueError(f'meta_info_file {path!r} lists no images')
    return items


def _outside_root_error(rel_path: str) -> str | None:
    """Why a meta_info path would be read from outside the dataset root, or None when it stays inside."""
    posix = rel_path.replace('\\', '/')
    if os.path.isabs(rel_path) or posix.startswith('/') or re.match(r'^[A-Za-z]:', posix):
        return 'is absolute; paths must be relative to dataroot_gt'
    normalized = posixpath.normpath(posix)
    if normalized == '..' or normalized.startswith('../'):
        return 'leaves the dataset root (..); paths must stay inside dataroot_gt'
    return None


def _join_line_errors(path: str, errors: list[str], shown: int = 20) -> str:
    if len(errors) == 1:
        return errors[0]
    return f'meta_info_file {path!r} has {len(errors)} bad lines:\n  ' + '\n  '.join(first_of(errors, shown))


def files_under(root: str, folder: str) -> list[str]:
    """Every entry under ``folder`` that is not a folder (files, links, pipes), as a ``/`` path relative to ``root``.

    Links are not followed. Empty folders are left out: deleting them loses nothing.
    """
    out, stack = [], [folder]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    out.append(os.path.relpath(entry.path, root).replace(os.sep, '/'))
    return out


def write_meta_info(path: str, items: Iterable[tuple[str, int]]) -> None:
    """Write a meta_info file with lines ``relative/path label``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(f'{rel_path} {int(label)}\n' for rel_path, label in items)


def scan_class_folders(root: str, classes: Sequence[str] | None = None) -> tuple[list[str], list[tuple[str, int]]]:
    """List the images of a class-folder tree ``root/<class_name>/<image>``.

    Args:
        root: Folder whose sub-folders are classes.
        classes: Class order to use. Default: ``root/classes.txt`` or ``root/../classes.txt`` if present,
            else the sorted sub-folder names.

    Returns:
        ``(classes, items)`` where items are ``(path relative to root, label)``.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f'dataroot {root!r} does not exist')
    folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if classes is None:
        classes = find_classes_file(root)
    classes = list(classes) if classes is not None else folders
    unknown = [d for d in folders if d not in classes]
    if unknown:
        raise ValueError(f'{root!r} has sub-folders {unknown} that are not among the classes {classes}')
    items = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        for dirpath, _, files in sorted(os.walk(folder)):
            for fname in sorted(files):
                if fname.lower().endswith(IMAGE_EXTENSIONS):
                    items.append((os.path.relpath(os.path.join(dirpath, fname), root), label))
    if not items:
        raise ValueError(f'{root!r} holds no images in class sub-folders')
    return classes, items


def find_classes_file(root: str) -> list[str] | None:
    """Return the classes of ``root/classes.txt`` or ``root/../classes.txt``, or None when neither exists."""
    for candidate in (
        os.path.join(root, CLASSES_FILE),
        os.path.join(os.path.dirname(os.path.normpath(root)), CLASSES_FILE),
    ):
        if os.path.isfile(candidate):
            return read_classes(candidate)
    return None


def resolve_classes(opt: dict) -> list[str] | None:
    """Find the class names of a dataset option dict without reading its images.

    Order of precedence: ``classes`` (a list, or a path to classes.txt); ``classes.txt`` beside
    ``meta_info_file``; ``classes.txt`` in ``dataroot_gt`` or its parent; the sorted class sub-folders.

    Args:
        opt: A ``datasets.<phase>`` option dict of PairedFERDataset.

    Returns:
        The class names, or None when the dataset does not name its classes.
    """
    classes = opt.get('classes')
    if isinstance(classes, str):
        return read_classes(classes)
    if classes is not None:
        return list(classes)
    if opt.get('meta_info_file'):
        found = find_classes_file(os.path.dirname(os.path.abspath(opt['meta_info_file'])))
        if found is not None:
            return found
    root = opt.get('dataroot_gt')
    if root and os.path.isdir(root):
        found = find_classes_file(root)
        if found is None and not opt.get('meta_info_file') and opt.get('io_backend', {}).get('type', 'disk') == 'disk':
            found = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))) or None
        return found
    return None
