"""A plain-SR twin of ``net_g`` trained alongside it, for rules ``psnr_budget`` and ``psnr_pilot`` of
``train.consistency_weights``.

The twin starts from ``net_g``'s weights and trains on the same batches with the pixel loss alone, at ``net_g``'s
learning rate: it is the network the run would have trained without the consistency losses. On each step
:meth:`PlainSRReference.step` returns how many dB the SR-FER output lies below the twin's on the batch, in the PSNR
that SR papers report (on the Y channel of colour faces, per face, averaged), which the rule holds at its budget. It
costs one plain-SR step per training step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.distributed as dist
from basicsr.metrics.psnr_ssim import calculate_psnr_pt


class PlainSRReference:
    """``net_g``'s plain-SR twin.

    Args:
        net_g: The SR network (unwrapped), at the weights the run starts from.
        make_optimizer: Builds an optimizer of ``train.optim_g`` for a network (``SafeSRModel.make_optimizer``).
        pixel_loss: The run's pixel criterion (``cri_pix``).
    """

    def __init__(
        self,
        net_g: torch.nn.Module,
        make_optimizer: Callable[[torch.nn.Module, str], torch.optim.Optimizer],
        pixel_loss: torch.nn.Module,
    ):
        self.net = copy.deepcopy(net_g).train()
        self.optimizer = make_optimizer(self.net, 'optim_g')
        self.pixel_loss = pixel_loss

    def step(self, lq: torch.Tensor, gt: torch.Tensor, sr: torch.Tensor, lr: float) -> float:
        """Train the twin one step on ``(lq, gt)`` and return the PSNR gap of ``sr`` on the batch.

        Args:
            lq: The LR batch.
            gt: The HR batch.
            sr: ``net_g``'s output on ``lq`` (before this step's update, as the twin's is).
            lr: ``net_g``'s learning rate now (the twin follows its schedule).

        Returns:
            The mean over the faces of ``10 log10(MSE(sr) / MSE(twin))`` on the Y channel (all channels of a face
            that is not RGB), in dB: above 0 when the SR-FER output is further from ``gt``.
        """
        for group in self.optimizer.param_groups:
            group.update(lr=lr)
        with torch.autocast(device_type=lq.device.type, enabled=False):
            twin = self.net(lq.float())
            loss = self.pixel_loss(twin, gt.float())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():  # BasicSR's PSNR, as the validation reads it (Y channel of RGB faces, per face)
                sr_psnr, twin_psnr = (
                    calculate_psnr_pt(x.detach().float().clamp(0, 1), gt.float(), 0, test_y_channel=gt.shape[1] == 3)
                    for x in (sr, twin)
                )
                gap = torch.stack([(twin_psnr - sr_psnr).sum(), twin_psnr.new_tensor(float(len(twin_psnr)))])
        if dist.is_available() and dist.is_initialized():  # one twin and one gap on every rank
            world = dist.get_world_size()
            for param in self.net.parameters():
                if param.grad is not None:
                    dist.all_reduce(param.grad)
                    param.grad /= world
            dist.all_reduce(gap)
        self.optimizer.step()
        return float(gap[0] / gap[1])

    def state_dict(self) -> dict:
        """The twin's weights and optimizer state (for an exact resume)."""
        return {'net': self.net.state_dict(), 'optimizer': self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.net.load_state_dict(state['net'])
        self.optimizer.load_state_dict(state['optimizer'])
