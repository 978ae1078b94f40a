# AdamW + linear warm-up + cosine decay (per iteration). From-scratch ResNet-18 on the synthetic faces learns far
# faster with AdamW than with SGD on a CPU budget of ~10 epochs. To change the epochs, use train_fer.py --max-epochs
# (it stretches param_scheduler end/T_max) or set them by hand as resnet18_fer7_tiny.py does.
max_epochs = 10

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - 1,
        eta_min=1e-5,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        convert_to_iter_based=True,
    ),
]

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=16)
