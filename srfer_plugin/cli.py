"""The ``srfer`` command: every tool of the plugin as a verb (``srfer prepare-dataset ...``).

Also ``python -m srfer_plugin <verb> ...``. Each verb runs the ``main`` of one module (``srfer <verb> --help``
shows its arguments); ``srfer-train``, ``srfer-test``, ``srfer-infer`` and ``srfer-demo`` are the first four verbs
under their own names. In a clone, ``python scripts/<tool>.py`` runs the same code.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# verb: (module, function, one-line summary); the function reads its arguments from sys.argv[1:]
COMMANDS: dict[str, tuple[str, str, str]] = {
    'train': ('srfer_plugin.train', 'main', 'train an SR or SR-FER model: BasicSR options, -opt X.yml (srfer-train)'),
    'test': ('srfer_plugin.test', 'main', 'test trained models: -opt X.yml (srfer-test)'),
    'infer': ('srfer_plugin.infer', 'main', 'super-resolve and classify your own LR faces (srfer-infer)'),
    'demo': ('srfer_plugin.demo', 'main', 'the SR-FER chain on synthetic faces, CPU, no downloads (srfer-demo)'),
    'export': (
        'srfer_plugin.tools.export_onnx',
        'main',
        'the SR network and the classifier as ONNX files (srfer-infer --backend onnxruntime)',
    ),
    'prepare-dataset': (
        'srfer_plugin.tools.prepare_dataset',
        'main',
        'convert a FER dataset (RAF-DB, FER2013, AffectNet, ...) to the plugin layout',
    ),
    'generate-synthetic-faces': (
        'srfer_plugin.tools.generate_synthetic_faces',
        'main',
        'write the synthetic expression faces (plugin layout)',
    ),
    'train-fer': ('srfer_plugin.tools.train_fer', 'main', 'pre-train the FER classifier (mmpretrain config)'),
    'make-lr': ('srfer_plugin.tools.make_lr', 'main', 'write a fixed LR copy of a test set (degradation scenarios)'),
    'visualize-attention': (
        'srfer_plugin.tools.visualize_attention',
        'main',
        "the classifier's attention on HR, bicubic, plain SR and SR-FER faces",
    ),
    'benchmark': (
        'srfer_plugin.tools.benchmark',
        'main',
        'SR-FER vs plain SR: backbones x scales x classifiers, or a study, over seeds',
    ),
    'benchmark-speed': (
        'srfer_plugin.tools.benchmark_speed',
        'command',
        'training-step time and memory: SRFERModel vs SafeSRModel',
    ),
    'gradient-shares': (
        'srfer_plugin.tools.gradient_shares',
        'main',
        'the gradient shares of hand-set consistency weights (train.consistency_weights)',
    ),
    'fer-taps': ('srfer_plugin.tools.fer_taps', 'main', 'the feature taps network_fer offers for mmpretrain models'),
    'eval-fer-degradation': (
        'srfer_plugin.tools.eval_fer_degradation',
        'main',
        'HR vs x4 bicubic-restored accuracy of a trained classifier',
    ),
    'calibrate-synthetic-faces': (
        'srfer_plugin.tools.calibrate_synthetic_faces',
        'main',
        'calibration check of the synthetic faces (docs/synthetic_faces.md)',
    ),
    'list-options': (
        'srfer_plugin.tools.list_options',
        'main',
        'the option files and FER configs shipped with the package (srfer::NAME)',
    ),
    'web': ('srfer_plugin.webapp', 'main', 'a web page: drop a photo or a face, see SR-FER faces and expressions'),
    'compare-face-detectors': (
        'srfer_plugin.tools.compare_face_detectors',
        'main',
        'recall per face size and CPU time of the face detectors (docs/in_the_wild.md)',
    ),
    'results-page': ('srfer_plugin.studies.results_page', 'main', 'rewrite docs/results.md from the benchmark CSVs'),
}


def usage() -> str:
    """The text of ``srfer --help``."""
    width = max(map(len, COMMANDS))
    lines = [
        'usage: srfer <command> [arguments]   (srfer <command> --help: its arguments)',
        '',
        'SR-FER: super-resolution guided facial expression recognition, as a BasicSR plugin.',
        '',
        'commands:',
    ]
    lines += [f'  {verb:<{width}}  {summary}' for verb, (_, _, summary) in COMMANDS.items()]
    lines += ['', 'Shipped option files and FER configs are named srfer::NAME from any folder (srfer list-options).']
    return '\n'.join(lines)


def run(verb: str, args: Sequence[str], prog: str | None = None) -> int:
    """Run one command.

    Args:
        verb: A key of :data:`COMMANDS`.
        args: Its arguments.
        prog: ``sys.argv[0]`` while it runs (default: ``srfer <verb>``, as its ``--help`` shows).

    Returns:
        Its exit status (0 when its function returns something other than an int).
    """
    module, function, _ = COMMANDS[verb]
    command = getattr(importlib.import_module(module), function)
    sys.argv = [prog or f'srfer {verb}', *args]
    status = command()
    return status if isinstance(status, int) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``srfer <command> [arguments]``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0 if argv else 2
    if argv[0] == '--version':
        from srfer_plugin.version import __version__

        print(f'srfer_plugin {__version__}')
        return 0
    if argv[0] not in COMMANDS:
        print(f'{usage()}\n\nsrfer: error: unknown command {argv[0]!r}', file=sys.stderr)
        return 2
    return run(argv[0], argv[1:])


def demo_script() -> int:
    """The ``srfer-demo`` console script (the demo's ``main`` returns the report rows, not an exit status)."""
    return run('demo', sys.argv[1:], prog=sys.argv[0])


if __name__ == '__main__':
    sys.exit(main())
