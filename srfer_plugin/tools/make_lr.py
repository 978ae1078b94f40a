"""Write a fixed LR copy of a FER test set, for sharing or for ``dataroot_lq``.

Example::

    srfer make-lr --src datasets/rafdb --meta meta_info_test.txt --dst datasets/rafdb_lr_x4_blur \\
        --scale 4 --scenario blur --seed 0

``--scenario realesrgan`` or ``--scenario blind_face`` make real-world LR sets with BasicSR's degradation functions.

The LR images are made by :class:`~srfer_plugin.data.paired_fer_dataset.PairedFERDataset` itself (test phase),
so they equal what the dataset makes on the fly for the same ``degradation``, ``degradation_seed``, ``scale``
and ``gt_size`` (up to the 8-bit rounding of the written PNG). They keep the relative paths of the HR images:
``dataroot_lq: DST`` with the same ``meta_info_file`` pairs them with their HR images. DST also receives a copy
of the meta_info file, ``classes.txt`` and ``degradation.yml`` (how the images were made).

Refused before anything is written (exit status 2):

- a ``--dst`` that is, contains or lies inside ``--src`` (the LR images would replace the HR ones);
- an output file or folder whose real path (symbolic links resolved) leaves ``--dst`` or lies inside ``--src``, e.g.
  a link ``DST/happy -> SRC/happy``;
- a ``--dst`` holding image files this run would not write (an earlier LR set: the result would mix two sets);
  a rerun that writes the same images again (or more) is allowed with ``--overwrite``.

Each LR image is written to a temporary file beside it and renamed over the old one, so a hard link in ``--dst``
to another file never changes that file.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from typing import Any

import cv2
import yaml
from tqdm import tqdm

from srfer_plugin.converters.staging import check_sources_apart
from srfer_plugin.data.degradations import SCENARIOS, describe_pipeline, normalize_pipeline
from srfer_plugin.data.fer_layout import CLASSES_FILE, IMAGE_EXTENSIONS
from srfer_plugin.data.paired_fer_dataset import PairedFERDataset
from srfer_plugin.utils.checkpoint import atomic_write_bytes
from srfer_plugin.utils.cli_args import at_least
from srfer_plugin.utils.formatting import first_of

LOSSLESS_EXTENSIONS = ('.png', '.bmp', '.tif', '.tiff', '.ppm', '.pgm')
RECORD_FILE = 'degradation.yml'
_SHOWN_PATHS = 5  # extra images named in the error; the rest are counted


class DstRefusedError(ValueError):
    """What ``make_lr`` would write lies outside ``--dst``, inside ``--src``, or beside an earlier LR set."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument('--src', required=True, help='dataset root (dataroot_gt)')
    parser.add_argument(
        '--meta',
        default=None,
        help='meta_info file (path, or name inside --src); default: --src holds class sub-folders',
    )
    parser.add_argument('--dst', required=True, help='output root (becomes dataroot_lq)')
    parser.add_argument('--scale', type=at_least(1), default=4, help='downsampling factor: 2, 3, 4 or 8')
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        '--scenario',
        choices=sorted(SCENARIOS),
        default=None,
        help='named degradation scenario (srfer_plugin.data.degradations.SCENARIOS); blind_face (GFPGAN-style) and '
        'realesrgan (Real-ESRGAN second-order) are the real-world ones',
    )
    group.add_argument(
        '--degradation',
        default=None,
        help='degradation as YAML text (a list of steps or a scenario name) or a YAML file holding one',
    )
    parser.add_argument(
        '--seed', type=at_least(0), default=0, help='degradation_seed of the per-image generator (an integer >= 0)'
    )
    parser.add_argument('--gt-size', type=at_least(1), default=None, help='resize HR to this square size first')
    parser.add_argument('--overwrite', action='store_true', help='write into a non-empty --dst')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def parse_degradation(text: str | None, scenario: str | None) -> Any:
    """Return the degradation spec given by ``--scenario`` or ``--degradation`` (YAML text or file)."""
    if scenario is not None:
        return scenario
    if text is None:
        return None
    if os.path.isfile(text):
        with open(text, encoding='utf-8') as f:
            text = f.read()
    spec = yaml.safe_load(text)
    if isinstance(spec, dict) and 'degradation' in spec:
        spec = spec['degradation']
    return spec


