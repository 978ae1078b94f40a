"""``python scripts/calibrate_synthetic_faces.py`` is ``srfer calibrate-synthetic-faces``: the calibration check.

The code is :mod:`srfer_plugin.tools.calibrate_synthetic_faces`; this file keeps the command of a clone working.
"""

import sys

from srfer_plugin.tools.calibrate_synthetic_faces import calibrate, main, parse_args  # noqa: F401

if __name__ == '__main__':
    sys.exit(main())
