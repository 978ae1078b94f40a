"""Test entry point: ``python -m srfer_plugin.test -opt X.yml`` (console script ``srfer-test``).

Registers the plugin, then runs BasicSR's test pipeline with results/ under the current directory.
"""

from __future__ import annotations

import os

import srfer_plugin  # noqa: F401  (registration)


def main() -> None:
    """Run ``basicsr.test.test_pipeline`` rooted at the current directory."""
    from basicsr.test import test_pipeline

    test_pipeline(root_path=os.getcwd())


if __name__ == '__main__':
    main()
