"""What the plugin changes in BasicSR 1.4.2's own training loop (``basicsr.train.train_pipeline``).

BasicSR's loop runs unchanged; :func:`patch_basicsr_train` (called by ``srfer_plugin.train``) replaces names that
``train_pipeline`` and ``parse_options`` look up at call time. Two kinds of change, kept in separate modules:

Fixes to BasicSR (same semantics, more devices and safer IO):

* :mod:`.distributed`: ``init_dist`` for torchrun and slurm on GPUs (nccl) and CPUs (gloo); ``--local-rank``.
* :mod:`.resume`: ``load_resume_state`` without ``.cuda()`` (CPU resume), read by the safe loader (no pickled
  code runs).
* :mod:`.patches`: ``build_dataloader`` fails clearly on an empty training set or one smaller than a batch.
* :mod:`.patches`, :mod:`.option_checks` and :mod:`.option_keys`: ``parse_options`` (also BasicSR's test pipeline, see
  :func:`guard_parse_options`) refuses options that would be misread or train with a wrong meaning, then takes the
  output folder (``experiments/<name>``, ``results/<name>``) for the process, before BasicSR creates or renames
  anything: a second run of the same name stops instead of archiving the folder of a running one.
* :mod:`.run_root`: ``-opt srfer::NAME`` reads a shipped option file, and ``python -m basicsr.train`` of a
  pip-installed BasicSR writes under the current folder instead of site-packages.

Changes to training semantics (what makes a resumed run reproduce an uninterrupted one):

* :mod:`.resume`: ``EnlargedSampler`` skips, on resume, the samples of the resumed epoch already trained on.
* :mod:`.iteration_seeding`: the prefetchers reseed python/numpy/torch before fetching batch ``i`` from
  ``(manual_seed, rank, i)`` (``train.seed_per_iter``, default true).

Together they make a resumed run reproduce the losses of an uninterrupted one (bit-exact on CPU with
``num_worker_per_gpu: 0``).
"""

from srfer_plugin.train_loop.distributed import configure_dist_backend, init_dist_any_device, normalize_launcher_argv
from srfer_plugin.train_loop.option_checks import OptionError, check_option_file, check_options
from srfer_plugin.train_loop.patches import (
    check_train_set_size,
    guard_parse_options,
    option_file_argument,
    own_output_folder,
    patch_basicsr_train,
)
from srfer_plugin.train_loop.resume import load_resume_state_any_device
from srfer_plugin.train_loop.run_root import resolve_option_argument, run_root

__all__ = [
    'OptionError',
    'check_option_file',
    'check_options',
    'check_train_set_size',
    'configure_dist_backend',
    'guard_parse_options',
    'init_dist_any_device',
    'load_resume_state_any_device',
    'normalize_launcher_argv',
    'option_file_argument',
    'own_output_folder',
    'patch_basicsr_train',
    'resolve_option_argument',
    'run_root',
]
