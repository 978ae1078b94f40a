"""``python scripts/make_lr.py`` is ``srfer make-lr``: a fixed LR copy of a FER test set.

The code is :mod:`srfer_plugin.tools.make_lr`; this file keeps the command of a clone working.
"""

import sys

from srfer_plugin.tools.make_lr import build_parser, main, make_lr  # noqa: F401

if __name__ == '__main__':
    sys.exit(main())
