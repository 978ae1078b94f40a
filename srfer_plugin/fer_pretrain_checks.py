"""What ``srfer train-fer`` (:func:`srfer_plugin.fer_pretrain.train_fer`) checks before training, and what it keeps.

- **Epochs.** ``--max-epochs`` and ``train_cfg.max_epochs`` must be at least 1: no epoch would leave the classifier
  untrained and still write ``fer_final.pth``.
- **Splits.** The train split, and the val and test splits when the config validates and tests, must be listed
  (``meta_info_<split>.txt``). A missing test split is allowed (as ``prepare-dataset --split train=0.8,val=0.2``
  writes): the run trains, writes ``fer_final.pth`` and skips the test. A missing train or val split is an error.
- **Classes.** The number of classes the dataset names (``classes.txt`` in ``--data-root``, the config's
  ``classes``, or the class folders) must equal the config's ``model.head.num_classes``, and every label of every split
  must fit the head: a larger dataset would crash at the first step, a smaller one would train a head for classes the
  data does not have. The error says how to fix it (``--cfg-options model.head.num_classes=N``).
- **Images.** Every image of those splits is decoded up front with the SR side's check
  (:func:`~srfer_plugin.data.image_check.check_disk_images`, cached), so a truncated file stops the run with its
  split and path before the first epoch instead of in a data-loader worker.
- **Earlier results are kept.** ``fer_final.pth``, ``fer_test_accuracy.json`` and (unless the run resumes) the
  Runner checkpoints and ``init_weights.pth`` of an earlier run in the work dir are moved into
  ``archived_<time>/`` inside it once the new Runner is built, before it trains, as ``srfer export`` and
  ``srfer infer`` keep earlier outputs. (Each run's logs and config copy are in its own ``<time>/`` folder.)
"""

from __future__ import annotations

import copy
import glob
import os.path as osp
from typing import Any

from srfer_plugin.utils.formatting import first_of

# (split, dataloader key, loop key: the Runner reads the split when the loop is configured; None: always)
SPLIT_LOADERS: tuple[tuple[str, str, str | None], ...] = (
    ('train', 'train_dataloader', None),
    ('val', 'val_dataloader', 'val_cfg'),
    ('test', 'test_dataloader', 'test_cfg'),
)
# Bad images named in the error; the rest are counted.
LISTED_BAD_IMAGES = 20


class FERDataError(ValueError):
    """A split the run reads is missing, or some of its images cannot be decoded."""


def check_max_epochs(cfg, max_epochs: int | None) -> None:
    """Refuse fewer than one training epoch (``--max-epochs`` or the config's ``train_cfg.max_epochs``).

    Raises:
        ValueError: Naming the setting and its value.
    """
    if max_epochs is not None:
        if int(max_epochs) < 1:
            raise ValueError(f'--max-epochs must be at least 1, got {max_epochs} (no epoch would train the classifier)')
        return
    configured = (cfg.get('train_cfg') or {}).get('max_epochs')
    if configured is not None and int(configured) < 1:
        raise ValueError(
            f'train_cfg.max_epochs must be at least 1, got {configured} (from {cfg.filename} or --cfg-options)'
        )


def _lazy_dataset(dataset_cfg: Any):
    """The dataset of a dataloader config, built without reading its annotations and without a pipeline."""
    from mmpretrain.registry import DATASETS

    cfg = copy.deepcopy(dataset_cfg)
    if 'pipeline' in cfg:
        cfg['pipeline'] = []
    cfg['lazy_init'] = True
    return DATASETS.build(cfg)


def _image_paths(infos: list[dict[str, Any]]) -> list[str]:
    """The absolute image paths of a fully initialised dataset's data infos, each once, in order."""
    paths = (info.get('img_path') for info in infos)
    return list(dict.fromkeys(osp.abspath(p) for p in paths if p))


def _classes_source(cfg, loader_key: str, dataset) -> str:
    """Where the class names of a split's dataset come from, for error messages."""
    from srfer_plugin.data.fer_layout import CLASSES_FILE

    classes_file = osp.join(getattr(dataset, 'data_root', '') or '', CLASSES_FILE)
    if osp.isfile(classes_file):  # set_data_root reads it into every loader
        return classes_file
    if cfg[loader_key].dataset.get('classes') is not None:
        return f"the config's {loader_key}.dataset.classes"
    return f'the class folders of {getattr(dataset, "img_prefix", "") or dataset.data_root!r}'


