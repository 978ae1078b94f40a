"""Resume on any device from a safely read training state, at the exact sample where the run stopped."""

from __future__ import annotations

import os
from typing import Any

import torch
from basicsr.data.data_sampler import EnlargedSampler

from srfer_plugin.train_loop.resume_selection import (
    FER_NETWORK,
    check_iterations_left,
    choose_auto_resume_state,
    move_aside_newer_checkpoints,
    point_networks_at_state,
    read_training_state,
)
from srfer_plugin.utils.checkpoint import remove_stale_temp_files

# Where the resumed run stands; load_resume_state_any_device writes it into the options for the data loader.
RESUME_POSITION_KEY = 'resume_position'
# What the start of training found and did (skipped states, removed temporary files): logged once the log exists.
RESUME_NOTES_KEY = 'resume_notes'


def load_resume_state_any_device(opt: dict) -> dict | None:
    """BasicSR's ``load_resume_state`` for any device, reading the state with the safe loader.

    On top of BasicSR's: rank 0 first removes the temporary files of saves killed mid-write from ``models/`` and
    ``training_states/``; ``--auto_resume`` takes the newest state whose state and network files all load
    (:func:`~srfer_plugin.train_loop.resume_selection.choose_auto_resume_state`); the networks are pointed at the
    state with a frozen classifier kept as the run started; a state with no iteration left is refused; rank 0 then
    moves what the resumed run would save over (checkpoints of later iterations, damaged or not, and the earlier
    run's ``*_latest.pth``) into ``experiments/<name>/superseded_<time>/``
    (:func:`~srfer_plugin.train_loop.resume_selection.move_aside_newer_checkpoints`), for ``--auto_resume`` and
    ``path.resume_state`` alike. What was skipped, removed or moved goes to ``opt['resume_notes']``, logged by
    :func:`log_resume_notes`.

    Also records ``opt['resume_position']`` (``iter``, ``epoch``, ``iters_per_epoch`` of the state, or None) for
    the sampler and the seeded prefetcher, which BasicSR builds later from the same options.

    Args:
        opt: The parsed options (``auto_resume``, ``name``, ``path.resume_state``, ``num_gpu``).

    Returns:
        The training state, or None when there is nothing to resume.

    Raises:
        CheckpointReadError: ``path.resume_state`` is empty, truncated or not a checkpoint (the message names it).
        ResumeStateError: The state leaves nothing to train, or ``--auto_resume`` finds no readable state.
        FileNotFoundError: The frozen classifier the run started with is missing.
    """
    notes = remove_stale_temp_files_of_run(opt)
    opt[RESUME_POSITION_KEY] = None
    opt[RESUME_NOTES_KEY] = notes
    use_cuda = opt.get('num_gpu', 0) != 0 and torch.cuda.is_available()
    device = torch.device('cuda', torch.cuda.current_device()) if use_cuda else torch.device('cpu')
    resume_state_path, resume_state = None, None
    if opt['auto_resume']:
        state_folder = os.path.abspath(os.path.join('experiments', opt['name'], 'training_states'))  # as BasicSR
        resume_state_path, resume_state, skipped = choose_auto_resume_state(opt, state_folder, device)
        notes += skipped
        if resume_state_path is not None:
            opt['path']['resume_state'] = resume_state_path
    elif opt['path'].get('resume_state'):
        resume_state_path = opt['path']['resume_state']
        resume_state = read_training_state(resume_state_path, device)
    if resume_state is None:
        return None
    finishing = check_iterations_left(opt, resume_state_path, int(resume_state['iter']))
    if finishing:
        notes.append(finishing)
    point_networks_at_state(opt, resume_state['iter'])
    notes += move_aside_newer_checkpoints(opt, int(resume_state['iter']), files_read_on_resume(opt))
    opt[RESUME_POSITION_KEY] = {
        'iter': int(resume_state['iter']),
        'epoch': int(resume_state['epoch']),
        'iters_per_epoch': resume_state.get('iters_per_epoch'),
    }
    return resume_state


def files_read_on_resume(opt: dict) -> list[str]:
    """The files a resumed run reads: its training state, ``path.pretrain_network_*`` and ``network_fer.checkpoint``.

    Args:
        opt: The options, pointed at the state (:func:`load_resume_state_any_device`).

    Returns:
        The paths that are set.
    """
    paths = [value for key, value in opt['path'].items() if key == 'resume_state' or key.startswith('pretrain_')]
    paths.append((opt.get(FER_NETWORK) or {}).get('checkpoint'))
    return [path for path in paths if isinstance(path, str)]


def remove_stale_temp_files_of_run(opt: dict) -> list[str]:
    """On rank 0, remove what saves killed mid-write left in the run's ``models/`` and ``training_states/``.

    Only files of the checkpoint writer's own temporary pattern go; the run owns its folder by now (no other
    process saves into it).

    Args:
        opt: The parsed options (``path.models``, ``path.training_states``, ``rank``).

    Returns:
        One note per removed file.
    """
    if opt.get('rank', 0) != 0:
        return []
    notes = []
    for key in ('models', 'training_states'):
        folder = opt['path'].get(key)
        for path in remove_stale_temp_files(folder) if folder else []:
            notes.append(f'removed {path}: the temporary file of a save that was cut off')
    return notes


def log_resume_notes(opt: dict, logger: Any) -> None:
    """Log what the start of training skipped or removed (``opt['resume_notes']``) as warnings, once.

    Args:
        opt: The options.
        logger: BasicSR's logger (set up after the training state is loaded, hence this second step).
    """
    for note in opt.pop(RESUME_NOTES_KEY, None) or []:
        logger.warning(note)


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
