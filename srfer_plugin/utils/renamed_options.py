"""Option keys that were renamed or replaced: each fails with a message that names what to write instead.

There are no silent aliases: an option file with an old key stops before anything is built, so a run never trains
with a setting it did not read.
"""

from __future__ import annotations

from collections.abc import Mapping

# (key path, what to write instead). The path.*_fer keys are also what BasicSR's check_resume writes when a run is
# resumed; they are refused only in the options a user gives.
RENAMED_OPTIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ('network_fer', 'freeze'),
        'train.train_network_fer (true trains the classifier: joint learning; the default, false, keeps it frozen)',
    ),
    (('train', 'freeze_network_g'), 'train.train_network_g (false keeps network_g fixed; the default is true)'),
    (
        ('train', 'joint_opt', 'warmup_iter'),
        'train.joint_opt.fer_frozen_iters (the classifier stays frozen for the first N iterations; '
        "train.warmup_iter is BasicSR's learning-rate warm-up)",
    ),
    (
        ('path', 'pretrain_network_fer'),
        "network_fer.checkpoint (the one way to give the classifier's weights, in any format: an mmpretrain "
        "checkpoint, a state dict or a joint run's net_fer_<iter>.pth)",
    ),
    (('path', 'param_key_fer'), 'network_fer.param_key'),
    (('path', 'strict_load_fer'), 'network_fer.strict'),
)
RESUME_WRITTEN = {('path', 'pretrain_network_fer'), ('path', 'param_key_fer')}


class RenamedOptionError(ValueError):
    """An option file uses a key that was renamed or replaced."""


def check_renamed_options(opt: Mapping, resumed: bool = False) -> None:
    """Refuse option keys that were renamed, naming the key to write instead.

    Args:
        opt: The run's options.
        resumed: The options were already pointed at a training state (``check_resume`` wrote
            ``path.pretrain_network_fer``): those keys are not refused.

    Raises:
        RenamedOptionError: One or more old keys are set (every one is listed with its new name).
    """
    found = []
    for path, instead in RENAMED_OPTIONS:
        if resumed and path in RESUME_WRITTEN:
            continue
        parent = opt
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, Mapping) else None
        if isinstance(parent, Mapping) and path[-1] in parent:
            found.append(f'{".".join(path)} is no longer read: use {instead}')
    if found:
        raise RenamedOptionError('Renamed option(s):\n  ' + '\n  '.join(found))
