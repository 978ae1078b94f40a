# ResNet-18 FER classifier for 7 expressions on 112x112 faces (the network_fer of the SR-FER recipes).
# The SR recipes use only ``model`` and ``data_preprocessor``; the dataset, schedule and runtime parts make it a
# complete mmpretrain training config for scripts/train_fer.py:
#   python scripts/train_fer.py options/fer/resnet18_fer7.py --data-root datasets/synthetic_fer
_base_ = [
    './_base_/models/resnet18_fer.py',
    './_base_/datasets/fer7_112.py',
    './_base_/schedules/fer_adamw_cosine.py',
    'mmpretrain::_base_/default_runtime.py',
]

default_scope = 'mmpretrain'
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best='accuracy/top1', rule='greater'),
)
# CPU-friendly runtime: no NCCL, single process.
launcher = 'none'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'),
)
randomness = dict(seed=0, deterministic=False)
