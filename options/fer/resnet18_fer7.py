# ResNet-18 FER classifier for 7 expressions on 112x112 faces (the network_fer of the SR-FER recipes).
_base_ = ['./_base_/models/resnet18_fer.py']
