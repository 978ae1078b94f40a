"""Inference: super-resolve LR faces and classify their expressions (console script ``srfer-infer``).

Examples::

    srfer-infer -i faces/ -o out/ --opt options/test_RCAN_srfer_x4.yml
    srfer-infer -i 'faces/**/*.jpg' -o out/ --opt options/test_RCAN_srfer_x4.yml --sr-model net_g_latest.pth \\
        --fer-checkpoint fer.pth --classes datasets/rafdb/classes.txt --device cuda --batch-size 16
    srfer-infer -i face.png -o out/ --sr-model net_g.pth --network-g net_g.yml --scale 4 \\
        --fer-config options/fer/resnet18_fer7.py --fer-checkpoint fer.pth

Inputs are image files, folders (``--recursive`` for sub-folders) or glob patterns, of any size, colour or
grayscale (grayscale faces go through the networks as 3 equal channels; their SR image is saved as grayscale;
an alpha channel is dropped). Images are grouped by size into batches of up to ``--batch-size``: nothing is
resized before SR; an LR side that is not a multiple of ``--pad-multiple`` (default: ``network_g.window_size``
or 1) is reflect-padded and the SR image cropped back. The classifier reads the SR image as it is, or resized to
``--fer-size`` (default: the ``gt_size`` of the options' datasets, when they set one).

Outputs: ``OUT/sr/<relative path>.png`` and ``OUT/predictions.csv`` (file, sr_file, width, height, label,
label_index, confidence, then ``prob_<class>`` per class). Unreadable files are reported, listed in
``OUT/skipped.csv`` and skipped; the exit status is non-zero only when no image could be processed.
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import sys
import time
from collections.abc import Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from tqdm import tqdm

import srfer_plugin  # noqa: F401  (registration; must precede basicsr)
from srfer_plugin.data.fer_layout import CLASSES_FILE, IMAGE_EXTENSIONS, read_classes
from srfer_plugin.utils.checkpoint import extract_state_dict, safe_load


class InferenceError(RuntimeError):
    """A configuration problem that stops the whole run (not one bad image)."""


@dataclass
class InputImage:
    """One input file and the path of its SR image relative to ``OUT/sr``."""

    index: int
    path: str
    rel_out: str


@dataclass
class InferenceSummary:
    """What a run did."""

    processed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    class_names: list[str] | None = None
    seconds: float = 0.0


# ----------------------------------------------------------------------------------------------- options
def load_yaml(text_or_path: str) -> Any:
    """Parse YAML text, or the YAML file it names."""
    if os.path.isfile(text_or_path):
        with open(text_or_path, encoding='utf-8') as f:
            return yaml.safe_load(f)
    return yaml.safe_load(text_or_path)


def sr_param_key(checkpoint: Any) -> str | None:
    """BasicSR's preferred weights in a checkpoint: ``params_ema``, then ``params``, else None (plain dict)."""
    if isinstance(checkpoint, dict):
        for key in ('params_ema', 'params'):
            if isinstance(checkpoint.get(key), dict):
                return key
    return None


def load_sr_network(
    network_opt: dict,
    path: str,
    param_key: str | None = None,
    device: str | torch.device = 'cpu',
    strict: bool = True,
) -> torch.nn.Module:
    """Build an SR network with BasicSR's ``build_network`` and load its weights safely.

    Args:
        network_opt: The ``network_g`` options (``type`` plus the arch's arguments).
        path: Weights file (BasicSR ``params_ema``/``params``, or a plain state dict).
        param_key: Key of the weights. Default: ``params_ema`` if present, else ``params``.
        device: Target device.
        strict: Require an exact key match.

    Returns:
        The network in eval mode on ``device``.
    """
    from basicsr.archs import build_network

    net = build_network(deepcopy(dict(network_opt)))
    checkpoint = safe_load(path)
    state_dict = extract_state_dict(checkpoint, path, param_key or sr_param_key(checkpoint))
    if all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.') :]: v for k, v in state_dict.items()}
    try:
        net.load_state_dict(state_dict, strict=strict)
    except RuntimeError as err:
        raise InferenceError(f'SR weights {path!r} do not fit network_g {network_opt.get("type")!r}: {err}') from err
    return net.eval().to(device)


def build_fer_network(fer_opt: dict, device: str | torch.device = 'cpu') -> torch.nn.Module:
    """Build the FER classifier (``network_fer`` options, e.g. MMPretrainFER) in eval mode on ``device``."""
    from basicsr.archs import build_network

    return build_network(deepcopy(dict(fer_opt))).eval().to(device)


