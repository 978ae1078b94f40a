"""The checks of an SR-FER model's classifier options (``network_fer``, ``train``, datasets) that need no model.

:func:`check_training_options` runs when the options are parsed, before BasicSR creates the experiment folder;
:class:`~srfer_plugin.models.fer_guidance.FERGuidance` runs :func:`hr_cache_enabled` and
:func:`classifier_batch_size` again and :func:`check_dataset_classes` (which needs the built classifier's
``num_classes``) as it builds.
"""

from __future__ import annotations

import os

from basicsr.utils import get_root_logger

from srfer_plugin.data.fer_layout import read_meta_info, resolve_classes
from srfer_plugin.models.consistency_weights import ConsistencyWeights
from srfer_plugin.models.joint_learning import check_fer_options


def hr_cache_enabled(opt: dict, train_opt: dict) -> bool:
    """Whether ``train.cache_hr_reference`` is on, checked.

    Raises:
        ValueError: The value is not a boolean, the classifier is trained, no consistency loss reads the HR
            face, or the training set is not a ``PairedFERDataset`` (whose faces are keyed by path and flip).
    """
    enabled = train_opt.get('cache_hr_reference', False)
    if not isinstance(enabled, bool):
        raise ValueError(f'train.cache_hr_reference must be true or false; got {enabled!r}')
    if not enabled:
        return False
    if train_opt.get('train_network_fer') is True:
        raise ValueError(
            'train.cache_hr_reference: a classifier that trains (train.train_network_fer: true) reads HR faces '
            'differently at every step; only a frozen classifier can be cached'
        )
    if not any(train_opt.get(key) for key in ('attention_opt', 'prediction_opt')):
        raise ValueError('train.cache_hr_reference: no attention_opt or prediction_opt reads HR faces')
    train_set = (opt.get('datasets') or {}).get('train')
    dataset_type = (train_set or {}).get('type')
    if train_set is not None and dataset_type != 'PairedFERDataset':  # none: the model is fed directly
        raise ValueError(
            f'train.cache_hr_reference needs datasets.train of type PairedFERDataset (its faces are known by '
            f'path and flip, without random crops); got {dataset_type!r}'
        )
    return True


def classifier_batch_size(opt: dict, train_opt: dict) -> int | None:
    """``train.fer_batch_size``, checked: the faces of each training batch that the classifier reads (None: all).

    The batch is the one a training step sees: ``batch_size_per_gpu`` in a distributed run (per process), times
    ``num_gpu`` with DataParallel.

    Raises:
        ValueError: The value is not a whole number >= 1, no classifier loss is set, ``consistency_weights`` is
            set (its gradient shares are of whole batches), or it is not below the step's batch (then it would
            change nothing).
    """
    size = train_opt.get('fer_batch_size')
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f'train.fer_batch_size must be a whole number >= 1 (faces per batch); got {size!r}')
    if not any(train_opt.get(key) for key in ('attention_opt', 'prediction_opt', 'fer_opt')):
        raise ValueError(f'train.fer_batch_size ({size}): no attention_opt, prediction_opt or fer_opt reads faces')
    if train_opt.get('consistency_weights') is not None:
        raise ValueError(
            f'train.fer_batch_size ({size}) with train.consistency_weights: the rule measures gradient shares over '
            'whole batches (a sub-batch inflates the consistency gradient); set the weights by hand or drop '
            'fer_batch_size'
        )
    batch = ((opt.get('datasets') or {}).get('train') or {}).get('batch_size_per_gpu')
    if not isinstance(batch, int) or isinstance(batch, bool):
        return size
    num_gpu = opt.get('num_gpu')
    if not opt.get('dist') and isinstance(num_gpu, int) and num_gpu > 1:  # DataParallel: one batch for all GPUs
        batch *= num_gpu
    if size >= batch:
        raise ValueError(
            f'train.fer_batch_size ({size}) must be below the batch of a training step ({batch}: '
            'datasets.train.batch_size_per_gpu, times num_gpu without distributed training); leave it out for the '
            'classifier to read every face'
        )
    return size


