"""``docs/results.md``: the tables of measured figures, generated from the committed benchmark CSVs.

``docs/results.md`` is hand-written text around generated blocks. A block is the lines between
``<!-- generated: NAME -->`` and ``<!-- end generated -->``; :data:`BLOCKS` says how each is made, from which CSV
in ``docs/``, with the benchmark's own table functions (:mod:`.benchmark_report`, :mod:`.aggregate`). Everything
outside the blocks (the measurements that have no CSV, and what the figures show) is kept as it is.

``srfer results-page`` (``python -m srfer_plugin.studies.results_page``) rewrites the blocks; ``--check`` only
says whether the committed page equals what the CSVs give (``tests/test_docs_figures.py`` runs it).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from srfer_plugin.studies.baselines_report import result_lines
from srfer_plugin.studies.benchmark_options import REPO_ROOT
from srfer_plugin.studies.benchmark_report import comparison, markdown_table, seed_sections
from srfer_plugin.studies.study_variants import RERUNS

DOCS = os.path.join(REPO_ROOT, 'docs')
PAGE = 'results.md'
BLOCK = re.compile(r'(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)', re.DOTALL)

# What each measured study row trained. The CSV rows record the method name only, and the presets' own
# descriptions follow today's defaults, which are not in every case what these rows were trained with.
JOINT = 'joint learning: CE on SR and HR, `sr_grad_weight` 0'
TRAINED: dict[str, str] = {
    'none': 'plain SR (L1)',
    'attention': 'L1 + attention 0.1 (stages 0-3)',
    'prediction': 'L1 + prediction 0.001',
    'both': "L1 + attention 0.1 + prediction 0.001 (the demo's SR-FER)",
    'both_joint': f'`both` + {JOINT}, classifier Adam 1e-5',
    'plain_finetuned': "`none`'s network fixed, the classifier fine-tuned on its outputs (CE on SR), Adam 1e-5",
    'sr_grad_0.1': '`both_joint` with `sr_grad_weight` 0.1',
    'sr_grad_1': '`both_joint` with `sr_grad_weight` 1',
    'warmup_300': '`both_joint` with the classifier frozen for the first 300 iterations (`fer_frozen_iters: 300`)',
    'fer_lr_1e-4': '`both_joint` with classifier Adam 1e-4 (the joint recipe without distillation)',
    'plain_finetuned_lr_1e-4': '`plain_finetuned` with classifier Adam 1e-4',
    'distill_1': '`fer_lr_1e-4` + distillation from the starting classifier on HR faces (`fer_distill_opt`, weight 1)',
    'auto': 'L1 + attention + prediction, weights from gradient shares 1.15 and 0.007 of `l_pix` (consistency_weights)',
    'auto_full': '`auto` with shares 0.47 and 4.2 (read with the demo classifier pre-trained in full)',
    'auto_pred0.3': '`auto` with shares 1.15 and 0.3',
    'auto_pred1': '`auto` with shares 1.15 and 1',
    'auto_hold': (
        'L1 + attention + prediction, shares 0.83 and 6.0 (the demo weights under the demo classifier pre-trained in '
        'full), norms averaged over the first 50 iterations, then the weights held (calibration_iters)'
    ),
    'auto_budget': (
        'L1 + attention + prediction, shares 2.49 and 6.0 scaled throughout to cost 0.5 dB against a plain-SR twin, '
        'the scale starting at 0.1 (consistency_weights rule psnr_budget)'
    ),
    'auto_budget_start1': '`auto_budget` with the scale starting at 1',
    'auto_pilot': (
        'L1 + attention + prediction, shares 2.49 and 6.0 for a pilot of 200 iterations beside a plain-SR twin, then '
        'from the twin with the shares times min(1, 0.2 dB / the pilot gap), held (consistency_weights rule psnr_pilot)'
    ),
    **{
        rerun.name: f'`{rerun.name[len("rerun_") :]}` rerun (attention {rerun.att:g}: a new training)'
        for rerun in RERUNS
    },
    **{f'stage{s}': f'L1 + attention 0.1 on stage {s} only' for s in range(4)},
    **{
        f'att{a:g}_pred{p:g}': f'L1 + attention {a:g} + prediction {p:g}'
        for a in (0.03, 0.1, 0.3)
        for p in (0.0003, 0.001, 0.003)
    },
    **{
        f'both_fer_batch{n}': f'`both` with the classifier on {n} of the 8 faces of each batch (`fer_batch_size: {n}`)'
        for n in (4, 2)
    },
    'deep_weighted': 'L1 + attention 0.1, stage weights 0.4, 0.8, 1.2, 1.6 (deeper stages weigh more)',
    'shallow_weighted': 'L1 + attention 0.1, stage weights 1.6, 1.2, 0.8, 0.4 (shallower stages weigh more)',
    'bicubic': 'bicubic upsampling (nothing trained)',
    'plain_sr': 'plain SR (L1) on blind_face',
    'srfer': 'L1 + attention 0.1 + prediction 0.001 on blind_face',
    'esrgan': 'ESRGAN fine-tuning of `plain_sr` (300 iterations)',
    'srfer_esrgan': 'ESRGAN fine-tuning of `srfer` + attention + prediction (300 iterations)',
    'plain_sr_trained_bicubic': '`plain_sr`, trained on bicubic LR faces',
    'srfer_trained_bicubic': '`srfer`, trained on bicubic LR faces',
    'esrgan_trained_bicubic': 'ESRGAN fine-tuning of `plain_sr_trained_bicubic`',
    'srfer_esrgan_trained_bicubic': 'ESRGAN fine-tuning of `srfer_trained_bicubic` + attention + prediction',
}
CELL_COLUMNS = (
    'backbone', 'scale', 'method', 'status', 'acc', 'acc_hr', 'acc_bicubic', 'psnr', 'ssim', 'train_s_per_iter',
    'params', 'note',
)  # fmt: skip


def _value(text: str) -> Any:
    """A CSV cell as the benchmark wrote it: None for empty, else an int, a float or the text."""
    if text == '':
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_rows(docs: str, name: str) -> list[dict[str, Any]]:
    """The rows of ``docs/<name>`` (a benchmark CSV), numbers as numbers."""
    with open(os.path.join(docs, name), newline='', encoding='utf-8') as f:
        return [{k: _value(v) for k, v in row.items()} for row in csv.DictReader(f)]


# The joint rows of the runs with this version's classifier pre-training, named as the present joint preset names them.
TRAINED_NOW: dict[str, str] = {
    **TRAINED,
    'both_joint': f'`both` + {JOINT}, classifier Adam 1e-4 (the joint recipe without distillation)',
    'distill_1': '`both_joint` + distillation from the starting classifier on HR faces (`fer_distill_opt`, weight 1; '
    'the joint recipe)',
}


def study(name: str, references: tuple[str, ...], trained: dict[str, str] = TRAINED) -> Callable[[str], list[str]]:
    """A study preset's block: mean ± std per variant and the differences against ``references`` (rows described
    by ``trained``)."""

    def block(docs: str) -> list[str]:
        lines, _ = seed_sections(read_rows(docs, name), references, trained)
        # seed_sections titles its tables for a page of their own; here they sit under a section of this page.
        return [f'**{line[3:]}**' if line.startswith('## ') else line for line in lines]

    return block


def classifier_axis(docs: str) -> list[str]:
    """Plain SR against SR-FER under each classifier, then each cell's PSNR, SSIM and iteration time."""
    rows = read_rows(docs, 'benchmark_classifiers_cpu_small.csv')
    header = ['fer', 'backbone', 'scale', 'acc_hr', 'acc_bicubic', 'acc plain', 'acc srfer', 'srfer - plain']
    cells = [[r['fer'], r['method'], r['psnr'], r['ssim'], r['train_s_per_iter']] for r in rows]
    return [
        *markdown_table(header, comparison(rows)),
        '',
        *markdown_table(['fer', 'method', 'psnr', 'ssim', 'train_s_per_iter'], cells),
        '',
    ]


