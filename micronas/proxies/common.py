"""Shared pieces of the torch indicators: seeded generators, networks, inputs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from micronas.infra.torchinit import INITS, init_kaiming
from micronas.proxies.registry import ProxySettings
from micronas.spaces import Candidate


def generator(seed: int, *parts: object) -> torch.Generator:
    """A torch Generator seeded from ``seed`` and labels (the same for every architecture,
    so all architectures see the same inputs: common random numbers for ranking)."""
    blob = repr((int(seed),) + parts).encode()
    return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(blob).digest()[:8], "little")
                                         & (2**63 - 1))


def batch_stats_only(model: nn.Module) -> nn.Module:
    """Make every BatchNorm use the batch's statistics and keep no running buffers, so a
    forward pass mutates nothing (needed inside torch.func transforms)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.track_running_stats = False
            m.running_mean = m.running_var = m.num_batches_tracked = None
    return model


def ntk_variant(s: ProxySettings) -> str:
    """The module variant the NTK runs on (``ProxySettings.network``)."""
    return "small" if s.network == "tenas" else "full"


def ntk_network(cand: Candidate, s: ProxySettings, gen: torch.Generator) -> nn.Module:
    return batch_stats_only(init_kaiming(cand.module(ntk_variant(s)), gen))


def full_network(cand: Candidate, s: ProxySettings, gen: torch.Generator) -> nn.Module:
    return INITS[s.zc_init](cand.module("full"), gen)


def images(shape: tuple[int, int, int], batch: int, gen: torch.Generator,
           resolution: int | None = None, kind: str = "gaussian") -> torch.Tensor:
    """A seeded batch of N(0, 1) images shaped ``shape`` (C, H, W), or image-like ones
    (``kind="natural"``). ``resolution`` caps height and width (a 32x32 task gives 16x16
    images with ``resolution=16``, a 49x10 one 16x10)."""
    c, h, w = shape
    if resolution:
        h, w = min(h, resolution), min(w, resolution)
    x = torch.randn(batch, c, h, w, generator=gen)
    return natural_images(x) if kind == "natural" else x


#: Amplitude spectrum exponent of the image-like inputs. Natural photographs fall off as
#: about 1/f; small, blurred 32x32 images fall faster. Chosen among {0.6, 1, 1.5, 2} by jacov's
#: rank correlation on the first 200 of the 714 published CIFAR-10 rows (docs/indicators.md).
NATURAL_ALPHA = 2.0


def natural_images(white: torch.Tensor) -> torch.Tensor:
    """Image-like inputs from white noise: a 1/f^alpha amplitude spectrum (smooth, like
    natural images), channels sharing 64 % of their variance (colour images are mostly
    luminance), then standardised per channel over the batch as a dataset's normalisation
    does."""
    h, w = white.shape[-2:]
    f = torch.sqrt(torch.fft.fftfreq(h)[:, None] ** 2 + torch.fft.fftfreq(w)[None, :] ** 2)
    f[0, 0] = 1.0 / max(h, w)
    x = torch.fft.ifft2(torch.fft.fft2(white) / f ** NATURAL_ALPHA).real
    if x.shape[1] > 1:
        x = 0.8 * x[:, :1] + 0.6 * x
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-12)
    return (x - mean) / std


def labels(classes: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, classes, (batch,), generator=gen)


def relu_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.ReLU | nn.ReLU6)]


@contextmanager
def forward_hooks(modules: Iterable[nn.Module], hook: Callable[..., None]) -> Iterator[None]:
    """``hook(module, inputs, output)`` on every forward of ``modules`` inside the block;
    removed on the way out, whatever happens."""
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
