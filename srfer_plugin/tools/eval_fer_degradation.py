"""Accuracy of a trained FER classifier on HR test images and on x4 bicubic-restored ones (the calibration check).

Example::

    srfer eval-fer-degradation srfer::fer/resnet18_fer7.py work_dirs/fer/fer_final.pth \\
        --data-root datasets/synthetic_fer --split test --scale 4

Each test image is read (BGR uint8), degraded as ``srfer_plugin.data.degradations.bicubic_roundtrip`` does
(MATLAB-bicubic down by ``scale`` on float [0, 1], cv2 bicubic back up, rounded to uint8 as if saved) and classified
with the config's ``data_preprocessor``. Prints and optionally writes (``--out``) a json with both accuracies.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Any

import numpy as np

from srfer_plugin.utils.cli_args import at_least


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='FER accuracy on HR vs bicubic-restored images.')
    parser.add_argument('config', help='mmpretrain FER config (model + data_preprocessor)')
    parser.add_argument('checkpoint', help="fer_final.pth ({'state_dict', 'meta'}) written by train_fer.py")
    parser.add_argument('--data-root', required=True, help='dataset root in the srfer_plugin FER layout')
    parser.add_argument('--split', default='test')
    parser.add_argument('--scale', type=at_least(1), default=4)
    parser.add_argument('--batch-size', type=at_least(1), default=64)
    parser.add_argument('--out', help='write the result json here')
    return parser.parse_args(argv)


def evaluate(
    config: str, checkpoint: str, data_root: str, split: str = 'test', scale: int = 4, batch_size: int = 64
) -> dict[str, Any]:
    """Classify the split at HR and after the bicubic round trip.

    Args:
        config: mmpretrain config path.
        checkpoint: Plain checkpoint with a ``state_dict`` (loaded with ``weights_only=True``).
        data_root: Dataset root.
        split: Split whose ``meta_info_<split>.txt`` is evaluated.
        scale: Down-sampling factor of the round trip.
        batch_size: Images per forward pass.

    Returns:
        ``{'hr_accuracy', 'bicubic_accuracy', 'drop', 'num_images', 'confusion_hr', 'confusion_bicubic', ...}``
        (accuracies in percent).

    Raises:
        FERDataError: Images of the split are missing or do not decode (all named, before any is classified).
    """
    import cv2
    import torch
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules

    from srfer_plugin.data.fer_layout import meta_info_name, read_classes, read_meta_info
    from srfer_plugin.fer_pretrain_checks import check_split_images
    from srfer_plugin.synthetic.calibration import accuracy_and_confusion, restored_uint8
    from srfer_plugin.utils.checkpoint import safe_load
    from srfer_plugin.utils.shipped_options import resolve_path

    classes = read_classes(osp.join(data_root, 'classes.txt'))
    items = read_meta_info(osp.join(data_root, meta_info_name(split)), len(classes))
    check_split_images({split: [osp.join(data_root, p) for p, _ in items]})  # a bad image stops it before any pass
    register_all_modules()
    cfg = Config.fromfile(resolve_path(config))
    model = MODELS.build({**cfg.model, 'data_preprocessor': cfg.get('data_preprocessor')})
    state = safe_load(checkpoint)
    model.load_state_dict(state.get('state_dict', state))
    model.eval()
    labels = np.array([label for _, label in items])
    preds: dict[str, list[np.ndarray]] = {'hr': [], 'bicubic': []}
    for start in range(0, len(items), batch_size):
        hr = [cv2.imread(osp.join(data_root, p), cv2.IMREAD_COLOR) for p, _ in items[start : start + batch_size]]
        lr = [restored_uint8(img, scale) for img in hr]
        for key, batch in (('hr', hr), ('bicubic', lr)):
            inputs = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float()  # BGR, as LoadImageFromFile
            with torch.no_grad():
                data = model.data_preprocessor({'inputs': inputs}, False)
                preds[key].append(model(data['inputs'], mode='tensor').argmax(1).numpy())
    result: dict[str, Any] = {'num_images': len(items), 'split': split, 'scale': scale, 'classes': classes}
    for key, parts in preds.items():
        accuracy, confusion = accuracy_and_confusion(labels, np.concatenate(parts), len(classes))
        result[f'{key}_accuracy'] = accuracy
        result[f'confusion_{key}'] = confusion.tolist()
    result['drop'] = result['hr_accuracy'] - result['bicubic_accuracy']
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    from srfer_plugin.fer_pretrain_checks import FERDataError
    from srfer_plugin.synthetic.calibration import print_and_save

    try:
        result = evaluate(args.config, args.checkpoint, args.data_root, args.split, args.scale, args.batch_size)
    except (FERDataError, OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'{args.split}: {result["num_images"]} images')
    print(f'HR accuracy:                 {result["hr_accuracy"]:.2f}%')
    print(f'x{args.scale} bicubic-restored accuracy: {result["bicubic_accuracy"]:.2f}%')
    print(f'drop:                        {result["drop"]:.2f} points')
    title = 'confusion (rows: true, cols: predicted) on bicubic-restored images:'
    print_and_save(result, title, args.out, result['classes'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
