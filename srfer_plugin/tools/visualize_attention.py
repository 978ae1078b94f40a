"""Compare the FER classifier's attention on HR, bicubic, plain SR and SR-FER faces, one PNG per image.

Example::

    srfer visualize-attention --opt srfer::test_RCAN_srfer_x4.yml \\
        --srfer-model experiments/RCAN_srfer_x4/models/net_g_latest.pth \\
        --plain-sr-model experiments/RCAN_plain_x4/models/net_g_latest.pth \\
        --images datasets/rafdb/test/happy/0001.png datasets/rafdb/test/sad/0002.png --out results/attention

``--opt`` gives network_g, network_fer and the test set whose ``degradation``, ``degradation_seed``, ``scale``
and ``gt_size`` make the LR faces (an image listed by that set gets exactly its evaluation LR). Without
``--images`` the first ``--num`` images of that set are drawn. Rows: HR, bicubic, plain SR (with
``--plain-sr-model``), SR-FER (``--srfer-model``, default ``path.pretrain_network_g``); columns: the face and
:func:`~srfer_plugin.losses.consistency_loss.attention_map` of each classifier stage as a heat map.

Each picture is ``OUT/<image stem>_attention.png``; images that share a stem (``a/face.png``, ``b/face.png``) get
``_1``, ``_2``... Nothing is overwritten: pictures of an earlier run (or any file) at those names are first moved
into ``OUT/archived_<time>/``, as ``srfer infer`` archives its earlier outputs. Any file name works: images are
read and pictures written by Python (OpenCV crashes on paths that are not UTF-8), a name's undecodable bytes
written ``\\xHH`` as ``srfer infer`` writes them.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import cv2
import numpy as np
import torch

from srfer_plugin.data.degradations import degrade, rng_for_image, upsample_bicubic
from srfer_plugin.data.paired_fer_dataset import PairedFERDataset
from srfer_plugin.predictor import SRFERPredictor, build_fer_network, resolve_device
from srfer_plugin.utils.cli_args import at_least
from srfer_plugin.utils.inference_io import load_yaml, read_lr_image
from srfer_plugin.utils.inference_outputs import archive_earlier_outputs, printable_text, sr_output_name, write_new_file
from srfer_plugin.utils.visualize import attention_grid, attention_rows


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument('--opt', required=True, help='options with network_g, network_fer and a test/val set')
    parser.add_argument('--srfer-model', help='SR-FER net_g weights (default: path.pretrain_network_g)')
    parser.add_argument('--plain-sr-model', help='weights of the same backbone trained with the pixel loss only')
    parser.add_argument('--plain-network-g', help='network_g of the plain model as YAML text/file (default: same)')
    parser.add_argument('--images', nargs='*', help='HR images (default: the first --num images of the set)')
    parser.add_argument('--num', type=at_least(1), default=4, help='images to draw when --images is not given')
    parser.add_argument('--dataset', help='name of the test/val set to use (default: the first one)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--p', type=float, help='attention exponent (default: train.attention_opt.p, else 2)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    return parser


def pick_dataset(opt: dict, name: str | None) -> dict:
    """The dataset options to use (by ``name``, else the first non-train set, else the train set)."""
    datasets = opt.get('datasets') or {}
    ordered = [d for phase, d in datasets.items() if phase != 'train'] + [
        d for phase, d in datasets.items() if phase == 'train'
    ]
    for dataset_opt in ordered:
        if name is None or dataset_opt.get('name') == name:
            return dataset_opt
    raise ValueError(f'--dataset {name!r} is not in --opt (sets: {[d.get("name") for d in ordered]})')


def load_face(dataset: PairedFERDataset, path: str) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    """HR and LR tensors (``CHW`` RGB) and the label of one face, made as the dataset makes them."""
    gt_root = os.path.abspath(dataset.gt_folder)
    rel = os.path.relpath(os.path.abspath(path), gt_root)
    index = next((i for i, (p, _) in enumerate(dataset.items) if os.path.normpath(p) == rel), None)
    if index is not None:
        item = dataset[index]
        return item['gt'], item['lq'], int(item['label'])
    img = read_lr_image(path)  # numpy reads it: cv2.imread crashes on a path that is not UTF-8
    img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
    scale = dataset.scale
    if dataset.gt_size is not None:
        size = int(dataset.gt_size)
        img = np.clip(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA), 0.0, 1.0)
    h, w = img.shape[0] // scale * scale, img.shape[1] // scale * scale
    img = np.ascontiguousarray(img[:h, :w])
    rng = rng_for_image(printable_text(os.path.basename(path)), dataset.degradation_seed)
    lq = degrade(img, scale, dataset.degradation, rng)
    classes = dataset.classes or []
    parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
    label = classes.index(parent) if parent in classes else None

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x[..., ::-1].transpose(2, 0, 1))).float()

    return to_tensor(img), to_tensor(lq), label


def output_names(paths: list[str]) -> list[str]:
    """The picture of each image in ``OUT``: ``<stem>_attention.png``, with ``_1``, ``_2``... for a stem taken."""
    used: set[str] = set()
    return [sr_output_name(f'{os.path.splitext(os.path.basename(p))[0]}_attention.png', used) for p in paths]


def main(argv: list[str] | None = None) -> int:
    """Run the script; returns the exit status."""
    args = build_parser().parse_args(argv)
    opt: dict[str, Any] = load_yaml(args.opt)
    device = resolve_device(args.device)
    dataset_opt = dict(pick_dataset(opt, args.dataset), phase='test', scale=opt.get('scale', 4))
    dataset = PairedFERDataset(dataset_opt)
    fer = build_fer_network(opt['network_fer'], device)
    class_names = dataset.classes or getattr(fer, 'class_names', None)
    p = args.p or float(((opt.get('train') or {}).get('attention_opt') or {}).get('p', 2.0))
    models: list[tuple[str, dict, str]] = []
    if args.plain_sr_model:
        plain_g = load_yaml(args.plain_network_g) if args.plain_network_g else opt['network_g']
        models.append(('plain SR', plain_g, args.plain_sr_model))
    srfer_path = args.srfer_model or (opt.get('path') or {}).get('pretrain_network_g')
    if srfer_path:
        models.append(('SR-FER', opt['network_g'], srfer_path))
    # one predictor per SR model, all sharing the classifier; each pads LR faces to its network's window
    predictors = [
        (name, SRFERPredictor.from_options(network_g, path, fer, dataset.scale, device))
        for name, network_g, path in models
    ]
    paths = args.images or [os.path.join(dataset.gt_folder, p) for p, _ in dataset.items[: args.num]]
    stage_names = list(getattr(fer, 'taps', [])) or None  # the backbone modules the maps come from
    names = output_names(paths)
    try:  # files at those names (an earlier run's) are kept, not overwritten
        archived = archive_earlier_outputs(args.out, paths, names) if os.path.isdir(args.out) else None
    except ValueError as err:
        print(f'error: {printable_text(str(err))}', file=sys.stderr)
        return 2
    if archived:
        moved = ', '.join(archived[1])
        print(f'note: moved the earlier outputs ({moved}) to {printable_text(archived[0])}', file=sys.stderr)
    written = 0
    inputs = {os.path.realpath(path) for path in paths}  # never written over
    for path, out_name in zip(paths, names):
        try:
            gt, lq, label = load_face(dataset, path)
        except (OSError, ValueError) as err:
            print(f'skipped {printable_text(path)}: {printable_text(str(err))}', file=sys.stderr)
            continue
        lq = lq[None].to(device)
        images = {'HR': gt, 'bicubic': upsample_bicubic(lq, gt.shape[-2:])[0].cpu()}
        for name, predictor in predictors:
            images[name] = predictor.super_resolve(lq)[0].cpu()
        rows = attention_rows(fer, images, class_names, p, label)
        truth = f' (true: {class_names[label]})' if label is not None and class_names else ''
        title = f'{printable_text(os.path.basename(path))}{truth}'
        picture = attention_grid(rows, title=title, stage_names=stage_names)
        ok, png = cv2.imencode('.png', np.ascontiguousarray(picture[..., ::-1]))
        try:
            if not ok:
                raise OSError(f'cannot encode the picture of {printable_text(path)!r} as PNG')
            out_path = write_new_file(args.out, out_name, png.tobytes(), inputs)
        except OSError as err:
            print(f'skipped {printable_text(path)}: {printable_text(str(err))}', file=sys.stderr)
            continue
        print(f'{printable_text(out_path)}: ' + ', '.join(f'{r.name} -> {r.caption}' for r in rows))
        written += 1
    return 0 if written else 1


if __name__ == '__main__':
    sys.exit(main())
