"""List the feature taps that ``network_fer`` offers for mmpretrain classifiers (random init, CPU, offline).

Examples::

    srfer fer-taps resnet18_8xb32_in1k deit-tiny_4xb256_in1k
    srfer fer-taps srfer::fer/convnext-atto_fer7.py --input-size 112
    srfer fer-taps levit-128s_3rdparty_in1k --input-size 224 --markdown

For each model it prints the default taps (what ``stages`` indices refer to) with their map shapes, the other
backbone modules that give maps (usable by name in ``network_fer.stages``), and the backbone options that were
set for the user (e.g. Swin's ``pad_small_map``). A model that cannot be used gets its error message instead.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from srfer_plugin.utils.cli_args import at_least


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Show the feature taps of mmpretrain classifiers.')
    parser.add_argument('models', nargs='+', help='mmpretrain model names or config files')
    parser.add_argument(
        '--input-size', type=at_least(1), default=None, help='network_fer.input_size (default: 112 probe)'
    )
    parser.add_argument('--num-classes', type=at_least(1), default=7, help='network_fer.num_classes (default 7)')
    parser.add_argument('--markdown', action='store_true', help='one markdown table row per model')
    return parser.parse_args(argv)


def describe(model: str, input_size: int | None, num_classes: int) -> dict:
    """Build one classifier and describe its taps.

    Args:
        model: mmpretrain model name or config file.
        input_size: ``network_fer.input_size``.
        num_classes: ``network_fer.num_classes``.

    Returns:
        ``{'model', 'taps': [(name, (C, H, W))], 'others': [names], 'options': {...}}`` or ``{'model', 'error'}``.
    """
    from srfer_plugin.archs.mmpretrain_fer_arch import MMPretrainFER

    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            fer = MMPretrainFER(model, num_classes=num_classes, input_size=input_size)
    except ValueError as err:
        return {'model': model, 'error': str(err)}
    infos = fer.tap_infos
    others = [n for n, t in infos.items() if t.shape is not None and t.reaches_logits and n not in fer.taps]
    return {
        'model': model,
        'backbone': type(fer.model.backbone).__name__,
        'taps': [(n, infos[n].shape) for n in fer.taps],
        'others': others,
        'options': dict(fer.backbone_options_set),
        'input_size': input_size,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    from mmengine.logging import MMLogger

    MMLogger.get_current_instance().setLevel('ERROR')
    failed = 0
    for model in args.models:
        info = describe(model, args.input_size, args.num_classes)
        if 'error' in info:
            failed += 1
            print(f'| {model} | cannot be used: {info["error"]} |' if args.markdown else f'{model}: {info["error"]}')
            continue
        taps = ', '.join(f'`{n}` {c}×{h}×{w}' for n, (c, h, w) in info['taps'])
        notes = ', '.join(f'{k}={v}' for k, v in info['options'].items())
        if args.markdown:
            size = info['input_size'] or 'face as is'
            print(f'| {info["backbone"]} | `{model}` | {taps} | {size} | {notes} |')
        else:
            print(f'{model} ({info["backbone"]}): default taps {taps}')
            print(f'  other modules with maps: {info["others"]}')
            if notes:
                print(f'  backbone options set for you: {notes}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
