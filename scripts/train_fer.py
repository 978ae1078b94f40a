"""``python scripts/train_fer.py`` is ``srfer train-fer``: pre-train the FER classifier.

The code is :mod:`srfer_plugin.tools.train_fer`; this file keeps the command of a clone working.
"""

import sys

from srfer_plugin.tools.train_fer import main, parse_args  # noqa: F401

if __name__ == '__main__':
    sys.exit(main())
