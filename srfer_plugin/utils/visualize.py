"""Pictures of the FER classifier's attention: heat maps of each stage overlaid on faces, one row per image kind.

Used by ``srfer visualize-attention`` and the demo. The maps are :func:`attention_map` of the consistency
loss (channel mean of ``|F|^p``, L2-normalised), reshaped to the stage's grid, upsampled bilinearly to the image
size and, for display only, min-max scaled to [0, 1] per map.

Example::

    rows = attention_rows(net_fer, {'HR': hr, 'bicubic': bic, 'SR-FER': sr}, class_names, label=3)
    attention_grid(rows, 'face_attention.png', title='face.png (true: surprise)')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from srfer_plugin.losses.consistency_loss import attention_map


@dataclass
class AttentionRow:
    """One row of an attention grid.

    Attributes:
        name: Row title, e.g. ``HR``, ``bicubic``, ``plain SR``, ``SR-FER``.
        image: ``HWC`` RGB float image in [0, 1].
        maps: One ``(H, W)`` heat map in [0, 1] per stage, at the image's size.
        caption: Text under the title, e.g. the predicted label.
    """

    name: str
    image: np.ndarray
    maps: Sequence[np.ndarray]
    caption: str = ''


def attention_heatmaps(
    net_fer: torch.nn.Module, images: torch.Tensor, p: float = 2.0
) -> tuple[list[np.ndarray], torch.Tensor]:
    """Attention heat maps of every stage of a classifier, at the images' size.

    Args:
        net_fer: Classifier whose ``forward`` returns ``(feats, logits)`` (e.g. MMPretrainFER).
        images: ``NCHW`` RGB tensor in [0, 1].
        p: Exponent of :func:`attention_map`.

    Returns:
        ``(maps, logits)``: per stage an ``(N, H, W)`` array in [0, 1], and the ``(N, K)`` logits.
    """
    with torch.no_grad():
        feats, logits = net_fer(images.clamp(0, 1))
        maps = []
        for feat in feats:
            att = attention_map(feat.float(), p).reshape(feat.shape[0], 1, *feat.shape[-2:])
            att = F.interpolate(att, size=tuple(images.shape[-2:]), mode='bilinear', align_corners=False)[:, 0]
            low = att.flatten(1).min(dim=1).values[:, None, None]
            high = att.flatten(1).max(dim=1).values[:, None, None]
            maps.append(((att - low) / (high - low).clamp_min(1e-12)).cpu().numpy())
    return maps, logits.float().cpu()


def attention_rows(
    net_fer: torch.nn.Module,
    images: Mapping[str, torch.Tensor],
    class_names: Sequence[str] | None = None,
    p: float = 2.0,
    label: int | None = None,
) -> list[AttentionRow]:
    """Classify the versions of one face and build a grid row for each.

    Args:
        net_fer: Classifier returning ``(feats, logits)``.
        images: Row name -> ``CHW`` or ``1CHW`` RGB tensor in [0, 1]; all the same size.
        class_names: Class names by label.
        p: Exponent of :func:`attention_map`.
        label: True label, to mark predictions right or wrong.

    Returns:
        One :class:`AttentionRow` per image, in the mapping's order; captions read ``happy 0.83`` (+ ``ok`` or
        ``wrong`` when ``label`` is given).
    """
    names = list(images)
    device = next(net_fer.parameters()).device
    batch = torch.stack([images[n].reshape(-1, *images[n].shape[-3:])[0] for n in names]).float().to(device)
    maps, logits = attention_heatmaps(net_fer, batch, p)
    probs = torch.softmax(logits, dim=1)
    rows = []
    for i, name in enumerate(names):
        k = int(probs[i].argmax())
        pred = class_names[k] if class_names and k < len(class_names) else f'class_{k}'
        caption = f'{pred} {float(probs[i, k]):.2f}'
        if label is not None:
            caption += ' ok' if k == int(label) else ' wrong'
        image = batch[i].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        rows.append(AttentionRow(name, image, [m[i] for m in maps], caption))
    return rows


def overlay_heatmap(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, cmap: str = 'jet') -> np.ndarray:
    """Blend a colour-mapped heat map into an image.

    Args:
        image: ``HWC`` RGB float in [0, 1].
        heat: ``(H, W)`` in [0, 1].
        alpha: Weight of the heat map.
        cmap: Matplotlib colour map.

    Returns:
        ``HWC`` RGB float in [0, 1].
    """
    from matplotlib import colormaps

    colored = colormaps[cmap](np.clip(heat, 0.0, 1.0))[..., :3]
    return np.clip((1.0 - alpha) * image + alpha * colored, 0.0, 1.0)


def attention_grid(
    rows: Sequence[AttentionRow],
    out_path: str | None = None,
    title: str | None = None,
    stage_names: Sequence[str] | None = None,
    alpha: float = 0.5,
    cell_size: float = 1.6,
    dpi: int = 100,
) -> np.ndarray:
    """Draw rows of (image, heat map of each stage) and optionally save the picture.

    The picture is ``round((1 + stages) * cell_size * dpi)`` pixels wide and ``round((rows * cell_size + t) *
    dpi)`` high, with ``t = 0.4`` inches for a title (0 without).

    Args:
        rows: The rows (same number of stages each).
        out_path: PNG file to write (folders are created). None: only return the picture.
        title: Figure title.
        stage_names: Column titles of the heat maps. Default ``stage 0``, ``stage 1``, ...
        alpha: Heat map opacity.
        cell_size: Side of one cell in inches.
        dpi: Pixels per inch.

    Returns:
        The picture, ``HW3`` uint8 RGB.
    """
    import os

    import matplotlib

    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError('attention_grid needs at least one row')
    n_stages = len(rows[0].maps)
    if any(len(r.maps) != n_stages for r in rows):
        raise ValueError('attention_grid: every row needs the same number of stage maps')
    stage_names = list(stage_names) if stage_names else [f'stage {s}' for s in range(n_stages)]
    title_h = 0.4 if title else 0.0
    fig_w, fig_h = (1 + n_stages) * cell_size, len(rows) * cell_size + title_h
    fig, axes = plt.subplots(len(rows), 1 + n_stages, figsize=(fig_w, fig_h), dpi=dpi, squeeze=False)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.01, top=1.0 - title_h / fig_h - 0.02, wspace=0.05, hspace=0.3)
    for r, row in enumerate(rows):
        panels = [row.image] + [overlay_heatmap(row.image, m, alpha) for m in row.maps]
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel, interpolation='nearest')
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_title(f'{row.name}: {row.caption}' if row.caption else row.name, fontsize=7)
            elif r == 0:
                ax.set_title(stage_names[c - 1], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9, y=1.0 - 0.05 / fig_h)
    fig.canvas.draw()
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    if out_path:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        fig.savefig(out_path, dpi=dpi)
    plt.close(fig)
    return picture
