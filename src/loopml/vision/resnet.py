"""ResNet feature extractors that load timm's (and torchvision's) ResNet weight files.

The layout (``conv1``, ``bn1``, ``layer1`` … ``layer4`` of basic or bottleneck blocks with
``downsample.0/1``, ``fc``) is read off the weights themselves, so a user names only the
file: ``resnet18.a1_in1k``'s ``model.safetensors`` from the Hugging Face hub, or a ``.pth``
state dict. Only the network is built here; nothing in a file is executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from loopml.core.errors import InvalidInput

_STAGE = re.compile(r"^layer([1-4])\.(\d+)\.")
_WIDTHS = (64, 128, 256, 512)


@dataclass(frozen=True)
class Layout:
    """A ResNet's shape: blocks per stage and whether they are bottlenecks."""

    blocks: tuple[int, int, int, int]
    bottleneck: bool

    @property
    def name(self) -> str:
        depth = sum(self.blocks) * (3 if self.bottleneck else 2) + 2
        return f"resnet{depth}"

    @property
    def features(self) -> int:
        return _WIDTHS[-1] * (4 if self.bottleneck else 1)


def layout_of(weights: dict[str, Any], source: str) -> Layout:
    """The ResNet layout of a state dict, or an error naming what the file holds."""
    stages = [0, 0, 0, 0]
    for key in weights:
        match = _STAGE.match(key)
        if match:
            stage, block = int(match[1]) - 1, int(match[2])
            stages[stage] = max(stages[stage], block + 1)
    stem = weights.get("conv1.weight")
    if stem is None or min(stages) == 0 or tuple(stem.shape) != (64, 3, 7, 7):
        sample = ", ".join(list(weights)[:4])
        raise InvalidInput(
            f"{source} does not hold ResNet weights as timm and torchvision name them "
            f"(conv1, bn1, layer1 … layer4); its first keys are: {sample or 'none'}",
            field="backbone",
        )
    return Layout((stages[0], stages[1], stages[2], stages[3]), "layer1.0.conv3.weight" in weights)


class _Basic(nn.Module):
    expansion = 1

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _downsample(inputs, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.downsample = _downsample(inputs, width * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def _downsample(inputs: int, outputs: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and inputs == outputs:
        return None
    return nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))


class ResNetFeatures(nn.Module):
    """A ResNet without its classifier: images in, pooled features out."""

    def __init__(self, layout: Layout) -> None:
        super().__init__()
        block = _Bottleneck if layout.bottleneck else _Basic
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        inputs = 64
        for stage, (width, count) in enumerate(zip(_WIDTHS, layout.blocks, strict=True)):
            blocks = []
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(block(inputs, width, stride))
                inputs = width * block.expansion
            self.add_module(f"layer{stage + 1}", nn.Sequential(*blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def build(weights: dict[str, torch.Tensor], source: str) -> tuple[ResNetFeatures, Layout]:
    """The network of ``weights`` with them loaded, in eval mode; the classifier (``fc``)
    is dropped. Missing or misshapen tensors are an error naming them."""
    layout = layout_of(weights, source)
    net = ResNetFeatures(layout)
    wanted = net.state_dict()
    body = {k: v for k, v in weights.items() if not k.startswith("fc.")}
    # Batch-norm step counters only matter in training; torchvision's older files lack them.
    for key in wanted:
        if key.endswith("num_batches_tracked") and key not in body:
            body[key] = wanted[key]
    missing = sorted(set(wanted) - set(body))
    extra = sorted(set(body) - set(wanted))
    shapes = [k for k in wanted if k in body and tuple(body[k].shape) != tuple(wanted[k].shape)]
    if missing or extra or shapes:
        problems = [
            f"{label}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", extra), ("misshapen", shapes))
            if keys
        ]
        raise InvalidInput(
            f"{source} is not a plain {layout.name} (as timm's resnet names it): "
            + "; ".join(problems),
            field="backbone",
        )
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in body.items()})
    return net.eval(), layout
