# fer7_112.py with the training augmentation of FER work on RAF-DB (mmpretrain pipeline steps). Validation and test
# keep the plain resize. Pair it with label smoothing in the model config:
#   model = dict(head=dict(loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
# Measured effect on the demo's synthetic faces: docs/fer_classifiers.md.
_base_ = ['./fer7_112.py']

img_size = 112
# The classifier's normalisation in BGR order (images are BGR until the data_preprocessor), for the erasing noise.
bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]

# fer7_112.py's resize + flip, kept for configs that train without the augmentation (the demo's classifiers).
plain_train_pipeline = {{_base_.train_pipeline}}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # Random crop of 70-100 % of the face area, resized to img_size: small shifts and zooms of an aligned face.
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.7, 1.0), backend='cv2'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    # Occlusion: a random rectangle filled with noise of the dataset statistics, one image in four.
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