def _within(outer: str, inner: str) -> bool:
    """Whether real path ``inner`` is ``outer`` or lies inside it."""
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_output_paths(src: str, dst: str, rel_paths: Iterable[str]) -> None:
    """Refuse an output file or folder whose real path leaves ``dst`` or lies inside ``src``.

    Every path and each folder leading to it is resolved (``os.path.realpath``), so a symbolic link in ``dst``
    (``DST/happy -> ../SRC/happy``) or a link in place of an output file is found before anything is written.

    Args:
        src: The ``--src`` folder.
        dst: The ``--dst`` folder.
        rel_paths: The files to write, relative to ``dst``.

    Raises:
        DstRefusedError: Naming the first such path and where it leads.
    """
    real_src, real_dst = os.path.realpath(src), os.path.realpath(dst)
    seen: set[str] = set()
    for rel in rel_paths:
        parts = os.path.normpath(rel).split(os.sep)
        for n in range(1, len(parts) + 1):
            sub = os.path.join(*parts[:n])
            if sub in seen:
                continue
            seen.add(sub)
            path = os.path.join(dst, sub)
            real = os.path.realpath(path)
            if _within(real_src, real):
                where = f'lies inside --src {src!r} ({real_src})'
            elif not _within(real_dst, real):
                where = f'leaves --dst ({real_dst})'
            else:
                continue
            raise DstRefusedError(
                f'--dst {dst!r}: the output {path!r} resolves to {real!r}, which {where}: writing would replace '
                'files that are not the LR set. Remove the symbolic link or choose another --dst (nothing was written)'
            )


def check_no_other_images(dst: str, rel_paths: Iterable[str]) -> None:
    """Refuse a ``dst`` that holds image files this run would not write (an earlier, different LR set).

    Args:
        dst: The ``--dst`` folder.
        rel_paths: The images this run writes, relative to ``dst``.

    Raises:
        DstRefusedError: Naming the first such images and their count.
    """
    if not os.path.isdir(dst):
        return
    planned = {os.path.normpath(p) for p in rel_paths}
    extra = []
    for dirpath, dirnames, files in os.walk(dst):
        dirnames.sort()
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(dirpath, name), dst)
            if name.lower().endswith(IMAGE_EXTENSIONS) and rel not in planned:
                extra.append(rel)
    if extra:
        shown = ', '.join(first_of(extra, _SHOWN_PATHS))
        raise DstRefusedError(
            f'--dst {dst!r} holds {len(extra)} image file(s) this run would not write ({shown}), left by an earlier '
            'LR set: writing would mix two sets under one degradation.yml. Choose an empty --dst (nothing was written)'
        )


