# DeiT-Tiny FER classifier (VisionTransformer 'deit-tiny', 16x16 patches: 7x7 tokens + class token at 112 px, 5.5M
# parameters) for 7 expressions, with the RAF-DB augmentation, label smoothing 0.1 and AdamW with a 2-epoch warm-up.
# A transformer trained from scratch on a few thousand faces stays weak; start from ImageNet weights on real data
# (the position embedding is resized from 14x14 to 7x7 when loading, docs/fer_classifiers.md):
#   srfer train-fer srfer::fer/deit-tiny_fer7.py --data-root datasets/RAF-DB --device cpu \
#       --pretrained https://download.openmmlab.com/mmclassification/v0/deit/deit-tiny_pt-4xb256_in1k_20220218-13b382a0.pth
_base_ = [
    'mmpretrain::_base_/models/vit-base-p16.py',
    './_base_/datasets/fer7_112_aug.py',
    './_base_/schedules/fer_adamw_cosine.py',
    './_base_/fer_runtime.py',
]

img_size = 112
model = dict(
    backbone=dict(arch='deit-tiny', img_size=img_size, patch_size=16, drop_rate=0.0),
    head=dict(
        num_classes=7,
        in_channels=192,
        loss=dict(_delete_=True, type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1,),
    ),
    # DeiT's initialisation (mmpretrain configs/deit): truncated-normal linear layers, unit LayerNorms.
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
    ],
)
# Transformers want a lower learning rate and a longer warm-up than the CNNs; no weight decay on norms, biases and
# the class token / position embedding; gradient clipping as in DeiT.
max_epochs = 10
warmup_epochs = 2
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'.cls_token': dict(decay_mult=0.0), '.pos_embed': dict(decay_mult=0.0)},
    ),
    clip_grad=dict(max_norm=5.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=warmup_epochs, convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=1e-5,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True,
    ),
]
