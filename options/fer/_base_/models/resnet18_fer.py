# ResNet-18 expression classifier (mmpretrain), shared by every FER config in options/fer/.
_base_ = ['mmpretrain::_base_/models/resnet18.py']

model = dict(
    backbone=dict(out_indices=(3,)),
    head=dict(num_classes=7, topk=(1,)),
)

# The classifier's own normalisation (RGB, 0-255 scale). MMPretrainFER applies it to BasicSR tensors.
data_preprocessor = dict(
    num_classes=7,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)
