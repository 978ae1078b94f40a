# ResNet-18 FER classifier for 7 expressions on 112x112 faces (the network_fer of the SR-FER recipes).
# The SR recipes use only ``model`` and ``data_preprocessor``; the dataset, schedule and runtime parts make it a
# complete mmpretrain training config for srfer train-fer. Training uses the RAF-DB augmentation
# (_base_/datasets/fer7_112_aug.py) and label smoothing 0.1:
#   srfer train-fer srfer::fer/resnet18_fer7.py --data-root datasets/synthetic_fer
# On RAF-DB, start from mmpretrain's ImageNet ResNet-18 (the 1000-class head is skipped):
#   srfer train-fer srfer::fer/resnet18_fer7.py --data-root datasets/RAF-DB \
#       --pretrained https://download.openmmlab.com/mmclassification/v0/resnet/resnet18_8xb32_in1k_20210831-fbbb1da6.pth
# Other classifiers, the augmentation and the pretrained start: docs/fer_classifiers.md.
_base_ = [
    './_base_/models/resnet18_fer.py',
    './_base_/datasets/fer7_112_aug.py',
    './_base_/schedules/fer_adamw_cosine.py',
    './_base_/fer_runtime.py',
]

model = dict(head=dict(loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
