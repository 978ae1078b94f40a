"""``import srfer_plugin`` with and without the autoload hook, in any order; the hook itself is inert on import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fer_fixtures import REPO_ROOT


def run_python(code: str, autoload: bool) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    env.pop('SRFER_NO_AUTOLOAD', None)
    if not autoload:
        env['SRFER_NO_AUTOLOAD'] = '1'
    return subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)


REGISTERED = (
    'from basicsr.utils.registry import MODEL_REGISTRY, ARCH_REGISTRY; '
    "assert {'SRFERModel', 'SafeSRModel'} <= set(MODEL_REGISTRY._obj_map); "
    "assert 'MMPretrainFER' in ARCH_REGISTRY._obj_map; print('registered')"
)


@pytest.mark.parametrize(
    'first_import',
    ['import srfer_plugin', 'import srfer_plugin.models.srfer_model', 'import srfer_plugin.data.paired_fer_dataset'],
)
def test_import_without_the_hook_in_any_order(first_import):
    proc = run_python(f'{first_import}; import basicsr; {REGISTERED}', autoload=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'registered' in proc.stdout


def test_the_hook_registers_the_plugin_when_basicsr_is_imported():
    proc = run_python(f"import sys; assert 'srfer_plugin' not in sys.modules; import basicsr; {REGISTERED}", True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_importing_the_autoload_module_does_nothing_heavy():
    # The .pth line has already imported the module and installed the finder at start-up: drop both, import afresh.
    code = (
        'import sys; '
        "is_finder = lambda f: type(f).__name__ == '_BasicsrFinder'; "
        'sys.meta_path[:] = [f for f in sys.meta_path if not is_finder(f)]; '
        "sys.modules.pop('srfer_plugin_autoload', None); "
        'import srfer_plugin_autoload as a; '
        "assert not any(is_finder(f) for f in sys.meta_path), 'import installed the hook'; "
        "assert 'torch' not in sys.modules and 'basicsr' not in sys.modules; print('inert')"
    )
    proc = run_python(code, autoload=False)
    assert proc.returncode == 0 and 'inert' in proc.stdout, proc.stderr[-2000:]


def test_no_autoload_keeps_the_shim_and_registers_nothing():
    code = (
        'import sys, basicsr; '
        'from basicsr.utils.registry import MODEL_REGISTRY, ARCH_REGISTRY; '
        "assert 'srfer_plugin' not in sys.modules, 'the plugin was imported'; "
        "assert 'SRFERModel' not in MODEL_REGISTRY._obj_map and 'MMPretrainFER' not in ARCH_REGISTRY._obj_map; "
        "print('unregistered')"
    )
    proc = run_python(code, autoload=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'unregistered' in proc.stdout


def test_pth_file_and_setup_name_the_autoload_module_that_exists():
    with open(os.path.join(REPO_ROOT, 'srfer_plugin_autoload.pth'), encoding='utf-8') as f:
        line = f.read().strip()
    assert line == 'import srfer_plugin_autoload; srfer_plugin_autoload.install_basicsr_hook()'
    with open(os.path.join(REPO_ROOT, 'setup.py'), encoding='utf-8') as f:
        setup_text = f.read()
    assert "py_modules=['srfer_plugin_autoload']" in setup_text and 'srfer_plugin.autoload' not in setup_text
    assert os.path.isfile(os.path.join(REPO_ROOT, 'srfer_plugin_autoload.py'))
