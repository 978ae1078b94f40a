"""Resume on any device from a safely read training state, at the exact sample where the run stopped."""

from __future__ import annotations

import os
from typing import Any

import torch
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.utils import check_resume, scandir

from srfer_plugin.utils.checkpoint import safe_load

# Where the resumed run stands; load_resume_state_any_device writes it into the options for the data loader.
RESUME_POSITION_KEY = 'resume_position'


def load_resume_state_any_device(opt: dict) -> dict | None:
    """BasicSR's ``load_resume_state`` for any device, reading the state with :func:`safe_load`.

    Also records ``opt['resume_position']`` (``iter``, ``epoch``, ``iters_per_epoch`` of the state, or None) for
    the sampler and the seeded prefetcher, which BasicSR builds later from the same options.

    Args:
        opt: The parsed options (``auto_resume``, ``name``, ``path.resume_state``, ``num_gpu``).

    Returns:
        The training state, or None when there is nothing to resume.
    """
    resume_state_path = None
    if opt['auto_resume']:
        state_path = os.path.join('experiments', opt['name'], 'training_states')
        if os.path.isdir(state_path):
            states = [float(v.split('.state')[0]) for v in scandir(state_path, suffix='state', recursive=False)]
            if states:
                resume_state_path = os.path.join(state_path, f'{max(states):.0f}.state')
                opt['path']['resume_state'] = resume_state_path
    elif opt['path'].get('resume_state'):
        resume_state_path = opt['path']['resume_state']
    opt[RESUME_POSITION_KEY] = None
    if resume_state_path is None:
        return None
    use_cuda = opt.get('num_gpu', 0) != 0 and torch.cuda.is_available()
    device = torch.device('cuda', torch.cuda.current_device()) if use_cuda else torch.device('cpu')
    resume_state = safe_load(resume_state_path, map_location=device)
    if not isinstance(resume_state, dict) or 'iter' not in resume_state:
        raise ValueError(f'resume_state {resume_state_path!r} is not a BasicSR training state')
    check_resume(opt, resume_state['iter'])
    opt[RESUME_POSITION_KEY] = {
        'iter': int(resume_state['iter']),
        'epoch': int(resume_state['epoch']),
        'iters_per_epoch': resume_state.get('iters_per_epoch'),
    }
    return resume_state


class ResumableEnlargedSampler(EnlargedSampler):
    """BasicSR's EnlargedSampler that can drop the first samples of one epoch (the ones already trained on)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._skip: tuple[int, int] | None = None

    def skip_in_epoch(self, epoch: int, num_samples: int) -> None:
        """Leave out the first ``num_samples`` indices of ``epoch`` (once).

        Args:
            epoch: The epoch (as set by ``set_epoch``).
            num_samples: How many of its first indices to drop.
        """
        self._skip = (int(epoch), int(num_samples))

    def __iter__(self):
        indices = list(super().__iter__())
        if self._skip is not None and self._skip[0] == self.epoch:
            indices = indices[self._skip[1] :]
            self._skip = None
        return iter(indices)


def skip_trained_batches(opt: dict, train_loader: Any, train_sampler: Any, logger: Any) -> None:
    """On resume, make the sampler leave out the batches of the resumed epoch that were already trained on.

    Args:
        opt: The options, with ``resume_position`` and ``iters_per_epoch`` set.
        train_loader: The training loader (its ``batch_size``).
        train_sampler: A :class:`ResumableEnlargedSampler`.
        logger: BasicSR's logger.
    """
    resume = opt.get(RESUME_POSITION_KEY)
    if resume is None or not hasattr(train_sampler, 'skip_in_epoch'):
        return
    iters_per_epoch = opt['iters_per_epoch']
    saved = resume.get('iters_per_epoch')
    done = resume['iter'] - resume['epoch'] * iters_per_epoch
    if saved is not None and int(saved) != iters_per_epoch:
        logger.warning(
            f'Resume: {saved} iterations per epoch when saved, {iters_per_epoch} now; the resumed epoch '
            'restarts from its first batch'
        )
    elif 0 < done <= iters_per_epoch:
        train_sampler.skip_in_epoch(resume['epoch'], done * train_loader.batch_size)
        logger.info(f'Resume: skipping the {done} batch(es) of epoch {resume["epoch"]} already trained on')
