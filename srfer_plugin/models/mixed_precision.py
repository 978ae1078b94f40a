"""MixedPrecision: the ``train.use_amp`` and ``train.amp_dtype`` options of a model's training steps.

bf16 autocast runs on CPU and CUDA without loss scaling; fp16 (CUDA only) scales the loss with a ``GradScaler``.
"""

from __future__ import annotations

import torch

AMP_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16, 'fp16': torch.float16, 'float16': torch.float16}


class MixedPrecision:
    """Autocast for the forward passes and losses, and the GradScaler of fp16 for backward and the steps.

    Without ``use_amp`` every method is the plain fp32 operation.

    Args:
        train_opt: The ``train`` options (``use_amp``, default False; ``amp_dtype``, default ``bf16``).
        device: The model's device.
    """

    def __init__(self, train_opt: dict, device: torch.device):
        self.enabled = bool(train_opt.get('use_amp', False))
        amp_name = str(train_opt.get('amp_dtype', 'bf16')).lower()
        if amp_name not in AMP_DTYPES:
            raise ValueError(f'train.amp_dtype: {amp_name!r} is not one of {sorted(AMP_DTYPES)}')
        self.dtype = AMP_DTYPES[amp_name]
        if self.enabled and self.dtype == torch.float16 and device.type != 'cuda':
            raise ValueError('train.amp_dtype fp16 needs CUDA; use bf16 on CPU')
        self.device_type = device.type
        use_scaler = self.enabled and self.dtype == torch.float16
        self.scaler = torch.amp.GradScaler('cuda') if use_scaler else None

    def autocast(self) -> torch.autocast:
        """The autocast context of the forward passes and losses (disabled without ``use_amp``)."""
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)

    def backward(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` (scaled under fp16)."""
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Step ``optimizer`` (through the GradScaler under fp16, which skips steps with inf gradients)."""
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def update(self) -> None:
        """Adjust the loss scale after an iteration that stepped (nothing without a GradScaler)."""
        if self.scaler is not None:
            self.scaler.update()
