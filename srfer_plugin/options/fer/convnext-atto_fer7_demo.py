# ConvNeXt-Atto trained like the demo's classifier (resnet18slim_fer7_demo.py): resize + flip, cross-entropy. On the
# demo's synthetic faces the RAF-DB augmentation of convnext-atto_fer7.py costs accuracy within the demo's 12 epochs
# (docs/fer_classifiers.md), so the CPU benchmark's classifier axis uses these:
#   srfer benchmark --preset cpu-small --backbones RCAN --scales 4 --fer \
#       srfer::fer/resnet18slim_fer7_demo.py srfer::fer/convnext-atto_fer7_demo.py
_base_ = ['./convnext-atto_fer7.py']

model = dict(head=dict(loss=dict(_delete_=True, type='CrossEntropyLoss', loss_weight=1.0)))
train_dataloader = dict(dataset=dict(pipeline={{_base_.plain_train_pipeline}}))
