"""The gradient shares that an option file's hand-set consistency weights give (for ``train.consistency_weights``).

Example::

    srfer gradient-shares -opt options/train_RCAN_srfer_x4.yml --network-g experiments/x/models/net_g_latest.pth

Builds the SR-FER model of the option file, reads ``--batches`` training batches and prints, for ``l_att`` and
``l_pred`` at their ``loss_weight``, the norm of the gradient at the SR output as a share of the pixel loss's
(mean ± std over batches), and the cosine between the two gradients. The shares are the ``shares`` of
``train.consistency_weights: {rule: gradient_share}`` that reproduce the hand-set weights with this classifier; the
same shares then set the weights for another classifier. The cosine says whether a term pulls the SR face against
the pixel loss (negative) or across it (near 0). Nothing is trained or written.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
from collections.abc import Sequence

import numpy as np
import torch
from basicsr.utils import set_random_seed

from srfer_plugin.train_loop.option_checks import load_option_file
from srfer_plugin.utils.cli_args import at_least


def measure_gradients(
    opt_path: str, network_g: str | None = None, batches: int = 10, seed: int = 0
) -> dict[str, dict[str, list[float]]]:
    """Gradients of the weighted consistency losses at the SR output against ``l_pix``'s, per batch.

    Args:
        opt_path: SR-FER option file with ``datasets.train`` and ``train.pixel_opt``.
        network_g: Weights of the SR network (default: ``path.pretrain_network_g`` of the file).
        batches: Training batches to read.
        seed: Seed of the batch order and the on-the-fly degradations.

    Returns:
        ``{'l_att': {'share': [...], 'cosine': [...]}, 'l_pred': ...}`` (the losses the file sets), one value per
        batch: the norm as a share of ``l_pix``'s and the cosine between the two gradients.

    Raises:
        ValueError: The file has no pixel loss or no consistency loss.
    """
    from basicsr.data import build_dataset
    from basicsr.models import build_model

    opt = load_option_file(opt_path)
    train_opt = opt.get('train') or {}
    if train_opt.get('consistency_weights') is not None:
        raise ValueError(
            f'{opt_path}: train.consistency_weights sets the weights by gradient share already '
            f'({train_opt["consistency_weights"]}); this tool measures the shares of hand-set loss_weights'
        )
    if not train_opt.get('pixel_opt') or not (train_opt.get('attention_opt') or train_opt.get('prediction_opt')):
        raise ValueError(f'{opt_path}: needs train.pixel_opt and attention_opt or prediction_opt')
    with tempfile.TemporaryDirectory() as work_dir:
        opt = copy.deepcopy(opt)
        opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False, num_gpu=0, root_path=work_dir)
        opt['path'].update(experiments_root=work_dir, models=work_dir, training_states=work_dir, log=work_dir)
        opt['path']['visualization'] = work_dir
        if network_g:
            opt['path']['pretrain_network_g'] = network_g
        dataset_opt = dict(opt['datasets']['train'], phase='train', scale=opt['scale'])
        opt['datasets'] = {'train': dataset_opt}
        set_random_seed(seed)
        model = build_model(opt)
        dataset = build_dataset(copy.deepcopy(dataset_opt))
    set_random_seed(seed)  # the batches (torch, numpy and random: degradations and flips)
    order = np.random.default_rng(seed).permutation(len(dataset))
    size = int(dataset_opt.get('batch_size_per_gpu', 8))
    measured: dict[str, dict[str, list[float]]] = {}
    for index in range(batches):
        picked = order[(index * size) % len(dataset) :][:size]
        model.feed_data(torch.utils.data.default_collate([dataset[int(i)] for i in picked]))
        sr = model.net_g(model.lq)
        pixel = model.sr_losses(sr, model.gt)['l_pix']
        sr_faces, hr_faces, hr_keys = model.fer.classifier_batch(sr, model.gt, model.hr_keys)  # fer_batch_size
        terms = model.fer.consistency_losses(model.fer.classify(sr_faces), model.fer.reference(hr_faces, hr_keys))
        pixel_grad = torch.autograd.grad(pixel, sr, retain_graph=True)[0].flatten()
        pixel_norm = pixel_grad.norm()
        for name, loss in terms.items():
            grad = torch.autograd.grad(loss, sr, retain_graph=True)[0].flatten()
            values = measured.setdefault(name, {'share': [], 'cosine': []})
            values['share'].append(float(grad.norm() / pixel_norm))
            values['cosine'].append(float(torch.nn.functional.cosine_similarity(grad, pixel_grad, dim=0)))
    return measured


def measure_shares(
    opt_path: str, network_g: str | None = None, batches: int = 10, seed: int = 0
) -> dict[str, list[float]]:
    """The shares of :func:`measure_gradients` alone: ``{'l_att': [...], 'l_pred': [...]}``, one per batch."""
    return _shares(measure_gradients(opt_path, network_g, batches, seed))


def _shares(measured: dict[str, dict[str, list[float]]]) -> dict[str, list[float]]:
    return {name: values['share'] for name, values in measured.items()}


def main(argv: Sequence[str] | None = None) -> dict[str, list[float]]:
    """Run ``srfer gradient-shares``; prints the shares and cosines, returns the shares per batch."""
    parser = argparse.ArgumentParser(
        prog='srfer gradient-shares',
        description='Gradient shares (and cosines with the pixel loss) of the hand-set consistency weights.',
    )
    parser.add_argument('-opt', '--opt', required=True, help='SR-FER option file (datasets.train, losses)')
    parser.add_argument('--network-g', help='SR network weights (default: path.pretrain_network_g)')
    parser.add_argument('--batches', type=at_least(1), default=10, help='training batches to read')
    parser.add_argument('--seed', type=at_least(0), default=0)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.batches < 1:
        parser.error('--batches must be >= 1')
    measured = measure_gradients(args.opt, args.network_g, args.batches, args.seed)
    for name, values in measured.items():
        share, cosine = (_mean_spread(values[key]) for key in ('share', 'cosine'))
        print(f'{name}: share {share} of the l_pix gradient, cosine {cosine} with it ({args.batches} batches)')
    return _shares(measured)


def _mean_spread(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{statistics.fmean(values):.4g} ± {spread:.2g}'


if __name__ == '__main__':
    main()
