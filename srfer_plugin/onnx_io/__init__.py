"""ONNX export of the SR network and the FER classifier, and the onnxruntime backend of the predictor.

``srfer export`` (:mod:`srfer_plugin.tools.export_onnx`) writes, into one folder:

* ``sr.onnx``: ``lr`` (``N3HW`` RGB float32 in [0, 1]) -> ``sr`` (``N3(sH)(sW)`` in [0, 1]). Dynamic batch, height
  and width. A side that is not a multiple of ``pad_multiple`` (SwinIR's ``window_size``) is reflect-padded inside
  the graph and the output cropped back and clamped, as :meth:`SRFERPredictor.super_resolve` does (reflect padding
  needs sides of at least ``pad_multiple`` pixels; the predictor pads smaller faces itself before the graph).
* ``fer.onnx``: ``image`` (``N3HW`` RGB float32 in [0, 1]) -> ``logits`` ``(N, K)``, plus one ``tap_<i>`` feature map
  per attention tap with ``--with-taps``. The classifier's normalisation (mean/std, channel order) is inside the
  graph. Dynamic batch; the height and width are fixed when the classifier reads a fixed size
  (``network_fer.input_size`` or ``--fer-size``: faces are resized to it outside the graph, as the metadata says),
  dynamic otherwise (ViT-like classifiers whose taps are token grids need a fixed size for ``--with-taps``).
* ``srfer_onnx.json``: what the backend needs besides the graphs (scale, padding, class names, sizes, resizing,
  opset, the torch/onnxruntime differences measured at export). Each .onnx file carries the export's id in its
  metadata, so a file from another export is named instead of giving silently wrong results.

:func:`load_onnx_predictor` builds an :class:`~srfer_plugin.predictor.SRFERPredictor` whose two networks are
onnxruntime sessions (:class:`OnnxNetwork`): padding, batching, resizing and the outputs are the torch backend's.
Both need the ``onnx`` extra: ``pip install 'srfer_plugin[onnx]'``.

Modules: :mod:`~srfer_plugin.onnx_io.common` (file names, format, optional imports, onnxruntime sessions),
:mod:`~srfer_plugin.onnx_io.graphs` (the traced modules), :mod:`~srfer_plugin.onnx_io.export` (tracing, tagging,
the torch/onnxruntime check) and :mod:`~srfer_plugin.onnx_io.runtime` (the backend). The package is not named
``onnx``: run as ``python srfer_plugin/infer.py``, the folder of the script is on ``sys.path`` and would shadow the
``onnx`` library.
"""

from srfer_plugin.onnx_io.common import (
    FER_FILE,
    FORMAT,
    FORMAT_VERSION,
    INSTALL_HINT,
    METADATA_FILE,
    SR_FILE,
    require,
)
from srfer_plugin.onnx_io.export import (
    DEFAULT_OPSET,
    LOGITS_TOLERANCE,
    SR_TOLERANCE,
    TAPS_TOLERANCE,
    OnnxExportError,
    export_predictor,
)
from srfer_plugin.onnx_io.graphs import FERGraph, SRGraph, traceable_archs
from srfer_plugin.onnx_io.runtime import (
    OnnxClassifier,
    OnnxNetwork,
    load_onnx_predictor,
    predictor_from_args,
    read_metadata,
)

__all__ = [
    'DEFAULT_OPSET',
    'FER_FILE',
    'FERGraph',
    'FORMAT',
    'FORMAT_VERSION',
    'INSTALL_HINT',
    'LOGITS_TOLERANCE',
    'METADATA_FILE',
    'SR_FILE',
    'SR_TOLERANCE',
    'SRGraph',
    'TAPS_TOLERANCE',
    'OnnxClassifier',
    'OnnxExportError',
    'OnnxNetwork',
    'export_predictor',
    'load_onnx_predictor',
    'predictor_from_args',
    'read_metadata',
    'require',
    'traceable_archs',
]
