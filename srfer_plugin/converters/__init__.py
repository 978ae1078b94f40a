"""Convert FER datasets from their distributed layouts into the plugin's layout (see ``data/fer_layout.py``).

Offline tools, kept out of ``srfer_plugin.data`` (whose ``*_dataset.py`` modules BasicSR imports at run time).
One module per format (``rafdb``, ``fer2013``, ``ferplus``, ``affectnet``, ``ckplus``, ``jaffe``, ``imagefolder``)
owns its label table and its reader, which turns a source folder/file into :class:`Sample` records (canonical
class name, official split if any, subject id if any, and a lazy image loader); :data:`FORMATS` registers them.
:func:`assign_splits` applies a :class:`SplitSpec`, and :func:`write_dataset` writes
``DST/<split>/<class>/<name>.png``, ``classes.txt``, ``meta_info_<split>.txt``, an optional lmdb per split and
``prepare_report.json``. :func:`prepare_dataset` runs the whole pipeline; ``srfer prepare-dataset``
(:mod:`srfer_plugin.tools.prepare_dataset`) is its command line.

Bad rows (unreadable images, unknown labels, malformed csv rows, an image listed again) are recorded in a
:class:`PrepareReport` with their file name or csv line and never reach the output (an image listed twice with one
label is written once; with conflicting labels it is left out). Rows dropped on purpose (contempt, AffectNet
none/uncertain/non-face, FER+ unknown/NF, unlabelled CK+ sequences) are counted as *skipped*.
"""

from srfer_plugin.converters.affectnet import AFFECTNET_DROPPED, AFFECTNET_LABELS, read_affectnet
from srfer_plugin.converters.ckplus import CKPLUS_LABELS, read_ckplus
from srfer_plugin.converters.fer2013 import FER2013_LABELS, read_fer2013
from srfer_plugin.converters.ferplus import FERPLUS_COLUMNS, FERPLUS_LABELS, ferplus_majority, read_ferplus
from srfer_plugin.converters.formats import CONTEMPT_FORMATS, DEFAULT_SPLITS, FORMATS, DatasetFormat
from srfer_plugin.converters.image_io import parse_pixels, read_image_file, to_square_bgr
from srfer_plugin.converters.imagefolder import read_imagefolder
from srfer_plugin.converters.jaffe import JAFFE_CODES, read_jaffe
from srfer_plugin.converters.pipeline import prepare_dataset
from srfer_plugin.converters.rafdb import RAFDB_LABELS, read_rafdb
from srfer_plugin.converters.records import (
    CLASS_SYNONYMS,
    REPORT_FILE,
    SPLIT_NAMES,
    SPLIT_SYNONYMS,
    PrepareError,
    PrepareReport,
    PrepareResult,
    Reader,
    ReaderOptions,
    Sample,
    canonical_class,
    format_counts_table,
    format_report,
)
from srfer_plugin.converters.splits import SplitSpec, assign_splits, parse_split_spec
from srfer_plugin.converters.writer import safe_name, write_dataset, write_lmdb

__all__ = [
    'AFFECTNET_DROPPED',
    'AFFECTNET_LABELS',
    'CKPLUS_LABELS',
    'CLASS_SYNONYMS',
    'CONTEMPT_FORMATS',
    'DEFAULT_SPLITS',
    'FER2013_LABELS',
    'FERPLUS_COLUMNS',
    'FERPLUS_LABELS',
    'FORMATS',
    'JAFFE_CODES',
    'RAFDB_LABELS',
    'REPORT_FILE',
    'SPLIT_NAMES',
    'SPLIT_SYNONYMS',
    'DatasetFormat',
    'PrepareError',
    'PrepareReport',
    'PrepareResult',
    'Reader',
    'ReaderOptions',
    'Sample',
    'SplitSpec',
    'assign_splits',
    'canonical_class',
    'ferplus_majority',
    'format_counts_table',
    'format_report',
    'parse_pixels',
    'parse_split_spec',
    'prepare_dataset',
    'read_affectnet',
    'read_ckplus',
    'read_fer2013',
    'read_ferplus',
    'read_image_file',
    'read_imagefolder',
    'read_jaffe',
    'read_rafdb',
    'safe_name',
    'to_square_bgr',
    'write_dataset',
    'write_lmdb',
]
