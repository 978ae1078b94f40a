"""Training entry point: ``python -m srfer_plugin.train -opt X.yml`` (console script ``srfer-train``).

Registers the plugin, installs the changes of :mod:`srfer_plugin.train_loop`, then runs BasicSR's own training loop
with experiments/ and tb_logger/ under the current directory. Takes BasicSR's arguments: ``-opt``,
``--launcher``, ``--auto_resume``, ``--debug``, ``--force_yml``; ``-opt srfer::NAME`` names an option file shipped
with the package (``srfer::tests/train_srfer_tiny_cpu.yml``).

Before anything is created the options are checked (:mod:`srfer_plugin.train_loop.option_checks`) and the run takes
``experiments/<name>`` for itself: a second run of the same name stops with an error naming the running one, and
``--auto_resume`` of a run that was killed takes the folder back.

Distributed training (nccl on GPUs, gloo on CPUs; ``dist_params.backend`` overrides)::

    torchrun --nproc_per_node=N -m srfer_plugin.train -opt X.yml --launcher pytorch
"""

from __future__ import annotations

import os
import sys

import srfer_plugin  # noqa: F401  (registration)
from srfer_plugin.train_loop import (
    check_option_file,
    configure_dist_backend,
    normalize_launcher_argv,
    option_file_argument,
    patch_basicsr_train,
    resolve_option_argument,
)
from srfer_plugin.utils.parent_process import end_with_parent


def main() -> None:
    """Run ``basicsr.train.train_pipeline`` rooted at the current directory."""
    end_with_parent()  # started by the benchmark or the demo: end with it
    sys.argv = resolve_option_argument(normalize_launcher_argv(sys.argv))
    opt_path = option_file_argument(sys.argv)
    backend = None
    if opt_path and os.path.isfile(opt_path):
        check_option_file(opt_path)
        if '--launcher' in ' '.join(sys.argv):
            backend = configure_dist_backend(opt_path)
    patch_basicsr_train(dist_backend=backend)
    import torch.distributed as dist
    from basicsr.train import train_pipeline

    try:
        train_pipeline(root_path=os.getcwd())
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == '__main__':
    main()
