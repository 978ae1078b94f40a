"""The frozen classifier's reading of each HR face, kept so a training step runs the classifier on the SR face only.

A frozen classifier's attention maps and logits on an HR face are fixed for that face, its flip and its size. The
cache keeps, per ``(image path, flipped, height, width)``, what the consistency losses read from the HR side: one
attention map per tap (``attention_map`` of the tap's features, ``(H*W,)``) and the logits ``(K,)``. It lives in
memory on the model's device; the classifier's weights cannot change while it lives (a frozen classifier, checked by
its fingerprint at resume), and the face size is part of the key.

Values match the uncached run within float tolerance, not bit for bit: a cached face was read in the batch where it
was first seen, and a convolution's result for one sample can differ in the last bits with the batch around it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch

from srfer_plugin.losses.consistency_loss import attention_map

CacheKey = tuple[Hashable, ...]


class HRReferenceCache:
    """Attention maps and logits of a frozen classifier on HR faces, by face.

    Args:
        attention_p: The exponent ``p`` of the attention maps (``attention_opt.p``); None when no attention loss
            reads them (only the logits are kept).
    """

    def __init__(self, attention_p: float | None):
        self.attention_p = attention_p
        self.entries: dict[CacheKey, tuple[list[torch.Tensor], torch.Tensor]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.entries)

    def read(
        self,
        hr: torch.Tensor,
        keys: Sequence[CacheKey],
        classify: Callable[[torch.Tensor], tuple[list[torch.Tensor], torch.Tensor]],
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The HR batch's attention maps (one ``(N, H*W)`` per tap) and logits ``(N, K)``; the classifier runs on
        the faces not cached yet only.

        Args:
            hr: The HR batch ``(N, 3, H, W)``.
            keys: One key per face (path and flip); the face size is added here.
            classify: The frozen classifier: faces to ``(features, logits)``.

        Returns:
            The attention maps (empty when ``attention_p`` is None) and the logits.

        Raises:
            ValueError: ``keys`` and the batch differ in length.
        """
        if len(keys) != hr.shape[0]:
            raise ValueError(f'HRReferenceCache: {len(keys)} keys for a batch of {hr.shape[0]} faces')
        size = tuple(hr.shape[-2:])
        full_keys = [(*key, *size) for key in keys]
        missing = [i for i, key in enumerate(full_keys) if key not in self.entries]
        self.hits += len(full_keys) - len(missing)
        self.misses += len(missing)
        if missing:
            with torch.no_grad():
                features, logits = classify(hr if len(missing) == len(keys) else hr[missing])
                maps = [] if self.attention_p is None else [attention_map(f, self.attention_p) for f in features]
            for row, index in enumerate(missing):
                self.entries[full_keys[index]] = ([m[row].clone() for m in maps], logits[row].clone())
        rows = [self.entries[key] for key in full_keys]
        num_taps = len(rows[0][0])
        maps = [torch.stack([row[0][tap] for row in rows]) for tap in range(num_taps)]
        return maps, torch.stack([row[1] for row in rows])

    def bytes_per_face(self) -> int:
        """Memory of one cached face (its attention maps and logits), 0 when nothing is cached yet."""
        if not self.entries:
            return 0
        maps, logits = next(iter(self.entries.values()))
        return sum(m.numel() * m.element_size() for m in maps) + logits.numel() * logits.element_size()
