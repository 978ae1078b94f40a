"""What SR-FER costs per training step: SRFERModel against its plain twin (SafeSRModel), side by side in one process.

Example::

    srfer benchmark-speed                               # full RCAN (the recipe), batch 16
    srfer benchmark-speed --network demo-small          # the demo's small RCAN, the recipe's ResNet-18
    srfer benchmark-speed --network demo                # the demo's pairing: small RCAN, slim ResNet-18
    srfer benchmark-speed --network demo-small --fer-batch-size 8   # + the classifier on 8 of the 16 faces
    srfer benchmark-speed --device cuda --use-amp --channels-last
    srfer benchmark-speed --inference --network demo-small --batch 8   # inference faces/s: torch vs onnxruntime

Both models are built from the same option file (default ``srfer::train_RCAN_srfer_x4.yml``); the plain one
is its SafeSRModel twin (``srfer_plugin.studies.benchmark_options.plain_variant``: the same training machinery,
without the classifier and the FER losses). They train on the same random batches; steps alternate between the two
models (the order flips every step) so that both see the same machine state. The FER classifier is randomly
initialised when its checkpoint is absent: the weights do not change the cost. The measurement is
``srfer_plugin.studies.speed``.

With ``--no-hr-cache`` off (the default) a third model, the SR-FER one with ``train.cache_hr_reference``, is
timed with every HR face already cached (a run after its first epoch), and the memory of the cache per 10,000
faces is printed. ``--fer-batch-size N`` adds the SR-FER model (cached unless ``--no-hr-cache``) whose
classifier reads only N faces of each batch (``train.fer_batch_size``), and its ratio.

Printed per model: median and mean step time, peak memory a step adds (CUDA: allocator peak over the memory
held before the step; CPU: peak resident set over the resident set before the step, from ``/proc``, with a
fixed glibc mmap threshold so freed tensors leave the resident set), and the
SRFERModel / SafeSRModel ratios. ``--json`` also writes them to a file.

``--inference`` measures inference instead (SR + classification of LR faces, ``--lr-size`` px, default 112 px HR
over the scale), on the CPU: faces per second of the torch predictor and of the same predictor on the ONNX export of
its networks (onnxruntime with as many threads as torch), batches alternating, and their ratio
(:func:`srfer_plugin.studies.speed.measure_inference`; needs the onnx extra).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import torch

from srfer_plugin.studies.benchmark_options import RECIPE_NAME
from srfer_plugin.studies.speed import CACHED, NETWORKS, measure, measure_inference, resolve_device, sub_batch_name
from srfer_plugin.utils.cli_args import at_least


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Training-step time and memory: SRFERModel vs SafeSRModel.')
    parser.add_argument('--opt', default=RECIPE_NAME, help='SR-FER option file (network_g, network_fer, losses)')
    parser.add_argument(
        '--network',
        choices=NETWORKS,
        default='recipe',
        help="the option file's networks; demo-small: the demo's small RCAN with the option file's classifier; "
        "demo: the demo's small RCAN, slim ResNet-18 and consistency losses",
    )
    parser.add_argument('--batch', type=at_least(1), default=16)
    parser.add_argument('--steps', type=at_least(1), default=10, help='timed steps per model')
    parser.add_argument('--warmup', type=at_least(0), default=3, help='untimed steps per model first')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto')
    parser.add_argument('--use-amp', action='store_true', help='train.use_amp (both models)')
    parser.add_argument('--amp-dtype', default='bf16', choices=('bf16', 'fp16'))
    parser.add_argument('--channels-last', action='store_true', help='train.channels_last (both models)')
    parser.add_argument('--threads', type=at_least(1), default=None, help='torch CPU threads (default: torch default)')
    parser.add_argument(
        '--no-hr-cache', action='store_true', help='skip the SR-FER model with train.cache_hr_reference'
    )
    parser.add_argument(
        '--fer-batch-size',
        type=at_least(1),
        default=None,
        help='also time the SR-FER model whose classifier reads N faces of each batch (train.fer_batch_size)',
    )
    parser.add_argument('--json', default=None, help='also write the results to this file')
    parser.add_argument(
        '--inference', action='store_true', help='inference faces/s instead: torch vs onnxruntime (CPU, onnx extra)'
    )
    parser.add_argument(
        '--lr-size', type=at_least(1), default=None, help='--inference: LR face side (default: 112 / scale)'
    )
    args = parser.parse_args(argv)
    if args.fer_batch_size is not None and args.fer_batch_size >= args.batch:
        parser.error(f'--fer-batch-size ({args.fer_batch_size}) must be below --batch ({args.batch})')
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print the table; returns the results."""
    args = parse_args(argv)
    if args.inference:
        return inference_main(args, argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        'command': 'srfer benchmark-speed ' + ' '.join(sys.argv[1:] if argv is None else argv),
        **measure(
            args.opt,
            device,
            args.batch,
            args.steps,
            args.warmup,
            network=args.network,
            hr_cache=not args.no_hr_cache,
            fer_batch_size=args.fer_batch_size,
            use_amp=args.use_amp,
            amp_dtype=args.amp_dtype,
            channels_last=args.channels_last,
        ),
    }
    plain, srfer = list(results['models'])[:2]
    print(
        f'{results["network_g"]} ({results["network_g_params"] / 1e6:.2f}M params) x{results["scale"]} + '
        f'{results["network_fer"]}, batch {args.batch}, {results["hr_size"]}px HR, {results["device"]}, '
        f'{args.steps} timed steps per model'
    )
    print(f'{"model":<22} {"median s/step":>14} {"mean s/step":>12} {"peak MiB/step":>14}')
    for name, row in results['models'].items():
        peak = f'{row["peak_step_mib"]:.0f}' if row['peak_step_mib'] is not None else 'n/a'
        print(f'{name:<22} {row["median_s"]:>14.4f} {row["mean_s"]:>12.4f} {peak:>14}')
    memory = f'{results["memory_ratio"]:.2f}x' if 'memory_ratio' in results else 'n/a'
    print(f'ratio {srfer} / {plain}: time {results["time_ratio"]:.2f}x, memory {memory}')
    if 'cached_time_ratio' in results:
        print(
            f'ratio {CACHED} / {plain}: time {results["cached_time_ratio"]:.2f}x (every HR face cached); the cache '
            f'holds {results["cache_mib_per_10k_faces"]:.1f} MiB per 10,000 faces (one flip each; x2 with use_hflip)'
        )
    if 'sub_batch_time_ratio' in results:
        name = sub_batch_name(args.fer_batch_size, not args.no_hr_cache)
        print(
            f'ratio {name} / {plain}: time {results["sub_batch_time_ratio"]:.2f}x (the classifier reads '
            f'{args.fer_batch_size} of the {args.batch} faces)'
        )
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(results, f, indent=2)
    return results


