"""Training entry point: ``python -m srfer_plugin.train -opt X.yml`` (console script ``srfer-train``).

Registers the plugin, then runs BasicSR's own training loop with experiments/ and tb_logger/ under the current
directory. Takes BasicSR's arguments: ``-opt``, ``--launcher``, ``--auto_resume``, ``--debug``, ``--force_yml``.
"""

from __future__ import annotations

import os

import srfer_plugin  # noqa: F401  (registration)
from srfer_plugin.compat import patch_basicsr_train


def main() -> None:
    """Run ``basicsr.train.train_pipeline`` rooted at the current directory."""
    patch_basicsr_train()
    from basicsr.train import train_pipeline

    train_pipeline(root_path=os.getcwd())


if __name__ == '__main__':
    main()
