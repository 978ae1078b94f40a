"""Test entry point: ``python -m srfer_plugin.test -opt X.yml`` (console script ``srfer-test``).

Registers the plugin, then runs BasicSR's test pipeline with results/ under the current directory. Before anything
is created the options are checked and the run takes ``results/<name>`` for itself: a second test run of the same
name stops with an error naming the running one.
"""

from __future__ import annotations

import os

import srfer_plugin  # noqa: F401  (registration)
from srfer_plugin.train_loop import guard_parse_options


def main() -> None:
    """Run ``basicsr.test.test_pipeline`` rooted at the current directory."""
    guard_parse_options()
    from basicsr.test import test_pipeline

    test_pipeline(root_path=os.getcwd())


if __name__ == '__main__':
    main()
