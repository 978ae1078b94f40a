# The recipe classifier (resnet18_fer7.py) as the LR-trained baseline of x4 test faces for RAF-DB: after the random
# crop, each training face is down-sampled by 4 (the test scale only) with bicubic degradation and
# bicubic-upsampled back to 112 px (RandomLowResolution, srfer_plugin/data/fer_transforms.py); the rest of the
# RAF-DB augmentation (_base_/datasets/fer7_112_aug.py) follows. Validation and test stay on HR faces.
#   srfer train-fer srfer::fer/resnet18_fer7_lr_x4.py --data-root datasets/RAF-DB \
#       --pretrained https://download.openmmlab.com/mmclassification/v0/resnet/resnet18_8xb32_in1k_20210831-fbbb1da6.pth
# For blind-face degradations set degradation='blind_face' in `lowres`; resnet18_fer7_multires.py trains at x1-x8.
_base_ = ['./resnet18_fer7.py']

custom_imports = dict(imports=['srfer_plugin.data.fer_transforms'], allow_failed_imports=False)

img_size = 112
bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]
lowres = dict(type='RandomLowResolution', factors=[4], degradation='bicubic')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.7, 1.0), backend='cv2'),
    lowres,
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std,
    ),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
