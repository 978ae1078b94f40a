"""A benchmark run: data and classifiers first, then every cell trained (unless its network exists) and evaluated.

Each cell trains in its own ``python -m srfer_plugin.train --auto_resume`` process (:mod:`.runner`), so an
interrupted cell resumes, and is evaluated like the demo (:mod:`.evaluation`) under its row's classifier: the
frozen one, or for a joint cell the classifier its training fine-tuned. A cell whose ``result.json`` exists is
skipped: running the same cells again continues an interrupted benchmark. Finished cells and trained networks are
reused only when made with the run's iterations and dataset (:mod:`.benchmark_reuse`); otherwise the run stops
before anything trains. Matrix presets (``paper``, ``cpu-small``) take their options from :mod:`.benchmark_cells`,
study presets from :mod:`.study_presets`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

from srfer_plugin.data.degradations import describe_pipeline
from srfer_plugin.studies import baselines, baselines_report, study_presets, synthetic
from srfer_plugin.studies.benchmark_cells import Cell, Classifier, cell_options, fer_network_options
from srfer_plugin.studies.benchmark_options import OPTIONS_HEADER, template, unsupported_reason
from srfer_plugin.studies.benchmark_report import METRIC_KEYS, plot, plot_means, write_tables
from srfer_plugin.studies.benchmark_reuse import check_earlier_work, work_settings, write_training_record
from srfer_plugin.studies.evaluation import evaluation_options, run_evaluation
from srfer_plugin.studies.runner import network_path, run_training, train_seconds_per_iter, write_options
from srfer_plugin.utils.checkpoint import atomic_write_json
from srfer_plugin.utils.inference_outputs import archive_earlier_results
from srfer_plugin.utils.shipped_options import resolve_path


@dataclasses.dataclass(frozen=True)
class BenchmarkRun:
    """What every cell of a run shares.

    Attributes:
        preset: ``paper``, ``cpu-small`` or a study preset (``ablation``, ``stages``, ``weights``).
        out: Output folder (``cells/<name>/``, tables, plot).
        exp_root: Working folder of the trainings (``experiments/<name>/``).
        data_root: Dataset in the plugin's FER layout.
        iters: ``train.total_iter`` of every cell (None: the preset's).
    """

    preset: str
    out: str
    exp_root: str
    data_root: str
    iters: int | None = None


def check_files(preset: str, data_root: str, classifiers: list[Classifier]) -> None:
    """Raise FileNotFoundError naming the first missing dataset list or classifier checkpoint."""
    files = [
        ('train list', os.path.join(data_root, 'meta_info_train.txt')),
        ('test list', os.path.join(data_root, 'meta_info_test.txt')),
    ]
    for c in classifiers:
        files.append((f'FER checkpoint of {c.label} (--fer-checkpoint or --fer CONFIG=CHECKPOINT)', c.checkpoint or ''))
    for what, path in files:
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'{preset} benchmark: {what} {path!r} does not exist (see docs/datasets.md and '
                'srfer train-fer; --data-root, --fer-checkpoint and --fer choose others)'
            )


def pretrain_classifier(config: str, data_root: str, exp_root: str) -> str:
    """Pre-train (or reuse) a classifier on the synthetic faces like the demo's; return its ``fer_final.pth``."""
    work_dir = os.path.join(exp_root, 'experiments', f'bench_fer_{os.path.splitext(os.path.basename(config))[0]}')
    summary = synthetic.pretrain_fer(config, work_dir, data_root)
    return os.path.abspath(summary['fer_final'])


def prepare_data_and_classifiers(
    preset: str, classifiers: list[Classifier], data_root: str | None, exp_root: str, train_faces: int | None = None
) -> tuple[str, list[Classifier]]:
    """The dataset root and the classifiers with their weights, before any SR training starts.

    ``cpu-small`` generates the synthetic faces and pre-trains the classifiers given without weights (cached; the
    demo's classifier comes from the demo's cache); ``paper`` checks that its files exist.

    Args:
        preset: ``paper`` or ``cpu-small``.
        classifiers: The resolved ``--fer`` entries.
        data_root: ``--data-root`` (None: the preset's).
        exp_root: Folder of ``datasets/`` and ``experiments/`` (absolute).
        train_faces: ``cpu-small`` with the demo's classifier: a smaller training set of the synthetic faces, with a
            classifier pre-trained on it alone (:func:`synthetic.prepare_data_and_classifier`).

    Returns:
        ``(data_root, classifiers)``: an absolute path, and the classifiers with absolute checkpoints.
    """
    classifiers = list(classifiers)
    if preset != 'cpu-small':
        data_root = data_root or template(preset, 'srfer', None, None, None)['datasets']['train']['dataroot_gt']
        check_files(preset, data_root, classifiers)
        return os.path.abspath(data_root), classifiers
    demo_config = os.path.realpath(resolve_path(synthetic.FER_DEMO_CONFIG))

    def demo_cache(fer: Classifier) -> bool:
        return fer.checkpoint is None and os.path.realpath(fer.config) == demo_config

    if train_faces and not all(demo_cache(c) for c in classifiers):
        raise ValueError("--train-faces pre-trains the demo's classifier on the smaller set: give no other classifier")
    if any(demo_cache(c) for c in classifiers):  # the demo's cache
        data_root, fer = synthetic.prepare_data_and_classifier('default', exp_root, data_root, train_faces=train_faces)
        classifiers = [dataclasses.replace(c, checkpoint=fer['fer_final']) if demo_cache(c) else c for c in classifiers]
    elif data_root:
        data_root = os.path.abspath(data_root)
        check_files(preset, data_root, [])
    else:
        data_root = synthetic.ensure_faces('default', synthetic.default_data_root(exp_root, 'default'))
    classifiers = [
        c if c.checkpoint else dataclasses.replace(c, checkpoint=pretrain_classifier(c.config, data_root, exp_root))
        for c in classifiers
    ]
    return os.path.abspath(data_root), classifiers


def evaluate_cell(
    data_root: str,
    fer: Classifier,
    net_g_path: str,
    results_root: str,
    network_g: dict[str, Any],
    scale: int,
    fer_weights: str | None = None,
    degradation: str | None = None,
    extra_metrics: tuple[str, ...] = (),
) -> tuple[dict[str, float], int]:
    """The demo's evaluation of a trained ``network_g`` under one classifier.

    Args:
        data_root: Dataset (its test split).
        fer: The classifier.
        net_g_path: Trained ``net_g``.
        results_root: Folder of the srfer-test reports.
        network_g: Options of ``net_g``.
        scale: Its upscale factor.
        fer_weights: The classifier's fine-tuned weights (a joint training's ``net_fer_latest.pth``), or None for
            ``fer`` as it is.
        degradation: The test set's degradation scenario (None: bicubic).
        extra_metrics: Metrics evaluated on top of PSNR/SSIM (``niqe``).

    Returns:
        ``(metrics, params)``: ``acc``, ``acc_hr``, ``acc_bicubic``, ``psnr``, ``ssim`` (and the extra metrics),
        and the parameter count of ``network_g``.
    """
    opt = evaluation_options(
        data_root, fer.checkpoint, net_g_path, results_root, network_g, scale, fer.config, None, degradation,
        extra_metrics,
    )  # fmt: skip
    opt['network_fer'] = fer_network_options(opt['network_fer'], fer)
    if fer_weights:  # after fer_network_options, which gives the section the classifier's own weights
        opt['network_fer']['checkpoint'] = fer_weights
    metrics, model = run_evaluation(opt)
    params = sum(p.numel() for p in model.get_bare_model(model.net_g).parameters())
    return metrics, int(params)


def training_options(run: BenchmarkRun, cell: Cell) -> dict[str, Any]:
    """The options of a cell's training: a matrix cell's (:mod:`.benchmark_cells`), a study cell's or a baselines
    cell's (:mod:`.baselines`)."""
    if isinstance(cell, baselines.BaselineCell):
        return baselines.cell_options(cell, run.iters, run.data_root)
    if study_presets.is_study(run.preset):
        return study_presets.study_options(cell, run.preset, run.iters, run.data_root, run.exp_root)
    return cell_options(cell, run.preset, run.iters, run.data_root)


def training_degradation(opt: dict[str, Any]) -> str:
    """The degradation of a training's train set: a scenario name or :func:`describe_pipeline`'s line (``bicubic``
    for the bicubic cell, which trains nothing)."""
    degradation = (opt.get('datasets') or {}).get('train', {}).get('degradation') or 'bicubic'
    return degradation if isinstance(degradation, str) else describe_pipeline(degradation)


def adapted_classifier(run: BenchmarkRun, cell: Cell) -> str | None:
    """The classifier weights an ``adapted`` cell is scored with (its training's ``net_fer_latest.pth``), else None.

    Raises:
        FileNotFoundError: The training of an adapted cell left no ``net_fer_latest.pth``.
    """
    if cell.classifier == 'frozen':
        return None
    path = network_path(run.exp_root, cell.train_name, 'net_fer')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{cell.name}: its fine-tuned classifier {path!r} does not exist')
    return path


def run_cell(run: BenchmarkRun, cell: Cell) -> dict[str, Any]:
    """Train (unless its ``network_g`` exists) and evaluate one cell unless its ``result.json`` exists.

    Args:
        run: What the cells share.
        cell: The cell.

    Returns:
        Its row (``benchmark_report.COLUMNS``).

    Raises:
        RuntimeError: The network a cell starts from (``cell.init_from``) was not trained before it.
    """
    name = cell.name
    row: dict[str, Any] = {'fer': cell.fer.label, 'backbone': cell.backbone, 'scale': cell.scale, 'method': cell.method}
    row.update(seed=cell.seed, classifier=cell.classifier)
    reason = unsupported_reason(cell.backbone, cell.scale)
    if reason:
        return dict(row, status='unsupported', note=reason)
    cell_dir = os.path.join(run.out, 'cells', name)
    result_path = os.path.join(cell_dir, 'result.json')
    if os.path.exists(result_path):
        print(f'[{name}] finished before: skipped', flush=True)
        with open(result_path, encoding='utf-8') as f:  # results of runs before --fer or seeds lack those keys
            earlier = json.load(f)
        earlier.pop('settings', None)  # checked by run_benchmark (benchmark_reuse), not a column
        return {'fer': cell.fer.label, 'seed': cell.seed, 'classifier': cell.classifier, **earlier}
    os.makedirs(cell_dir, exist_ok=True)
    opt = training_options(run, cell)
    settings = work_settings(opt, run.data_root)
    study = study_presets.STUDY_PRESETS.get(run.preset)
    test_degradation, extra_metrics = (study.test_degradation, study.extra_metrics) if study else (None, ())
    if isinstance(cell, baselines.BaselineCell):  # each condition tests on its own degradation
        test_degradation = cell.test_degradation
    net_g_path = network_path(run.exp_root, cell.train_name) if cell.train_name else None  # None: bicubic
    start = time.time()
    if net_g_path:
        train_dir = os.path.join(run.out, 'cells', cell.train_name)
        opt_path = write_options(opt, os.path.join(train_dir, f'{cell.train_name}.yml'), OPTIONS_HEADER)
    if net_g_path and not os.path.exists(net_g_path):
        if cell.init_from and not os.path.exists(network_path(run.exp_root, cell.init_from)):
            raise RuntimeError(f'{cell.train_name} starts from the network of {cell.init_from}, which is not trained')
        print(f'[{cell.train_name}] training {opt["train"]["total_iter"]} iterations', flush=True)
        run_training(opt_path, run.exp_root, log_path=os.path.join(train_dir, 'train_stdout.log'))
        write_training_record(run.exp_root, cell.train_name, settings)
    print(f'[{name}] evaluating with {cell.fer.label} ({cell.classifier})', flush=True)
    metrics, params = evaluate_cell(
        run.data_root,
        cell.fer,
        net_g_path,
        os.path.join(cell_dir, 'eval'),
        opt['network_g'],
        cell.scale,
        fer_weights=adapted_classifier(run, cell),
        degradation=test_degradation,
        extra_metrics=extra_metrics,
    )
    row.update({key: float(metrics[key]) for key in (*METRIC_KEYS, *extra_metrics)})
    if test_degradation:
        row.update(train_degradation=training_degradation(opt), test_degradation=test_degradation)
    shared = f'; network_g of {cell.train_name}' if cell.train_name not in (name, '') else ''
    adapted = '; scored by its fine-tuned classifier (net_fer_latest.pth)' if cell.classifier == 'adapted' else ''
    row.update(
        status='done',
        iters=opt['train']['total_iter'],
        train_s_per_iter=(
            train_seconds_per_iter(os.path.join(run.exp_root, 'experiments', cell.train_name))
            if cell.train_name
            else None
        ),
        params=params,
        note=f'cell wall time {time.time() - start:.0f} s{shared}{adapted}',
    )
    atomic_write_json({**row, 'settings': settings}, result_path)  # written last: a cell without it is not finished
    print(f'[{name}] ' + ', '.join(f'{k} {row[k]:.4g}' for k in METRIC_KEYS), flush=True)
    return row


TABLE_FILES = ('benchmark.csv', 'benchmark_mean.csv', 'benchmark.md', 'benchmark_acc.png')


def archive_tables_of_other_cells(out: str, cells: list[Cell]) -> str | None:
    """Move the tables of an earlier run to ``out/archived_<time>/`` when they list cells this run does not.

    The tables are rewritten from this run's cells; a rerun with fewer cells (``--backbones RCAN`` after the whole
    matrix) would otherwise drop the other rows. A rerun of the same cells (resuming) keeps them in place.

    Returns:
        The archive folder, or None when nothing was moved.
    """
    cells_dir = os.path.join(out, 'cells')
    finished = {
        entry.name
        for entry in (os.scandir(cells_dir) if os.path.isdir(cells_dir) else ())
        if os.path.isfile(os.path.join(entry.path, 'result.json'))
    }
    others = finished - {cell.name for cell in cells}
    tables = [name for name in TABLE_FILES if os.path.lexists(os.path.join(out, name))]
    return archive_earlier_results(out, tables) if others and tables else None


def run_benchmark(
    run: BenchmarkRun, cells: list[Cell], command: str, classifiers: list[Classifier]
) -> list[dict[str, Any]]:
    """Run every cell in order, rewriting the tables after each one (partial tables survive an interruption).

    Args:
        run: What the cells share.
        cells: The cells (``benchmark_cells.plan_cells`` or ``study_presets.plan_study_cells``).
        command: The command line, quoted in ``benchmark.md``.
        classifiers: The classifiers of the run, with their weights.

    Returns:
        The rows; ``benchmark.csv``, ``benchmark.md`` and ``benchmark_acc.png`` (and, over several seeds,
        ``benchmark_mean.csv``) are in ``run.out``.

    Raises:
        benchmark_reuse.EarlierSettingsError: Finished cells or trained networks the run would reuse were made with
            other iterations or another dataset; nothing ran.
    """
    check_earlier_work(
        run.out,
        run.exp_root,
        run.data_root,
        cells,
        lambda cell: training_options(run, cell),
        lambda cell: bool(unsupported_reason(cell.backbone, cell.scale)),
    )
    os.makedirs(run.out, exist_ok=True)
    archive_tables_of_other_cells(run.out, cells)
    study = study_presets.STUDY_PRESETS.get(run.preset)
    report: dict[str, Any] = {}
    if study:
        report = {'references': study.references, 'descriptions': study_presets.descriptions(run.preset)}
    rows = []
    for cell in cells:
        rows.append(run_cell(run, cell))
        if baselines.is_baselines(run.preset):
            baselines_report.write_report(rows, run.out, command, classifiers, cells)
        else:
            write_tables(rows, run.out, command, classifiers, **report)
    if not baselines.is_baselines(run.preset):
        (plot_means if study else plot)(rows, run.out)
    return rows
