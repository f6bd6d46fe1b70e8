"""The torch module of a NAS-Bench-Macro architecture, built from the same plan as its IR.

Weights are initialised by the caller from its own generator (:mod:`micronas.infra.torchinit`).
"""

from __future__ import annotations

import torch
from torch import nn

from micronas.spaces.nbmacro.network import LayerPlan, Plan


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
             act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups,
                                         bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MacroLayer(nn.Module):
    """An inverted residual (1x1 expand, depthwise kxk, 1x1 project; + input where the shape
    is kept) or the reducing identity (1x1 stride-2 conv + BN)."""

    def __init__(self, la: LayerPlan):
        super().__init__()
        if not la.expand:
            self.conv = _conv_bn(la.cin, la.cout, 1, la.stride, act=False)
        else:
            hidden = la.cin * la.expand
            self.conv = nn.Sequential(_conv_bn(la.cin, hidden, 1),
                                      _conv_bn(hidden, hidden, la.kernel, la.stride, hidden),
                                      _conv_bn(hidden, la.cout, 1, act=False))
        self.residual = la.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MacroNetwork(nn.Module):
    def __init__(self, p: Plan):
        super().__init__()
        self.stem = _conv_bn(p.input_shape[0], p.stem, 3)
        self.layers = nn.Sequential(*[MacroLayer(la) for la in p.layers])
        last = p.layers[-1].cout
        self.head = _conv_bn(last, p.head, 1)
        self.classifier = nn.Linear(p.head, p.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.layers(self.stem(x)))
        return self.classifier(x.mean(dim=(2, 3)))
