"""Write the benchmark option files (backbone x scale x {plain SR, SR-FER}) from one template.

Example::

    python scripts/make_benchmark_options.py          # options/benchmark/*.yml (paper preset, committed)

Every cell is its preset's template with the cell's ``name``, ``scale``, ``network_g``, learning rate and metric
``crop_border`` replaced; the plain variant runs the plugin's ``SafeSRModel`` (BasicSR's SRModel with the plugin's
training fixes) and drops ``network_fer`` and the FER losses. The templates and networks are in
``srfer_plugin/studies/benchmark_options.py``:

* ``paper``: ``options/train_RCAN_srfer_x4.yml`` (RAF-DB, ResNet-18 FER, SR-FER loss weights, schedule).
* ``cpu-small``: the demo's SR trainings (``srfer_plugin.studies.synthetic.sr_options``: synthetic faces, the
  demo's FER classifier and loss weights), with small networks. ``srfer benchmark`` writes these per run.

network_g settings copy BasicSR's official recipes (``options/train/<arch>/``), adapted to 112x112 faces:

* RCAN: 64 feat, 10 groups x 20 blocks, squeeze 16, img_range 255, DIV2K rgb_mean (train_RCAN_x*.yml).
* EDSR: EDSR-M (64 feat, 16 blocks, res_scale 1; train_EDSR_Mx*.yml).
* SwinIR: classical SR (embed 180, depths/heads [6]*6, mlp 2, pixelshuffle, 1conv). BasicSR's SwinIR does
  not pad inputs to the window size, so the window is 7 (divides the LR sizes 56/28/14 of 112px faces)
  instead of 8, and ``img_size`` is the training LR size.
* RRDBNet: 64 feat, 23 blocks, grow 32 (ESRGAN/RRDBNet_PSNR). BasicSR's RRDBNet upsamples x4 only; ``scale``
  2 (and 1) pixel-unshuffles the input first. x8 is not supported: skipped.
* MSRResNet: 64 feat, 16 blocks (SRResNet). Supports x2, x3, x4 only: x8 skipped.

The ``cpu-small`` preset keeps the layouts with small widths/depths (for a whole matrix on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import sys

from srfer_plugin.studies.benchmark_options import BACKBONES, PRESETS, REPO_ROOT, SCALES, write_matrix


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--out', default=os.path.join(REPO_ROOT, 'options', 'benchmark'))
    parser.add_argument('--preset', choices=sorted(PRESETS), default='paper')
    parser.add_argument('--backbones', nargs='+', default=list(BACKBONES), choices=BACKBONES)
    parser.add_argument('--scales', nargs='+', type=int, default=list(SCALES))
    parser.add_argument('--iters', type=int, default=None)
    parser.add_argument('--data-root', default=None)
    parser.add_argument('--fer-checkpoint', default=None)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    written, skipped = write_matrix(
        args.out,
        tuple(args.backbones),
        tuple(args.scales),
        args.preset,
        iters=args.iters,
        data_root=args.data_root,
        fer_checkpoint=args.fer_checkpoint,
    )
    print(f'wrote {len(written)} option files to {args.out}; skipped {len(skipped)} cells (see skipped.txt)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
