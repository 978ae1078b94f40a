"""The plugin's tools, one module per ``srfer`` verb (:mod:`srfer_plugin.cli`): arguments and printing only.

``prepare_dataset``, ``generate_synthetic_faces``, ``train_fer``, ``make_lr``, ``visualize_attention``,
``benchmark``, ``benchmark_speed``, ``fer_taps``, ``eval_fer_degradation``, ``calibrate_synthetic_faces`` and
``list_options``. Each runs as ``srfer <verb>`` (``_`` spelt ``-``), ``python -m srfer_plugin.tools.<module>`` and,
in a clone, ``python scripts/<module>.py``. The work is done by the libraries (``converters``, ``synthetic``,
``fer_pretrain``, ``data``, ``studies``, ``utils``).
"""
