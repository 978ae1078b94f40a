"""List the option files and mmpretrain configs shipped with the package, by their ``srfer::`` names.

Example::

    srfer list-options              # the recipes and every folder
    srfer list-options fer          # the FER classifier configs: srfer::fer/resnet18_fer7.py, ...
    srfer list-options fer --path   # with the file each name resolves to

A name is used wherever the plugin reads an option file or a FER config: ``network_fer.config``, ``srfer-train
-opt``, ``srfer train-fer``, ``srfer-infer --opt``/``--fer-config``, ``srfer benchmark --fer``.
"""

from __future__ import annotations

import argparse
import os
import sys

from srfer_plugin.utils.shipped_options import options_root, shipped_names, shipped_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='List the option files and FER configs shipped with srfer_plugin.')
    parser.add_argument('folder', nargs='?', default='', help='a folder of the shipped options: fer, benchmark, tests')
    parser.add_argument('--path', action='store_true', help='also print the file each name resolves to')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Print one name per line; returns 2 for a folder that is not shipped."""
    args = parse_args(argv)
    folder = args.folder.strip('/')
    if not os.path.isdir(os.path.join(options_root(), folder)):
        print(f'error: {folder!r} is not a shipped folder; choose from: {", ".join(_folders())}', file=sys.stderr)
        return 2
    for name in shipped_names(folder, recursive=True):
        print(f'{name}  {shipped_path(name)}' if args.path else name)
    return 0


def _folders() -> list[str]:
    root = options_root()
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith('_'))


if __name__ == '__main__':
    sys.exit(main())
