"""Write a fixed LR copy of a FER test set, for sharing or for ``dataroot_lq``.

Example::

    srfer make-lr --src datasets/rafdb --meta meta_info_test.txt --dst datasets/rafdb_lr_x4_blur \\
        --scale 4 --scenario blur --seed 0

``--scenario realesrgan`` or ``--scenario blind_face`` make real-world LR sets with BasicSR's degradation functions.

The LR images are made by :class:`~srfer_plugin.data.paired_fer_dataset.PairedFERDataset` itself (test phase),
so they equal what the dataset makes on the fly for the same ``degradation``, ``degradation_seed``, ``scale``
and ``gt_size`` (up to the 8-bit rounding of the written PNG). They keep the relative paths of the HR images:
``dataroot_lq: DST`` with the same ``meta_info_file`` pairs them with their HR images. DST also receives a copy
of the meta_info file, ``classes.txt`` and ``degradation.yml`` (how the images were made). A ``--dst`` that is,
contains or lies inside ``--src`` is refused before anything is written (the LR images would replace the HR ones).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Any

import cv2
import yaml
from tqdm import tqdm

from srfer_plugin.converters.staging import check_sources_apart
from srfer_plugin.data.degradations import SCENARIOS, describe_pipeline, normalize_pipeline
from srfer_plugin.data.fer_layout import CLASSES_FILE, write_classes
from srfer_plugin.data.paired_fer_dataset import PairedFERDataset
from srfer_plugin.utils.cli_args import at_least

LOSSLESS_EXTENSIONS = ('.png', '.bmp', '.tif', '.tiff', '.ppm', '.pgm')


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
    parser.add_argument('--seed', type=int, default=0, help='degradation_seed of the per-image generator')
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
    os.makedirs(dst, exist_ok=True)
    renamed = 0
    for index in tqdm(range(len(dataset)), unit='img', desc='make_lr', disable=not progress):
        rel_path = dataset.items[index][0]
        lq = dataset[index]['lq']  # RGB float CHW
        img = (lq.clamp(0, 1).permute(1, 2, 0).numpy()[..., ::-1] * 255.0).round().astype('uint8')
        ok, buf = cv2.imencode('.png', img)  # lossless whatever the name: the LR must not be compressed again
        if not ok:
            raise RuntimeError(f'cannot encode the LR image of {rel_path!r}')
        renamed += not rel_path.lower().endswith(LOSSLESS_EXTENSIONS)
        out_path = os.path.join(dst, rel_path)
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        buf.tofile(out_path)
    meta_copy = os.path.join(dst, os.path.basename(meta)) if meta is not None else ''
    if meta_copy and not (os.path.exists(meta_copy) and os.path.samefile(meta, meta_copy)):  # --meta in --dst: kept
        shutil.copyfile(meta, meta_copy)
    if dataset.classes:
        write_classes(os.path.join(dst, CLASSES_FILE), dataset.classes)
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
    with open(os.path.join(dst, 'degradation.yml'), 'w', encoding='utf-8') as f:
        yaml.safe_dump(record, f, sort_keys=False)
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
