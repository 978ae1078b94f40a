# ConvNeXt-Atto FER classifier (ConvNeXt-V2 atto, mmpretrain's smallest ConvNeXt: GRN blocks, 3.4M parameters) for
# 7 expressions on 112x112 faces, with the RAF-DB augmentation, label smoothing 0.1 and AdamW + cosine. Train it
# (start from ImageNet weights on real data, docs/fer_classifiers.md):
#   srfer train-fer srfer::fer/convnext-atto_fer7.py --data-root datasets/RAF-DB --device cpu \
#       --pretrained https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-atto_fcmae-pre_3rdparty_in1k_20230104-23765f83.pth
# The stem downsamples by 4 and each later stage by 2: 112 px gives 28, 14, 7 and 3 px feature maps.
_base_ = [
    'mmpretrain::_base_/models/convnext_v2/atto.py',
    './_base_/datasets/fer7_112_aug.py',
    './_base_/schedules/fer_adamw_cosine.py',
    './_base_/fer_runtime.py',
]

model = dict(
    # Less stochastic depth than on ImageNet (0.1): a few epochs on a few thousand faces underfit before they overfit.
    backbone=dict(drop_path_rate=0.05),
    head=dict(
        num_classes=7,
        loss=dict(_delete_=True, type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1,),
    ),
)
# ConvNeXt recipe: AdamW, no weight decay on norms, biases and GRN's gamma/beta; gradient clipping.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0),
    clip_grad=dict(max_norm=5.0),
)
