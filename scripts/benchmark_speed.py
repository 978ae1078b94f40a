"""``python scripts/benchmark_speed.py`` is ``srfer benchmark-speed``: training-step time and memory.

The code is :mod:`srfer_plugin.tools.benchmark_speed`; this file keeps the command of a clone working.
"""

import sys

from srfer_plugin.tools.benchmark_speed import command, main, parse_args  # noqa: F401

if __name__ == '__main__':
    sys.exit(command())
