"""srfer_plugin: super-resolution-guided facial expression recognition (SR-FER) as a BasicSR plugin.

``import srfer_plugin`` makes ``import basicsr`` work on current torchvision (the ``functional_tensor`` shim is
installed first, before anything here imports basicsr) and registers the plugin's archs, losses, metrics, models and
datasets in BasicSR's registries. It works with or without the autoload hook and in any import order.
"""

from srfer_plugin_autoload import install_functional_tensor_shim

install_functional_tensor_shim()

from srfer_plugin import archs, data, losses, metrics, models  # noqa: E402,F401  (registration; needs the shim above)
from srfer_plugin.version import __version__  # noqa: E402

__all__ = ['__version__']
