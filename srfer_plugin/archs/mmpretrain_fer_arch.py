"""MMPretrainFER: an MMPretrain classifier as BasicSR's ``network_fer``, returning stage features and logits."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import torch
from basicsr.utils import get_root_logger
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from srfer_plugin.utils.checkpoint import extract_state_dict, safe_load


def load_mmpretrain_config(config: str, where: str = 'network_fer.config'):
    """Load an mmpretrain config from a ``.py`` file or a model name (``mmpretrain.list_models()``).

    Args:
        config: Config file path or model name.
        where: Option name for error messages.

    Returns:
        An ``mmengine.Config`` (a copy the caller may change).
    """
    from mmengine import Config

    if str(config).endswith('.py'):
        if not os.path.isfile(config):
            raise FileNotFoundError(f'{where}: mmpretrain config file {config!r} does not exist')
        return Config.fromfile(config)
    from mmpretrain.apis.model import ModelHub

    try:
        return copy.deepcopy(ModelHub.get(config).config)
    except ValueError as err:
        raise ValueError(
            f'{where}: {config!r} is neither a .py config file nor an mmpretrain model name '
            '(see mmpretrain.list_models())'
        ) from err


def _strip_prefixes(state_dict: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (``module.`` from DDP, ``model.`` from this wrapper) until keys match the model."""
    for prefix in ('module.', 'model.', 'module.model.'):
        if not any(k in model_keys for k in state_dict) and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix) :]: v for k, v in state_dict.items()}
    return state_dict


