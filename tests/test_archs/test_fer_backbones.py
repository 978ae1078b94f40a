"""Every supported MMPretrain family as network_fer: stage maps, attention loss, gradients, frozen weights.

Models are built by name from ``mmpretrain.list_models()`` with random init; large ones are shrunk through
``cfg_options`` (the tap logic is the same at any width or depth).
"""

from __future__ import annotations

import glob
import os

import pytest
import torch
import yaml
from fer_fixtures import REPO_ROOT

from srfer_plugin.archs.mmpretrain_fer_arch import MMPretrainFER
from srfer_plugin.losses.consistency_loss import AttentionConsistencyLoss, PredictionConsistencyLoss

TINY_VIT = {'_delete_': True, 'embed_dims': 64, 'num_layers': 4, 'num_heads': 2, 'feedforward_channels': 128}
TINY_SWIN = {'_delete_': True, 'embed_dims': 32, 'depths': [1, 1, 2, 1], 'num_heads': [1, 2, 2, 4]}

# family: (model name, cfg_options, input_size, expected default taps or None to skip that check)
FAMILIES = {
    'ResNet': ('resnet18_8xb32_in1k', {}, None, ['layer1', 'layer2', 'layer3', 'layer4']),
    'SE-ResNet': (
        'seresnet50_8xb32_in1k',
        {'model.backbone.base_channels': 16, 'model.head.in_channels': 512},
        None,
        ['layer1', 'layer2', 'layer3', 'layer4'],
    ),
    'MobileNetV2': ('mobilenet-v2_8xb32_in1k', {'model.backbone.widen_factor': 0.5}, None, None),
    'MobileNetV3': ('mobilenet-v3-small_8xb128_in1k', {}, None, None),
    'EfficientNet': ('efficientnet-b0_3rdparty_8xb32_in1k', {}, None, None),
    'ConvNeXt': (
        'convnext-tiny_32xb128_in1k',
        {'model.backbone.arch': 'atto', 'model.head.in_channels': 320},
        None,
        ['stages.0', 'stages.1', 'stages.2', 'stages.3'],
    ),
    'RegNet': ('regnetx-400mf_8xb128_in1k', {}, None, ['layer1', 'layer2', 'layer3', 'layer4']),
    'RepVGG': ('repvgg-a0_8xb32_in1k', {}, None, ['stage_1', 'stage_2', 'stage_3', 'stage_4']),
    'ShuffleNetV2': ('shufflenet-v2-1x_16xb64_in1k', {'model.backbone.widen_factor': 0.5}, None, None),
    'Swin': (
        'swin-tiny_16xb64_in1k',
        {'model.backbone.arch': TINY_SWIN, 'model.head.in_channels': 256},
        None,
        ['stages.0', 'stages.1', 'stages.2', 'stages.3'],
    ),
    'ViT': (
        'vit-base-p16_32xb128-mae_in1k',
        {'model.backbone.arch': TINY_VIT, 'model.head.in_channels': 64},
        None,
        ['layers.0', 'layers.1', 'layers.2', 'layers.3'],
    ),
    'DeiT-distilled': (
        'deit-tiny-distilled_3rdparty_in1k',
        {},
        None,
        ['layers.2', 'layers.5', 'layers.8', 'layers.11'],
    ),
    'LeViT (fixed 224 px)': ('levit-128s_3rdparty_in1k', {}, 224, ['stages.0', 'stages.1', 'stages.2']),
    'EdgeNeXt': ('edgenext-xxsmall_3rdparty_in1k', {}, None, ['stages.0', 'stages.1', 'stages.2', 'stages.3']),
}
FACE = 112


