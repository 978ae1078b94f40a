"""What SR-FER costs per training step: SRFERModel against BasicSR's SRModel, side by side in one process.

Example::

    python scripts/benchmark_speed.py                               # full RCAN (the recipe), batch 16
    python scripts/benchmark_speed.py --network demo-small          # the demo's small RCAN
    python scripts/benchmark_speed.py --device cuda --use-amp --channels-last

Both models are built from the same option file (default ``options/train_RCAN_srfer_x4.yml``); the plain one
is its SRModel twin (``make_benchmark_options.plain_variant``). They train on the same random batches; steps
alternate between the two models (the order flips every step) so that both see the same machine state. The
FER classifier is randomly initialised when its checkpoint is absent: the weights do not change the cost.

Printed per model: median and mean step time, peak memory a step adds (CUDA: allocator peak over the memory
held before the step; CPU: peak resident set over the resident set before the step, from ``/proc``, with a
fixed glibc mmap threshold so freed tensors leave the resident set), and the
SRFERModel / SRModel ratios. ``--json`` also writes them to a file.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_benchmark_options import RECIPE, REPO_ROOT, plain_variant  # noqa: E402

import srfer_plugin  # noqa: E402,F401  (registration, before basicsr)
from srfer_plugin.demo import DEMO_NETWORK_G  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Training-step time and memory: SRFERModel vs SRModel.')
    parser.add_argument('--opt', default=RECIPE, help='SR-FER option file (network_g, network_fer, losses)')
    parser.add_argument('--network', choices=('recipe', 'demo-small'), default='recipe',
                        help="network_g: the option file's, or the demo's small RCAN")  # fmt: skip
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--steps', type=int, default=10, help='timed steps per model')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps per model first')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto')
    parser.add_argument('--use-amp', action='store_true', help='train.use_amp for SRFERModel (SRModel has none)')
    parser.add_argument('--amp-dtype', default='bf16', choices=('bf16', 'fp16'))
    parser.add_argument('--channels-last', action='store_true', help='train.channels_last for SRFERModel')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    parser.add_argument('--json', default=None, help='also write the results to this file')
    args = parser.parse_args(argv)
    if args.batch < 1 or args.steps < 1 or args.warmup < 0:
        parser.error('--batch and --steps must be >= 1 and --warmup >= 0')
    return args


def model_options(args: argparse.Namespace, work_dir: str, device: str) -> dict[str, dict[str, Any]]:
    """Options (as ``parse_options`` returns them) of the SR-FER model and its plain twin."""
    import yaml

    with open(args.opt, encoding='utf-8') as f:
        srfer = yaml.safe_load(f)
    if srfer.get('model_type') != 'SRFERModel' or 'network_fer' not in srfer:
        raise ValueError(f'{args.opt}: needs model_type SRFERModel and a network_fer section')
    if args.network == 'demo-small':
        srfer['network_g'] = copy.deepcopy(DEMO_NETWORK_G)
    srfer['network_g']['upscale' if 'upscale' in srfer['network_g'] else 'scale'] = srfer['scale']
    fer = srfer['network_fer']
    if not os.path.isabs(fer['config']):
        fer['config'] = os.path.join(REPO_ROOT, fer['config'])
    if fer.get('checkpoint') and not os.path.isfile(fer['checkpoint']):
        print(f'note: {fer["checkpoint"]} not found; the FER classifier is randomly initialised', flush=True)
        fer['checkpoint'] = None
    srfer['train'].update(use_amp=args.use_amp, amp_dtype=args.amp_dtype, channels_last=args.channels_last)
    srfer['path'].update(pretrain_network_g=None, resume_state=None)
    options = {'SRModel': plain_variant(srfer), 'SRFERModel': srfer}
    for name, opt in options.items():
        exp = os.path.join(work_dir, name)
        opt.pop('datasets', None)
        opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False, root_path=work_dir)
        opt['num_gpu'] = 1 if device == 'cuda' else 0
        opt['path'].update(
            experiments_root=exp,
            models=os.path.join(exp, 'models'),
            training_states=os.path.join(exp, 'training_states'),
            log=exp,
            visualization=os.path.join(exp, 'visualization'),
        )
    return options


def _rss_kib(field: str) -> int | None:
    try:
        with open('/proc/self/status', encoding='ascii') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w', encoding='ascii') as f:
            f.write('5')  # resets VmHWM to the current resident set
        return True
    except OSError:
        return False


def timed_step(model: Any, batch: dict[str, torch.Tensor], step: int, device: str) -> tuple[float, float | None]:
    """One training step; returns ``(seconds, extra peak memory in MiB or None)``."""
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_kib('VmRSS') if _reset_peak_rss() else None
    start = time.perf_counter()
    model.feed_data(batch)
    model.optimize_parameters(step)
    if device == 'cuda':
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if device == 'cuda':
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        hwm = _rss_kib('VmHWM')
        peak = (hwm - base) / 1024 if base is not None and hwm is not None else None
    return seconds, peak


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print the table; returns the results."""
    from basicsr.models import build_model

    args = parse_args(argv)
    device = ('cuda' if torch.cuda.is_available() else 'cpu') if args.device == 'auto' else args.device
    if device == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('--device cuda: no CUDA device is available')
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as work_dir:
        options = model_options(args, work_dir, device)
        torch.manual_seed(0)
        models = {name: build_model(opt) for name, opt in options.items()}
    scale = options['SRFERModel']['scale']
    hr = 112
    generator = torch.Generator().manual_seed(0)
    gt = torch.rand(args.batch, 3, hr, hr, generator=generator)
    batch = {
        'gt': gt,
        'lq': torch.nn.functional.interpolate(gt, scale_factor=1 / scale, mode='bicubic', antialias=True).clamp(0, 1),
        'label': torch.randint(0, options['SRFERModel']['network_fer']['num_classes'], (args.batch,)),
    }
    names = list(models)
    times: dict[str, list[float]] = {name: [] for name in names}
    peaks: dict[str, list[float]] = {name: [] for name in names}
    for step in range(1, args.warmup + args.steps + 1):
        for name in names if step % 2 else names[::-1]:
            seconds, peak = timed_step(models[name], batch, step, device)
            if step > args.warmup:
                times[name].append(seconds)
                if peak is not None:
                    peaks[name].append(peak)
    net_g = models['SRModel'].get_bare_model(models['SRModel'].net_g)
    results: dict[str, Any] = {
        'command': 'python scripts/benchmark_speed.py ' + ' '.join(sys.argv[1:] if argv is None else argv),
        'device': torch.cuda.get_device_name() if device == 'cuda' else f'cpu, {torch.get_num_threads()} threads',
        'network_g': options['SRFERModel']['network_g']['type'],
        'network_g_params': sum(p.numel() for p in net_g.parameters()),
        'batch': args.batch,
        'hr_size': hr,
        'scale': scale,
        'steps': args.steps,
        'use_amp': args.use_amp,
        'channels_last': args.channels_last,
        'models': {},
    }
    for name in names:
        results['models'][name] = {
            'median_s': statistics.median(times[name]),
            'mean_s': statistics.fmean(times[name]),
            'peak_step_mib': max(peaks[name]) if peaks[name] else None,
        }
    plain, srfer = results['models']['SRModel'], results['models']['SRFERModel']
    results['time_ratio'] = srfer['median_s'] / plain['median_s']
    if plain['peak_step_mib'] and srfer['peak_step_mib']:
        results['memory_ratio'] = srfer['peak_step_mib'] / plain['peak_step_mib']
    print(
        f'{results["network_g"]} ({results["network_g_params"] / 1e6:.2f}M params) x{scale}, batch {args.batch}, '
        f'{hr}px HR, {results["device"]}, {args.steps} timed steps per model'
    )
    print(f'{"model":<12} {"median s/step":>14} {"mean s/step":>12} {"peak MiB/step":>14}')
    for name in names:
        row = results['models'][name]
        peak = f'{row["peak_step_mib"]:.0f}' if row['peak_step_mib'] is not None else 'n/a'
        print(f'{name:<12} {row["median_s"]:>14.4f} {row["mean_s"]:>12.4f} {peak:>14}')
    memory = f'{results["memory_ratio"]:.2f}x' if 'memory_ratio' in results else 'n/a'
    print(f'ratio SRFERModel / SRModel: time {results["time_ratio"]:.2f}x, memory {memory}')
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    if 'MALLOC_MMAP_THRESHOLD_' not in os.environ:
        # glibc otherwise keeps freed tensors in its heap and later steps never raise the resident set: with a
        # fixed mmap threshold every large tensor is mapped and unmapped, so the CPU peak is measurable.
        os.environ['MALLOC_MMAP_THRESHOLD_'] = str(128 * 1024)
        os.execv(sys.executable, [sys.executable, *sys.argv])
    main()
