"""docs/config.md documents every option key the plugin's models, datasets, arch and training loop read.

The keys are found by reading the code (``opt['key']``, ``something_opt.get('key')``, ...), so a key added to the
code without a line in the reference fails here. Keys that BasicSR itself defines and documents are exempt.
"""

from __future__ import annotations

import ast
import inspect
import os
import re

from srfer_plugin.archs.mmpretrain_fer_arch import MMPretrainFER

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO_ROOT, 'srfer_plugin')
READERS = ('models', 'data', 'train_loop', 'losses')
# BasicSR's own option keys (its docs and templates define them), and run-time entries BasicSR adds to the options.
BASICSR_KEYS = {
    'auto_resume', 'batch_size_per_gpu', 'dataroot_gt', 'dataroot_lq', 'dataset_enlarge_ratio', 'datasets', 'dist',
    'ema_decay', 'experiments_root', 'find_unused_parameters', 'gan_opt', 'gt_size', 'ignore_resume_networks',
    'io_backend', 'is_train', 'log', 'manual_seed', 'meta_info_file', 'metrics', 'model_type', 'models', 'name',
    'net_d_init_iters', 'net_d_iters', 'network_d', 'network_g', 'num_gpu', 'optim_d', 'param_key_d', 'path', 'pbar',
    'perceptual_opt', 'phase', 'pretrain_network_d', 'pretrain_network_g', 'rank', 'restart_weights',
    'results_root', 'resume_state', 'scale', 'scheduler', 'strict_load_d', 'strict_load_g', 'suffix', 'total_iter',
    'train', 'training_states', 'type', 'use_hflip', 'val', 'visualization', 'warmup_iter', 'world_size', 'betas',
}  # fmt: skip
# Methods that read the option named by their first argument (PairedFERDataset's).
OPTION_HELPERS = ('_choice', '_require_path')
# Entries the plugin itself writes into the options at run time (not for users to set).
RUN_TIME_KEYS = {'iters_per_epoch', 'resume_position', 'resume_notes'}


def _option_keys_read(path: str) -> set[str]:
    """String keys read from option dicts in one module: subscripts and ``get``/``pop``/``setdefault`` calls on an
    expression whose last name contains ``opt``."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    keys = set()
    for node in ast.walk(tree):
        target, key = None, None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ('get', 'pop', 'setdefault') and node.args and isinstance(node.args[0], ast.Constant):
                target, key = node.func.value, node.args[0].value
            elif node.func.attr in OPTION_HELPERS and node.args and isinstance(node.args[0], ast.Constant):
                target, key = ast.Name('opt'), node.args[0].value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            target, key = node.value, node.slice.value
        if target is None or not isinstance(key, str):
            continue
        source = ast.unparse(target)
        last_name = re.split(r'[.\[]', source.split('(')[0])[-1] if '[' not in source else source
        if 'opt' in last_name or source.startswith(('opt', 'self.opt')):
            keys.add(key)
    return keys


def test_every_option_key_the_code_reads_is_in_the_config_reference():
    read = set(inspect.signature(MMPretrainFER.__init__).parameters) - {'self'}
    for folder in READERS:
        for name in sorted(os.listdir(os.path.join(PACKAGE, folder))):
            if name.endswith('.py'):
                read |= _option_keys_read(os.path.join(PACKAGE, folder, name))
    assert 'attention_opt' in read and 'sr_grad_weight' in read and 'bad_images' in read, 'the scan finds keys'
    with open(os.path.join(REPO_ROOT, 'docs', 'config.md'), encoding='utf-8') as f:
        documented = set(re.findall(r'`([A-Za-z_][A-Za-z0-9_.]*)`', f.read()))
    documented |= {part for key in documented for part in key.split('.')}
    missing = sorted(read - BASICSR_KEYS - RUN_TIME_KEYS - documented)
    assert not missing, f'option keys read by the code but not documented in docs/config.md: {missing}'
