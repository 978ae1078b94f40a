"""``python scripts/eval_fer_degradation.py`` is ``srfer eval-fer-degradation``: HR vs bicubic-restored accuracy.

The code is :mod:`srfer_plugin.tools.eval_fer_degradation`; this file keeps the command of a clone working.
"""

import sys

from srfer_plugin.tools.eval_fer_degradation import evaluate, main, parse_args  # noqa: F401

if __name__ == '__main__':
    sys.exit(main())