def make_lr(
    src: str,
    dst: str,
    scale: int,
    degradation: Any = None,
    meta: str | None = None,
    seed: int = 0,
    gt_size: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Degrade every HR image of a dataset deterministically and write the LR images under ``dst``.

    Args:
        src: Dataset root (``dataroot_gt``).
        dst: Output root.
        scale: Downsampling factor.
        degradation: Degradation spec (see ``srfer_plugin.data.degradations``).
        meta: meta_info file; None: ``src`` holds class sub-folders.
        seed: ``degradation_seed``.
        gt_size: Optional square HR size.
        progress: Show a progress bar.

    Returns:
        What ``dst/degradation.yml`` records (``num_images`` included).

    Raises:
        DstRefusedError: An output would leave ``dst`` or land in ``src`` through a symbolic link, or ``dst`` holds
            images this run would not write (checked before anything is written).
        ValueError: ``dst`` is, contains or lies inside ``src`` (checked before anything is written), or a bad
            degradation.
    """
    check_sources_apart({'--src': src}, dst)
    steps = normalize_pipeline(degradation, '--degradation')
    dataset = PairedFERDataset(
        {
            'name': 'make_lr',
            'phase': 'test',
            'dataroot_gt': src,
            'meta_info_file': meta,
            'scale': scale,
            'gt_size': gt_size,
            'degradation': steps,
            'degradation_seed': seed,
            'io_backend': {'type': 'disk'},
        }
    )
    rel_paths = [rel_path for rel_path, _ in dataset.items]
    meta_copy = os.path.join(dst, os.path.basename(meta)) if meta is not None else ''
    if meta_copy and os.path.exists(meta_copy) and os.path.samefile(meta, meta_copy):
        meta_copy = ''  # --meta in --dst: kept
    others = [os.path.basename(p) for p in (meta_copy, CLASSES_FILE if dataset.classes else '', RECORD_FILE) if p]
    check_output_paths(src, dst, rel_paths + others)
    check_no_other_images(dst, rel_paths)
    os.makedirs(dst, exist_ok=True)
    renamed = 0
    for index in tqdm(range(len(dataset)), unit='img', desc='make_lr', disable=not progress):
        rel_path = rel_paths[index]
        lq = dataset[index]['lq']  # RGB float CHW
        img = (lq.clamp(0, 1).permute(1, 2, 0).numpy()[..., ::-1] * 255.0).round().astype('uint8')
        ok, buf = cv2.imencode('.png', img)  # lossless whatever the name: the LR must not be compressed again
        if not ok:
            raise RuntimeError(f'cannot encode the LR image of {rel_path!r}')
        renamed += not rel_path.lower().endswith(LOSSLESS_EXTENSIONS)
        out_path = os.path.join(dst, rel_path)
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        atomic_write_bytes(buf.tobytes(), out_path, durable=False)
    if meta_copy:
        with open(meta, 'rb') as f:
            atomic_write_bytes(f.read(), meta_copy)
    if dataset.classes:
        atomic_write_bytes(''.join(f'{name}\n' for name in dataset.classes).encode(), os.path.join(dst, CLASSES_FILE))
    record = {
        'src': os.path.abspath(src),
        'meta_info_file': os.path.basename(meta) if meta else None,
        'scale': scale,
        'gt_size': gt_size,
        'degradation_seed': seed,
        'degradation': steps,
        'description': describe_pipeline(steps),
        'num_images': len(dataset),
        'png_data_in_lossy_names': renamed,
    }
    atomic_write_bytes(yaml.safe_dump(record, sort_keys=False).encode('utf-8'), os.path.join(dst, RECORD_FILE))
    return record


def main(argv: list[str] | None = None) -> int:
    """Run the script; returns the exit status."""
    args = build_parser().parse_args(argv)
    meta = args.meta
    if meta is not None and not os.path.isfile(meta) and os.path.isfile(os.path.join(args.src, meta)):
        meta = os.path.join(args.src, meta)
    try:
        check_sources_apart({'--src': args.src}, args.dst)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if os.path.isdir(args.dst) and os.listdir(args.dst) and not args.overwrite:
        print(f'error: --dst {args.dst!r} is not empty (use --overwrite)', file=sys.stderr)
        return 2
    try:
        spec = parse_degradation(args.degradation, args.scenario)
        record = make_lr(args.src, args.dst, args.scale, spec, meta, args.seed, args.gt_size, not args.no_progress)
    except DstRefusedError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    how = f'x{args.scale}, {record["description"]}, seed {args.seed}'
    print(f'Wrote {record["num_images"]} LR images ({how}) to {args.dst}')
    if record['png_data_in_lossy_names']:
        print(f'note: {record["png_data_in_lossy_names"]} images keep a lossy extension but hold PNG data')
    meta_line = f'{args.dst}/{record["meta_info_file"]}' if record['meta_info_file'] else '~'
    print(f'Use it with: dataroot_gt: {args.src}, meta_info_file: {meta_line}, dataroot_lq: {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
