"""``srfer_plugin.train`` for the distributed test: every rank also dumps its own net_g/net_fer when saving.

Run by ``torch.distributed.run`` from ``tests/test_train_loop/test_distributed.py``; the dumps let the test compare
the weights each rank ends with (BasicSR saves rank 0's only).
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
    dump = {
        'net_g': self.get_bare_model(self.net_g).state_dict(),
        'net_fer': self.get_bare_model(self.net_fer).state_dict(),
        'net_g_params': [n for n, _ in self.get_bare_model(self.net_g).named_parameters()],
        'net_fer_params': [n for n, _ in self.get_bare_model(self.net_fer).named_parameters()],
        'net_g_wrapper': type(self.net_g).__name__,
        'net_fer_wrapper': type(self.net_fer).__name__,
    }
    path = os.path.join(self.opt['path']['experiments_root'], 'rank_dumps', f'rank{self.opt["rank"]}_{tag}.pth')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(dump, path)


SRFERModel.save = _save_and_dump

if __name__ == '__main__':
    main()
