"""Random-number-generator state: saved in training states, and reseeded per iteration for exact resumes."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def get_rng_states() -> dict[str, Any]:
    """The python, numpy and torch (CPU and CUDA) RNG states as plain data and tensors (weights-only loadable).

    Returns:
        A dict for :func:`set_rng_states`.
    """
    np_state = np.random.get_state()
    python_state = random.getstate()
    states: dict[str, Any] = {
        'python': [python_state[0], list(python_state[1]), python_state[2]],
        'numpy': {
            'keys': torch.from_numpy(np_state[1].astype(np.int64)),
            'pos': int(np_state[2]),
            'has_gauss': int(np_state[3]),
            'cached_gaussian': float(np_state[4]),
        },
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_states` returned.

    Args:
        states: The saved states.
    """
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    numpy_state = states['numpy']
    keys = numpy_state['keys'].cpu().numpy().astype(np.uint32)
    np.random.set_state(('MT19937', keys, numpy_state['pos'], numpy_state['has_gauss'], numpy_state['cached_gaussian']))
    torch.set_rng_state(states['torch'].cpu())
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states['cuda']])


def seed_iteration(seed: int, rank: int, iteration: int) -> None:
    """Seed python, numpy and torch RNGs from ``(seed, rank, iteration)``.

    Args:
        seed: ``manual_seed`` of the options.
        rank: Process rank.
        iteration: The iteration whose batch is about to be fetched.
    """
    state = np.random.SeedSequence([int(seed), int(rank), int(iteration)]).generate_state(3)
    random.seed(int(state[0]))
    np.random.seed(int(state[1]))
    torch.manual_seed(int(state[2]))
