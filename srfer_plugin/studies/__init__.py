"""The experiments of the demo and the benchmark scripts, as a library (the command lines stay in their scripts).

Named ``studies`` because ``experiments/`` is where BasicSR writes its runs (git-ignored everywhere in the tree).

Modules:
    runner: trains one BasicSR option file in a subprocess (``python -m srfer_plugin.train --auto_resume``).
    evaluation: a trained ``network_g`` scored by a test-mode SRFERModel (PSNR/SSIM, FER accuracy on SR, HR,
        bicubic).
    synthetic: the synthetic-face experiment of ``python -m srfer_plugin.demo`` and of the demo-based benchmarks.
    benchmark_options: the benchmark's option templates and cells (``scripts/make_benchmark_options.py``).
    benchmark_cells: the benchmark's classifiers and cells, and each cell's options.
    benchmark: preparing, training and evaluating the cells of a benchmark run (``srfer benchmark``).
    study_variants: the SR-FER study's presets (``ablation``, ``stages``, ``weights``, ``joint``, ``gan``) and variants.
    study_presets: their cells (variant x seed x classifier) and options.
    benchmark_report: the benchmark's CSV and Markdown tables and its plot.
    aggregate: mean ± std over seeds per cell variant, and differences against a reference variant.
    speed: training-step time and memory of SRFERModel against its plain twin (``srfer benchmark-speed``).
"""
