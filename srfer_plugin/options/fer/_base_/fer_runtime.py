# Runtime of the FER configs: mmpretrain's default runtime, CPU-friendly (no NCCL, single process), a checkpoint per
# epoch keeping the last two and the best on val accuracy.
_base_ = ['mmpretrain::_base_/default_runtime.py']

default_scope = 'mmpretrain'
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best='accuracy/top1', rule='greater'),
)
launcher = 'none'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'),
)
randomness = dict(seed=0, deterministic=False)
