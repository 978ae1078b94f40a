"""Distributed training on CPU: 2 processes started by torchrun (gloo), BasicSR's launcher path."""

from __future__ import annotations

import copy
import os
import pathlib
import subprocess
import sys

import torch
from fer_fixtures import (
    GAN_TRAIN,
    REPO_ROOT,
    TINY_NET_D,
    TINY_SR_ARCHS,
    tiny_train_options,
    with_consistency_weights,
    write_options,
)
from training_runs import logged_losses, train_env

from srfer_plugin.train_loop import normalize_launcher_argv

TESTS_DIR = os.path.join(REPO_ROOT, 'tests')  # dist_train_entry.py and the fixture modules


def test_local_rank_argument_spellings(monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    argv = normalize_launcher_argv(['train.py', '-opt', 'x.yml', '--local-rank=1', '--launcher', 'pytorch'])
    assert argv[3] == '--local_rank=1' and os.environ['LOCAL_RANK'] == '1'


def _torchrun_two_ranks(opt: dict, tmp_path) -> pathlib.Path:
    """Train ``opt`` on 2 CPU ranks (torchrun, gloo); return the experiment folder with every rank's dumps."""
    opt_path = write_options(opt, str(tmp_path / 'dist.yml'))
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
        os.path.join(TESTS_DIR, 'dist_train_entry.py'), '-opt', opt_path, '--launcher', 'pytorch',
    ]  # fmt: skip
    env = train_env()
    env['PYTHONPATH'] = os.pathsep.join([TESTS_DIR, env.get('PYTHONPATH', '')])
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, f'{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}'
    return tmp_path / 'experiments' / opt['name']


def _assert_ranks_agree(exp: pathlib.Path, nets: tuple[str, ...]) -> dict[int, dict]:
    """Every net in ``nets`` is DDP-wrapped, has the same parameters on both ranks, and trained; return the dumps."""
    dumps = {r: torch.load(exp / 'rank_dumps' / f'rank{r}_latest.pth', weights_only=True) for r in (0, 1)}
    first = torch.load(exp / 'rank_dumps' / 'rank0_2.pth', weights_only=True)
    for net in nets:
        assert dumps[0][f'{net}_wrapper'] == dumps[1][f'{net}_wrapper'] == 'DistributedDataParallel', net
        assert dumps[0][net].keys() == dumps[1][net].keys()
        # Parameters are kept identical by DDP. BatchNorm running statistics are per rank between DDP's
        # buffer broadcasts (from rank 0, at each forward); BasicSR saves rank 0's.
        differ = [k for k in dumps[0][f'{net}_params'] if not torch.equal(dumps[0][net][k], dumps[1][net][k])]
        assert not differ, f'{net} parameters differ across ranks: {differ[:5]}'
        assert any(not torch.equal(v, dumps[0][net][k]) for k, v in first[net].items()), f'{net} did not train'
    assert sorted(logged_losses(str(exp))) == [1, 2, 3]
    log = next(exp.glob('train_*.log')).read_text()
    assert 'World size (gpu number): 2' in log and '# acc:' in log
    return dumps


def _two_rank_options(tiny_fer_root: str, **overrides) -> dict:
    opt = tiny_train_options(tiny_fer_root, **overrides)
    opt['train']['total_iter'] = 3
    opt['datasets']['train']['batch_size_per_gpu'] = 2
    opt['val']['val_freq'] = 2  # rank 0 validates while rank 1 waits at the barrier
    opt['logger']['save_checkpoint_freq'] = 2
    return opt


