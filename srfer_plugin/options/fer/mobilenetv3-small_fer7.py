# MobileNetV3-Small FER classifier (efficient CNN, 1.5M parameters with the 7-class head) for 7 expressions on
# 112x112 faces: mmpretrain's ImageNet MobileNetV3-Small model, the RAF-DB augmentation, label smoothing 0.1 and
# AdamW + cosine. Train it (start from ImageNet weights on real data, docs/fer_classifiers.md):
#   srfer train-fer srfer::fer/mobilenetv3-small_fer7.py --data-root datasets/RAF-DB --device cpu \
#       --pretrained https://download.openmmlab.com/mmclassification/v0/mobilenet_v3/mobilenet-v3-small_8xb128_in1k_20221114-bd1bfcde.pth
_base_ = [
    'mmpretrain::_base_/models/mobilenet_v3/mobilenet_v3_small_imagenet.py',
    './_base_/datasets/fer7_112_aug.py',
    './_base_/schedules/fer_adamw_cosine.py',
    './_base_/fer_runtime.py',
]

model = dict(
    head=dict(
        num_classes=7,
        loss=dict(_delete_=True, type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1,),
    ),
)
# No weight decay on BatchNorm and biases (the small depthwise/SE layers suffer most from it).
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)
