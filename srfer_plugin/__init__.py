"""srfer_plugin: super-resolution-guided facial expression recognition (SR-FER) as a BasicSR plugin.

``import srfer_plugin`` makes ``import basicsr`` work on current torchvision and registers the plugin's
archs, losses, models and datasets in BasicSR's registries.
"""

from srfer_plugin import (  # noqa: F401,E402  (registration)
    archs,
    compat,  # noqa: F401  (must run before basicsr is imported)
    data,
    losses,
    models,
)
from srfer_plugin.version import __version__  # noqa: E402

__all__ = ['__version__']
