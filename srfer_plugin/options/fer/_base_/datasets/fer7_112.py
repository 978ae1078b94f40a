# 7-class FER dataset in the srfer_plugin layout (srfer_plugin/data/fer_layout.py), read by mmpretrain CustomDataset.
# ROOT/meta_info_{train,val,test}.txt list ``split/class/name.png label`` relative to ROOT.
# Make the synthetic one with: srfer generate-synthetic-faces --out datasets/synthetic_fer
dataset_type = 'CustomDataset'
data_root = 'datasets/synthetic_fer'
fer_classes = ('neutral', 'happy', 'sad', 'surprise', 'fear', 'disgust', 'angry')  # = FER7_CLASSES
img_size = 112
# The classifier's own normalisation (RGB, 0-255 scale), shared by every FER config; MMPretrainFER applies it to
# BasicSR tensors, mmpretrain applies it in train_step/val_step.
data_preprocessor = dict(
    num_classes=7,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='meta_info_train.txt',
        data_prefix='',
        classes=fer_classes,
        pipeline=train_pipeline,
    ),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='meta_info_val.txt',
        data_prefix='',
        classes=fer_classes,
        pipeline=test_pipeline,
    ),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1,))

test_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='meta_info_test.txt',
        data_prefix='',
        classes=fer_classes,
        pipeline=test_pipeline,
    ),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
test_evaluator = val_evaluator
