"""MMPretrainFER: an MMPretrain classifier as BasicSR's ``network_fer``, returning stage features and logits."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from basicsr.utils import get_root_logger
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from srfer_plugin.archs.feature_taps import (
    MAX_DEFAULT_TAPS,
    FeatureTapper,
    TapInfo,
    candidate_modules,
    default_taps,
    longest_block_run,
    probe_taps,
    resolutions,
)
from srfer_plugin.archs.mmpretrain_config import accepts_option, as_hw, load_mmpretrain_config, set_num_classes
from srfer_plugin.utils.checkpoint import extract_state_dict, safe_load, strip_key_prefix


def _strip_prefixes(state_dict: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (``module.`` from DDP, ``model.`` from this wrapper) until keys match the model."""
    for prefix in ('module.', 'model.', 'module.model.'):
        if not any(k in model_keys for k in state_dict) and all(k.startswith(prefix) for k in state_dict):
            state_dict = strip_key_prefix(state_dict, prefix)
    return dict(state_dict)


DEFAULT_PROBE_SIZE = 112
# Backbone options some families need for small feature maps, set for the user when a probe fails without them.
SMALL_MAP_OPTIONS = {'pad_small_map': True}


@ARCH_REGISTRY.register()
class MMPretrainFER(nn.Module):
    """A facial expression classifier built by MMPretrain, fed with BasicSR tensors.

    The classifier runs unchanged, so its logits are the original model's; forward hooks copy the stage
    feature maps that the attention loss reads (:mod:`srfer_plugin.archs.feature_taps`).

    Args:
        config: mmpretrain config file (``.py``) or model name (``mmpretrain.list_models()``).
        checkpoint: Weights: an mmengine Runner checkpoint, a plain state dict or a BasicSR ``params`` file.
            ``None`` keeps the random initialisation (with a warning).
        num_classes: Overrides the head's number of classes (the backbone's for VGG). Default: the config's.
        stages: Feature taps: indices into the default taps (``default_taps``; negative counts from the end) or
            backbone module names (``layer3``, ``stages.2``, ``layers.11``). Default: every default tap, the end of
            each stage (or block group for plain transformers).
        input_size: The classifier's input resolution (int or ``[h, w]``); faces are resized to it
            (bilinear, antialiased when shrinking, differentiable). Default None: the face as it is.
        cfg_options: mmengine-style overrides of the config, e.g. ``{'model.backbone.drop_path_rate': 0.0}``.
        freeze: Keep the classifier in eval mode with ``requires_grad=False``. Default True (an SR-FER model sets it
            from ``train.train_network_fer``; its option file does not).
        strict: Require the checkpoint keys to match the model exactly. Default True.
        param_key: Key of the weights inside the checkpoint (e.g. ``params_ema``). Default: found automatically.
    """

    def __init__(
        self,
        config: str,
        checkpoint: str | None = None,
        num_classes: int | None = None,
        stages: Sequence[int | str] | None = None,
        input_size: int | Sequence[int] | None = None,
        cfg_options: dict | None = None,
        freeze: bool = True,
        strict: bool = True,
        param_key: str | None = None,
    ):
        super().__init__()
        cfg = load_mmpretrain_config(config)
        if cfg_options:
            try:
                cfg.merge_from_dict(dict(cfg_options))
            except (TypeError, KeyError, ValueError) as err:
                raise ValueError(f'network_fer.cfg_options {cfg_options!r}: {err}') from err
        model_cfg = cfg.get('model') or {}
        if 'backbone' not in model_cfg or model_cfg.get('type', 'ImageClassifier') != 'ImageClassifier':
            raise ValueError(
                f'network_fer.config: {config!r} is a {model_cfg.get("type")!r}, not an mmpretrain ImageClassifier '
                'with a backbone and a classification head'
            )
        if num_classes is not None:
            set_num_classes(cfg, int(num_classes), str(config))
        self.config_path = str(config)
        self.input_size = as_hw(input_size)
        self.class_names: list[str] | None = None
        self.adapted = False  # set by load_checkpoint from the weights file
        self.adapted_in: dict | None = None
        probe_hw = self.input_size or (DEFAULT_PROBE_SIZE, DEFAULT_PROBE_SIZE)
        requested = [stages] if isinstance(stages, (int, str)) else list(stages or [])
        self._requested_names = [s.removeprefix('backbone.') for s in requested if isinstance(s, str)]
        self.model, infos, self.num_classes = self._build_and_probe(cfg, probe_hw)
        if num_classes is not None and self.num_classes != int(num_classes):
            raise ValueError(
                f'network_fer.num_classes: {config!r} gives {self.num_classes} logits after setting '
                f'num_classes={num_classes}; set the head through network_fer.cfg_options'
            )
        self.tap_infos = {t.name: t for t in infos}
        self.default_taps = default_taps(infos)
        if not self.default_taps:
            raise ValueError(
                f'network_fer.config: the backbone of {config!r} ({cfg.model.backbone.get("type")}) gives no '
                'spatial feature map that reaches the logits (only vectors), so attention consistency has no '
                'meaning for it; choose a backbone with spatial stages'
            )
        self.taps = self._resolve_taps(stages)
        self.stages = requested if stages is not None else list(range(len(self.default_taps)))
        extra = getattr(self.model.backbone, 'num_extra_tokens', None)
        self.extra_tokens = extra if isinstance(extra, int) else None
        self._init_normalisation()

        if not isinstance(strict, bool):
            raise ValueError(f'network_fer.strict must be true or false; got {strict!r}')
        if param_key is not None and not isinstance(param_key, str):
            raise ValueError(f'network_fer.param_key must be a key name (e.g. params_ema); got {param_key!r}')
        if checkpoint is None:
            get_root_logger().warning(f'network_fer.checkpoint is None: {config!r} keeps its random initialisation')
        else:
            self.load_checkpoint(checkpoint, strict=strict, param_key=param_key)
        self.frozen = bool(freeze)
        if self.frozen:
            self.requires_grad_(False)
            self.eval()

    # ------------------------------------------------------------------ build
    def _build_and_probe(self, cfg, probe_hw: tuple[int, int]):
        """Build the model and probe its candidate taps; set small-map options the backbone needs."""
        from mmpretrain.apis import get_model

        backbone_cfg = cfg.model.backbone
        self.backbone_options_set: dict = {}  # what the probe had to set (e.g. Swin's pad_small_map)
        tried: list[str] = []
        while True:
            try:
                model = get_model(cfg, pretrained=False)
            except (TypeError, KeyError, ValueError, AssertionError) as err:
                raise ValueError(
                    f'network_fer: mmpretrain cannot build {self.config_path!r} with these settings (num_classes, '
                    f'cfg_options): {type(err).__name__}: {err}'
                ) from err
            try:
                return (model, *self._probe(model, probe_hw))
            except Exception as err:  # noqa: BLE001  (any failure of the probe forward is reported below)
                fixes = {
                    k: v
                    for k, v in SMALL_MAP_OPTIONS.items()
                    if k not in backbone_cfg and k not in tried and accepts_option(backbone_cfg.get('type'), k)
                }
                if not fixes:
                    where = 'network_fer.input_size' if self.input_size else 'the face size'
                    size = backbone_cfg.get('img_size') or 224
                    hint = (
                        f'set network_fer.input_size to a size it takes (e.g. {size}), or backbone options through '
                        'network_fer.cfg_options'
                    )
                    raise ValueError(
                        f'network_fer: {self.config_path!r} cannot classify a {probe_hw[0]}x{probe_hw[1]} input '
                        f'({where}): {type(err).__name__}: {err}; {hint}'
                    ) from err
                backbone_cfg.update(fixes)
                self.backbone_options_set.update(fixes)
                tried.extend(fixes)
                get_root_logger().info(f'network_fer: set model.backbone {fixes} for small feature maps')

    def _probe(self, model: nn.Module, probe_hw: tuple[int, int]) -> tuple[list[TapInfo], int]:
        """Probe the stage-level candidates; one level deeper when that shows more of the backbone's stages.

        Returns:
            The probe results and the number of logits.
        """
        modules = dict(model.backbone.named_modules())
        requested = [n for n in self._requested_names if n and n in modules]  # unknown: see _resolve_taps
        extra = getattr(model.backbone, 'num_extra_tokens', None)
        extra = extra if isinstance(extra, int) else None
        was_training = model.training
        model.eval()
        try:
            best = None
            for depth in (1, 2):
                names = dict(candidate_modules(model.backbone, depth))
                names.update({n: None for n in requested if n not in names})
                if best is not None and set(names) == set(best[0]):
                    break
                infos, logits = probe_taps(
                    model.backbone, lambda x: model(x, mode='tensor'), list(names.items()), probe_hw, extra
                )
                enough = resolutions(infos) >= MAX_DEFAULT_TAPS or longest_block_run(infos) >= MAX_DEFAULT_TAPS
                if (
                    best is None
                    or resolutions(infos) > resolutions(best[1])
                    or longest_block_run(best[1]) < 2 <= (longest_block_run(infos))
                ):
                    best = (names, infos, logits)
                if enough:
                    break
        finally:
            model.train(was_training)
        return best[1], int(best[2].shape[-1])

    def _resolve_taps(self, stages: Sequence[int | str] | None) -> list[str]:
        if stages is None:
            return list(self.default_taps)
        if isinstance(stages, (int, str)):
            stages = [stages]
        if not stages:
            raise ValueError('network_fer.stages must list at least one tap')
        spatial = [n for n, t in self.tap_infos.items() if t.shape is not None and n not in self.default_taps]
        offered = f'the default taps are {dict(enumerate(self.default_taps))}; other modules with maps: ' + str(
            [n for n in spatial if self.tap_infos[n].reaches_logits]
        )
        unreachable = [n for n in spatial if not self.tap_infos[n].reaches_logits]
        if unreachable:
            offered += f' ({unreachable} lie after the stage the head reads: their outputs do not reach the logits)'

        taps = []
        for stage in stages:
            if isinstance(stage, bool) or not isinstance(stage, (int, str)):
                raise ValueError(f'network_fer.stages: {stage!r} is neither an index nor a module name; {offered}')
            if isinstance(stage, int):
                if not -len(self.default_taps) <= stage < len(self.default_taps):
                    raise ValueError(f'network_fer.stages: index {stage} is out of range; {offered}')
                taps.append(self.default_taps[stage])
                continue
            name = stage.removeprefix('backbone.')
            info = self.tap_infos.get(name)
            if info is None and name not in dict(self.model.backbone.named_modules()):
                raise ValueError(f'network_fer.stages: the backbone has no module {stage!r}; {offered}')
            if info is None or info.shape is None:
                raise ValueError(f'network_fer.stages: {stage!r} gives no spatial feature map; {offered}')
            if not info.reaches_logits:
                raise ValueError(
                    f'network_fer.stages: {stage!r} lies after the stage the head reads (its output does not reach '
                    f'the logits); {offered}'
                )
            taps.append(name)
        return taps

    def _init_normalisation(self) -> None:
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
        srfer_meta = meta.get('srfer') if isinstance(meta, dict) else None
        # A joint run's net_fer_<iter>.pth records that joint learning trained it (FERGuidance.save)
        self.adapted = bool(isinstance(srfer_meta, dict) and srfer_meta.get('adapted'))
        self.adapted_in = dict(srfer_meta) if self.adapted else None
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
        if len(missing) == len(model_state):
            raise ValueError(
                f'network_fer.checkpoint {path!r}: none of its {len(state_dict)} tensors is a weight of '
                f"{self.config_path!r} (its keys: {sorted(state_dict)[:5]}); is it the classifier's file?"
            )
        if not strict and (missing or unexpected):
            get_root_logger().warning(
                f'network_fer.checkpoint {path!r} (strict: false): {len(missing)} weight(s) of the model not in the '
                f'file {missing[:5]}, {len(unexpected)} tensor(s) of the file not used {unexpected[:5]}'
            )
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

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        """Resize faces to ``input_size`` (bilinear, antialiased when shrinking); unchanged when it is None."""
        if self.input_size is None or tuple(x.shape[-2:]) == self.input_size:
            return x
        shrink = x.shape[-2] > self.input_size[0] or x.shape[-1] > self.input_size[1]
        return F.interpolate(x, size=self.input_size, mode='bilinear', align_corners=False, antialias=shrink)

    def check_input_size(self, height: int, width: int, where: str = 'the faces') -> None:
        """Raise a ValueError naming ``network_fer.input_size`` if the classifier cannot take these faces.

        Args:
            height: Face height in pixels.
            width: Face width in pixels.
            where: What the faces are, for the message (e.g. ``datasets.train.gt_size``).
        """
        device = self.pixel_mean.device
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                self(torch.zeros(1, 3, height, width, device=device))
        except Exception as err:  # noqa: BLE001  (reported with the option to change)
            raise ValueError(
                f'network_fer: {self.config_path!r} cannot classify {height}x{width} faces ({where}) at '
                f'network_fer.input_size={list(self.input_size) if self.input_size else None}: '
                f'{type(err).__name__}: {err}; set network_fer.input_size to a size the model takes'
            ) from err
        finally:
            self.train(was_training)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Classify a batch of faces.

        Args:
            x: ``NCHW`` RGB tensor in [0, 1].

        Returns:
            ``(feats, logits)``: the ``(N, C, H, W)`` maps of the taps and the class logits ``(N, K)``.
        """
        x = self.normalize(self.resize(x))
        with FeatureTapper(self.model.backbone, self.taps, x.shape[-2:], self.extra_tokens) as tapper:
            logits = self.model(x, mode='tensor')
        if isinstance(logits, (tuple, list)):  # Conformer's head scores twice; its predict() adds the scores
            logits = sum(logits)
        return tapper.collect(), logits
