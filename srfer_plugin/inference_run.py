"""A folder of LR faces in, SR faces and predictions out: the inputs and outputs of ``srfer-infer`` (face crops).

:func:`collect_inputs` expands files, folders and glob patterns; :func:`run_inference` super-resolves and classifies
them with a :class:`~srfer_plugin.predictor.SRFERPredictor` and writes ``OUT/sr/`` and the CSVs row by row (what
they hold and how nothing is lost: :mod:`srfer_plugin.infer`).
"""

from __future__ import annotations

import glob
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from srfer_plugin.data.fer_layout import IMAGE_EXTENSIONS
from srfer_plugin.predictor import SRFERPredictor
from srfer_plugin.utils.inference_io import read_lr_image
from srfer_plugin.utils.inference_outputs import (
    RowByRowCSV,
    prediction_fields,
    printable_text,
    save_result,
    sr_output_name,
)


@dataclass
class InputImage:
    """One input file and the path of its SR image relative to ``OUT/sr``."""

    index: int
    path: str
    rel_out: str


@dataclass
class InferenceSummary:
    """What a run did, and the CSVs it wrote (``skipped_csv`` None when nothing was skipped)."""

    processed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    class_names: list[str] | None = None
    seconds: float = 0.0
    predictions_csv: str | None = None
    skipped_csv: str | None = None


# ------------------------------------------------------------------------------------------------ inputs
def collect_inputs(specs: Iterable[str], recursive: bool = False) -> tuple[list[InputImage], list[tuple[str, str]]]:
    """Expand files, folders and glob patterns into input images.

    Args:
        specs: Paths or patterns.
        recursive: Also list the sub-folders of folders.

    Returns:
        ``(images, bad)``: the inputs in a stable order, and ``(spec, reason)`` for specs that gave nothing.
    """
    images: list[InputImage] = []
    bad: list[tuple[str, str]] = []
    seen_files: set[str] = set()
    used_outs: set[str] = set()

    def add(path: str, rel: str) -> None:
        key = os.path.abspath(path)
        if key in seen_files:
            return
        seen_files.add(key)
        images.append(InputImage(len(images), path, sr_output_name(rel, used_outs)))  # inside OUT/sr, \\xHH

    def is_image(name: str) -> bool:
        return name.lower().endswith(IMAGE_EXTENSIONS)

    for spec in specs:  # FIFOs and devices are kept: read_lr_image skips them with the reason
        if os.path.exists(spec) and not os.path.isdir(spec):
            add(spec, os.path.basename(spec))
        elif os.path.isdir(spec):
            found = []
            for dirpath, dirnames, files in os.walk(spec):
                dirnames.sort()
                found += [os.path.join(dirpath, f) for f in sorted(files) if is_image(f)]
                if not recursive:
                    break
            if not found:
                bad.append((spec, 'folder holds no images' + ('' if recursive else ' (try --recursive)')))
            for path in found:
                add(path, os.path.relpath(path, spec))
        elif glob.has_magic(spec):
            matches = sorted(
                p for p in glob.glob(spec, recursive=True) if os.path.exists(p) and not os.path.isdir(p) and is_image(p)
            )
            if not matches:
                bad.append((spec, 'no image file matches the pattern'))
            parts = spec.replace('\\', '/').split('/')
            base = '/'.join(p for p in parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))]) or '.'
            for path in matches:
                add(path, os.path.relpath(path, base))
        else:
            bad.append((spec, 'does not exist'))
    return images, bad


# ----------------------------------------------------------------------------------------------- outputs
def run_inference(
    images: Sequence[InputImage],
    out_dir: str,
    predictor: SRFERPredictor,
    progress: bool = True,
    skipped: Sequence[tuple[str, str]] = (),
) -> InferenceSummary:
    """Super-resolve and classify the inputs; write ``out_dir/sr`` and both CSVs row by row; skip bad files.

    Each row reaches ``<csv>.partial`` as soon as its image is done; the partial files are renamed to
    ``predictions.csv`` (rows in input order) and ``skipped.csv`` (only when something was skipped) at the end. An
    exception (or Ctrl-C) leaves the partial files holding every finished row.

    Args:
        images: Inputs from :func:`collect_inputs`.
        out_dir: Output folder (SR images go to ``out_dir/sr``).
        predictor: The networks (its ``batch_size`` sets the same-size batches).
        progress: Show a tqdm progress bar.
        skipped: ``(input, reason)`` already skipped (e.g. by :func:`collect_inputs`), listed first.

    Returns:
        The per-image results (``processed``, input order), the skipped files with reasons and the CSV paths.
    """
    summary = InferenceSummary(class_names=predictor.label_names)
    fields = prediction_fields(summary.class_names)
    os.makedirs(out_dir, exist_ok=True)
    pbar = tqdm(total=len(images), unit='img', desc='srfer-infer', disable=not progress)
    start = time.time()
    predictions = RowByRowCSV(os.path.join(out_dir, 'predictions.csv'), fields)
    skips = RowByRowCSV(os.path.join(out_dir, 'skipped.csv'), ['file', 'reason'], keep_empty=False)
    with predictions, skips:

        def record_skip(path: str, reason: str) -> None:
            summary.skipped.append((path, reason))
            skips.add([path, reason])

        def skip(item: InputImage, reason: str) -> None:
            record_skip(item.path, reason)
            tqdm.write(f'skipped {printable_text(item.path)}: {printable_text(reason)}', file=sys.stderr)
            pbar.update(1)

        def readable() -> Iterator[tuple[InputImage, np.ndarray]]:
            for item in images:
                try:
                    yield item, read_lr_image(item.path)
                except Exception as err:
                    skip(item, str(err))

        def failed(items: list[InputImage], err: Exception) -> None:  # one failing batch (e.g. out of memory)
            for item in items:
                skip(item, f'inference failed: {type(err).__name__}: {err}')

        for path, reason in skipped:
            record_skip(path, reason)
        inputs = {os.path.realpath(item.path) for item in images}  # never written over (see write_new_file)
        for item, result in predictor.iter_predict_images(readable(), on_error=failed):
            try:
                row = save_result(item, result, out_dir, predictor.scale, summary.class_names, inputs)
            except OSError as err:
                skip(item, f'cannot write the SR image: {err}')
                continue
            summary.processed.append(row)
            predictions.add([row.get(name) for name in fields], order=item.index)
            pbar.update(1)
        pbar.close()
        summary.predictions_csv = predictions.finish()
        summary.skipped_csv = skips.finish()
    summary.processed.sort(key=lambda r: r['_index'])
    summary.seconds = time.time() - start
    return summary
