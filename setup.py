"""Installs srfer_plugin, its console scripts and the hook that lets BasicSR's own entry points find it."""

import os
import sys
import sysconfig

from setuptools import find_packages, setup
from setuptools.command.editable_wheel import editable_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
AUTOLOAD_PTH = 'srfer_plugin_autoload.pth'


def read_version() -> str:
    scope = {}
    with open(os.path.join(HERE, 'srfer_plugin', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


def autoload_data_files() -> list:
    """Place ``srfer_plugin_autoload.pth`` in site-packages (data files install relative to the prefix).

    The .pth line imports the top-level module ``srfer_plugin_autoload`` (no torch) and installs its import hook,
    which registers the plugin right after ``basicsr`` itself is imported, so ``python -m basicsr.train`` finds the
    plugin's classes.
    """
    site_packages = os.path.relpath(sysconfig.get_path('purelib'), sys.prefix)
    return [(site_packages, [AUTOLOAD_PTH])]


class EditableWheelWithDataFiles(editable_wheel):
    """Installs ``data_files`` in editable mode too.

    setuptools' editable_wheel asks the distribution for ``has_data()``, which does not exist (the method is
    ``has_data_files()``), so ``pip install -e .`` would silently drop the autoload .pth.
    """

    def _run_install(self, category: str) -> None:
        if category == 'data' and self.distribution.has_data_files():
            self.run_command('install_data')
        else:
            super()._run_install(category)


with open(os.path.join(HERE, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='srfer_plugin',
    version=read_version(),
    description='SR-FER: super-resolution guided facial expression recognition, as a BasicSR plugin',
    long_description=long_description,
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=['srfer_plugin', 'srfer_plugin.*']),
    py_modules=['srfer_plugin_autoload'],
    include_package_data=True,
    # The recipes and mmpretrain configs (a clone's options/ links here), named srfer::NAME at run time.
    package_data={'srfer_plugin': ['options/**/*.py', 'options/**/*.yml', 'options/**/*.txt']},
    python_requires='>=3.9',
    install_requires=[
        'basicsr==1.4.2',
        'torch>=2.6',  # weights_only torch.load by default
        'torchvision>=0.21',
        'mmengine>=0.10.4,<0.11',
        'mmpretrain>=1.2,<1.3',
        # Pure-Python mmcv: mmpretrain needs mmcv's Python API only; full mmcv needs a CUDA build.
        'mmcv-lite>=2.0,<2.2',
        'numpy>=1.24',
        'opencv-python>=4.6',
        'lmdb>=1.3',
        'pyyaml>=6.0',
        'tqdm>=4.60',
        'matplotlib>=3.6',
        # mmengine 0.10.x resolves `mmpretrain::` config bases with pkg_resources, gone from setuptools >= 81.
        'setuptools>=64,<81',
    ],
    extras_require={
        # srfer export and srfer-infer --backend onnxruntime
        'onnx': ['onnx>=1.16', 'onnxruntime>=1.17'],
        # Faces in photos and videos (srfer-infer --detect): dlib's HOG face detector, its model inside the wheel.
        'wild': ['dlib-bin>=19.24'],
        # The web page (srfer web).
        'web': ['gradio>=5,<7'],
        # selenium drives the system's chromium (Debian: chromium chromium-driver) in the web page's browser test.
        'dev': [
            'pytest>=7',
            'pytest-xdist>=3',  # the README's test command runs two worker processes (-n 2)
            'ruff>=0.5',
            'onnx>=1.16',
            'onnxruntime>=1.17',
            'dlib-bin>=19.24',
            'gradio>=5,<7',
            'selenium>=4.10',
        ],
    },
    entry_points={
        'console_scripts': [
            'srfer=srfer_plugin.cli:main',
            'srfer-train=srfer_plugin.train:main',
            'srfer-test=srfer_plugin.test:main',
            'srfer-infer=srfer_plugin.infer:main',
            'srfer-demo=srfer_plugin.cli:demo_script',
        ],
    },
    data_files=autoload_data_files(),
    cmdclass={'editable_wheel': EditableWheelWithDataFiles},
    zip_safe=False,
)
