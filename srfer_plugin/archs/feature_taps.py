"""Feature taps: stage feature maps read from any backbone's own modules through forward hooks.

The classifier runs unchanged (its head gets exactly what it always gets); hooks copy the outputs of chosen
backbone modules. Token outputs of transformers become ``(N, C, H, W)`` maps with class/distillation tokens
dropped, the grid taken from the patch layout.

Default taps are found by probing the backbone once:

1. candidates are the backbone's stage modules: ``res_layers`` for the ResNet family, otherwise its direct
   children with ``ModuleList`` children expanded (``stages.0``, ``layers.3``, ...), minus norms, activations,
   pooling, dropout and identities; a backbone that offers fewer than two candidates with maps (VGG's single
   ``features`` Sequential) is expanded one level deeper;
2. candidates whose output is not a spatial map, or does not reach the logits, are dropped;
3. the default taps are the last candidate at each spatial resolution (the end of each stage), at most
   :data:`MAX_DEFAULT_TAPS`, the deepest ones; a backbone that keeps one resolution throughout (ViT, DeiT)
   gets the ends of :data:`MAX_DEFAULT_TAPS` equal block groups instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

MAX_DEFAULT_TAPS = 4
MAX_EXTRA_TOKENS = 8
_NON_STAGE_MODULES = (
    'torch.nn.modules.activation',
    'torch.nn.modules.batchnorm',
    'torch.nn.modules.dropout',
    'torch.nn.modules.flatten',
    'torch.nn.modules.normalization',
    'torch.nn.modules.pooling',
)
_NON_STAGE_NAMES = ('DropPath', 'Identity', 'LayerNorm2d', 'GRN', 'Flat')


@dataclass
class TapInfo:
    """What the probe saw at one candidate module.

    Attributes:
        name: Module path inside the backbone (``layer3``, ``stages.2``, ``layers.11``).
        shape: ``(C, H, W)`` of the map the tap gives, or None when the output is no spatial map.
        reaches_logits: Whether the logits depend on this output.
        group: Name of the ``ModuleList`` the module sits in (``layers``), or None.
    """

    name: str
    shape: tuple[int, int, int] | None
    reaches_logits: bool
    group: str | None


def _is_hw(value) -> bool:
    return isinstance(value, (tuple, list, torch.Size)) and len(value) == 2 and all(isinstance(v, int) for v in value)


def _token_grid(num_tokens: int, hw_hint: tuple[int, int] | None, input_hw: tuple[int, int], extra: int | None):
    """``(leading tokens to drop, h, w)`` for a token sequence, or None if no grid fits."""
    if hw_hint is not None:
        dropped = num_tokens - hw_hint[0] * hw_hint[1]
        if 0 <= dropped <= MAX_EXTRA_TOKENS:
            return dropped, hw_hint[0], hw_hint[1]
    tries = ([extra] if extra is not None else []) + list(range(MAX_EXTRA_TOKENS + 1))
    aspect = input_hw[0] / input_hw[1]
    for dropped in tries:
        n = num_tokens - dropped
        if n <= 0:
            continue
        h = max(1, round(math.sqrt(n * aspect)))
        if n % h == 0 and abs(math.log((h * h) / n / aspect)) < 0.35:
            return dropped, h, n // h
    return None


def output_to_map(
    output,
    input_hw: tuple[int, int],
    hw_hint: tuple[int, int] | None = None,
    extra_tokens: int | None = None,
) -> torch.Tensor | None:
    """Turn a module output into an ``(N, C, H, W)`` map, or None when it holds no spatial map.

    Args:
        output: A tensor, or a tuple whose first item is one (Swin-style ``(tokens, hw_shape)`` outputs).
        input_hw: Size of the classifier's input, for grids of tokens with no other hint.
        hw_hint: Token grid seen last (a patch embedding's ``(x, hw_shape)`` output).
        extra_tokens: Leading class/distillation tokens the backbone declares (``num_extra_tokens``).

    Returns:
        The map, or None.
    """
    if isinstance(output, (tuple, list)) and output and torch.is_tensor(output[0]):
        if len(output) == 2 and _is_hw(output[1]):
            hw_hint = tuple(output[1])
        output = output[0]
    if not torch.is_tensor(output) or not output.is_floating_point():
        return None
    if output.dim() == 4:
        return output
    if output.dim() == 3 and output.shape[1] > 1:
        grid = _token_grid(output.shape[1], hw_hint, input_hw, extra_tokens)
        if grid is None:
            return None
        dropped, h, w = grid
        tokens = output[:, dropped:, :]
        return tokens.transpose(1, 2).reshape(output.shape[0], output.shape[2], h, w)
    return None


def _is_stage_module(module: nn.Module) -> bool:
    """Whether a module can be a stage: it has weights, and is no norm, activation, pooling or dropout."""
    cls = type(module)
    if cls.__module__ in _NON_STAGE_MODULES or cls.__name__ in _NON_STAGE_NAMES:
        return False
    return next(module.parameters(), None) is not None


def candidate_modules(backbone: nn.Module, depth: int = 1) -> list[tuple[str, str | None]]:
    """Candidate stage modules of a backbone, as ``(name, group)`` pairs.

    Args:
        backbone: The classifier's backbone.
        depth: 1 for the stage level; 2 also splits each plain child with several children into them.

    Returns:
        Module names in registration order, each with the container it belongs to (None at the top level).
    """
    res_layers = getattr(backbone, 'res_layers', None)
    if isinstance(res_layers, (list, tuple)) and res_layers and all(isinstance(n, str) for n in res_layers):
        return [(name, None) for name in res_layers]  # ResNet family: ResNet, SE-ResNet, ResNeXt, RegNet, Res2Net
    found: list[tuple[str, str | None]] = []

    def visit(module: nn.Module, prefix: str, levels: int, group: str | None) -> None:
        for name, child in module.named_children():
            path = f'{prefix}{name}'
            if not _is_stage_module(child):
                continue
            if isinstance(child, nn.ModuleList):  # never called itself: its items are the blocks (Twins nests them)
                visit(child, f'{path}.', 1, path)
            elif levels > 1 and len(list(child.children())) > 1:
                visit(child, f'{path}.', levels - 1, path)
            else:
                found.append((path, group))

    visit(backbone, '', depth, None)
    return found


def resolutions(infos: Sequence[TapInfo]) -> int:
    """How many spatial resolutions the usable taps (maps that reach the logits) have."""
    return len({t.shape[1:] for t in infos if t.shape is not None and t.reaches_logits})


def longest_block_run(infos: Sequence[TapInfo]) -> int:
    """The most usable taps in one container (the transformer blocks of a ViT)."""
    runs: dict[str, int] = {}
    for tap in infos:
        if tap.shape is not None and tap.reaches_logits and tap.group is not None:
            runs[tap.group] = runs.get(tap.group, 0) + 1
    return max(runs.values(), default=0)


class FeatureTapper:
    """Forward hooks that keep the spatial maps of named backbone modules during one forward.

    A context manager: the hooks exist only inside ``with``, so copies of the model (deepcopy, pickling, DDP)
    carry no hooks, and recomputation in backward (activation checkpointing) records nothing.

    Args:
        backbone: The backbone whose modules are tapped.
        names: Module paths to tap.
        input_hw: Size of the classifier's input (the grid of token outputs that carry no other hint).
        extra_tokens: Leading non-patch tokens of the backbone's token outputs (None: found from the grid).
        keep_raw_outputs: Also keep each tap's raw output tensor (:attr:`raw_outputs`).
    """

    def __init__(
        self,
        backbone: nn.Module,
        names: Sequence[str],
        input_hw: Sequence[int],
        extra_tokens: int | None = None,
        keep_raw_outputs: bool = False,
    ):
        self.backbone = backbone
        self.names = list(names)
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.extra_tokens = extra_tokens
        self.keep_raw_outputs = keep_raw_outputs
        self.maps: dict[str, torch.Tensor | None] = {}
        self.raw_outputs: dict[str, torch.Tensor] = {}
        self._hw_hint: tuple[int, int] | None = None
        self._handles: list = []

    def __enter__(self) -> FeatureTapper:
        for name in dict.fromkeys(self.names):
            self._handles.append(self.backbone.get_submodule(name).register_forward_hook(self._hook(name)))
        # Patch embeddings report their token grid as ``(x, hw_shape)``: keep it for later token outputs.
        for name, module in self.backbone.named_children():
            if name not in self.names:
                self._handles.append(module.register_forward_hook(self._hint_hook))
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hint_hook(self, module: nn.Module, inputs, output) -> None:
        if isinstance(output, (tuple, list)) and len(output) == 2 and _is_hw(output[1]):
            self._hw_hint = tuple(output[1])

    def _hook(self, name: str) -> Callable:
        def hook(module: nn.Module, inputs, output) -> None:
            self._hint_hook(module, inputs, output)
            if self.keep_raw_outputs:
                first = output[0] if isinstance(output, (tuple, list)) and output else output
                if torch.is_tensor(first):
                    self.raw_outputs[name] = first
            self.maps[name] = output_to_map(output, self.input_hw, self._hw_hint, self.extra_tokens)

        return hook

    def collect(self) -> list[torch.Tensor]:
        """The maps of :attr:`names` from the forward run inside ``with``, in order."""
        missing = [n for n in self.names if self.maps.get(n) is None]
        if missing:
            raise RuntimeError(f'feature taps {missing} produced no spatial map in this forward')
        return [self.maps[n] for n in self.names]


def probe_taps(
    backbone: nn.Module,
    run: Callable[[torch.Tensor], torch.Tensor],
    names: Sequence[tuple[str, str | None]],
    input_hw: tuple[int, int],
    extra_tokens: int | None,
) -> tuple[list[TapInfo], torch.Tensor]:
    """Run one forward of a zero image with every candidate tapped.

    Args:
        backbone: The backbone.
        run: Maps a normalised ``(1, 3, H, W)`` input to logits (the whole classifier).
        names: Candidate ``(name, group)`` pairs.
        input_hw: Probe size.
        extra_tokens: Leading non-patch tokens, or None.

    Returns:
        One :class:`TapInfo` per candidate, in forward order, and the probe's logits.
    """
    groups = dict(names)
    finish_order: list[str] = []
    order_handles = [
        module.register_forward_hook(lambda m, i, o, n=name: finish_order.append(n))
        for name, module in backbone.named_modules()
        if name in groups
    ]
    try:
        x = torch.zeros(1, 3, *input_hw, requires_grad=True)
        with torch.enable_grad(), FeatureTapper(backbone, list(groups), input_hw, extra_tokens, True) as tapper:
            logits = run(x)
            if isinstance(logits, (tuple, list)):
                logits = sum(logits)
            # The logits depend on the raw outputs (token maps are reshaped copies of them).
            outputs = {n: tapper.raw_outputs[n] for n, m in tapper.maps.items() if m is not None}
            outputs = {n: o for n, o in outputs.items() if o.requires_grad}
            grads = torch.autograd.grad(logits.sum(), list(outputs.values()), allow_unused=True) if outputs else []
        reaches = {n: g is not None for n, g in zip(outputs, grads)}
    finally:
        for handle in order_handles:
            handle.remove()
    infos = []
    for name in dict.fromkeys(finish_order):
        m = tapper.maps.get(name)
        shape = tuple(int(v) for v in m.shape[1:]) if m is not None else None
        infos.append(TapInfo(name, shape, reaches.get(name, False), groups[name]))
    return infos, logits.detach()


def default_taps(infos: Sequence[TapInfo], limit: int = MAX_DEFAULT_TAPS) -> list[str]:
    """The end of each stage (last tap at each resolution), or the ends of equal block groups.

    Args:
        infos: Probe results in forward order.
        limit: At most this many taps (the deepest are kept).

    Returns:
        Module names.
    """
    # A 1x1 map (a pooled vector kept 4-D) has no spatial attention.
    usable = [t for t in infos if t.shape is not None and t.reaches_logits and t.shape[1] * t.shape[2] > 1]
    ends: dict[tuple[int, int], str] = {}
    for tap in usable:
        ends.pop(tap.shape[1:], None)  # re-insert: dict order follows the last tap at each resolution
        ends[tap.shape[1:]] = tap.name
    if len(ends) >= 2:
        return list(ends.values())[-limit:]
    runs: dict[str, list[str]] = {}
    for tap in usable:
        if tap.group is not None:
            runs.setdefault(tap.group, []).append(tap.name)
    blocks = max(runs.values(), key=len, default=[t.name for t in usable])
    count = min(limit, len(blocks))
    return [blocks[math.ceil((k + 1) * len(blocks) / count) - 1] for k in range(count)]
