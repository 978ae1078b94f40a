"""``python scripts/generate_synthetic_faces.py`` is ``srfer generate-synthetic-faces``: the synthetic expression faces.

The code is :mod:`srfer_plugin.tools.generate_synthetic_faces`; this file keeps the command of a clone working.
"""

import sys

from srfer_plugin.tools.generate_synthetic_faces import main, parse_args  # noqa: F401

if __name__ == '__main__':
    sys.exit(main())
