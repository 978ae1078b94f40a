"""Pre-train the FER classifier (network_fer of the SR-FER recipes) with mmengine's Runner and mmpretrain.

The command line of :func:`srfer_plugin.fer_pretrain.train_fer`. Example::

    srfer generate-synthetic-faces --out datasets/synthetic_fer
    srfer train-fer srfer::fer/resnet18_fer7.py --data-root datasets/synthetic_fer --device cpu

The images of every split the run reads are decoded first (bad ones are listed before training). At the end
``fer_final.pth`` is written, then the final model is tested on the test split (skipped, with a note, when the data
has none). An earlier run's results in the work dir are moved to ``archived_<time>/`` (not with ``--resume``). The
work dir holds:

* ``fer_test_accuracy.json``: the HR test accuracy, the checkpoint paths and the settings;
* ``fer_final.pth``: ``{'state_dict': ..., 'meta': {...}}`` (tensors and plain Python types only), loadable with
  ``torch.load(path, weights_only=True)``;
* the Runner checkpoints ``epoch_N.pth`` / ``best_accuracy_top1_epoch_N.pth`` (they also hold an mmengine
  ``HistoryBuffer`` and need the plugin's safe loader);
* with ``--pretrained`` (or a config ``load_from``): ``init_weights.pth``, the tensors of that checkpoint that fit the
  model, read with the safe loader; the Runner starts from it. Start from ImageNet weights on real data, e.g.::

    srfer train-fer srfer::fer/resnet18_fer7.py --data-root datasets/RAF-DB \\
        --pretrained https://download.openmmlab.com/mmclassification/v0/resnet/resnet18_8xb32_in1k_20210831-fbbb1da6.pth

Other classifiers (MobileNetV3, ConvNeXt, DeiT) and the augmentation: docs/fer_classifiers.md.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

from srfer_plugin.utils.cli_args import at_least


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Train the FER classifier with mmpretrain (mmengine Runner).')
    parser.add_argument('config', help='mmpretrain config, e.g. srfer::fer/resnet18_fer7.py')
    parser.add_argument('--work-dir', help='output folder (default: work_dirs/<config name>)')
    parser.add_argument('--data-root', help='dataset root in the srfer_plugin FER layout (overrides the config)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, key=value')
    parser.add_argument('--max-epochs', type=at_least(1), help='training epochs; the epoch-based LR schedule follows')
    parser.add_argument(
        '--device', default='auto', choices=['auto', 'cpu', 'cuda'], help='cpu hides every GPU; auto lets mmengine pick'
    )
    parser.add_argument('--seed', type=int, default=None, help='random seed (overrides randomness.seed)')
    parser.add_argument('--reuse', action='store_true', help='keep an earlier run with the same settings')
    parser.add_argument(
        '--pretrained',
        help='checkpoint (path or http(s) URL) to start from, e.g. ImageNet weights; read with the safe loader, '
        'tensors that do not fit the model (the 1000-class head) are skipped. Replaces the config load_from',
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    from srfer_plugin.fer_pretrain import SUMMARY_NAME, train_fer
    from srfer_plugin.fer_pretrain_checks import FERDataError
    from srfer_plugin.utils.run_lock import FolderInUseError

    build_options = {
        key: getattr(args, key) for key in ('work_dir', 'data_root', 'cfg_options', 'seed', 'device', 'max_epochs')
    }
    try:
        summary = train_fer(args.config, reuse=args.reuse, pretrained=args.pretrained, **build_options)
    except (FERDataError, FolderInUseError) as err:  # found before the Runner was built: nothing was written
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'accuracy json:            {osp.join(osp.dirname(summary["fer_final"]), SUMMARY_NAME)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
