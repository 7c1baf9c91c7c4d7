"""A compact residual network for small images, and its training-time augmentation."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class _Block(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.skip = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.skip(x))


class SmallResNet(nn.Module):
    """Stem, three residual stages (``width``, 2x, 4x channels; the last two halve the
    resolution), global average pooling, dropout and a linear head."""

    def __init__(self, channels: int, width: int, n_classes: int, dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.stages = nn.Sequential(
            _Block(width, width, 1), _Block(width, 2 * width, 2), _Block(2 * width, 4 * width, 2)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.head(self.dropout(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)))


def augment(x: torch.Tensor, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random shifts (a crop with padding of 1/8 of the side), horizontal flips when
    ``flip``, and brightness and contrast jitter, drawn per image."""
    n = x.shape[0]
    shift = 0.25 * (torch.rand(n, 2, generator=generator) * 2 - 1)  # +-1/8 of the side
    sign = torch.ones(n)
    if flip:
        sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = sign, 1.0
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
    contrast = (0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=generator)).to(x.device)
    brightness = (0.4 * torch.rand(n, 1, 1, 1, generator=generator) - 0.2).to(x.device)
    return x * contrast + brightness


class AdamW:
    """Adam with decoupled weight decay, computed as ``torch.optim.AdamW`` computes it.

    torch's own optimisers import ``torch._dynamo`` when first used: 2 to 4 s, once per
    process, taken from the first fold of the first CNN trial (of an 8 s budget, most of
    that fold's share). This one needs no more than tensor arithmetic.

    Parameters
    ----------
    params : iterable of Tensor
        The parameters to update (those that need gradients).
    lr : float
        Learning rate; set ``lr`` between steps to follow a schedule.
    weight_decay : float
        Decoupled weight decay: each step shrinks the parameters by ``lr * weight_decay``.
    betas : tuple of float
        Decay of the running means of the gradients and of their squares.
    eps : float
        Added to the denominator, for numerical stability.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.means = [torch.zeros_like(p) for p in self.params]
        self.squares = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        scale = self.lr / (1 - beta1**self.steps)
        root = math.sqrt(1 - beta2**self.steps)
        for p, mean, square in zip(self.params, self.means, self.squares, strict=True):
            if p.grad is None:
                continue
            p.mul_(1 - self.lr * self.weight_decay)
            mean.lerp_(p.grad, 1 - beta1)
            square.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            p.addcdiv_(mean, (square.sqrt() / root).add_(self.eps), value=-scale)


def state_arrays(net: nn.Module) -> dict[str, Any]:
    """The network's weights as numpy arrays (saved without pickles)."""
    return {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