def check_scale(net: torch.nn.Module, scale: int, in_ch: int = 3, device: str | torch.device = 'cpu') -> None:
    """Fail early when the SR network does not upscale by ``scale``."""
    with torch.no_grad():
        out = net(torch.zeros(1, in_ch, 16, 16, device=device))
    if tuple(out.shape[-2:]) != (16 * scale, 16 * scale):
        raise InferenceError(
            f'network_g turns 16x16 into {out.shape[-2]}x{out.shape[-1]}, not {16 * scale}x{16 * scale}: '
            'make --scale match the network'
        )


def dataset_classes(opt: dict) -> list[str] | None:
    """Class names of the first dataset of an options dict that names them."""
    from srfer_plugin.data.paired_fer_dataset import resolve_classes

    for dataset_opt in (opt.get('datasets') or {}).values():
        try:
            classes = resolve_classes(dataset_opt)
        except (OSError, ValueError):
            continue
        if classes:
            return classes
    return None


def resolve_class_names(
    num_classes: int,
    classes_arg: str | None = None,
    fer: torch.nn.Module | None = None,
    fer_checkpoint: str | None = None,
    opt: dict | None = None,
) -> list[str]:
    """Class names, from ``--classes`` (file or comma list), classes.txt beside the FER checkpoint, the
    checkpoint's ``dataset_meta``, the options' datasets, else ``class_<i>``; the first with ``num_classes``."""
    candidates: list[tuple[str, Sequence[str] | None]] = []
    if classes_arg:
        names = read_classes(classes_arg) if os.path.isfile(classes_arg) else classes_arg.split(',')
        candidates.append(('--classes', [n.strip() for n in names if n.strip()]))
    if fer_checkpoint:
        beside = os.path.join(os.path.dirname(os.path.abspath(fer_checkpoint)), CLASSES_FILE)
        candidates.append((beside, read_classes(beside) if os.path.isfile(beside) else None))
    candidates.append(('FER checkpoint meta', getattr(fer, 'class_names', None)))
    candidates.append(('datasets', dataset_classes(opt) if opt else None))
    for source, names in candidates:
        if names and len(names) == num_classes:
            return list(names)
        if names:
            print(f'warning: {source} names {len(names)} classes, the classifier has {num_classes}', file=sys.stderr)
    return [f'class_{i}' for i in range(num_classes)]


# ------------------------------------------------------------------------------------------------ inputs
def collect_inputs(specs: Iterable[str], recursive: bool = False) -> tuple[list[InputImage], list[tuple[str, str]]]:
    """Expand files, folders and glob patterns into input images.

    Args:
        specs: Paths or patterns.
        recursive: Also list the sub-folders of folders.

    Returns:
        ``(images, bad)``: the inputs in a stable order, and ``(spec, reason)`` for specs that gave nothing.
    """
    images: list[InputImage] = []
    bad: list[tuple[str, str]] = []
    seen_files: set[str] = set()
    used_outs: set[str] = set()

    def add(path: str, rel: str) -> None:
        key = os.path.abspath(path)
        if key in seen_files:
            return
        seen_files.add(key)
        stem = os.path.splitext(rel)[0]
        out, n = f'{stem}.png', 1
        while out in used_outs:
            out, n = f'{stem}_{n}.png', n + 1
        used_outs.add(out)
        images.append(InputImage(len(images), path, out))

    def is_image(name: str) -> bool:
        return name.lower().endswith(IMAGE_EXTENSIONS)

    for spec in specs:
        if os.path.isfile(spec):
            add(spec, os.path.basename(spec))
        elif os.path.isdir(spec):
            found = []
            for dirpath, dirnames, files in os.walk(spec):
                dirnames.sort()
                found += [os.path.join(dirpath, f) for f in sorted(files) if is_image(f)]
                if not recursive:
                    break
            if not found:
                bad.append((spec, 'folder holds no images' + ('' if recursive else ' (try --recursive)')))
            for path in found:
                add(path, os.path.relpath(path, spec))
        elif glob.has_magic(spec):
            matches = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p) and is_image(p))
            if not matches:
                bad.append((spec, 'no image file matches the pattern'))
            parts = spec.replace('\\', '/').split('/')
            base = '/'.join(p for p in parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))]) or '.'
            for path in matches:
                add(path, os.path.relpath(path, base))
        else:
            bad.append((spec, 'does not exist'))
    return images, bad


