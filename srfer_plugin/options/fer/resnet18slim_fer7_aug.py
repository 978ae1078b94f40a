# The demo's slim ResNet-18 (resnet18slim_fer7_demo.py) trained like the recipe classifier resnet18_fer7.py: RAF-DB
# augmentation (_base_/datasets/fer7_112_aug.py) and label smoothing 0.1. Used to measure what the augmentation does
# on the demo's synthetic faces (docs/fer_classifiers.md):
#   srfer train-fer srfer::fer/resnet18slim_fer7_aug.py --data-root datasets/synthetic_fer_default \
#       --device cpu --seed 0 --max-epochs 12 --work-dir experiments/fer_aug_study/aug
_base_ = ['./resnet18_fer7.py']

model = dict(
    backbone=dict(base_channels=16, stem_channels=16),
    head=dict(in_channels=128),
)
