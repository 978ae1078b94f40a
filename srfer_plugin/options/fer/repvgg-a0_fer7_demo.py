# RepVGG-A0 FER classifier (plain 3x3-conv CNN, re-parameterisable, 7.9M parameters) for 7 expressions on 112x112
# faces, trained like the demo's classifier (resize + flip, cross-entropy, AdamW + cosine, 12 epochs): the second
# non-ResNet family of the CPU benchmark's classifier axis (docs/benchmark.md):
#   srfer train-fer srfer::fer/repvgg-a0_fer7_demo.py --data-root datasets/synthetic_fer_default
_base_ = [
    'mmpretrain::_base_/models/repvgg-A0_in1k.py',
    './_base_/datasets/fer7_112.py',
    './_base_/schedules/fer_adamw_cosine.py',
    './_base_/fer_runtime.py',
]

model = dict(head=dict(num_classes=7, topk=(1,)))
