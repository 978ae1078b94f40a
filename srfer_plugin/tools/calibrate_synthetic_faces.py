"""Calibration check of the synthetic faces: HR accuracy of a ResNet-18 vs its accuracy on x4 bicubic-restored images.

Trains the ResNet-18 of ``srfer::fer/resnet18_fer7.py`` on in-memory synthetic HR faces (no PNG round trip, no
data loader, so it is quick on a CPU), then evaluates the same network on the HR test faces and on their
``srfer_plugin.data.degradations.bicubic_roundtrip`` (MATLAB-bicubic 112 -> 28 on float [0, 1], bicubic back to
112, rounded to uint8).

Example (the numbers in docs/synthetic_faces.md)::

    srfer calibrate-synthetic-faces --num-train 250 --num-test 60 --epochs 8 --out calib.json
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from srfer_plugin.utils.cli_args import at_least


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='HR vs bicubic-restored accuracy of a ResNet-18 on synthetic faces.')
    parser.add_argument('--config', default='srfer::fer/resnet18_fer7.py', help='FER config (model part only)')
    parser.add_argument('--num-train', type=at_least(1), default=250, help='train faces per class')
    parser.add_argument('--num-test', type=at_least(1), default=60, help='test faces per class')
    parser.add_argument('--epochs', type=at_least(1), default=8)
    parser.add_argument('--lr', type=float, default=2e-3, help='AdamW peak learning rate (one-cycle)')
    parser.add_argument('--batch-size', type=at_least(1), default=16)
    parser.add_argument('--seed', type=at_least(0), default=0, help='dataset seed (torch seed is 0)')
    parser.add_argument('--size', type=at_least(16), default=112)
    parser.add_argument('--scale', type=at_least(1), default=4)
    parser.add_argument('--threads', type=at_least(1), default=2)
    parser.add_argument('--out', help='write the result json here')
    return parser.parse_args(argv)


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    """Train on HR faces and return HR and bicubic-restored test accuracy (percent) and confusion matrices."""
    import torch
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules

    from srfer_plugin.synthetic import face_rng, generate_face
    from srfer_plugin.synthetic.calibration import accuracy_and_confusion, restored_uint8
    from srfer_plugin.utils.shipped_options import resolve_path

    register_all_modules()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    def make(split: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
        faces = [generate_face(i % 7, face_rng(args.seed, split, i), args.size) for i in range(per_class * 7)]
        return np.stack([f[0] for f in faces]), np.array([f[1] for f in faces])

    start = time.time()
    x_train, y_train = make('train', args.num_train)
    x_test, y_test = make('test', args.num_test)
    x_bicubic = np.stack([restored_uint8(x, args.scale) for x in x_test])
    print(f'data: {len(x_train)} train, {len(x_test)} test faces ({time.time() - start:.0f} s)', flush=True)

    cfg = Config.fromfile(resolve_path(args.config))
    model = MODELS.build({**cfg.model, 'data_preprocessor': cfg.data_preprocessor})

    def to_tensor(x: np.ndarray) -> torch.Tensor:  # RGB uint8 -> BGR float NCHW, as LoadImageFromFile gives
        return torch.from_numpy(x[..., ::-1].copy()).permute(0, 3, 1, 2).float()

    def forward(x: np.ndarray) -> torch.Tensor:
        return model(model.data_preprocessor({'inputs': to_tensor(x)}, False)['inputs'], mode='tensor')

    def evaluate(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        model.eval()
        with torch.no_grad():
            pred = torch.cat([forward(x[i : i + 128]).argmax(1) for i in range(0, len(x), 128)]).numpy()
        model.train()
        return accuracy_and_confusion(y, pred, 7)

    bs = args.batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps = args.epochs * (len(x_train) // bs)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=steps, pct_start=0.15)
    for epoch in range(args.epochs):
        perm = np.random.default_rng(epoch).permutation(len(x_train))
        tic = time.time()
        for i in range(0, len(perm) - bs + 1, bs):
            idx = perm[i : i + bs]
            batch = x_train[idx].copy()
            flip = np.random.default_rng(epoch * 1000 + i).uniform(size=bs) < 0.5
            batch[flip] = batch[flip][:, :, ::-1]
            loss = torch.nn.functional.cross_entropy(forward(batch), torch.from_numpy(y_train[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        acc, _ = evaluate(x_test, y_test)
        print(f'epoch {epoch}: loss {loss.item():.3f}, HR test {acc:.1f}% ({time.time() - tic:.0f} s)', flush=True)
    hr, confusion_hr = evaluate(x_test, y_test)
    bicubic, confusion_bicubic = evaluate(x_bicubic, y_test)
    return {
        'settings': {k: v for k, v in vars(args).items() if k != 'out'},
        'hr_accuracy': hr,
        'bicubic_accuracy': bicubic,
        'drop': hr - bicubic,
        'confusion_hr': confusion_hr.tolist(),
        'confusion_bicubic': confusion_bicubic.tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    from srfer_plugin.synthetic.calibration import print_and_save

    result = calibrate(args)
    print(
        f'HR accuracy {result["hr_accuracy"]:.2f}%, x{args.scale} bicubic-restored {result["bicubic_accuracy"]:.2f}%,'
        f' drop {result["drop"]:.2f} points'
    )
    print_and_save(result, 'confusion on bicubic-restored (rows true, cols predicted):', args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