def read_lr_image(path: str) -> tuple[np.ndarray, bool]:
    """Read an image of any depth and channel count.

    Args:
        path: Image file.

    Returns:
        ``(img, gray)``: ``HWC`` float32 BGR in [0, 1] with 3 channels, and whether the file is grayscale.

    Raises:
        ValueError: The file is empty, not an image, or of an unsupported kind.
    """
    data = np.fromfile(path, np.uint8)
    if data.size == 0:
        raise ValueError('empty file')
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError('not a readable image (OpenCV cannot decode it)')
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        img = img.astype(np.float32) / 65535.0
    elif img.dtype in (np.float32, np.float64):
        img = np.clip(img.astype(np.float32), 0.0, 1.0)
    else:
        raise ValueError(f'unsupported pixel type {img.dtype}')
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    gray = img.ndim == 2
    if gray:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    elif img.shape[2] != 3:
        raise ValueError(f'unsupported number of channels: {img.shape[2]}')
    if min(img.shape[:2]) < 1:
        raise ValueError(f'empty image {img.shape[0]}x{img.shape[1]}')
    return img, gray


# --------------------------------------------------------------------------------------------- inference
def run_inference(
    images: Sequence[InputImage],
    out_dir: str,
    sr_net: torch.nn.Module,
    scale: int,
    fer_net: torch.nn.Module | None = None,
    class_names: Sequence[str] | None = None,
    device: str | torch.device = 'cpu',
    batch_size: int = 8,
    pad_multiple: int = 1,
    fer_size: int | None = None,
    progress: bool = True,
) -> InferenceSummary:
    """Super-resolve and classify images in same-size batches; bad files are recorded and skipped.

    Args:
        images: Inputs from :func:`collect_inputs`.
        out_dir: Output folder (SR images go to ``out_dir/sr``).
        sr_net: SR network (eval mode, on ``device``).
        scale: Its upscaling factor.
        fer_net: Classifier returning ``(feats, logits)``; None: SR only.
        class_names: Names of the classifier's classes.
        device: Where the networks are.
        batch_size: Images per batch (images of one size only).
        pad_multiple: Reflect-pad LR sides to a multiple of this.
        fer_size: Resize SR to ``fer_size`` x ``fer_size`` before classifying; None: as is.
        progress: Show a tqdm progress bar.

    Returns:
        The per-image results (``processed``) and the skipped files with reasons.
    """
    summary = InferenceSummary(class_names=list(class_names) if class_names else None)
    buckets: dict[tuple[int, int], list[tuple[InputImage, np.ndarray, bool]]] = {}
    pbar = tqdm(total=len(images), unit='img', desc='srfer-infer', disable=not progress)
    start = time.time()

    def skip(path: str, reason: str) -> None:
        summary.skipped.append((path, reason))
        tqdm.write(f'skipped {path}: {reason}', file=sys.stderr)

    def flush(key: tuple[int, int]) -> None:
        batch = buckets.pop(key)
        try:
            summary.processed += _infer_batch(
                batch, out_dir, sr_net, scale, fer_net, summary.class_names, device, pad_multiple, fer_size
            )
        except Exception as err:  # one failing batch (e.g. out of memory) must not end the run
            for item, _, _ in batch:
                skip(item.path, f'inference failed: {type(err).__name__}: {err}')
        pbar.update(len(batch))

    for item in images:
        try:
            img, gray = read_lr_image(item.path)
        except Exception as err:
            skip(item.path, str(err))
            pbar.update(1)
            continue
        key = img.shape[:2]
        buckets.setdefault(key, []).append((item, img, gray))
        if len(buckets[key]) >= batch_size:
            flush(key)
    for key in list(buckets):
        flush(key)
    pbar.close()
    summary.processed.sort(key=lambda r: r['_index'])
    summary.seconds = time.time() - start
    return summary