def _build(family: str) -> MMPretrainFER:
    name, cfg_options, input_size, _ = FAMILIES[family]
    torch.manual_seed(0)
    return MMPretrainFER(name, num_classes=7, cfg_options=cfg_options, input_size=input_size)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_family_gives_stage_maps_attention_and_gradients(family):
    fer = _build(family)
    expected_taps = FAMILIES[family][3]
    if expected_taps is not None:
        assert fer.taps == expected_taps
    assert fer.frozen and not fer.training and fer.num_classes == 7
    before = {k: v.clone() for k, v in fer.state_dict().items()}

    hr = torch.rand(2, 3, FACE, FACE)
    sr = (hr + 0.2 * torch.randn_like(hr)).clamp(0, 1).requires_grad_(True)
    feats_sr, logits_sr = fer(sr)
    with torch.no_grad():
        feats_hr, logits_hr = fer(hr)
        original = fer.model(fer.normalize(fer.resize(sr)), mode='tensor')
    if isinstance(original, tuple):
        original = sum(original)

    assert len(feats_sr) >= 2, f'{family}: fewer than 2 stage maps'
    assert all(f.dim() == 4 and f.shape[0] == 2 and f.shape[-1] * f.shape[-2] > 1 for f in feats_sr)
    assert [f.shape for f in feats_sr] == [f.shape for f in feats_hr]
    assert logits_sr.shape == (2, 7)
    assert torch.allclose(logits_sr, original, atol=1e-5), 'the head must get what the unchanged model gives it'

    l_att = AttentionConsistencyLoss()(feats_sr, feats_hr)
    l_pred = PredictionConsistencyLoss()(logits_sr, logits_hr)
    assert torch.isfinite(l_att) and l_att > 0
    (l_att + l_pred).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0, 'no gradient reaches the SR output'
    assert all(p.grad is None for p in fer.parameters())
    assert all(torch.equal(before[k], v) for k, v in fer.state_dict().items()), 'frozen weights changed'


def test_transformer_tokens_become_maps_without_extra_tokens():
    fer = _build('DeiT-distilled')  # class + distillation tokens: 2 + 7 * 7 tokens per layer
    assert fer.extra_tokens == 2
    feats, _ = fer(torch.rand(1, 3, FACE, FACE))
    assert [tuple(f.shape[1:]) for f in feats] == [(192, 7, 7)] * 4


def test_stages_by_index_and_by_name_and_negative_index():
    fer = MMPretrainFER('resnet18_8xb32_in1k', num_classes=7, stages=['layer2', -1, 'backbone.layer3.1'])
    assert fer.taps == ['layer2', 'layer4', 'layer3.1']
    feats, _ = fer(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [128, 512, 256]


def test_single_stage_and_bad_cfg_options():
    assert MMPretrainFER('resnet18_8xb32_in1k', num_classes=7, stages='layer3').taps == ['layer3']
    with pytest.raises(ValueError, match='network_fer.cfg_options'):
        MMPretrainFER('resnet18_8xb32_in1k', num_classes=7, cfg_options={'model.backbone.depth': {'bad': 1}})
    with pytest.raises(ValueError, match="cannot build 'resnet18_8xb32_in1k'.*unexpected keyword argument 'arch'"):
        MMPretrainFER('resnet18_8xb32_in1k', num_classes=7, cfg_options={'model.backbone.arch': 'tiny'})


@pytest.mark.parametrize(
    ('stages', 'message'),
    [
        (['layer9'], "no module 'layer9'.*default taps are .*'layer1'"),
        ([7], 'index 7 is out of range.*default taps'),
        ([1.5], 'neither an index nor a module name'),
    ],
)
def test_wrong_tap_lists_the_taps(stages, message):
    with pytest.raises(ValueError, match=message):
        MMPretrainFER('resnet18_8xb32_in1k', num_classes=7, stages=stages)


def test_input_size_resizes_both_sides_the_same_and_differentiably():
    fer = MMPretrainFER('resnet18_8xb32_in1k', num_classes=7, input_size=64)
    face = torch.rand(1, 3, 112, 112, requires_grad=True)
    feats, logits = fer(face)
    assert feats[0].shape[-2:] == (16, 16), '64 px input -> 16 px at layer1'
    logits.sum().backward()
    assert face.grad is not None and face.grad.abs().sum() > 0
    small = torch.nn.functional.interpolate(face.detach(), size=(64, 64), mode='bilinear', antialias=True)
    assert torch.allclose(fer(small)[1], fer(face.detach())[1], atol=1e-5)


def test_fixed_size_model_without_input_size_names_the_option():
    with pytest.raises(ValueError, match=r'cannot classify a 112x112 input.*network_fer.input_size.*224'):
        MMPretrainFER('levit-128s_3rdparty_in1k', num_classes=7)


def test_swin_small_maps_get_pad_small_map():
    fer = _build('Swin')
    assert fer.model.backbone.stages[-1].blocks[0].attn.pad_small_map
    with pytest.raises(ValueError, match='check_input|cannot classify'):
        fer.check_input_size(8, 8, where='datasets.train.gt_size')


@pytest.mark.parametrize(
    ('config', 'message'),
    [
        ('no_such_model_name', 'neither a .py config file nor an mmpretrain model name'),
        ('mae_vit-base-p16_8xb512-amp-coslr-300e_in1k', "is a 'MAE', not an mmpretrain ImageClassifier"),
    ],
)
def test_bad_configs(config, message):
    with pytest.raises(ValueError, match=message):
        MMPretrainFER(config, num_classes=7)


def _vector_backbone_config(tmp_path, head: str, conv_stem: bool = False) -> str:
    """A config whose backbone pools to vectors (after two strided convolutions if ``conv_stem``)."""
    from mmpretrain.registry import MODELS
    from torch import nn

    @MODELS.register_module(name='SRFERTestVectorBackbone', force=True)
    class VectorBackbone(nn.Module):
        def __init__(self, conv_stem: bool = False):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 3, 3, 2, 1), nn.Conv2d(3, 3, 3, 2, 1)) if conv_stem else None
            self.proj = nn.Linear(3, 8)

        def forward(self, x):
            if self.stem is not None:
                x = self.stem(x)
            return (self.proj(x.mean(dim=(2, 3))),)

    path = tmp_path / 'vector_backbone.py'
    path.write_text(
        f"model = dict(type='ImageClassifier', backbone=dict(type='SRFERTestVectorBackbone', conv_stem={conv_stem}), "
        f'neck=None, head={head})\n'
    )
    return str(path)


