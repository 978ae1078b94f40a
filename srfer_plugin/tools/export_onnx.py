"""Export the SR network and the FER classifier to ONNX (``srfer export``), for ``srfer-infer --backend onnxruntime``.

Examples::

    srfer export -opt options/test_RCAN_srfer_x4.yml -o exported/
    srfer export --sr-model net_g.pth --network-g net_g.yml --scale 4 --fer-config srfer::fer/resnet18_fer7.py \\
        --fer-checkpoint fer.pth --classes datasets/rafdb/classes.txt --with-taps -o exported/
    srfer-infer --backend onnxruntime --onnx exported/ -i faces/ -o out/

The networks are given as to ``srfer-infer`` (the same options, loaded by the same code). Written to the output
folder: ``sr.onnx``, ``fer.onnx`` (unless ``--no-fer``) and ``srfer_onnx.json`` (scale, padding, class names, the
classifier's input size and resizing, opset, the measured torch/onnxruntime differences); see
:mod:`srfer_plugin.onnx_io` for what the graphs take and give. After exporting, torch and onnxruntime run on
random inputs of another batch size and image size than the traced ones; the export fails when they differ by more
than 1e-4 on the [0, 1] SR output or 1e-3 on the logits. Needs the onnx extra: ``pip install 'srfer_plugin[onnx]'``.
Exit status: 0 when exported, 2 for a bad setup or a failed export.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from srfer_plugin import infer
from srfer_plugin.onnx_io import DEFAULT_OPSET, FER_FILE, METADATA_FILE, SR_FILE, export_predictor
from srfer_plugin.utils.inference_io import load_yaml
from srfer_plugin.utils.inference_outputs import move_to_archive, printable_text

EXPORTED_NAMES = (SR_FILE, FER_FILE, METADATA_FILE)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (the network options of ``srfer-infer``)."""
    parser = argparse.ArgumentParser(
        prog='srfer export',
        description='Export the SR network and the FER classifier to ONNX (for srfer-infer --backend onnxruntime).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument('-o', '--output', required=True, help='output folder (sr.onnx, fer.onnx, srfer_onnx.json)')
    infer.add_model_arguments(parser, no_fer_help='export the SR network only')
    parser.add_argument(
        '--fer-size',
        type=int,
        help='the classifier reads SR faces resized to this square size (default: gt_size of the datasets of --opt; '
        '0: never; then its graph takes any size). network_fer.input_size wins',
    )
    parser.add_argument(
        '--pad-multiple', type=infer.at_least(1), help='pad LR sides to a multiple of this (default: window_size)'
    )
    parser.add_argument('--with-taps', action='store_true', help="also output the classifier's attention taps")
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset')
    parser.add_argument('--no-check', action='store_true', help='skip the torch/onnxruntime comparison')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``srfer export``; returns the exit status (0: exported, 2: bad setup or failed export)."""
    args = build_parser().parse_args(argv)
    args.batch_size = 1
    try:
        opt = infer.read_model_options(args.opt)
        predictor = infer.build_predictor(args, opt, 'cpu')  # the networks exactly as srfer-infer loads them
        earlier = [name for name in EXPORTED_NAMES if os.path.lexists(os.path.join(args.output, name))]
        if earlier:  # an earlier export is kept, not overwritten
            archive = move_to_archive(args.output, earlier)
            moved = ', '.join(earlier)
            print(f'note: moved the earlier export ({moved}) to {printable_text(archive)}', file=sys.stderr)
        network_g = load_yaml(args.network_g) if args.network_g else opt.get('network_g')
        network_g = network_g.get('network_g', network_g) if isinstance(network_g, dict) else {}
        meta = export_predictor(
            predictor,
            args.output,
            network_g,
            infer._fer_options(args, opt) if predictor.fer_network is not None else None,
            opset=args.opset,
            with_taps=args.with_taps,
            check=not args.no_check,
        )
    except infer.SETUP_ERRORS as err:
        print(f'error: {printable_text(str(err))}', file=sys.stderr)
        return 2
    check = meta['check']
    written = ['sr.onnx'] + (['fer.onnx'] if meta['fer'] else []) + ['srfer_onnx.json']
    print(f'Exported {", ".join(written)} to {printable_text(args.output)} (opset {meta["opset"]})')
    print(f'  sr.onnx: {meta["sr"]["type"]} x{meta["sr"]["scale"]}, dynamic batch/height/width', end='')
    print(f', padded inside to a multiple of {meta["sr"]["pad_multiple"]}' if meta['sr']['pad_multiple'] > 1 else '')
    if meta['fer']:
        fer = meta['fer']
        size = 'any size' if fer['input_size'] is None else 'x'.join(map(str, fer['input_size']))
        print(f'  fer.onnx: {fer["num_classes"]} classes, input {size}, outputs {", ".join(fer["outputs"])}')
    if 'sr_max_abs_diff' in check:
        diffs = f'SR {check["sr_max_abs_diff"]:.1e}'
        if 'logits_max_abs_diff' in check:
            diffs += f', logits {check["logits_max_abs_diff"]:.1e}'
        if 'taps_max_rel_diff' in check:
            diffs += f', taps {check["taps_max_rel_diff"]:.1e} (relative)'
        print(f'  onnxruntime vs torch, largest differences: {diffs}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