def cpu_small(docs: str) -> list[str]:
    """Every cell of the cpu-small matrix."""
    rows = read_rows(docs, 'benchmark_cpu_small.csv')
    return [*markdown_table(list(CELL_COLUMNS), [[r[c] for c in CELL_COLUMNS] for r in rows]), '']


def baselines_block(docs: str) -> list[str]:
    """The baselines preset: where SR-FER is not the best choice, and accuracy per face type and classifier."""
    lines = result_lines(read_rows(docs, 'benchmark_baselines.csv'))
    return [f'**{line[3:]}**' if line.startswith('## ') else line for line in lines]


BLOCKS: dict[str, Callable[[str], list[str]]] = {
    'ablation': study('benchmark_ablation.csv', ('both', 'none')),
    'joint': study('benchmark_joint.csv', ('both_joint', 'both')),
    'joint-1001': study('benchmark_joint_train1001.csv', ('both_joint', 'both'), TRAINED_NOW),
    'joint-distill': study('benchmark_joint_distill.csv', ('both_joint', 'both'), TRAINED_NOW),
    'weights-auto': study('benchmark_weights_auto.csv', ('both', 'none')),
    'weights-grid': study('benchmark_weights_grid.csv', ('both', 'none')),
    'weights-budget': study('benchmark_weights_budget.csv', ('none',)),
    'weights-pilot': study('benchmark_weights_pilot.csv', ('none',)),
    'weights-rerun': study('benchmark_weights_rerun.csv', ('none',)),
    'stages': study('benchmark_stages.csv', ('both', 'none')),
    'cost': study('benchmark_cost.csv', ('both', 'none')),
    'baselines': baselines_block,
    'gan': study('benchmark_gan.csv', ('plain_sr', 'esrgan')),
    'classifiers': classifier_axis,
    'cpu-small': cpu_small,
}


