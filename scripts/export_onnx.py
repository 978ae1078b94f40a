"""``python scripts/export_onnx.py`` is ``srfer export``: the SR network and the classifier as ONNX files.

The code is :mod:`srfer_plugin.tools.export_onnx`; this file keeps the command of a clone working.
"""

import sys

from srfer_plugin.tools.export_onnx import build_parser, main  # noqa: F401

if __name__ == '__main__':
    sys.exit(main())