def check_training_options(opt: dict, loss_options: tuple[str, ...]) -> None:
    """Every classifier option a training reads, checked from the options alone (before any folder exists).

    Args:
        opt: The run's options.
        loss_options: The ``train`` loss keys of the model.

    Raises:
        ValueError: An option is wrong, or ``network_fer.checkpoint`` names no file (the message names it).
    """
    check_fer_options(opt, loss_options)
    train_opt = opt.get('train') or {}
    hr_cache_enabled(opt, train_opt)
    classifier_batch_size(opt, train_opt)
    if train_opt.get('consistency_weights') is not None:
        ConsistencyWeights(train_opt['consistency_weights'], train_opt)
    checkpoint = opt['network_fer'].get('checkpoint')
    if checkpoint is not None and not (isinstance(checkpoint, str) and os.path.isfile(checkpoint)):
        raise ValueError(
            f'network_fer.checkpoint: {checkpoint!r} is not a file; pre-train the classifier first (see README.md, '
            'sections "Preparing datasets" and "Pre-train the classifier") or point the key at its weights'
        )


def check_dataset_classes(opt: dict, num_classes: int, class_names: list[str] | None = None) -> None:
    """Every FER dataset names ``num_classes`` classes, or (naming none) has labels in ``[0, num_classes)``; a
    dataset that names the classifier's classes (``class_names``, from its weights file) names them in its order.

    Args:
        opt: The parsed options.
        num_classes: The classifier's number of logits.
        class_names: The classifier's class names, or None when its weights do not record them.

    Raises:
        ValueError: A dataset's classes or labels do not fit the classifier, or name its classes in another order
            (label i would be scored as another expression; the message names the dataset and both orders).
    """
    for phase, dataset_opt in (opt.get('datasets') or {}).items():
        if dataset_opt.get('type') != 'PairedFERDataset':
            continue
        try:
            classes = resolve_classes(dataset_opt)
        except (OSError, ValueError):
            continue  # the dataset reports its own path errors
        if classes is not None and len(classes) != num_classes:
            raise ValueError(
                f'datasets.{phase} has {len(classes)} classes {classes}, but network_fer.num_classes is {num_classes}'
            )
        if classes is not None and class_names and len(class_names) == num_classes:
            _check_class_order(phase, list(classes), list(class_names))
        meta_info = dataset_opt.get('meta_info_file')
        if classes is None and meta_info and os.path.isfile(meta_info):
            try:
                keep_duplicates = dataset_opt.get('meta_info_duplicates') == 'keep'
                read_meta_info(meta_info, num_classes, allow_duplicates=keep_duplicates)
            except ValueError as err:
                raise ValueError(
                    f'datasets.{phase}.meta_info_file: {err}, the classes of network_fer (num_classes '
                    f'{num_classes}); with no classes.txt beside it, labels must fit the classifier'
                ) from err


def _check_class_order(phase: str, classes: list[str], class_names: list[str]) -> None:
    """Same names (ignoring case) in another order: every accuracy and ``fer_opt`` label would be wrong."""
    folded = [str(name).strip().lower() for name in classes]
    wanted = [str(name).strip().lower() for name in class_names]
    if folded != wanted and sorted(folded) == sorted(wanted):
        raise ValueError(
            f'datasets.{phase} names its classes in the order {classes}, but network_fer was trained with '
            f'{class_names}: label i would be read as another expression. Write a classes.txt in the dataset root '
            "with the classifier's order (one name per line), or convert it with srfer prepare-dataset"
        )
    if folded != wanted:
        get_root_logger().warning(
            f'datasets.{phase} names its classes {classes}, network_fer was trained with {class_names}; they are '
            'matched by index'
        )
