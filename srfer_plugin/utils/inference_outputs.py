"""What ``srfer-infer`` writes besides the SR images: CSVs kept row by row, safe cells, earlier runs kept.

- **Row by row.** :class:`RowByRowCSV` writes each row to ``<name>.partial`` and flushes it at once; only a
  finished run renames the file to ``<name>`` (with the rows in input order). A run that crashes or is killed
  leaves ``predictions.csv.partial`` / ``skipped.csv.partial`` holding every row it had finished.
- **Any file name.** Text cells go through :func:`printable_text`: bytes of a file name that are not UTF-8
  (legal on Linux, e.g. ``b'caf\\xe9.png'``) are written as a backslash, ``x`` and two hex digits
  (``caf\\xe9.png``, Python's ``backslashreplace``); every other character is kept. ``srfer-infer`` names the SR
  image of such a file the same way, so the ``sr_file`` cell names the file on disk. A name that already holds
  the four characters ``\\xe9`` reads the same: the escaping is for reading, not a reversible encoding.
- **Inert cells.** A text cell that a spreadsheet would run as a formula (first character ``=``, ``+``, ``-``,
  ``@``, tab or carriage return) is prefixed with a single quote, as OWASP advises against CSV injection
  (``=HYPERLINK(...).png`` is written ``'=HYPERLINK(...).png``). Numbers are written as numbers.
- **Inputs are never written over.** :func:`sr_output_name` keeps every SR image inside ``OUT/sr``: an input's
  relative path is normalised, and one that would still lead out of the folder (``..`` after a glob wildcard:
  ``in/*/../../photos/p.png``) is flattened to its file name (as Real-ESRGAN names its outputs), with ``_1``,
  ``_2``... for a name already taken. :func:`write_new_file` then writes only a file that does not exist yet
  (exclusive create, which refuses symbolic links too), inside the folder and at no input's path.
- **Earlier runs are kept.** :func:`archive_earlier_outputs` moves the outputs of an earlier run in the output
  folder (``predictions.csv``, ``skipped.csv``, their ``.partial`` files and ``sr/``) together into
  ``archived_<time>/`` inside it, with BasicSR's time stamp (``mkdir_and_rename`` archives a folder the same
  way), so nothing is overwritten and the archived ``sr_file`` cells still resolve beside the archived CSV.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

import cv2
from basicsr.utils.misc import get_time_str

if TYPE_CHECKING:
    from srfer_plugin.inference_run import InputImage
    from srfer_plugin.predictor import ImagePrediction

PARTIAL_SUFFIX = '.partial'
SR_FOLDER = 'sr'
CSV_NAMES = ('predictions.csv', 'skipped.csv')
# First characters that make a spreadsheet evaluate a cell (OWASP, CSV injection).
FORMULA_STARTS = ('=', '+', '-', '@', '\t', '\r')


def printable_text(text: str) -> str:
    """Return ``text`` as text any UTF-8 writer accepts: undecodable file-name bytes become ``\\xHH``.

    Args:
        text: A file name or message, possibly holding ``os.fsdecode``'s surrogate escapes.

    Returns:
        The text itself when it is valid Unicode, else with each undecodable byte written as ``\\xHH``.
    """
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        return os.fsencode(text).decode('utf-8', 'backslashreplace')
    return text


def inert_cell(text: str) -> str:
    """Return a CSV text cell that no spreadsheet runs as a formula (a single quote before a formula start).

    Args:
        text: The cell's text.

    Returns:
        ``text``, prefixed with ``'`` when it starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return.
    """
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_cell(value: Any) -> str | int:
    """Return how a value is written: floats with 6 decimals, ints as they are, text printable and inert.

    Args:
        value: A cell value (None: empty).

    Returns:
        The cell.
    """
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.6f}'
    if isinstance(value, int):
        return value
    return inert_cell(printable_text(str(value)))


def prediction_fields(class_names: Sequence[str] | None) -> list[str]:
    """The columns of ``predictions.csv``.

    Args:
        class_names: The classifier's class names; None without a classifier (SR only).

    Returns:
        ``file, sr_file, width, height`` and, with a classifier, ``label, label_index, confidence, prob_<class>...``.
    """
    fields = ['file', 'sr_file', 'width', 'height']
    if class_names is not None:
        fields += ['label', 'label_index', 'confidence'] + [f'prob_{name}' for name in class_names]
    return fields


def sr_output_name(rel: str, used: set[str]) -> str:
    """The path of an input's SR image relative to ``OUT/sr``: its relative path with ``.png``, never leaving it.

    Args:
        rel: The input's path relative to its folder or glob base (undecodable bytes become ``\\xHH``).
        used: The names given so far; the new name is added.

    Returns:
        ``rel`` normalised (``a/./b/../c.png`` -> ``a/c.png``) with the extension ``.png``; its file name alone when
        it would leave the folder (``../../photos/p.png`` -> ``p.png``) or is absolute; ``_1``, ``_2``... before the
        extension when the name is taken.
    """
    rel = os.path.normpath(printable_text(rel))
    if os.path.isabs(rel) or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        rel = os.path.basename(rel)
    stem = os.path.splitext(rel)[0]
    if not stem or stem in (os.curdir, os.pardir):
        stem = 'image'
    out, n = f'{stem}.png', 1
    while out in used:
        out, n = f'{stem}_{n}.png', n + 1
    used.add(out)
    return out


def write_new_file(folder: str, rel: str, data: bytes, protected: Iterable[str] = ()) -> str:
    """Write ``data`` to a new file ``folder/rel``; never over an existing file, never outside ``folder``.

    Args:
        folder: The folder the file must lie in (``OUT/sr``); created when missing.
        rel: The file's path relative to ``folder``.
        data: The bytes.
        protected: Real paths (``os.path.realpath``) that must not be written (the inputs).

    Returns:
        The path written.

    Raises:
        OSError: The path would lie outside ``folder`` (lexically or through a symbolic link), is a protected path,
            or already exists (a file, a link, a hard link of an input: nothing is overwritten).
    """
    path = os.path.join(folder, rel)
    outside = OSError(f'{printable_text(path)!r} lies outside {printable_text(folder)!r}: not written')
    if os.path.isabs(rel) or os.path.normpath(rel).split(os.sep)[0] == os.pardir:
        raise outside
    os.makedirs(os.path.dirname(path) or folder, exist_ok=True)
    root, parent = os.path.realpath(folder), os.path.realpath(os.path.dirname(path) or folder)
    if parent != root and not parent.startswith(root + os.sep):
        raise outside
    if os.path.join(parent, os.path.basename(path)) in set(protected):
        raise OSError(f'{printable_text(path)!r} is an input file: not overwritten')
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666)
    except FileExistsError as err:
        raise OSError(f'{printable_text(path)!r} already exists: not overwritten') from err
    with os.fdopen(fd, 'wb') as f:
        f.write(data)
    return path


def save_result(
    item: InputImage,
    result: ImagePrediction,
    out_dir: str,
    scale: int,
    class_names: Sequence[str] | None,
    inputs: Iterable[str] = (),
) -> dict[str, Any]:
    """Write one input's SR image to ``out_dir/sr/<item.rel_out>`` (:func:`write_new_file`) and return its row.

    Args:
        item: The input (``index``, ``path``, ``rel_out``).
        result: Its SR image and predictions.
        out_dir: The output folder.
        scale: The SR factor (the row's ``width`` and ``height`` are the LR size).
        class_names: The classifier's class names (None: SR only).
        inputs: Real paths of every input of the run (never written).

    Returns:
        The ``predictions.csv`` row, with ``_index`` for the input order.

    Raises:
        OSError: The SR image cannot be encoded or written (see :func:`write_new_file`).
    """
    ok, buf = cv2.imencode('.png', result.sr)
    if not ok:
        raise OSError(f'cannot encode the SR image of {printable_text(item.path)!r}')
    write_new_file(os.path.join(out_dir, SR_FOLDER), item.rel_out, buf.tobytes(), inputs)
    row: dict[str, Any] = {
        '_index': item.index,
        'file': item.path,
        'sr_file': os.path.join(SR_FOLDER, item.rel_out),
        'width': result.sr.shape[1] // scale,
        'height': result.sr.shape[0] // scale,
    }
    if result.probs is not None:
        row.update(label=result.label_name, label_index=result.label, confidence=result.confidence)
        row.update({f'prob_{name}': float(p) for name, p in zip(class_names or [], result.probs)})
    return row


class RowByRowCSV:
    """A CSV whose rows reach ``<path>.partial`` as they are added; :meth:`finish` renames it to ``path``.

    Use it as a context manager: leaving the block by an exception closes the partial file and leaves it in place.

    Args:
        path: The finished file.
        header: The column names.
        keep_empty: Write a header-only file when no row is added (else no file at all).
    """

    def __init__(self, path: str, header: Sequence[str], keep_empty: bool = True) -> None:
        self.path = path
        self.partial_path = path + PARTIAL_SUFFIX
        self.header = [csv_cell(name) for name in header]
        self.rows: list[tuple[int, list[Any]]] = []
        self._file: IO[str] | None = None
        self._writer: Any = None
        if keep_empty:
            self._open()

    def _open(self) -> None:
        self._file = open(self.partial_path, 'w', newline='', encoding='utf-8')  # noqa: SIM115 - closed by finish
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.header)
        self._file.flush()

    def add(self, cells: Iterable[Any], order: int | None = None) -> None:
        """Write one row and flush it to disk.

        Args:
            cells: The values, in header order (see :func:`csv_cell`).
            order: Where the row goes in the finished file (default: after the rows added before it).
        """
        if self._file is None:
            self._open()
        row = [csv_cell(value) for value in cells]
        self._writer.writerow(row)
        self._file.flush()
        self.rows.append((len(self.rows) if order is None else order, row))

    def finish(self) -> str | None:
        """Close the partial file and rename it to ``path``, rows sorted by ``order``.

        Returns:
            ``path``, or None when nothing was written (``keep_empty`` false and no row).
        """
        if self._file is None:
            return None
        self._close()
        orders = [order for order, _ in self.rows]
        if orders != sorted(orders):
            sorted_path = self.path + '.sorting'
            with open(sorted_path, 'w', newline='', encoding='utf-8') as f:
                writer = csv.writer(f)
                writer.writerow(self.header)
                writer.writerows(row for _, row in sorted(self.rows, key=lambda item: item[0]))
                f.flush()
                os.fsync(f.fileno())
            os.replace(sorted_path, self.path)
            os.remove(self.partial_path)
        else:
            os.replace(self.partial_path, self.path)
        return self.path

    def _close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def __enter__(self) -> RowByRowCSV:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._close()


def archive_earlier_outputs(
    out_dir: str, inputs: Sequence[str] = (), names: Sequence[str] | None = None
) -> tuple[str, list[str]] | None:
    """Move an earlier run's outputs in ``out_dir`` into a new ``out_dir/archived_<time>/``.

    Args:
        out_dir: The output folder.
        inputs: The input files of this run; none may lie in what would be moved.
        names: The entries of ``out_dir`` a run writes (default: ``srfer-infer``'s CSVs, partial files and ``sr``).

    Returns:
        ``(archive folder, moved names)``, or None when ``out_dir`` holds no earlier outputs.

    Raises:
        ValueError: An input file lies in the earlier outputs (e.g. ``-i OUT/sr``); nothing was moved.
    """
    if names is None:
        names = (*CSV_NAMES, *(name + PARTIAL_SUFFIX for name in CSV_NAMES), SR_FOLDER)
    earlier = [n for n in names if os.path.lexists(os.path.join(out_dir, n))]
    if not earlier:
        return None
    for name in earlier:
        moved = os.path.realpath(os.path.join(out_dir, name))
        for path in inputs:
            real = os.path.realpath(path)
            if real == moved or real.startswith(moved + os.sep):
                raise ValueError(
                    f'input {printable_text(path)!r} lies in {printable_text(os.path.join(out_dir, name))!r}, an '
                    'output of an earlier run that would be archived: choose another output folder'
                )
    return move_to_archive(out_dir, earlier), earlier


def move_to_archive(out_dir: str, names: Sequence[str]) -> str:
    """Move ``names`` (entries of ``out_dir``) into a new ``out_dir/archived_<time>/``; returns that folder."""
    archive = os.path.join(out_dir, f'archived_{get_time_str()}')
    base, n = archive, 1
    while os.path.lexists(archive):
        archive, n = f'{base}_{n}', n + 1
    os.makedirs(archive)
    for name in names:
        os.rename(os.path.join(out_dir, name), os.path.join(archive, name))
    return archive


def archive_earlier_results(out_dir: str, names: Sequence[str]) -> str | None:
    """Move ``names`` (entries of ``out_dir``) into a new ``out_dir/archived_<time>/`` and say so on stdout.

    Returns:
        The archive folder, or None when there is nothing to move.
    """
    if not names:
        return None
    archive = move_to_archive(out_dir, names)
    print(f'note: moved the results of an earlier run in {out_dir} ({", ".join(names)}) to {archive}', flush=True)
    return archive
