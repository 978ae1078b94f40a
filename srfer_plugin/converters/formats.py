"""The registry of dataset formats: one row per format with its reader and its split defaults."""

from __future__ import annotations

from dataclasses import dataclass

from srfer_plugin.converters.affectnet import read_affectnet
from srfer_plugin.converters.ckplus import read_ckplus
from srfer_plugin.converters.fer2013 import read_fer2013
from srfer_plugin.converters.ferplus import read_ferplus
from srfer_plugin.converters.imagefolder import read_imagefolder
from srfer_plugin.converters.jaffe import read_jaffe
from srfer_plugin.converters.rafdb import read_rafdb
from srfer_plugin.converters.records import Reader


@dataclass(frozen=True)
class DatasetFormat:
    """One dataset format.

    Attributes:
        read: Its reader (``src, report, options -> samples``).
        default_split: ``--split`` when none is given.
        has_contempt: Whether it has a contempt class (``--keep-contempt`` is allowed).
        official_if_present: Use ``official`` instead of the default when every sample has an official split.
    """

    read: Reader
    default_split: str
    has_contempt: bool = False
    official_if_present: bool = False


_SUBJECT = 'subject:0.8,0.1,0.1'

FORMATS: dict[str, DatasetFormat] = {
    'rafdb': DatasetFormat(read_rafdb, 'official'),
    'fer2013': DatasetFormat(read_fer2013, 'official'),
    'ferplus': DatasetFormat(read_ferplus, 'official', has_contempt=True),
    'affectnet': DatasetFormat(read_affectnet, 'official', has_contempt=True),
    'ckplus': DatasetFormat(read_ckplus, _SUBJECT, has_contempt=True),
    'jaffe': DatasetFormat(read_jaffe, _SUBJECT),
    'imagefolder': DatasetFormat(read_imagefolder, 'random:0.8,0.1,0.1', has_contempt=True, official_if_present=True),
}

# Views of the table, for messages and the command line.
DEFAULT_SPLITS: dict[str, str] = {name: f.default_split for name, f in FORMATS.items()}
CONTEMPT_FORMATS: tuple[str, ...] = tuple(name for name, f in FORMATS.items() if f.has_contempt)
