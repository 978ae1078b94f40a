"""JAFFE: images named ``<subject>.<code><n>.<id>.tiff`` (e.g. ``KA.AN1.39.tiff``) anywhere under the folder."""

from __future__ import annotations

import os
import re

from srfer_plugin.converters.image_io import file_loader, rel_path, require_dir, walk_images
from srfer_plugin.converters.records import PrepareError, PrepareReport, ReaderOptions, Sample

# JAFFE expression codes of the file names mapped to the canonical class names of FER8_CLASSES.
JAFFE_CODES = {
    'NE': 'neutral',
    'HA': 'happy',
    'SA': 'sad',
    'SU': 'surprise',
    'AN': 'angry',
    'DI': 'disgust',
    'FE': 'fear',
}

_JAFFE_NAME = re.compile(r'^([A-Za-z]+)\.([A-Za-z]{2})\d*\.\d+', re.ASCII)


def read_jaffe(src: str, report: PrepareReport, opts: ReaderOptions) -> list[Sample]:
    """Read JAFFE; the expression code (NE HA SA SU AN DI FE) and the subject come from the file name.

    Args:
        src: The JAFFE folder (searched recursively).
        report: Receives images whose names carry no known expression code.
        opts: Not used.

    Returns:
        One sample per image, named after its file stem, with the upper-case subject id.
    """
    require_dir(src, 'the JAFFE folder with images named like KA.AN1.39.tiff')
    samples = []
    for path in walk_images(src):
        fname = os.path.basename(path)
        m = _JAFFE_NAME.match(fname)
        label = JAFFE_CODES.get(m.group(2).upper()) if m else None
        if label is None:
            report.bad_row(
                rel_path(path, src),
                'unknown expression code in file name (expected e.g. KA.AN1.39.tiff with NE/HA/SA/SU/AN/DI/FE)',
            )
            continue
        stem, subject = os.path.splitext(fname)[0], m.group(1).upper()
        samples.append(Sample(stem, label, file_loader(path), rel_path(path, src), subject=subject))
    if not samples and not report.bad:
        raise PrepareError(f'--src {src!r} holds no JAFFE images (expected names like KA.AN1.39.tiff)')
    return samples
