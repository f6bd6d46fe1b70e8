"""Weight initialisation of torch modules from an explicit generator (no global RNG state).

Two schemes, chosen on purpose (docs/indicators.md):

- :func:`init_kaiming` (TE-NAS's intent, our default for the NTK and linear regions):
  convolution weights Kaiming-normal (fan-in, ReLU gain), BatchNorm gamma 1 and beta 0,
  linear weights normal with std 0.01 and bias 0. TE-NAS meant to apply this but its name
  check never matched, so its networks ran with PyTorch's default.
- :func:`init_torch_default`: PyTorch's own default (what NB201's and NASLib's code run
  with): conv and linear weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  (Kaiming-uniform with a = sqrt(5)), BatchNorm gamma 1 and beta 0.

Both work on any module built of Conv2d / Linear / BatchNorm2d layers and return it.
"""

from __future__ import annotations

import torch
from torch import nn


def _fan_in(w: torch.Tensor) -> int:
    return w.numel() // w.shape[0]


def _reset_batchnorms(bns: list[nn.Module]) -> None:
    """gamma 1, beta 0 for every BatchNorm, in two vectorised calls (values, not draws: the
    order against the generator's draws does not matter)."""
    gammas = [m.weight for m in bns if m.weight is not None]
    betas = [m.bias for m in bns if m.bias is not None]
    if gammas:
        torch._foreach_zero_(gammas)
        torch._foreach_add_(gammas, 1.0)
    if betas:
        torch._foreach_zero_(betas)


def init_kaiming(model: nn.Module, generator: torch.Generator) -> nn.Module:
    bns = []
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                w = m.weight
                w.normal_(0.0, (2.0 / _fan_in(w)) ** 0.5, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                bns.append(m)
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 0.01, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
        _reset_batchnorms(bns)
    return model


def init_torch_default(model: nn.Module, generator: torch.Generator) -> nn.Module:
    bns = []
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                w = m.weight
                bound = 1.0 / _fan_in(w) ** 0.5
                w.uniform_(-bound, bound, generator=generator)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound, generator=generator)
            elif isinstance(m, nn.BatchNorm2d):
                bns.append(m)
        _reset_batchnorms(bns)
    return model


INITS = {"kaiming": init_kaiming, "torch": init_torch_default}
