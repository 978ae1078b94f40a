"""Inference: super-resolve LR faces and classify their expressions (console script ``srfer-infer``).

Examples::

    srfer-infer -i faces/ -o out/ --opt options/test_RCAN_srfer_x4.yml
    srfer-infer -i 'faces/**/*.jpg' -o out/ --opt options/test_RCAN_srfer_x4.yml --sr-model net_g_latest.pth \\
        --fer-checkpoint fer.pth --classes datasets/rafdb/classes.txt --device cuda --batch-size 16
    srfer-infer -i face.png -o out/ --sr-model net_g.pth --network-g net_g.yml --scale 4 \\
        --fer-config srfer::fer/resnet18_fer7.py --fer-checkpoint fer.pth

Inputs are image files, folders (``--recursive`` for sub-folders) or glob patterns, of any size, colour or
grayscale (grayscale faces go through the networks as 3 equal channels; their SR image is saved as grayscale;
an alpha channel is dropped). Images are grouped by size into batches of up to ``--batch-size``: nothing is
resized before SR; an LR side that is not a multiple of ``--pad-multiple`` (default: ``network_g.window_size``
or 1) is reflect-padded and the SR image cropped back. The classifier reads the SR image as it is, or resized to
``--fer-size`` (default: the ``gt_size`` of the options' datasets, when they set one); a classifier with
``network_fer.input_size`` resizes by itself and ``--fer-size`` is ignored.

Outputs: ``OUT/sr/<relative path>.png`` and ``OUT/predictions.csv`` (file, sr_file, width, height, label,
label_index, confidence, then ``prob_<class>`` per class; input order). A relative path that would leave ``OUT/sr``
(``..`` after a glob wildcard) becomes the file name alone; an SR image never replaces an existing file (an input
least of all). Unreadable files, and FIFOs, devices and sockets (never opened, so a pipe cannot hang the run), are
reported, listed in ``OUT/skipped.csv`` and skipped. Exit status: 0 when at least one image was processed, 1 when
none could be, 2 for a bad setup (including an output folder in use by another run).

Nothing is lost (details in :mod:`srfer_plugin.utils.inference_outputs`): both CSVs are written row by row to
``<name>.partial`` (each row flushed when its image is done) and renamed at the end, so a crashed or killed run
keeps every finished row; an earlier run's outputs in ``OUT`` (CSVs, partial files, ``sr/``) are first moved into
``OUT/archived_<time>/`` (as BasicSR archives folders); one process owns ``OUT`` (a second run on it stops before
writing, :mod:`srfer_plugin.utils.run_lock`). Undecodable file-name bytes are written ``\\xHH`` (``caf\\xe9.png``)
in both CSVs, SR names and messages; text cells a spreadsheet would run as formulas start with a single quote.

``--detect`` (implied by a video input) reads photos, folders of photos and videos instead: faces are detected,
cropped, super-resolved and classified one by one; outputs and options in :mod:`srfer_plugin.wild` and
``docs/in_the_wild.md``.

This module is the command line only (arguments, exit status); reading the inputs and writing the outputs is
:mod:`srfer_plugin.inference_run`, the networks, padding, batching and predictions are
:class:`srfer_plugin.predictor.SRFERPredictor`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from srfer_plugin.inference_run import InputImage, collect_inputs, run_inference
from srfer_plugin.predictor import (
    InferenceError,
    ScaleMismatchError,
    SRFERPredictor,
    resolve_device,
)
from srfer_plugin.utils.cli_args import at_least
from srfer_plugin.utils.inference_io import load_yaml, resolve_class_names
from srfer_plugin.utils.inference_outputs import archive_earlier_outputs, printable_text
from srfer_plugin.utils.renamed_options import check_renamed_options
from srfer_plugin.utils.run_lock import FolderInUseError, acquire_folder, release_folder
from srfer_plugin.utils.shipped_options import resolve_path

__all__ = ['InferenceError', 'build_parser', 'collect_inputs', 'main', 'run_inference']

# Errors of the setup (arguments, options, networks, output folder): exit status 2.
SETUP_ERRORS = (InferenceError, FolderInUseError, OSError, ValueError, KeyError, yaml.YAMLError)


# ---------------------------------------------------------------------------------------------------- CLI
def add_model_arguments(parser: argparse.ArgumentParser, no_fer_help: str) -> None:
    """The arguments that name the SR network and the classifier (``srfer-infer``, ``srfer export``)."""
    parser.add_argument(
        '-opt', '--opt', help='BasicSR options (network_g, network_fer, scale, path.pretrain_network_g)'
    )
    parser.add_argument('--sr-model', help='SR weights (default: path.pretrain_network_g of --opt)')
    parser.add_argument(
        '--network-g', '--sr-arch-opt', dest='network_g', help='network_g as YAML text or file (default: from --opt)'
    )
    parser.add_argument('--param-key', help='key of the SR weights (default: params_ema, else params)')
    parser.add_argument('--scale', type=at_least(1), help='upscaling factor (default: scale of --opt)')
    parser.add_argument('--fer-config', help='mmpretrain config of the classifier (default: network_fer of --opt)')
    parser.add_argument('--fer-checkpoint', help='classifier weights (default: network_fer.checkpoint of --opt)')
    parser.add_argument('--num-classes', type=at_least(1), help='classifier classes (default: network_fer.num_classes)')
    parser.add_argument('--no-fer', action='store_true', help=no_fer_help)
    parser.add_argument('--classes', help='class names: a classes.txt file or a comma-separated list')


def read_model_options(path: str | None) -> dict:
    """The option file of ``--opt`` (``{}`` without one): a YAML mapping without renamed keys.

    Raises:
        InferenceError: The file is missing or not a YAML mapping.
        RenamedOptionError: It uses a renamed key (the message names the new one).
    """
    if not path:
        return {}
    if path.endswith(('.yml', '.yaml')) and not os.path.isfile(resolve_path(path)):
        raise InferenceError(f'--opt {path!r}: no such file')
    opt = load_yaml(path)
    if not isinstance(opt, dict):
        raise InferenceError(f'--opt {path!r} is not a YAML mapping')
    check_renamed_options(opt)
    return opt


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog='srfer-infer',
        description='Super-resolve LR faces and classify their expressions.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument('-i', '--input', action='append', required=True, help='image, folder or glob (repeatable)')
    parser.add_argument('-o', '--output', required=True, help='output folder')
    add_model_arguments(parser, no_fer_help='super-resolve only')
    parser.add_argument(
        '--fer-size',
        type=at_least(0),
        help='resize SR to this square size for the classifier (default: gt_size of the datasets of --opt); 0: '
        'never. network_fer.input_size wins: a classifier that sets it resizes by itself and ignores --fer-size',
    )
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument(
        '--backend',
        choices=('torch', 'onnxruntime'),
        default='torch',
        help='run the networks with torch, or with onnxruntime on the files of srfer export (--onnx)',
    )
    parser.add_argument('--onnx', help='folder written by srfer export (--backend onnxruntime)')
    parser.add_argument('--batch-size', type=at_least(1), default=8, help='images per batch (same-size images only)')
    parser.add_argument('--pad-multiple', type=at_least(1), help='pad LR sides to a multiple (default: window_size)')
    parser.add_argument('--recursive', action='store_true', help='also read the sub-folders of input folders')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    wild = parser.add_argument_group(
        'faces in photos and videos (--detect; a video input implies it; needs the wild extra: srfer_plugin.wild)'
    )
    wild.add_argument('--detect', action='store_true', help='inputs are photos or videos: detect the faces first')
    wild.add_argument('--min-face', type=at_least(8), default=24, help='smallest face to detect, in pixels')
    wild.add_argument(
        '--max-faces', type=at_least(0), default=0, help='keep the largest N faces per photo or frame; 0: all'
    )
    wild.add_argument(
        '--face-margin', type=at_least(0.0, float), default=0.7, help="square crop: the box's side times 1 + this"
    )
    wild.add_argument(
        '--lr-size', type=at_least(4), help='LR crop side (default: the classifier input size / scale, or 32)'
    )
    wild.add_argument('--every', type=at_least(1), default=1, help='videos: analyse every N-th frame')
    return parser


DETECT_ONLY = ('min_face', 'max_faces', 'face_margin', 'lr_size', 'every')  # the --detect group's settings


def _fer_options(args: argparse.Namespace, opt: dict) -> dict | None:
    if args.no_fer:
        return None
    fer_opt = dict(opt.get('network_fer') or {})
    if args.fer_config:
        fer_opt = {'type': 'MMPretrainFER', **{k: v for k, v in fer_opt.items() if k != 'config'}}
        fer_opt['config'] = args.fer_config
    if not fer_opt:
        return None
    if args.fer_checkpoint:
        fer_opt['checkpoint'] = args.fer_checkpoint
    if args.num_classes:
        fer_opt['num_classes'] = args.num_classes
    fer_opt['freeze'] = True
    return fer_opt


def _default_fer_size(opt: dict) -> int | None:
    for dataset_opt in (opt.get('datasets') or {}).values():
        if dataset_opt.get('gt_size'):
            return int(dataset_opt['gt_size'])
    return None


def build_predictor(args: argparse.Namespace, opt: dict, device: Any) -> SRFERPredictor:
    """The predictor the arguments and options describe; raises InferenceError on configuration problems."""
    network_g = load_yaml(args.network_g) if args.network_g else opt.get('network_g')
    if isinstance(network_g, dict) and 'network_g' in network_g:
        network_g = network_g['network_g']
    if not isinstance(network_g, dict) or 'type' not in network_g:
        raise InferenceError('no network_g: give --opt or --network-g')
    sr_model = args.sr_model or (opt.get('path') or {}).get('pretrain_network_g')
    if not sr_model:
        raise InferenceError('no SR weights: give --sr-model or set path.pretrain_network_g in --opt')
    scale = args.scale or opt.get('scale') or network_g.get('upscale') or network_g.get('scale')
    if not scale:
        raise InferenceError('unknown scale: give --scale')
    fer_opt = _fer_options(args, opt)
    fer_size = args.fer_size if args.fer_size is not None else _default_fer_size(opt)
    try:
        predictor = SRFERPredictor.from_options(
            network_g,
            sr_model,
            fer_opt,
            int(scale),
            device,
            args.param_key,
            max(1, args.pad_multiple) if args.pad_multiple else None,
            fer_size=fer_size or None,
            batch_size=max(1, args.batch_size),
        )
    except ScaleMismatchError as err:
        raise InferenceError(f'{err}; make --scale match the network') from err
    if predictor.fer_network is None:
        print('note: no classifier (network_fer / --fer-config): SR only', file=sys.stderr)
        return predictor
    if args.fer_size and predictor.fer_size is None:
        print(
            'note: network_fer.input_size is set, the classifier resizes by itself: --fer-size ignored', file=sys.stderr
        )
    predictor.class_names = resolve_class_names(
        predictor.num_classes, args.classes, predictor.fer_network, fer_opt.get('checkpoint'), opt
    )
    return predictor


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``srfer-infer``; returns the exit status (0: at least one image processed, 1: none, 2: bad setup)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from srfer_plugin import wild  # photos and videos: detect the faces first (face-crop mode below is unchanged)

    if args.backend == 'onnxruntime' and args.pad_multiple is not None:
        parser.error('--pad-multiple: the exported sr.onnx pads to the multiple it was exported with; leave it out')
    if args.detect or any(wild.is_video(spec) for spec in args.input):
        return wild.main_detect(args)
    ignored = [f'--{key.replace("_", "-")}' for key in DETECT_ONLY if getattr(args, key) != parser.get_default(key)]
    if ignored:
        parser.error(f'{", ".join(ignored)} only apply with --detect (photos and videos); face crops are read whole')
    try:
        try:
            opt = read_model_options(args.opt)
            device = resolve_device(args.device)
            images, bad_specs = collect_inputs(args.input, args.recursive)
            for spec, reason in bad_specs:
                print(f'skipped {printable_text(spec)}: {reason}', file=sys.stderr)
            if not images:
                raise InferenceError('no input images found')
            acquire_folder(args.output, 'output folder')  # before anything is written; raises FolderInUseError
            os.makedirs(args.output, exist_ok=True)
            if args.backend == 'onnxruntime':
                from srfer_plugin.onnx_io import predictor_from_args

                predictor = predictor_from_args(args, device)
            else:
                predictor = build_predictor(args, opt, device)
            archived = archive_earlier_outputs(args.output, [item.path for item in images])
        except SETUP_ERRORS as err:
            print(f'error: {printable_text(str(err))}', file=sys.stderr)
            return 2
        if archived:
            folder, names = archived
            moved = ', '.join(name + ('/' if os.path.isdir(os.path.join(folder, name)) else '') for name in names)
            print(f'note: moved the earlier outputs ({moved}) to {printable_text(folder)}', file=sys.stderr)
        return _run_and_report(args, images, bad_specs, predictor, device)
    finally:
        release_folder(args.output)


def _run_and_report(
    args: argparse.Namespace,
    images: Sequence[InputImage],
    bad_specs: Sequence[tuple[str, str]],
    predictor: SRFERPredictor,
    device: Any,
) -> int:
    try:
        summary = run_inference(images, args.output, predictor, not args.no_progress, bad_specs)
    except BaseException:
        partial = printable_text(os.path.join(args.output, 'predictions.csv.partial'))
        print(f'stopped early: the rows finished so far are in {partial} (and skipped.csv.partial)', file=sys.stderr)
        raise
    print(
        f'Processed {len(summary.processed)} image(s) in {summary.seconds:.1f} s on {device}; '
        f'wrote {printable_text(summary.predictions_csv or "")}'
    )
    if summary.skipped:
        print(f'Skipped {len(summary.skipped)} input(s) (listed in {printable_text(summary.skipped_csv or "")}):')
        for name, reason in summary.skipped:
            print(f'  {printable_text(name)}: {printable_text(reason)}')
    return 0 if summary.processed else 1


if __name__ == '__main__':
    sys.exit(main())
