"""``srfer_plugin.train`` for the distributed tests: every rank also dumps its own networks when saving.

Run by ``torch.distributed.run`` from ``tests/test_train_loop/test_distributed.py``; the dumps let the test compare
the weights each rank ends with (BasicSR saves rank 0's only). ``SRFERModel.save`` is patched, so the dumps come
from every SR-FER model (``SRFERModel`` and the GAN ones, its subclasses, whose ``net_d`` is dumped too).
"""

from __future__ import annotations

import os

import torch

from srfer_plugin.models.srfer_model import SRFERModel
from srfer_plugin.train import main

_original_save = SRFERModel.save


def _save_and_dump(self: SRFERModel, epoch: int, current_iter: int) -> None:
    _original_save(self, epoch, current_iter)
    tag = 'latest' if current_iter == -1 else current_iter
    dump = {}
    for name in ('net_g', 'net_fer', 'net_d'):
        if hasattr(self, name):
            net = getattr(self, name)
            dump[name] = self.get_bare_model(net).state_dict()
            dump[f'{name}_params'] = [n for n, _ in self.get_bare_model(net).named_parameters()]
            dump[f'{name}_wrapper'] = type(net).__name__
    path = os.path.join(self.opt['path']['experiments_root'], 'rank_dumps', f'rank{self.opt["rank"]}_{tag}.pth')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(dump, path)


SRFERModel.save = _save_and_dump

if __name__ == '__main__':
    main()
