"""``python scripts/compare_face_detectors.py`` is ``srfer compare-face-detectors``: face detectors compared.

The code is :mod:`srfer_plugin.tools.compare_face_detectors`; this file keeps the command of a clone working.
"""

import sys

from srfer_plugin.tools.compare_face_detectors import main

if __name__ == '__main__':
    sys.exit(main())
