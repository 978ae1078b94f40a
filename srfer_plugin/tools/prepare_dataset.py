"""Convert a FER dataset from its distributed layout into the plugin's layout (see docs/datasets.md).

Example::

    srfer prepare-dataset --format rafdb --src data/RAF-DB/basic --dst datasets/rafdb --size 112 --lmdb

The work is done by :mod:`srfer_plugin.converters`; this script only parses arguments and prints. --dst may not
overlap --src, and the new output replaces an earlier one only once it is complete, so a failed or killed run loses
nothing.
"""

from __future__ import annotations

import argparse
import sys

from srfer_plugin.converters import (
    DEFAULT_SPLITS,
    FORMATS,
    PrepareError,
    ReaderOptions,
    format_counts_table,
    format_report,
    prepare_dataset,
)
from srfer_plugin.utils.cli_args import at_least


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    defaults = ', '.join(f'{k}={v}' for k, v in DEFAULT_SPLITS.items())
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument('--format', required=True, choices=list(FORMATS), help='layout of --src')
    parser.add_argument('--src', required=True, help='dataset folder or file as distributed (see docs/datasets.md)')
    parser.add_argument('--dst', required=True, help='output root (classes.txt, <split>/<class>/*.png, meta_info)')
    parser.add_argument('--size', type=at_least(1), default=112, help='output side length in pixels')
    parser.add_argument(
        '--split',
        default=None,
        help='official | all:<split> | subject:<fractions> | random:<fractions>; fractions are 0.8,0.1,0.1 '
        f'(train,val,test), 0.9,0.1 (train,test) or train=0.8,val=0.2. Default per format: {defaults} '
        '(imagefolder with train/val/test folders: official)',
    )
    parser.add_argument('--seed', type=at_least(0), default=0, help='seed of subject/random splits')
    parser.add_argument('--lmdb', action='store_true', help='also write DST/lmdb/<split>.lmdb (BasicSR lmdb backend)')
    parser.add_argument(
        '--resize-mode',
        choices=('crop', 'stretch'),
        default='crop',
        help='crop: centre-crop to a square, then resize; stretch: resize without keeping the aspect ratio',
    )
    parser.add_argument(
        '--keep-contempt',
        action='store_true',
        help='keep contempt (8 classes; ferplus, affectnet, ckplus, imagefolder)',
    )
    parser.add_argument('--ferplus-csv', default=None, help='fer2013new.csv when it is not inside --src')
    parser.add_argument('--image-root', default=None, help='affectnet csv: folder the image paths are relative to')
    parser.add_argument(
        '--ckplus-last-frames', type=at_least(1), default=3, help='last frames per labelled CK+ sequence'
    )
    parser.add_argument('--ckplus-neutral-first', action='store_true', help='add the first CK+ frame as neutral')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace a previous output in --dst once the new one is complete (other files in --dst are kept)',
    )
    parser.add_argument('--workers', type=at_least(1), default=1, help='image decode/encode threads')
    parser.add_argument('--strict', action='store_true', help='exit with status 1 when there are bad rows')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the preparation; returns the exit status (0 ok, 1 bad rows with --strict, 2 error)."""
    args = build_parser().parse_args(argv)
    options = ReaderOptions(
        keep_contempt=args.keep_contempt,
        ckplus_last_frames=args.ckplus_last_frames,
        ckplus_neutral_first=args.ckplus_neutral_first,
        ferplus_csv=args.ferplus_csv,
        image_root=args.image_root,
    )
    try:
        result = prepare_dataset(
            args.format,
            args.src,
            args.dst,
            size=args.size,
            split=args.split,
            lmdb=args.lmdb,
            seed=args.seed,
            options=options,
            resize_mode=args.resize_mode,
            overwrite=args.overwrite,
            workers=args.workers,
            progress=not args.no_progress,
        )
    except PrepareError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'\nwrote {result.total} images to {result.dst} (classes: {", ".join(result.classes)})')
    print(format_counts_table(result.counts, result.classes))
    for split, path in result.lmdb_paths.items():
        print(f'lmdb {split}: {path}')
    print(format_report(result.report))
    print(f'report: {result.report_path}')
    return 1 if args.strict and result.report.bad else 0


if __name__ == '__main__':
    sys.exit(main())
