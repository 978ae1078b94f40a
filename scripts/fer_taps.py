"""``python scripts/fer_taps.py`` is ``srfer fer-taps``: the feature taps of mmpretrain classifiers.

The code is :mod:`srfer_plugin.tools.fer_taps`; this file keeps the command of a clone working.
"""

import sys

from srfer_plugin.tools.fer_taps import describe, main, parse_args  # noqa: F401

if __name__ == '__main__':
    sys.exit(main())