@ARCH_REGISTRY.register()
class MMPretrainFER(nn.Module):
    """A facial expression classifier built by MMPretrain, fed with BasicSR tensors.

    Args:
        config: mmpretrain config file (``.py``) or model name.
        checkpoint: Weights: an mmengine Runner checkpoint, a plain state dict or a BasicSR ``params`` file.
            ``None`` keeps the random initialisation (with a warning).
        num_classes: Overrides the head's number of classes. Default: keep the config's.
        stages: Backbone ``out_indices`` whose feature maps ``forward`` returns (for attention consistency).
            Default: every stage of the backbone (``range(num_stages)``), else the config's ``out_indices``.
        freeze: Keep the classifier in eval mode with ``requires_grad=False``. Default True.
        strict: Require the checkpoint keys to match the model exactly. Default True.
        param_key: Key of the weights inside the checkpoint (e.g. ``params_ema``). Default: found automatically.
    """

    def __init__(
        self,
        config: str,
        checkpoint: str | None = None,
        num_classes: int | None = None,
        stages: Sequence[int] | None = None,
        freeze: bool = True,
        strict: bool = True,
        param_key: str | None = None,
    ):
        super().__init__()
        from mmpretrain.apis import get_model

        cfg = load_mmpretrain_config(config)
        if 'model' not in cfg or 'backbone' not in cfg.model:
            raise ValueError(f'network_fer.config: {config!r} defines no model with a backbone')
        backbone_cfg = cfg.model.backbone
        num_stages = backbone_cfg.get('num_stages')
        config_out = backbone_cfg.get('out_indices', (num_stages - 1,) if num_stages else (-1,))
        config_out = [config_out] if isinstance(config_out, int) else list(config_out)
        if num_stages:
            config_out = [i % num_stages for i in config_out]
        if stages is None:
            stages = list(range(num_stages)) if num_stages else config_out
        stages = [int(s) + num_stages if num_stages and int(s) < 0 else int(s) for s in stages]
        if not stages:
            raise ValueError('network_fer.stages must list at least one stage')
        if num_stages and not all(0 <= s < num_stages for s in stages):
            raise ValueError(f'network_fer.stages {stages}: the backbone has stages 0..{num_stages - 1}')
        if max(stages) > max(config_out):
            raise ValueError(
                f'network_fer.stages {stages}: stage {max(stages)} lies after the stage the head reads '
                f'({max(config_out)}); use stages up to {max(config_out)}'
            )
        out_indices = sorted(set(stages) | {max(config_out)})
        backbone_cfg.out_indices = tuple(out_indices)
        if num_classes is not None:
            if 'num_classes' not in cfg.model.get('head', {}):
                raise ValueError(f'network_fer.num_classes: the head of {config!r} has no num_classes to override')
            cfg.model.head.num_classes = int(num_classes)
            if cfg.get('data_preprocessor') is not None:
                cfg.data_preprocessor.num_classes = int(num_classes)
        self.model = get_model(cfg, pretrained=False)
        self.num_classes = int(cfg.model.head.num_classes) if 'num_classes' in cfg.model.get('head', {}) else None
        self.stages = stages
        self._stage_positions = [out_indices.index(s) for s in stages]
        self.config_path = str(config)
        self.class_names: list[str] | None = None

        # The classifier's own normalisation (mmpretrain applies it only inside train_step/val_step).
        preprocessor = self.model.data_preprocessor
        mean = getattr(preprocessor, 'mean', None) if getattr(preprocessor, '_enable_normalize', False) else None
        std = getattr(preprocessor, 'std', None) if mean is not None else None
        self.register_buffer(
            'pixel_mean',
            (mean if mean is not None else torch.zeros(3, 1, 1)).reshape(1, -1, 1, 1).clone().float(),
            persistent=False,
        )
        self.register_buffer(
            'pixel_std',
            (std if std is not None else torch.ones(3, 1, 1)).reshape(1, -1, 1, 1).clone().float(),
            persistent=False,
        )
        # Models trained with to_rgb=True see RGB; otherwise they see the BGR order images are loaded in.
        self.input_bgr = not bool(getattr(preprocessor, 'to_rgb', getattr(preprocessor, '_channel_conversion', False)))

        if checkpoint is None:
            get_root_logger().warning(f'network_fer.checkpoint is None: {config!r} keeps its random initialisation')
        else:
            self.load_checkpoint(checkpoint, strict=strict, param_key=param_key)
        self.frozen = bool(freeze)
        if self.frozen:
            self.requires_grad_(False)
            self.eval()

    def load_checkpoint(self, path: str, strict: bool = True, param_key: str | None = None) -> None:
        """Load classifier weights from any supported checkpoint format, without unpickling code.

        Args:
            path: The checkpoint file.
            strict: Require an exact key match.
            param_key: Key of the weights inside the file. Default: found automatically.
        """
        if not os.path.isfile(path):
            raise FileNotFoundError(f'network_fer.checkpoint: {path!r} does not exist')
        loaded = safe_load(path)
        meta = loaded.get('meta') if isinstance(loaded, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get('dataset_meta'), dict):
            classes = meta['dataset_meta'].get('classes')
            self.class_names = list(classes) if classes else None
        model_state = self.model.state_dict()
        state_dict = _strip_prefixes(extract_state_dict(loaded, path, param_key), set(model_state))
        for key, value in state_dict.items():
            if key in model_state and model_state[key].shape != value.shape:
                hint = ''
                if key.startswith('head.') and value.ndim >= 1:
                    hint = (
                        f' (the checkpoint head has {value.shape[0]} classes, network_fer.num_classes is '
                        f'{self.num_classes})'
                    )
                raise ValueError(
                    f'network_fer.checkpoint {path!r}: {key} has shape {tuple(value.shape)}, the '
                    f'model expects {tuple(model_state[key].shape)}{hint}'
                )
        missing = sorted(set(model_state) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(model_state))
        if strict and (missing or unexpected):
            raise ValueError(
                f'network_fer.checkpoint {path!r} does not match {self.config_path!r}: missing keys '
                f'{missing[:5]}{"..." if len(missing) > 5 else ""}, unexpected keys {unexpected[:5]}'
                f'{"..." if len(unexpected) > 5 else ""} (set network_fer.strict: false to allow)'
            )
        self.model.load_state_dict(state_dict, strict=False)
        get_root_logger().info(f'Loaded FER classifier weights from {path}')

    def train(self, mode: bool = True) -> MMPretrainFER:
        """Switch train/eval mode; a frozen classifier always stays in eval mode."""
        return super().train(mode and not getattr(self, 'frozen', False))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map BasicSR tensors (RGB, [0, 1]) to the classifier's input (0-255 scale, mean/std, channel order)."""
        if self.input_bgr:
            x = x.flip(1)
        return (x * 255.0 - self.pixel_mean) / self.pixel_std

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Classify a batch of faces.

        Args:
            x: ``NCHW`` RGB tensor in [0, 1].

        Returns:
            ``(feats, logits)``: the feature maps of the configured ``stages`` and the class logits ``(N, K)``.
        """
        outs = self.model.backbone(self.normalize(x))
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        neck_out = self.model.neck(outs) if self.model.with_neck else outs
        logits = self.model.head(neck_out)
        feats = [outs[i] for i in self._stage_positions]
        return feats, logits
