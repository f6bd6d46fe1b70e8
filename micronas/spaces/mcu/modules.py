"""The torch module of an ``mcu`` architecture, built from the same plan as its IR.

Weights are initialised by the caller from its own generator (:mod:`micronas.infra.torchinit`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from micronas.spaces.mcu.network import BlockPlan, Plan


def _conv_bn(cin: int, cout: int, k: int, stride: tuple[int, int] | int = 1, groups: int = 1,
             act: bool = True, one_d: bool = False) -> nn.Sequential:
    """Conv (k x k, or k x 1 along time for a 1-D input) + BatchNorm (+ ReLU6)."""
    kernel, pad = ((k, 1), (k // 2, 0)) if one_d else (k, k // 2)
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups,
                                         bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand -> ReLU6 -> depthwise k x k (k x 1 for a time series) (stride) -> ReLU6 ->
    1x1 project (+ input)."""

    def __init__(self, b: BlockPlan, one_d: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        if b.expand:
            layers.append(_conv_bn(b.cin, b.hidden, 1))
        layers += [_conv_bn(b.hidden, b.hidden, b.kernel, b.stride, groups=b.hidden,
                            one_d=one_d),
                   _conv_bn(b.hidden, b.cout, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.residual = b.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class McuNetwork(nn.Module):
    """Optional bilinear resize of the task's input to the network's resolution (PyTorch's
    ``align_corners=False`` = TFLite's half-pixel centres; no parameters), stem,
    inverted-residual blocks, optional 1x1 head conv, global pool, classifier."""

    def __init__(self, p: Plan):
        super().__init__()
        self.resize = tuple(p.input_shape[1:]) if p.resize_from else None
        self.stem = _conv_bn(p.input_shape[0], p.stem, 3, p.stem_stride, one_d=p.one_d)
        self.blocks = nn.Sequential(*[InvertedResidual(b, p.one_d) for b in p.blocks])
        self.head = _conv_bn(p.blocks[-1].cout, p.head, 1) if p.head else nn.Identity()
        self.classifier = nn.Linear(p.last_channels, p.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize is not None:
            x = F.interpolate(x, size=self.resize, mode="bilinear", align_corners=False)
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(x.mean(dim=(2, 3)))