def render(text: str, docs: str = DOCS) -> str:
    """``text`` (a results page) with every generated block made again from the CSVs in ``docs``.

    Raises:
        ValueError: A block names no entry of :data:`BLOCKS`.
    """

    def fill(match: re.Match) -> str:
        name = match['name']
        if name not in BLOCKS:
            raise ValueError(f'{PAGE}: unknown generated block {name!r} (known: {", ".join(BLOCKS)})')
        return match[1] + '\n'.join(BLOCKS[name](docs)) + '\n' + match[4]

    return BLOCK.sub(fill, text)


def main(argv: Sequence[str] | None = None) -> int:
    """``srfer results-page [--check] [--docs DIR]``: rewrite (or check) the generated blocks of results.md."""
    parser = argparse.ArgumentParser(
        prog='srfer results-page',
        description='Rewrite the generated tables of docs/results.md from the benchmark CSVs in docs/.',
    )
    parser.add_argument('--docs', default=DOCS, help="the docs folder (default: the clone's docs/)")
    parser.add_argument('--check', action='store_true', help='change nothing; exit 1 when the page is out of date')
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    path = os.path.join(args.docs, PAGE)
    if not os.path.isfile(path):
        print(f"srfer results-page: no {path} (the page lives in a clone's docs/; give --docs)", file=sys.stderr)
        return 2
    with open(path, encoding='utf-8') as f:
        text = f.read()
    new = render(text, args.docs)
    if args.check:
        if new != text:
            print(f'{path} is out of date: run `srfer results-page`', file=sys.stderr)
            return 1
        return 0
    if new != text:
        with open(path, 'w', encoding='utf-8') as f:
            f.write(new)
    print(f'{path}: {"rewritten" if new != text else "up to date"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
