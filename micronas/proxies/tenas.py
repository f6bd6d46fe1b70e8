"""TE-NAS indicators (Chen, Gong, Wang, ICLR 2021): NTK condition number, linear regions.

Semantics (docs/indicators.md):

``ntk_cond`` — network: the space's ``small`` variant by default (``ProxySettings.network``;
on NB201 TE-NAS's small network: C=3 stem, one cell per stage, widths 3/6/12, classifier);
BatchNorm in training mode (batch statistics). Input: a batch of ``ntk_batch`` (32) N(0, 1) images of side
``ntk_resolution`` (16). Jacobian row i: the
gradient of the sum of sample i's logits w.r.t. every parameter whose name contains
``weight`` (conv, BN gamma, classifier weight), as TE-NAS takes them — computed for all i at
once by vectorised backward passes of the identity's rows. Because the batch is
forwarded once, each row carries the batch-statistics coupling exactly as TE-NAS's loop of
per-sample backward passes does (test: tests/test_proxies.py). NTK = J J^T in float64;
kappa = lambda_max / lambda_min from float64 eigenvalues; averaged over ``repeats`` (3)
fresh initialisations and batches. Degenerate kernels: lambda_min <= 1e-12 lambda_max gives
kappa = 1e12 with flag ``singular``; a non-finite NTK gives 1e12 with flag ``nonfinite``.
Lower is better.

``linear_regions`` — network: the space's ``thin`` variant (on NB201 TE-NAS's thin network:
one channel, one cell per stage, no stem), BatchNorm in training mode.
Input: ``lr_batches`` (3) batches of ``lr_samples`` (1000)
N(0, 1) 3x3 single-channel patches (9x1 windows along time for a 1-D input). For each
input, the on/off pattern of every ReLU
unit (every ReLU module, every position); R = number of distinct patterns in the batch,
averaged over the batches. R cannot exceed the batch size: flag ``saturated`` when any batch
hits it. Higher is better.
"""

from __future__ import annotations

import numpy as np
import torch

from micronas.infra.torchinit import init_kaiming
from micronas.proxies.common import forward_hooks, generator, images, ntk_network, ntk_variant, relu_modules
from micronas.proxies.registry import IndicatorValue, ProxySettings, register
from micronas.spaces import Candidate

KAPPA_CAP = 1e12


def ntk_weights(model: torch.nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if "weight" in n and p.requires_grad]


#: The vectorised backward pass computes every Jacobian row at once when the batch's pixels
#: times the network's summed convolution widths stay under this (TE-NAS's small network on
#: 16x16 inputs: ~1e6), else ``ROW_CHUNK`` rows at a time, which bounds the memory.
ALL_ROWS_BELOW = 2**24
ROW_CHUNK = 8