def inference_main(args: argparse.Namespace, argv: list[str] | None = None) -> dict[str, Any]:
    """``--inference``: faces per second of torch and onnxruntime, side by side; prints the table and the ratio."""
    if args.device == 'cuda' or args.use_amp or args.channels_last or args.fer_batch_size is not None:
        raise SystemExit(
            'srfer benchmark-speed --inference: CPU only, without --use-amp, --channels-last and --fer-batch-size'
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        'command': 'srfer benchmark-speed ' + ' '.join(sys.argv[1:] if argv is None else argv),
        **measure_inference(args.opt, args.batch, args.steps, args.warmup, args.network, args.lr_size),
    }
    print(
        f'inference: {results["network_g"]} ({results["network_g_params"] / 1e6:.2f}M params) x{results["scale"]} + '
        f'{results["network_fer"]}, batch {args.batch}, {results["lr_size"]}px LR, {results["device"]}, '
        f'{args.steps} timed batches per backend'
    )
    print(f'{"backend":<12} {"median s/batch":>15} {"mean s/batch":>13} {"faces/s":>9}')
    for name, row in results['backends'].items():
        print(f'{name:<12} {row["median_s"]:>15.4f} {row["mean_s"]:>13.4f} {row["faces_per_s"]:>9.1f}')
    print(
        f'ratio onnxruntime / torch: {results["speedup"]:.2f}x faces/s (largest differences: SR '
        f'{results["max_sr_diff"]:.1e}, probabilities {results["max_prob_diff"]:.1e}; '
        f'{"same" if results["same_labels"] else "DIFFERENT"} labels)'
    )
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(results, f, indent=2)
    return results


def command(argv: list[str] | None = None) -> int:
    """``srfer benchmark-speed``: :func:`main` in a process with a fixed glibc mmap threshold; returns 0.

    glibc otherwise keeps freed tensors in its heap and later steps never raise the resident set: with a fixed mmap
    threshold every large tensor is mapped and unmapped, so the CPU peak is measurable. Without
    ``MALLOC_MMAP_THRESHOLD_`` in the environment the process replaces itself with one that has it.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if 'MALLOC_MMAP_THRESHOLD_' not in os.environ:
        os.environ['MALLOC_MMAP_THRESHOLD_'] = str(128 * 1024)
        os.execv(sys.executable, [sys.executable, '-m', 'srfer_plugin.tools.benchmark_speed', *argv])
    main(argv)
    return 0


if __name__ == '__main__':
    sys.exit(command())