def test_torchrun_two_cpu_processes(tiny_fer_root, tmp_path):
    """Joint learning with SwinIR (DDP buffers) on 2 ranks: both finish and end with identical weights."""
    opt = _two_rank_options(tiny_fer_root, name='dist_tiny', network_g=dict(TINY_SR_ARCHS['SwinIR']))
    opt['train']['train_network_fer'] = True
    opt['train']['fer_opt'] = {'type': 'FERCrossEntropyLoss', 'loss_weight': 1.0}
    opt['train']['optim_fer'] = {'type': 'SGD', 'lr': 0.01, 'momentum': 0.9}
    exp = _torchrun_two_ranks(opt, tmp_path)
    dumps = _assert_ranks_agree(exp, ('net_g', 'net_fer'))
    assert all(torch.equal(v, dumps[1]['net_g'][k]) for k, v in dumps[0]['net_g'].items()), 'SwinIR buffers'
    saved = torch.load(exp / 'models' / 'net_g_latest.pth', weights_only=True)['params']
    assert all(torch.equal(v, saved[k]) for k, v in dumps[0]['net_g'].items())


def test_torchrun_esrgan_srfer_two_cpu_processes(tiny_fer_root, tmp_path):
    """SR-FER-ESRGAN on 2 ranks: generator and discriminator DDP-wrapped, identical on both ranks, net_d saved."""
    opt = _two_rank_options(tiny_fer_root, name='dist_gan', model_type='SRFERESRGANModel', network_d=dict(TINY_NET_D))
    opt['train'].update(copy.deepcopy(GAN_TRAIN))
    exp = _torchrun_two_ranks(opt, tmp_path)
    dumps = _assert_ranks_agree(exp, ('net_g', 'net_d'))
    assert dumps[0]['net_fer_wrapper'] == 'MMPretrainFER', 'the frozen classifier is not wrapped'
    saved = torch.load(exp / 'models' / 'net_d_latest.pth', weights_only=True)['params']
    assert all(torch.equal(v, saved[k]) for k, v in dumps[0]['net_d'].items())


def test_frozen_classifier_is_not_wrapped_in_ddp(tiny_fer_root, tmp_path):
    """Under DDP only trainable networks are wrapped; a frozen net_fer stays bare and still gives losses."""
    import torch.distributed as dist
    from basicsr.data import build_dataset
    from basicsr.models import build_model
    from fer_fixtures import model_options
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "pg"}', rank=0, world_size=1)
    try:
        opt = model_options(tiny_fer_root, str(tmp_path / 'exp'))
        opt['dist'] = True
        model = build_model(opt)
        assert isinstance(model.net_g, DistributedDataParallel)
        assert not isinstance(model.net_fer, DistributedDataParallel)
        assert not any(p.requires_grad for p in model.net_fer.parameters())
        dataset = build_dataset(opt['datasets']['train'])
        items = [dataset[i] for i in range(2)]
        model.feed_data({k: torch.stack([it[k] for it in items]) for k in ('lq', 'gt', 'label')})
        model.optimize_parameters(1)
        assert {'l_pix', 'l_att', 'l_pred'} <= set(model.log_dict)
    finally:
        dist.destroy_process_group()


def test_psnr_pilot_twin_stays_one_network_across_ranks(tiny_fer_root, tmp_path):
    """The plain-SR twin is not DDP-wrapped: its gradients are averaged by hand. At the pilot's end (iteration 2)
    net_g takes the twin's weights, so both ranks must hold the same twin then (and the same net_g after)."""
    pilot = {
        'rule': 'psnr_pilot', 'shares': {'l_att': 0.05, 'l_pred': 0.05}, 'budget_db': 0.1, 'pilot_iters': 2,
        'interval': 1,
    }  # fmt: skip
    opt = with_consistency_weights(_two_rank_options(tiny_fer_root, name='dist_pilot'), pilot)
    exp = _torchrun_two_ranks(opt, tmp_path)
    _assert_ranks_agree(exp, ('net_g',))
    at_pilot_end = [torch.load(exp / 'rank_dumps' / f'rank{r}_2.pth', weights_only=True)['net_g'] for r in (0, 1)]
    assert all(torch.equal(v, at_pilot_end[1][k]) for k, v in at_pilot_end[0].items()), 'the twins differ'
    assert 'psnr_gap' in logged_losses(str(exp))[2]
