"""What a dataset does with images that cannot be used: stop with a list of them (default) or leave them out.

Errors name the ``datasets.<key>`` of the YAML options the dataset was built from (``yaml_key``, recorded by the
plugin's option parser), so they name the key to fix.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass

from srfer_plugin.data.image_check import srfer_cache_dir

BAD_IMAGE_MODES: tuple[str, ...] = ('error', 'skip')
SHOWN_BAD_IMAGES = 20  # lines of bad images an error or a log shows; the list file has all of them


class BadImagesError(OSError):
    """Images of a dataset cannot be decoded (the message lists them)."""


class MissingImagesError(BadImagesError, FileNotFoundError):
    """Images of a dataset are missing or cannot be decoded (the message lists them)."""


@dataclass(frozen=True)
class BadImage:
    """An image a dataset cannot use.

    Attributes:
        path: The file (or ``lmdb_folder/key``).
        problem: Why it cannot be used.
        missing: The file or key does not exist.
    """

    path: str
    problem: str
    missing: bool = False


@dataclass(frozen=True)
class DatasetContext:
    """Where a dataset sits in the options: its YAML key, name and phase, and the run's log folder.

    Attributes:
        yaml_key: The key under ``datasets`` (``train``, ``val``, ``test_1``, ...); None when the dataset was not
            built from a BasicSR options dict (e.g. built directly by a script).
        name: The dataset's ``name`` option.
        phase: ``train``, ``val`` or ``test``.
        log_dir: The run's ``path.log`` folder, when known.
        rank: This process's rank (only rank 0 writes files).
    """

    yaml_key: str | None
    name: str
    phase: str
    log_dir: str | None
    rank: int

    @classmethod
    def of(cls, dataset_opt: dict) -> DatasetContext:
        """The context of a dataset's options.

        The plugin's option parser records ``yaml_key`` (the key under ``datasets``) and ``log_dir`` (the run's
        ``path.log``) in each dataset's options, as BasicSR records ``phase``; a dataset built without it (e.g. by a
        script) is named by its ``name``.
        """
        from basicsr.utils.dist_util import get_dist_info

        yaml_key = dataset_opt.get('yaml_key')
        name = str(dataset_opt.get('name') or dataset_opt.get('phase') or 'dataset')
        phase = str(dataset_opt.get('phase', 'train'))
        log_dir = dataset_opt.get('log_dir')
        log_dir = log_dir if log_dir and os.path.isdir(log_dir) else None
        return cls(str(yaml_key) if yaml_key else None, name, phase, log_dir, get_dist_info()[0])

    def where(self, key: str) -> str:
        """The dotted option path of one of the dataset's options, e.g. ``datasets.train.scale``."""
        return f'datasets.{self.yaml_key or self.name}.{key}'

    @property
    def label(self) -> str:
        """The dataset as a user finds it in the options, e.g. ``datasets.train (name: AffectNet-train)``."""
        if self.yaml_key:
            return f'datasets.{self.yaml_key} (name: {self.name})'
        return f'dataset {self.name!r} ({self.phase} phase)'

    def bad_images_file(self) -> str:
        """Where the full list of the dataset's bad images is written: the run's log folder, else the cache."""
        folder = self.log_dir or os.path.join(srfer_cache_dir(), 'bad_images')
        stem = re.sub(r'[^A-Za-z0-9_.-]+', '_', self.yaml_key or self.name)
        return os.path.join(folder, f'bad_images_{stem}.txt')


def handle_bad_images(
    bad: list[BadImage], total: int, context: DatasetContext, mode: str, uses_meta_info: bool
) -> str | None:
    """Write the list of bad images, then stop (``mode='error'``) or log that they are left out (``'skip'``).

    Args:
        bad: The images that cannot be used.
        total: Number of images the dataset lists.
        context: The dataset's place in the options.
        mode: ``error`` or ``skip`` (the ``bad_images`` option).
        uses_meta_info: The dataset lists its images in a meta_info_file (for the advice of the error).

    Returns:
        The file with the full list, or None when there are no bad images (or it could not be written).
    """
    if not bad:
        return None
    list_file = _write_list(bad, total, context, mode)
    where_list = f'Full list: {list_file}' if list_file else 'The full list could not be written'
    shown = [f'  {"missing" if b.missing else "unreadable image"} {b.path!r}: {b.problem}' for b in bad]
    if len(shown) > SHOWN_BAD_IMAGES:
        shown = shown[:SHOWN_BAD_IMAGES] + [f'  ... and {len(bad) - SHOWN_BAD_IMAGES} more']
    num_missing = sum(b.missing for b in bad)
    counts = f'{len(bad)} of {total} image(s) cannot be used' + (f' ({num_missing} missing)' if num_missing else '')
    if mode == 'skip':
        from basicsr.utils import get_root_logger

        get_root_logger().warning(
            f'{context.label}: {counts}; left out {len(bad)}, using the other {total - len(bad)} '
            f'({context.where("bad_images")}: skip). {where_list}\n' + '\n'.join(shown)
        )
        return list_file
    fix = 'remove their lines from the meta_info_file' if uses_meta_info else 'remove them'
    error_cls = MissingImagesError if num_missing else BadImagesError
    raise error_cls(
        f'{context.label}: {counts}:\n' + '\n'.join(shown) + f'\n{where_list}. Replace them or {fix}, or set '
        f'{context.where("bad_images")}: skip to leave them out.'
    )


def _write_list(bad: list[BadImage], total: int, context: DatasetContext, mode: str) -> str | None:
    path = context.bad_images_file()
    if context.rank != 0:
        return path  # rank 0 writes the same list
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(f'# {context.label}: {len(bad)} of {total} image(s) cannot be used (bad_images: {mode})\n')
            f.write('# path\tproblem\n')
            f.writelines(f'{b.path}\t{b.problem}\n' for b in bad)
    except OSError as err:
        warnings.warn(f'cannot write the list of bad images to {path!r}: {err}', stacklevel=2)
        return None
    return path
