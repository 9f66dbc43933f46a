"""VGG13 and VGG16 for 32x32 images (the CIFAR variants every pruning paper compares on).

Each 3x3 convolution (padding 1, with bias) is followed by BatchNorm2d and ReLU; five 2x2 max
pools take 32x32 down to 1x1, so the classifier is the common single Linear(512, classes) of
the CIFAR VGGs (kuangliu/pytorch-cifar, and the VGG-16 of the pruning literature that LoRITa's
Table 4 quotes): with it our dense VGG16 has 14.73 M parameters and 314.3 M MACs, which is what
Table 4's "after" values and drop percentages imply (tests/test_models.py). The three-layer
4096-wide ImageNet head would add 20 M parameters and contradict the table.
"""

from __future__ import annotations

from torch import nn

from lowrank.models.dims import CONFIGS, scaled


class VGG(nn.Module):
    def __init__(
        self,
        config: list[int | str],
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
        image_size: int = 32,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c, size = in_channels, image_size
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                size //= 2
                continue
            out = scaled(int(item), width)
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        if size < 1:
            raise ValueError(f"image_size {image_size} is too small for five 2x2 pools")
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(c * size * size, num_classes)

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def vgg13(num_classes: int = 10, in_channels: int = 3, width: float = 1.0, image_size: int = 32):
    return VGG(CONFIGS["vgg13"], num_classes, in_channels, width, image_size)


def vgg16(num_classes: int = 10, in_channels: int = 3, width: float = 1.0, image_size: int = 32):
    return VGG(CONFIGS["vgg16"], num_classes, in_channels, width, image_size)