def test_vector_only_backbone_is_refused(tmp_path):
    config = _vector_backbone_config(tmp_path, "dict(type='LinearClsHead', num_classes=7, in_channels=8)")
    with pytest.raises(ValueError, match='no spatial feature map.*attention consistency has no meaning'):
        MMPretrainFER(config, num_classes=7)


def test_tap_without_a_map_is_refused(tmp_path):
    head = "dict(type='LinearClsHead', num_classes=7, in_channels=8)"
    assert MMPretrainFER(_vector_backbone_config(tmp_path, head, conv_stem=True), num_classes=7).taps == [
        'stem.0',
        'stem.1',
    ]
    config = _vector_backbone_config(tmp_path, head, conv_stem=True)
    with pytest.raises(ValueError, match="'proj' gives no spatial feature map"):
        MMPretrainFER(config, num_classes=7, stages=['proj'])


def test_head_without_num_classes_names_what_to_set(tmp_path):
    config = _vector_backbone_config(tmp_path, "dict(type='ClsHead')")
    with pytest.raises(ValueError, match='network_fer.num_classes: neither the head .ClsHead.'):
        MMPretrainFER(config, num_classes=7)


def test_vgg_num_classes_lives_in_the_backbone():
    fer = MMPretrainFER(
        'vgg11_8xb32_in1k',
        num_classes=7,
        input_size=224,  # its classifier reads a 7x7 map
    )
    assert fer.num_classes == 7 and len(fer.taps) >= 2


@pytest.mark.parametrize(
    'recipe', sorted(glob.glob(os.path.join(REPO_ROOT, 'options', 'train_*srfer*.yml'))), ids=os.path.basename
)
def test_recipe_classifiers_build_with_their_stage_weights(recipe):
    with open(recipe, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    fer_opt = {k: v for k, v in opt['network_fer'].items() if k not in ('type', 'checkpoint')}
    fer = MMPretrainFER(**fer_opt)
    assert len(fer.taps) >= 2 and fer.num_classes == 7
    weights = (opt['train'].get('attention_opt') or {}).get('stage_weights')
    assert weights is None or len(weights) == len(fer.taps)


@pytest.mark.parametrize(
    'config', sorted(glob.glob(os.path.join(REPO_ROOT, 'options', 'fer', '*.py'))), ids=os.path.basename
)
def test_every_fer_config_is_a_network_fer_with_stage_maps(config):
    fer = MMPretrainFER(config)
    assert fer.num_classes == 7 and len(fer.taps) >= 2
    feats, logits = fer(torch.rand(1, 3, FACE, FACE))
    assert logits.shape == (1, 7) and all(f.shape[-1] * f.shape[-2] > 1 for f in feats)
