"""``python scripts/prepare_dataset.py`` is ``srfer prepare-dataset``: convert a FER dataset to the plugin layout.

The code is :mod:`srfer_plugin.tools.prepare_dataset`; this file keeps the command of a clone working.
"""

import sys

from srfer_plugin.tools.prepare_dataset import build_parser, main  # noqa: F401

if __name__ == '__main__':
    sys.exit(main())
