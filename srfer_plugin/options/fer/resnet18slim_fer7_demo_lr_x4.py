# The LR-trained baseline of x4 test faces: the demo's classifier (resnet18slim_fer7_demo.py) trained on
# low-resolution faces at the test scale only. Each training face is down-sampled by 4 with the bicubic
# degradation (srfer_plugin/data/degradations.py) and bicubic-upsampled back to 112 px
# (RandomLowResolution, srfer_plugin/data/fer_transforms.py); validation and test stay on HR faces.
# `srfer benchmark --preset baselines` pre-trains it on the synthetic faces like the demo's classifier:
#   srfer train-fer srfer::fer/resnet18slim_fer7_demo_lr_x4.py --data-root datasets/synthetic_fer_default \
#       --device cpu --seed 0 --max-epochs 12
_base_ = ['./resnet18slim_fer7_demo.py']

custom_imports = dict(imports=['srfer_plugin.data.fer_transforms'], allow_failed_imports=False)

img_size = 112
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='RandomLowResolution', factors=[4], degradation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