def _infer_batch(
    batch: list[tuple[InputImage, np.ndarray, bool]],
    out_dir: str,
    sr_net: torch.nn.Module,
    scale: int,
    fer_net: torch.nn.Module | None,
    class_names: Sequence[str] | None,
    device: str | torch.device,
    pad_multiple: int,
    fer_size: int | None,
) -> list[dict[str, Any]]:
    h, w = batch[0][1].shape[:2]
    lq = torch.from_numpy(np.stack([img[..., ::-1].transpose(2, 0, 1) for _, img, _ in batch]).copy()).to(device)
    pad_h, pad_w = (-h) % pad_multiple, (-w) % pad_multiple
    if pad_h or pad_w:
        mode = 'reflect' if pad_h < h and pad_w < w else 'replicate'
        lq = torch.nn.functional.pad(lq, (0, pad_w, 0, pad_h), mode=mode)
    with torch.inference_mode():
        sr = sr_net(lq)[..., : h * scale, : w * scale].clamp(0, 1)
        probs = None
        if fer_net is not None:
            fer_in = sr
            if fer_size and tuple(sr.shape[-2:]) != (fer_size, fer_size):
                fer_in = torch.nn.functional.interpolate(
                    sr, size=(fer_size, fer_size), mode='bilinear', align_corners=False, antialias=True
                ).clamp(0, 1)
            probs = torch.softmax(fer_net(fer_in)[1].float(), dim=1).cpu().numpy()
    sr_np = sr.float().cpu().numpy()
    rows = []
    for i, (item, _, gray) in enumerate(batch):
        out_img = (sr_np[i].transpose(1, 2, 0)[..., ::-1] * 255.0).round().astype(np.uint8)
        if gray:
            out_img = cv2.cvtColor(out_img, cv2.COLOR_BGR2GRAY)
        out_path = os.path.join(out_dir, 'sr', item.rel_out)
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        ok, buf = cv2.imencode('.png', out_img)
        if not ok:
            raise OSError(f'cannot encode the SR image of {item.path!r}')
        buf.tofile(out_path)
        row: dict[str, Any] = {
            '_index': item.index,
            'file': item.path,
            'sr_file': os.path.join('sr', item.rel_out),
            'width': w,
            'height': h,
        }
        if probs is not None:
            names = list(class_names) if class_names else [f'class_{k}' for k in range(probs.shape[1])]
            k = int(probs[i].argmax())
            row.update(label=names[k], label_index=k, confidence=float(probs[i, k]))
            row.update({f'prob_{name}': float(p) for name, p in zip(names, probs[i])})
        rows.append(row)
    return rows


def write_predictions(summary: InferenceSummary, out_dir: str) -> str:
    """Write ``predictions.csv`` (and ``skipped.csv`` when files were skipped); return the predictions path."""
    os.makedirs(out_dir, exist_ok=True)
    fields = ['file', 'sr_file', 'width', 'height']
    if summary.processed and 'label' in summary.processed[0]:
        fields += ['label', 'label_index', 'confidence'] + [f'prob_{n}' for n in summary.class_names or []]
        if not summary.class_names:
            fields += sorted(k for k in summary.processed[0] if k.startswith('prob_'))
    path = os.path.join(out_dir, 'predictions.csv')
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction='ignore')
        writer.writeheader()
        for row in summary.processed:
            writer.writerow({k: f'{v:.6f}' if isinstance(v, float) else v for k, v in row.items()})
    skipped_path = os.path.join(out_dir, 'skipped.csv')
    if summary.skipped:
        with open(skipped_path, 'w', newline='', encoding='utf-8') as f:
            writer = csv.writer(f)
            writer.writerow(['file', 'reason'])
            writer.writerows(summary.skipped)
    elif os.path.exists(skipped_path):
        os.remove(skipped_path)
    return path


# ---------------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog='srfer-infer',
        description='Super-resolve LR faces and classify their expressions.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument('-i', '--input', action='append', required=True, help='image, folder or glob (repeatable)')
    parser.add_argument('-o', '--output', required=True, help='output folder')
    parser.add_argument('--opt', help='BasicSR options (network_g, network_fer, scale, path.pretrain_network_g)')
    parser.add_argument('--sr-model', help='SR weights (default: path.pretrain_network_g of --opt)')
    parser.add_argument(
        '--network-g', '--sr-arch-opt', dest='network_g', help='network_g as YAML text or file (default: from --opt)'
    )
    parser.add_argument('--param-key', help='key of the SR weights (default: params_ema, else params)')
    parser.add_argument('--scale', type=int, help='upscaling factor (default: scale of --opt)')
    parser.add_argument('--fer-config', help='mmpretrain config of the classifier (default: network_fer of --opt)')
    parser.add_argument('--fer-checkpoint', help='classifier weights (default: network_fer.checkpoint of --opt)')
    parser.add_argument('--num-classes', type=int, help='classifier classes (default: network_fer.num_classes)')
    parser.add_argument('--no-fer', action='store_true', help='super-resolve only')
    parser.add_argument('--classes', help='class names: a classes.txt file or a comma-separated list')
    parser.add_argument('--fer-size', type=int, help='resize SR to this square size for the classifier; 0: never')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--batch-size', type=int, default=8, help='images per batch (same-size images only)')
    parser.add_argument('--pad-multiple', type=int, help='pad LR sides to a multiple of this (default: window_size)')
    parser.add_argument('--recursive', action='store_true', help='also read the sub-folders of input folders')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise InferenceError(f'--device {name}: CUDA is not available')
    return device


