"""Which training state a resumed run starts from, and which network files it loads with it.

BasicSR's ``--auto_resume`` takes the training state of the highest iteration, and ``check_resume`` then points
``path.pretrain_network_<x>`` at ``models/net_<x>_<iter>.pth`` of that iteration for every ``network_<x>`` not listed
in ``path.ignore_resume_networks``. Here:

* :func:`choose_auto_resume_state` takes the newest state whose state file and network files all load, and says
  which newer ones it skipped and why (nothing is deleted);
* :func:`point_networks_at_state` runs ``check_resume`` and then keeps the classifier right: a frozen
  ``network_fer`` is never saved, so it is loaded from what the run was started with (``network_fer.checkpoint``);
  a trained one always from its ``net_fer_<iter>.pth``;
* :func:`check_iterations_left` refuses a state that is already at ``train.total_iter`` or past it;
* :func:`move_aside_newer_checkpoints` keeps the checkpoints the resumed run would save over: every file of an
  iteration after the resumed one (``models/<net>_<iter>.pth``, ``training_states/<iter>.state``; damaged or
  not) and the earlier run's ``models/*_latest.pth`` go to ``experiments/<name>/superseded_<time>/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Mapping

import torch
from basicsr.utils import check_resume
from basicsr.utils.misc import get_time_str

from srfer_plugin.utils.checkpoint import CheckpointReadError, safe_load

FER_NETWORK = 'network_fer'
# Checkpoint names with an iteration: BasicSR's ``<net>_<iter>.pth`` (models/) and ``<iter>.state`` (training_states/).
ITERATION_FILE = {'models': re.compile(r'.+_(\d+)\.pth'), 'training_states': re.compile(r'(\d+)\.state')}
LATEST_FILE = re.compile(r'.+_latest\.pth')  # written once, when a run ends
SUPERSEDED_PREFIX = 'superseded_'


class ResumeStateError(ValueError):
    """A training state cannot be resumed (nothing left to train, or no state can be read)."""


def is_frozen_classifier(opt: dict) -> bool:
    """Whether the options hold a frozen ``network_fer`` (never saved with the checkpoints).

    Args:
        opt: The run's options.

    Returns:
        True for a ``network_fer`` section without ``train.train_network_fer: true``.
    """
    train_opt = opt.get('train')
    trained = isinstance(train_opt, Mapping) and train_opt.get('train_network_fer') is True
    return isinstance(opt.get(FER_NETWORK), Mapping) and not trained


def resumed_network_files(opt: dict, resume_iter: int) -> dict[str, str]:
    """The network files a run resumed at ``resume_iter`` loads from its ``models`` folder.

    ``check_resume``'s list (every ``network_<x>`` not in ``path.ignore_resume_networks``), except that a frozen
    ``network_fer`` is never among them and a trained one always is.

    Args:
        opt: The run's options (``path.models``, ``path.ignore_resume_networks``, the ``network_*`` sections).
        resume_iter: The iteration of the training state.

    Returns:
        ``{'pretrain_network_<x>': '<models>/net_<x>_<iter>.pth'}``.
    """
    ignored = opt['path'].get('ignore_resume_networks') or []
    files = {}
    for network in (key for key in opt if key.startswith('network_')):
        if network == FER_NETWORK:
            if is_frozen_classifier(opt):
                continue
        elif network in ignored:
            continue
        name = network.replace('network_', '')
        files[f'pretrain_{network}'] = os.path.join(opt['path']['models'], f'net_{name}_{resume_iter}.pth')
    return files


def read_training_state(path: str, device: torch.device | str = 'cpu') -> dict:
    """Load a training state with the safe loader and check that it is one.

    Args:
        path: The ``<iter>.state`` file.
        device: Where to put its tensors.

    Returns:
        The state (``iter``, ``epoch``, optimizers, ...).

    Raises:
        CheckpointReadError: The file is empty, truncated or not a checkpoint.
        ValueError: The file loads but holds no BasicSR training state.
    """
    state = safe_load(path, map_location=device)
    if not isinstance(state, dict) or not all(isinstance(state.get(key), int) for key in ('iter', 'epoch')):
        raise ValueError(f'{path!r} is not a BasicSR training state (no integer iter and epoch)')
    return state


def network_file_problem(opt: dict, resume_iter: int) -> str | None:
    """Load every network file a resume at ``resume_iter`` needs; say what is wrong with the first that fails.

    Args:
        opt: The run's options.
        resume_iter: The iteration of the training state.

    Returns:
        None when all load, else a message naming the file and its problem.
    """
    for path in resumed_network_files(opt, resume_iter).values():
        if not os.path.isfile(path):
            return f'its network file {path} is missing'
        try:
            weights = safe_load(path)
        except FileNotFoundError:
            return f'its network file {path} is missing'
        except CheckpointReadError as err:
            return str(err)
        if not isinstance(weights, Mapping):
            return f'its network file {path} holds a {type(weights).__name__}, not a dict of weights'
    return None


def _state_files(state_folder: str) -> tuple[list[tuple[int, str]], list[str]]:
    """``(iter, path)`` of the ``<iter>.state`` files, newest first, and notes on the ones with other names."""
    states, notes = [], []
    for name in sorted(os.listdir(state_folder)):
        path = os.path.join(state_folder, name)
        if not name.endswith('.state') or not os.path.isfile(path):
            continue
        stem = name[: -len('.state')]
        if stem.isdigit():
            states.append((int(stem), path))
        else:
            notes.append(f'auto_resume: skipped {path}: its name is not <iteration>.state')
    return sorted(states, reverse=True), notes


def choose_auto_resume_state(
    opt: dict, state_folder: str, device: torch.device | str = 'cpu'
) -> tuple[str | None, dict | None, list[str]]:
    """The newest training state of ``state_folder`` whose state file and network files all load.

    A state that cannot be read, or whose network files (:func:`resumed_network_files`) are missing or cannot be
    read, is skipped with a note; nothing is deleted. When every readable state lacks a network file, the newest
    readable state is taken anyway (loading its networks then fails and names the file).

    Args:
        opt: The run's options.
        state_folder: ``experiments/<name>/training_states``.
        device: Where to put the state's tensors.

    Returns:
        ``(path, state, notes)``; ``(None, None, notes)`` when the folder holds no ``<iter>.state`` file.

    Raises:
        ResumeStateError: There are training states but none of them can be read.
        UnsafeCheckpointError: A file references code outside the allow-list (never skipped silently).
    """
    if not os.path.isdir(state_folder):
        return None, None, []
    candidates, notes = _state_files(state_folder)
    newest_readable = None
    for _, path in candidates:
        try:
            state = read_training_state(path, device)
        except FileNotFoundError:  # moved aside by rank 0 meanwhile (move_aside_newer_checkpoints)
            notes.append(f'auto_resume: skipped {path}: it is gone')
            continue
        except CheckpointReadError as err:
            notes.append(f'auto_resume: skipped {path}: the file is {err.problem}')
            continue
        except ValueError as err:
            notes.append(f'auto_resume: skipped {path}: {err}')
            continue
        problem = network_file_problem(opt, int(state['iter']))
        if problem is None:
            return path, state, notes
        notes.append(f'auto_resume: skipped {path}: {problem}')
        if newest_readable is None:
            newest_readable = (path, state)
    if newest_readable is not None:
        path, state = newest_readable
        notes.append(f'auto_resume: no training state has all its network files; resuming from {path}')
        return path, state, notes
    if candidates:
        raise ResumeStateError(
            f'--auto_resume: none of the {len(candidates)} training state(s) in {state_folder} can be read:\n  '
            + '\n  '.join(notes)
            + '\nMove them away to start over in a fresh folder, or run without --auto_resume'
        )
    return None, None, notes


def point_networks_at_state(opt: dict, resume_iter: int) -> None:
    """``check_resume`` (``path.pretrain_network_<x>`` to the state's networks), with the classifier kept right.

    A frozen ``network_fer`` keeps what the run was started with (``network_fer.checkpoint``, read by the network
    itself), listed in ``path.ignore_resume_networks`` or not; a trained one resumes from ``net_fer_<iter>.pth``
    even when listed.

    Args:
        opt: The run's options, with ``path.resume_state`` set; changed in place.
        resume_iter: The iteration of the training state.

    Raises:
        FileNotFoundError: A frozen classifier's file is missing (the message names it).
    """
    check_resume(opt, resume_iter)
    if FER_NETWORK not in opt:
        return
    if is_frozen_classifier(opt):
        for key in ('pretrain_network_fer', 'param_key_fer'):
            opt['path'].pop(key, None)
        check_frozen_classifier_files(opt)
    else:
        opt['path'].update(resumed_network_files(opt, resume_iter))


def check_frozen_classifier_files(opt: dict) -> None:
    """Fail when a file the frozen classifier is loaded from is missing.

    Args:
        opt: The run's options (``network_fer.checkpoint``, ``path.resume_state``).

    Raises:
        FileNotFoundError: The message names the file, the option that gives it and the training state.
    """
    path = opt[FER_NETWORK].get('checkpoint')
    if path and not os.path.isfile(path):
        raise FileNotFoundError(
            f'resuming from {opt["path"].get("resume_state")}: the frozen classifier of this run, '
            f'network_fer.checkpoint = {path!r}, does not exist. A frozen classifier is not saved with the '
            'checkpoints; the resumed run must read the same file the run started with: put it back'
        )


def check_iterations_left(opt: dict, state_path: str, resume_iter: int) -> str | None:
    """Refuse a training state that leaves nothing to train.

    A state at ``train.total_iter`` whose run never wrote ``net_g_latest.pth`` (killed after its last
    checkpoint) may still finish: the run then saves its final networks and validates, and a note says so.

    Args:
        opt: The run's options (``train.total_iter``, ``path.models``).
        state_path: The training state (for the messages).
        resume_iter: Its iteration.

    Returns:
        None, or the note for the state at ``total_iter`` of an unfinished run.

    Raises:
        ResumeStateError: The state is past ``train.total_iter``, or at it in a finished run.
    """
    total_iter = int(opt['train']['total_iter'])
    if resume_iter < total_iter:
        return None
    latest = os.path.join(opt['path']['models'], 'net_g_latest.pth')
    if resume_iter == total_iter and not os.path.isfile(latest):
        return (
            f'{state_path} is at iteration {resume_iter} = train.total_iter: no iteration is left; the run only '
            'saves its final networks (*_latest.pth) and validates'
        )
    done = 'past it' if resume_iter > total_iter else f'and the run finished ({latest} exists)'
    raise ResumeStateError(
        f'{state_path} is at iteration {resume_iter}, train.total_iter is {total_iter} ({done}): there is nothing '
        'left to train. To train further, raise train.total_iter (in the option file, or with --force_yml '
        'train:total_iter=N) and resume again; to start over, run without --auto_resume and path.resume_state'
    )


def newer_checkpoint_files(opt: dict, resume_iter: int) -> list[tuple[str, str]]:
    """The files a run resumed at ``resume_iter`` would save over, as ``(folder key, file name)``.

    These are the checkpoints of every later iteration in ``path.models`` and ``path.training_states`` (whatever
    their network: ``net_g``, ``net_d``, ``net_fer``, ``net_g_ema``...), and the ``*_latest.pth`` files of
    ``path.models``: a run writes those only when it ends, so they are the earlier run's finished networks, and the
    resumed run writes its own (:func:`check_iterations_left` has refused a finished run at ``total_iter``).

    Args:
        opt: The run's options (``path.models``, ``path.training_states``).
        resume_iter: The iteration the run resumes from.

    Returns:
        The files, ``models`` first, each folder in name order.
    """
    files = []
    for key, pattern in ITERATION_FILE.items():
        folder = opt['path'].get(key)
        for name in sorted(os.listdir(folder)) if folder and os.path.isdir(folder) else []:
            match = pattern.fullmatch(name)
            later = match is not None and int(match.group(1)) > resume_iter
            if (later or (key == 'models' and LATEST_FILE.fullmatch(name))) and os.path.isfile(
                os.path.join(folder, name)
            ):
                files.append((key, name))
    return files


def move_aside_newer_checkpoints(opt: dict, resume_iter: int, keep: Iterable[str] = ()) -> list[str]:
    """On rank 0, move what a run resumed at ``resume_iter`` would save over into ``superseded_<time>/``.

    The files of :func:`newer_checkpoint_files` go to ``<experiments_root>/superseded_<time>/models/`` and
    ``.../training_states/`` (same names), damaged or not: the resumed run saves at those iterations again, and a
    file it did not write is never replaced. Files the run reads (``keep``) stay. Other ranks move nothing.

    Args:
        opt: The run's options (``rank``, ``path.experiments_root``, ``path.models``, ``path.training_states``).
        resume_iter: The iteration the run resumes from.
        keep: Files the resumed run reads (its state, networks, classifier): never moved.

    Returns:
        Notes for the log: which files moved where (none when nothing moved).
    """
    if opt.get('rank', 0) != 0:
        return []
    kept = {os.path.realpath(path) for path in keep if path}
    files = [
        (key, name)
        for key, name in newer_checkpoint_files(opt, resume_iter)
        if os.path.realpath(os.path.join(opt['path'][key], name)) not in kept
    ]
    if not files:
        return []
    root = opt['path'].get('experiments_root') or os.path.dirname(os.path.abspath(opt['path']['models']))
    folder = base = os.path.join(root, SUPERSEDED_PREFIX + get_time_str())
    n = 1
    while os.path.lexists(folder):
        folder, n = f'{base}_{n}', n + 1
    notes = [
        f'resuming from iteration {resume_iter}: moved {len(files)} checkpoint file(s) the resumed run would save '
        f'over (later iterations, *_latest.pth of the earlier run) to {folder}; move them back to use them'
    ]
    for key in ('training_states', 'models'):  # states first: a move cut off halfway leaves no later state behind
        names = [name for folder_key, name in files if folder_key == key]
        if names:
            os.makedirs(os.path.join(folder, key))
        for name in names:
            src, dst = os.path.join(opt['path'][key], name), os.path.join(folder, key, name)
            shutil.move(src, dst)
            notes.append(f'moved {src} to {dst}')
    return notes
