"""Every network of the study by name, so params and rules can name models as strings.

A builder takes keyword arguments (num_classes, in_channels, image_size, width, ...) and returns
a plain nn.Module that methods (LoRITa, truncation, Tucker) can rewrite. Entries are
"module:function" strings imported on use, so naming a model never imports every model.
"""

from __future__ import annotations

import importlib

from torch import nn

from lowrank.errors import UserError

BUILDERS: dict[str, str] = {
    "fcn": "lowrank.models.fcn:fcn",
    "rankconv_cnn": "lowrank.models.rankconv_cnn:rankconv_cnn",
    "vgg13": "lowrank.models.vgg:vgg13",
    "vgg16": "lowrank.models.vgg:vgg16",
    "resnet18": "lowrank.models.resnet:resnet18",
    "resnet20": "lowrank.models.resnet:resnet20",
    "vit": "lowrank.models.vit:vit",
    "twoconv": "lowrank.models.twoconv:twoconv_cnn",
    "tutorial_cnn": "lowrank.models.tutorial_cnn:tutorial_cnn",
}


def build(name: str, **kwargs) -> nn.Module:
    """Build model `name`; unknown names are a one-line error that lists the known ones."""
    if name not in BUILDERS:
        raise UserError(f"unknown model '{name}' (known: {', '.join(sorted(BUILDERS))})")
    module, function = BUILDERS[name].split(":")
    return getattr(importlib.import_module(module), function)(**kwargs)
