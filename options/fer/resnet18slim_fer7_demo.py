# A slim ResNet-18 (16 base channels, 1/16 of the FLOPs) for the CPU demo: same depth and stages as
# resnet18_fer7.py, so every SR-FER option (stages [0, 1, 2, 3]) works unchanged.
_base_ = ['./resnet18_fer7.py']

model = dict(
    backbone=dict(base_channels=16, stem_channels=16),
    head=dict(in_channels=128),
)
