"""Registers every `*_metric.py` module of this folder in BasicSR's metric registry."""

from srfer_plugin.utils.registry_import import import_modules_with_suffix

_modules = import_modules_with_suffix(__name__, __file__, '_metric')
