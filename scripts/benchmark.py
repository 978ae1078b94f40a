"""``python scripts/benchmark.py`` is ``srfer benchmark``: the benchmarks (backbones x scales x classifiers, studies).

The code is :mod:`srfer_plugin.tools.benchmark`; this file keeps the command of a clone working.
"""

import sys

from srfer_plugin.tools.benchmark import main, parse_args  # noqa: F401

if __name__ == '__main__':
    sys.exit(main())