def _fer_options(args: argparse.Namespace, opt: dict) -> dict | None:
    if args.no_fer:
        return None
    fer_opt = dict(opt.get('network_fer') or {})
    if args.fer_config:
        fer_opt = {'type': 'MMPretrainFER', **{k: v for k, v in fer_opt.items() if k != 'config'}}
        fer_opt['config'] = args.fer_config
    if not fer_opt:
        return None
    if args.fer_checkpoint:
        fer_opt['checkpoint'] = args.fer_checkpoint
    if args.num_classes:
        fer_opt['num_classes'] = args.num_classes
    fer_opt['freeze'] = True
    return fer_opt


def _default_fer_size(opt: dict) -> int | None:
    for dataset_opt in (opt.get('datasets') or {}).values():
        if dataset_opt.get('gt_size'):
            return int(dataset_opt['gt_size'])
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``srfer-infer``; returns the exit status (0: at least one image processed)."""
    args = build_parser().parse_args(argv)
    try:
        opt = load_yaml(args.opt) if args.opt else {}
        if args.opt and not isinstance(opt, dict):
            raise InferenceError(f'--opt {args.opt!r} is not a YAML mapping')
        network_g = load_yaml(args.network_g) if args.network_g else opt.get('network_g')
        if isinstance(network_g, dict) and 'network_g' in network_g:
            network_g = network_g['network_g']
        if not isinstance(network_g, dict) or 'type' not in network_g:
            raise InferenceError('no network_g: give --opt or --network-g')
        sr_model = args.sr_model or (opt.get('path') or {}).get('pretrain_network_g')
        if not sr_model:
            raise InferenceError('no SR weights: give --sr-model or set path.pretrain_network_g in --opt')
        scale = args.scale or opt.get('scale') or network_g.get('upscale') or network_g.get('scale')
        if not scale:
            raise InferenceError('unknown scale: give --scale')
        device = resolve_device(args.device)
        pad_multiple = args.pad_multiple or int(network_g.get('window_size') or 1)
        fer_size = args.fer_size if args.fer_size is not None else _default_fer_size(opt)

        images, bad_specs = collect_inputs(args.input, args.recursive)
        for spec, reason in bad_specs:
            print(f'skipped {spec}: {reason}', file=sys.stderr)
        if not images:
            raise InferenceError('no input images found')
        sr_net = load_sr_network(network_g, sr_model, args.param_key, device)
        check_scale(sr_net, int(scale), int(network_g.get('num_in_ch', 3)), device)
        fer_opt = _fer_options(args, opt)
        fer_net, class_names = None, None
        if fer_opt is None:
            print('note: no classifier (network_fer / --fer-config): SR only', file=sys.stderr)
        else:
            fer_net = build_fer_network(fer_opt, device)
            with torch.no_grad():
                num_classes = fer_net(torch.zeros(1, 3, 32, 32, device=device))[1].shape[1]
            class_names = resolve_class_names(num_classes, args.classes, fer_net, fer_opt.get('checkpoint'), opt)
    except (InferenceError, OSError, ValueError, KeyError, yaml.YAMLError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2

    summary = run_inference(
        images,
        args.output,
        sr_net,
        int(scale),
        fer_net,
        class_names,
        device,
        max(1, args.batch_size),
        max(1, pad_multiple),
        fer_size or None,
        not args.no_progress,
    )
    summary.skipped = bad_specs + summary.skipped
    path = write_predictions(summary, args.output)
    print(f'Processed {len(summary.processed)} image(s) in {summary.seconds:.1f} s on {device}; wrote {path}')
    if summary.skipped:
        print(f'Skipped {len(summary.skipped)} input(s) (listed in {os.path.join(args.output, "skipped.csv")}):')
        for name, reason in summary.skipped:
            print(f'  {name}: {reason}')
    return 0 if summary.processed else 1


if __name__ == '__main__':
    sys.exit(main())