def check_classes(cfg, split: str, loader_key: str, dataset, infos: list[dict[str, Any]]) -> None:
    """Refuse a split whose class count or labels do not fit the config's ``model.head.num_classes``.

    Args:
        cfg: The training config.
        split: ``train``, ``val`` or ``test``.
        loader_key: The split's dataloader key (``train_dataloader``, ...).
        dataset: The split's fully initialised dataset.
        infos: Its data infos (``gt_label`` each).

    Raises:
        FERDataError: One line naming the dataset's classes (or label file), ``model.head.num_classes`` and the fix.
    """
    head = (cfg.get('model') or {}).get('head') or {}
    num_classes = head.get('num_classes')
    if num_classes is None:
        return
    head_text = f"the config's model.head.num_classes is {num_classes} ({cfg.filename or 'config'})"
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    if classes is not None and len(classes) != int(num_classes):
        source = _classes_source(cfg, loader_key, dataset)
        raise FERDataError(
            f'{split} split: the dataset has {len(classes)} classes ({source}: {", ".join(map(str, classes))}) but '
            f'{head_text}; pass --cfg-options model.head.num_classes={len(classes)} (or use data with '
            f'{num_classes} classes); nothing was trained or written'
        )
    labels = [info['gt_label'] for info in infos if info.get('gt_label') is not None]
    bad = [label for label in labels if not 0 <= label < int(num_classes)]
    if bad:
        where = getattr(dataset, 'ann_file', '') or _classes_source(cfg, loader_key, dataset)
        if classes is None:
            fix = f'pass --cfg-options model.head.num_classes={max(labels) + 1} or fix the labels'
        else:
            fix = f'fix the labels (0 to {len(classes) - 1}: {_classes_source(cfg, loader_key, dataset)})'
        raise FERDataError(
            f'{split} split: {where} holds label {bad[0]}, outside [0, {num_classes}): {head_text}; {fix}; nothing '
            'was trained or written'
        )


def read_splits(cfg) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The image paths of every split the Runner of ``cfg`` reads.

    Args:
        cfg: The training config (:func:`srfer_plugin.fer_pretrain.build_config`).

    Returns:
        ``(images, missing)``: ``images[split]``, the image paths of each listed split; ``missing['test']``, the
        annotation file of a test split that does not exist (the test is then skipped).

    Raises:
        FERDataError: The train split, or the val split of a config that validates, is missing or cannot be read, or
            a split's classes or labels do not fit ``model.head.num_classes`` (:func:`check_classes`).
    """
    images: dict[str, list[str]] = {}
    missing: dict[str, str] = {}
    for split, loader_key, loop_key in SPLIT_LOADERS:
        loader = cfg.get(loader_key)
        if not loader or (loop_key and cfg.get(loop_key) is None):
            continue
        dataset = _lazy_dataset(loader.dataset)
        ann_file = getattr(dataset, 'ann_file', '') or ''
        if ann_file and not osp.isfile(ann_file):
            if split == 'test':
                missing[split] = ann_file
                continue
            raise FERDataError(
                f'{split} split: {ann_file!r} does not exist (--data-root {dataset.data_root!r}); '
                + (
                    'the Runner validates every epoch and keeps the best checkpoint by val accuracy: '
                    if split == 'val'
                    else ''
                )
                + 'write the split with srfer prepare-dataset --split, e.g. train=0.8,val=0.1,test=0.1'
            )
        try:
            dataset.full_init()
        except (OSError, ValueError, KeyError, IndexError, AssertionError) as err:
            raise FERDataError(f'{split} split ({ann_file or dataset.data_root!r}) cannot be read: {err}') from err
        infos = [dataset.get_data_info(i) for i in range(len(dataset))]
        check_classes(cfg, split, loader_key, dataset, infos)
        images[split] = _image_paths(infos)
    return images, missing


def check_split_images(images: dict[str, list[str]]) -> None:
    """Decode every image of every split (cached, as the SR datasets check theirs); name the bad ones.

    Args:
        images: ``{split: absolute image paths}`` (:func:`read_splits`).

    Raises:
        FERDataError: Some images are missing or do not decode; the message lists them with their split.
    """
    from srfer_plugin.data.image_check import check_disk_images

    bad: list[str] = []
    for split, paths in images.items():
        if not paths:
            continue
        root = osp.commonpath([osp.dirname(p) for p in paths])
        checks = check_disk_images(root, [osp.relpath(p, root) for p in paths], f'Checking {split} images')
        bad += [f'{split}: {path}: {check.problem}' for path, check in zip(paths, checks) if not check.ok]
    if bad:
        listed = '\n  '.join(first_of(bad, LISTED_BAD_IMAGES))
        raise FERDataError(
            f'{len(bad)} image(s) of the dataset cannot be used (checked before anything ran):\n'
            f'  {listed}\nReplace them, or remove their lines from the meta_info_<split>.txt files'
        )


def earlier_results(work_dir: str, results: tuple[str, ...], fresh_results: tuple[str, ...], resume: bool) -> list[str]:
    """The entries of ``work_dir`` that the new run would overwrite, to be archived first.

    Args:
        work_dir: The run's work dir.
        results: Files every run writes (``fer_final.pth``, ``fer_test_accuracy.json``).
        fresh_results: Files only a run that does not resume writes (``init_weights.pth``).
        resume: The run resumes from the Runner checkpoints, which then stay where they are.

    Returns:
        Names of existing entries of ``work_dir``.
    """
    if not osp.isdir(work_dir):
        return []
    names = [n for n in results if osp.lexists(osp.join(work_dir, n))]
    if resume:
        return names
    found = [n for n in fresh_results if osp.lexists(osp.join(work_dir, n))]
    for pattern in ('last_checkpoint', 'epoch_*.pth', 'best_*.pth'):
        found += sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, pattern)))
    return names + [n for n in dict.fromkeys(found) if n not in names]
