"""Generate the synthetic expression-face dataset (srfer_plugin FER layout).

Example::

    srfer generate-synthetic-faces --out datasets/synthetic_fer --seed 0 --size 112 \\
        --num-train 400 --num-val 50 --num-test 100

``--num-*`` are images per class (the splits are balanced). An existing dataset with the same generator version and
settings is kept unless ``--force`` is given. Only a set the generator wrote earlier is ever replaced: a folder
holding other files where it writes (a real dataset, notes in ``train/``) is refused, and nothing is written.
"""

from __future__ import annotations

import argparse
import sys
import time

from srfer_plugin.synthetic import SyntheticRootError, ensure_synthetic_dataset, write_synthetic_dataset
from srfer_plugin.utils.cli_args import at_least


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Generate synthetic expression faces (7 FER classes).')
    parser.add_argument('--out', required=True, help='dataset root')
    parser.add_argument('--seed', type=at_least(0), default=0)
    parser.add_argument('--size', type=at_least(16), default=112, help='image height and width')
    parser.add_argument('--num-train', type=at_least(1), default=400, help='train images per class')
    parser.add_argument('--num-val', type=at_least(0), default=50, help='val images per class')
    parser.add_argument('--num-test', type=at_least(0), default=100, help='test images per class')
    parser.add_argument('--force', action='store_true', help='regenerate even if a matching dataset exists')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    start = time.time()
    kwargs = dict(
        seed=args.seed, size=args.size, num_train=args.num_train, num_val=args.num_val, num_test=args.num_test
    )
    try:
        if args.force:
            write_synthetic_dataset(args.out, **kwargs)
        else:
            ensure_synthetic_dataset(args.out, **kwargs)
    except SyntheticRootError as err:
        print(f'error: --out {err}', file=sys.stderr)
        return 2
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'synthetic FER dataset ready in {args.out} ({time.time() - start:.1f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