def row_chunk(model: torch.nn.Module, x: torch.Tensor) -> int:
    """How many Jacobian rows one vectorised backward pass computes."""
    width = sum(m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    small = x[0, 0].numel() * x.shape[0] * width <= ALL_ROWS_BELOW
    return x.shape[0] if small else min(ROW_CHUNK, x.shape[0])


def batched_vjp(out: torch.Tensor, inputs: list[torch.Tensor], rows: torch.Tensor,
                retain_graph: bool) -> tuple[torch.Tensor | None, ...]:
    """``torch.autograd.grad(out, inputs, rows, is_grads_batched=True, allow_unused=True)``:
    the vector-Jacobian products of every row of ``rows``, vectorised. Called as that
    function calls its engine, without its argument check, whose first use imports sympy
    (~0.45 s with the GIL held, stalling every thread of a search); the public call where
    this torch's internals differ (tests/test_proxies.py checks both agree)."""
    try:
        from torch._vmap_internals import _vmap
        from torch.autograd.graph import _engine_run_backward
    except ImportError:
        _vmap = None
    if _vmap is not None and rows.shape[1:] == out.shape and rows.dtype == out.dtype:
        def vjp(g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
            return _engine_run_backward((out,), (g,), retain_graph, False, tuple(inputs), True,
                                        accumulate_grad=False)

        try:
            return _vmap(vjp, 0, 0, allow_none_pass_through=True)(rows)
        except TypeError:  # another signature: the public call below
            pass
    return torch.autograd.grad(out, inputs, rows, retain_graph=retain_graph, allow_unused=True,
                               is_grads_batched=True)


def jacobian_vectorised(model: torch.nn.Module, x: torch.Tensor,
                        chunk_size: int | None = None) -> torch.Tensor:
    """J[i] = d(sum of logits of sample i)/d(weights), all rows from one forward (B x P):
    backward passes of the rows of the identity, vectorised (``is_grads_batched``),
    ``chunk_size`` rows at a time (None: :func:`row_chunk`). (``torch.func.jacrev`` computes
    the same but imports torch._dynamo on first use, ~1.2 s.)"""
    names = set(ntk_weights(model))
    weights = [p for n, p in model.named_parameters() if n in names]
    b = x.shape[0]
    out = model(x).sum(dim=1)
    eye = torch.eye(b, dtype=out.dtype)
    step = chunk_size or row_chunk(model, x)
    parts = []
    for lo in range(0, b, step):
        rows = eye[lo:lo + step]
        g = batched_vjp(out, weights, rows, retain_graph=lo + step < b)
        parts.append(torch.cat([(gi if gi is not None else w.new_zeros(len(rows), *w.shape))
                                .reshape(len(rows), -1) for gi, w in zip(g, weights, strict=True)],
                               dim=1))
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def jacobian_loop(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The reference: TE-NAS's loop of per-sample backward passes over one batch forward."""
    names = set(ntk_weights(model))
    weights = [p for n, p in model.named_parameters() if n in names]
    out = model(x)
    rows = []
    for i in range(x.shape[0]):
        g = torch.autograd.grad(out[i].sum(), weights, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(gi if gi is not None else torch.zeros_like(w)).reshape(-1)
                               for gi, w in zip(g, weights, strict=True)]))
    return torch.stack(rows)


def condition_number(ntk: torch.Tensor) -> tuple[float, tuple[str, ...]]:
    """kappa of a symmetric PSD matrix from float64 eigenvalues, with a defined cap."""
    k = ntk.detach().to(torch.float64)
    if not torch.isfinite(k).all():
        return KAPPA_CAP, ("nonfinite",)
    ev = torch.linalg.eigvalsh(k)
    lmax, lmin = float(ev[-1]), float(ev[0])
    if not np.isfinite(lmax) or lmax <= 0:
        return KAPPA_CAP, ("singular",)
    if lmin <= lmax / KAPPA_CAP:
        return KAPPA_CAP, ("singular",)
    return lmax / lmin, ()


@register("ntk_cond", higher_is_better=False, deterministic=False, needs_data=False,
          paper="Chen, Gong, Wang. Neural Architecture Search on ImageNet in Four GPU Hours: "
                "A Theoretically Inspired Perspective (TE-NAS), ICLR 2021",
          description="condition number of the NTK at initialisation (lower = more trainable)")
def ntk_cond(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    values, flags = [], set()
    shape = cand.variant_input(ntk_variant(s))
    for r in range(s.repeats):
        gen = generator(seed, "ntk", r)
        model = ntk_network(cand, s, gen).train()
        x = images(shape, s.ntk_batch, gen, s.ntk_resolution)
        j = jacobian_vectorised(model, x)
        kappa, fl = condition_number(j.to(torch.float64) @ j.to(torch.float64).T)
        values.append(kappa)
        flags.update(fl)
    return IndicatorValue(float(np.mean(values)), tuple(sorted(flags)),
                          {"per_repeat": values})


def count_regions(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Number of distinct ReLU on/off patterns over the inputs ``x``."""
    acts: list[torch.Tensor] = []
    with forward_hooks(relu_modules(model),
                       lambda _m, _i, o: acts.append((o > 0).reshape(o.shape[0], -1))), torch.no_grad():
        model(x)
    codes = torch.cat(acts, dim=1).numpy()
    packed = np.packbits(codes, axis=1)  # one row of bytes per input
    flat, n = packed.tobytes(), packed.shape[1]
    if n == 0:  # no ReLU unit: every input has the same (empty) pattern
        return min(1, packed.shape[0])
    return len({flat[i:i + n] for i in range(0, len(flat), n)})  # 10-50x np.unique(axis=0)


def lr_patches(s: ProxySettings, gen: torch.Generator, channels: int = 1,
               one_d: bool = False) -> torch.Tensor:
    """``lr_samples`` 3x3 patches of ``channels`` channels (one on NB201's thin network);
    for a network of a 1-D input (a time series, width 1), 9x1 windows of the same 9
    dimensions along time (``smooth``: a random parabola a + b t + c t^2 plus the noise).

    ``gaussian`` (default): i.i.d. N(0, 1) pixels (9 dimensions: ReLU networks cut so many
    regions there that R saturates at the batch size). ``smooth``: natural-image-like patches,
    a random plane a + b x + c y plus N(0, 0.1^2) pixel noise (three dominant dimensions, as
    real patches have), which keeps R below saturation for large networks and supernets.
    """
    n = s.lr_samples
    if one_d:
        if s.lr_input == "smooth":
            t = torch.linspace(-1, 1, 9).view(1, 1, 9, 1)
            c = torch.randn(n, 3, 1, 1, generator=gen)
            curve = c[:, 0:1] + c[:, 1:2] * t + c[:, 2:3] * t ** 2
            return curve + 0.1 * torch.randn(n, channels, 9, 1, generator=gen)
        return torch.randn(n, channels, 9, 1, generator=gen)
    if s.lr_input == "smooth":
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, 3), torch.linspace(-1, 1, 3), indexing="ij")
        c = torch.randn(n, 3, 1, 1, generator=gen)
        plane = c[:, 0:1] + c[:, 1:2] * xx + c[:, 2:3] * yy
        return plane + 0.1 * torch.randn(n, channels, 3, 3, generator=gen)
    return torch.randn(n, channels, 3, 3, generator=gen)


@register("linear_regions", higher_is_better=True, deterministic=False, needs_data=False,
          paper="Chen, Gong, Wang. TE-NAS, ICLR 2021 (after Xiong et al. 2020)",
          description="distinct ReLU activation patterns over random 3x3 patches "
                      "(higher = more expressive)")
def linear_regions(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    values = []
    saturated = False
    channels, h, w = cand.variant_input("thin")
    one_d = w == 1 and h > 1
    for r in range(s.repeats):
        gen = generator(seed, "lr", r)
        model = init_kaiming(cand.module("thin"), gen)
        model.train()
        for _ in range(s.lr_batches):
            x = lr_patches(s, gen, channels, one_d)
            n = count_regions(model, x)
            saturated |= n >= s.lr_samples
            values.append(n)
    return IndicatorValue(float(np.mean(values)), ("saturated",) if saturated else (),
                          {"per_batch": values})
