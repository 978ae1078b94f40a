# ResNet-18 expression classifier (mmpretrain), shared by every FER config in options/fer/.
_base_ = ['mmpretrain::_base_/models/resnet18.py']

model = dict(
    backbone=dict(out_indices=(3,)),
    head=dict(num_classes=7, topk=(1,)),
)

# Its normalisation (data_preprocessor) is in _base_/datasets/fer7_112.py, shared by every FER config.
