"""What the plugin changes in BasicSR 1.4.2's own training loop (``basicsr.train.train_pipeline``).

BasicSR's loop runs unchanged; :func:`patch_basicsr_train` (called by ``srfer_plugin.train``) replaces names that
``train_pipeline`` and ``parse_options`` look up at call time. Two kinds of change, kept in separate modules:

Fixes to BasicSR (same semantics, more devices and safer IO):

* :mod:`.distributed`: ``init_dist`` for torchrun and slurm on GPUs (nccl) and CPUs (gloo); ``--local-rank``.
* :mod:`.resume`: ``load_resume_state`` without ``.cuda()`` (CPU resume), read by the safe loader (no pickled
  code runs).
* :mod:`.patches`: ``build_dataloader`` fails clearly on an empty training set or one smaller than a batch.

Changes to training semantics (what makes a resumed run reproduce an uninterrupted one):

* :mod:`.resume`: ``EnlargedSampler`` skips, on resume, the samples of the resumed epoch already trained on.
* :mod:`.iteration_seeding`: the prefetchers reseed python/numpy/torch before fetching batch ``i`` from
  ``(manual_seed, rank, i)`` (``train.seed_per_iter``, default true).

Together they make a resumed run reproduce the losses of an uninterrupted one (bit-exact on CPU with
``num_worker_per_gpu: 0``).
"""

from srfer_plugin.train_loop.distributed import configure_dist_backend, init_dist_any_device, normalize_launcher_argv
from srfer_plugin.train_loop.patches import check_train_set_size, patch_basicsr_train
from srfer_plugin.train_loop.resume import load_resume_state_any_device

__all__ = [
    'check_train_set_size',
    'configure_dist_backend',
    'init_dist_any_device',
    'load_resume_state_any_device',
    'normalize_launcher_argv',
    'patch_basicsr_train',
]
