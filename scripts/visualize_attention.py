"""``python scripts/visualize_attention.py`` is ``srfer visualize-attention``: the classifier's attention pictures.

The code is :mod:`srfer_plugin.tools.visualize_attention`; this file keeps the command of a clone working.
"""

import sys

from srfer_plugin.tools.visualize_attention import build_parser, main  # noqa: F401

if __name__ == '__main__':
    sys.exit(main())
