"""Zero-cost proxy baselines, computed on the space's full network (NB201: C=16, N=5) as NASLib's
published scores are: PyTorch's default initialisation (``zc_init="torch"``, drawn from our
seeded generator; the reference code runs with it), one batch of ``zc_batch`` (64) image-like
inputs (``zc_input="natural"``: white noise given the 1/f amplitude spectrum of natural
images, channels sharing most of their variance, standardised per channel; ``"gaussian"``:
plain N(0, 1)) and uniform random labels drawn from the seed (the same batch for every
architecture). BatchNorm in training mode. Per-layer sums run over Conv2d and Linear
weights (NASLib's convention). naswot and jacov share one initialisation and one
forward/backward pass, as do snip and grad_norm (the second of each pair then costs nothing:
its recorded seconds are ~0).

- ``naswot`` (Mellor et al., ICML 2021): binary codes c of every ReLU's input sign over the
  batch; K = c c^T + (1 - c)(1 - c)^T summed over ReLUs; score = log|det K| (float64
  slogdet). A singular K gives -1e10 with flag ``singular``.
- ``synflow`` (Tanaka et al., NeurIPS 2020; Abdelfattah et al., ICLR 2021): float64 network
  with |weights|, BatchNorm in eval mode (identity at initialisation), input all ones;
  R = sum of outputs; score = ln(sum |theta * dR/dtheta|) (the log keeps values readable;
  NASLib's published column is on the same scale). On networks that are linear on
  non-negative inputs (NB201's), one forward pass in float32 with input, biases and
  BatchNorm shifts scaled by 2^-40, which scales the sum exactly (within ~1e-6 relative of
  float64; sums outside float32's range are redone in float64). Overflow gives flag ``nonfinite`` and
  1e300; a zero sum (no live path) -1e10.
- ``snip`` (Lee et al., ICLR 2019): sum |theta * dL/dtheta| for the cross-entropy loss L.
- ``grad_norm``: sum over layers of ||dL/dW||_2.
- ``jacov`` (Mellor et al. 2020 v1, "jacob_cov"): J = d(sum of outputs)/d(input) per
  sample; score = -sum(log(v + k) + 1/(v + k)) over the eigenvalues v of J's correlation
  matrix, k = 1e-5. A network whose output ignores its input (no live path) gives -1e10
  with flag ``degenerate``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from micronas.proxies.common import forward_hooks, full_network, generator, images, labels, relu_modules
from micronas.proxies.registry import IndicatorValue, ProxySettings, register
from micronas.spaces import Candidate

WORST = -1e10
PAPER_ZC = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"


def _weighted_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _setup(cand: Candidate, s: ProxySettings, seed: int, name: str):
    model = full_network(cand, s, generator(seed, name, "init")).train()
    data_gen = generator(seed, "zc-batch")  # same batch for every zero-cost proxy
    x = images(cand.variant_input("full"), s.zc_batch, data_gen, kind=s.zc_input)
    y = labels(cand.task.classes, s.zc_batch, data_gen)
    return model, x, y


def code_kernel(codes: torch.Tensor) -> torch.Tensor:
    """naswot's K = c c^T + (1 - c)(1 - c)^T of binary codes (B x n), in float64.

    Computed as 2 c c^T - r_i - r_j + n (r: the rows' counts of ones) with float32 sums of
    0/1 products: integers below 2^24 are exact in float32, so this equals the float64
    product bit for bit, at a quarter of the work (one matmul, single precision)."""
    n = codes.shape[1]
    if 2 * n >= 2**24:  # beyond float32's exact integers
        c = codes.to(torch.float64)
        return c @ c.T + (1 - c) @ (1 - c).T
    c = codes.to(torch.float32)
    r = c.sum(dim=1)
    return (2 * (c @ c.T) - r[:, None] - r[None, :] + n).to(torch.float64)


@lru_cache(maxsize=8)
def _activation_bundle(cand: Candidate, s: ProxySettings, seed: int) -> dict[str, IndicatorValue]:
    """naswot and jacov from one forward/backward pass of one initialisation (they read the
    same network on the same batch: ReLU codes on the way forward, input gradients back)."""
    model, x, _ = _setup(cand, s, seed, "activations")
    k = torch.zeros(x.shape[0], x.shape[0], dtype=torch.float64)

    def hook(_m: nn.Module, inp: tuple[torch.Tensor, ...], _o: torch.Tensor) -> None:
        k.add_(code_kernel(inp[0].detach().reshape(inp[0].shape[0], -1) > 0))

    for p in model.parameters():  # only the input's gradient is read
        p.requires_grad_(False)
    x = x.clone().requires_grad_(True)
    with forward_hooks(relu_modules(model), hook):
        out = model(x)
    out.backward(torch.ones_like(out))
    sign, logdet = torch.linalg.slogdet(k)
    if sign <= 0 or not math.isfinite(float(logdet)):
        nw = IndicatorValue(WORST, ("singular",))
    else:
        nw = IndicatorValue(float(logdet))
    j = x.grad.reshape(x.shape[0], -1).to(torch.float64).numpy()
    if not np.isfinite(j).all() or (j.std(axis=1) == 0).any():
        jc = IndicatorValue(WORST, ("degenerate",))
    else:
        v = np.clip(np.linalg.eigvalsh(np.corrcoef(j)), 0, None)
        eps = 1e-5
        jc = IndicatorValue(float(-np.sum(np.log(v + eps) + 1.0 / (v + eps))))
    return {"naswot": nw, "jacov": jc}


@lru_cache(maxsize=8)
def _loss_bundle(cand: Candidate, s: ProxySettings, seed: int) -> dict[str, IndicatorValue]:
    """snip and grad_norm from one cross-entropy backward pass of one initialisation."""
    model, x, y = _setup(cand, s, seed, "loss")
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    with torch.no_grad():
        layers = [m for m in _weighted_layers(model) if m.weight.grad is not None]
        snip_v = sum(float((m.weight * m.weight.grad).abs().sum()) for m in layers)
        gn = sum(float(m.weight.grad.norm()) for m in layers)
    return {"snip": IndicatorValue(snip_v), "grad_norm": IndicatorValue(gn)}


@register("naswot", higher_is_better=True, deterministic=False, needs_data=False,
          paper="Mellor et al., Neural Architecture Search without Training, ICML 2021",
          description="log-determinant of the Hamming-similarity kernel of ReLU codes",
          shares="activations")
def naswot(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    return _activation_bundle(cand, s, seed)["naswot"]


def _synflow_backward(model: nn.Module, ones: torch.Tensor) -> float:
    """sum over Conv2d / Linear weights of |theta * dR/dtheta|, by a backward pass."""
    model.zero_grad()
    model(ones).sum().backward()
    total = 0.0
    with torch.no_grad():
        for m in _weighted_layers(model):
            if m.weight.grad is not None:
                total += float((m.weight * m.weight.grad).abs().sum())
    return total


_LINEAR = (nn.Conv2d, nn.Linear)


def _synflow_forward(model: nn.Module, ones: torch.Tensor,
                     mods: list[nn.Module] | None = None) -> float:
    """The same sum by one forward pass, for a network that is linear on non-negative
    inputs (``relu_linear``; here every weight is >= 0, so every activation is).

    sum_l <dR/dW_l, W_l> is the derivative of R when every Conv2d / Linear weight is scaled
    by (1 + t), at t = 0: the network then carries beside each activation x its derivative
    d, which a layer y = W x + b maps to W d + W x, an affine module a x + c (BatchNorm in
    eval mode) to a d, and every linear map (pools, sums, means, ReLU on values >= 0) as it
    maps x. Run as a batch [x, d] = [ones, 0]: the layers' outputs on the d half are
    corrected in forward hooks (in place); R's derivative is the sum of the d half's
    outputs. A BatchNorm whose shift c is zero (fresh running mean, zero beta: every one
    at initialisation) maps d as it maps x and needs no hook. All terms are non-negative, so
    the sum equals the sum of absolute values."""

    def weighted(m: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        b = getattr(m, "bias", None)
        if b is None:  # d + x = out[1] + out[0]
            out[1:2].add_(out[0:1])
        else:  # (out[1] - b) + (out[0] - b)
            shift = b.view(1, -1, *([1] * (out.dim() - 2)))
            out[1:2].copy_((out[1:2] - shift) + (out[0:1] - shift))

    def affine(m: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        out[1:2].sub_(_bn_shift(m))

    mods = list(model.modules()) if mods is None else mods
    layers = [m for m in mods if isinstance(m, _LINEAR)]
    bns = [m for m in mods if isinstance(m, nn.BatchNorm2d)]
    shifted = [] if _all_zero(_affine_shifts(bns)) else \
        [m for m in bns if bool(_bn_shift(m).ne(0).any())]
    x = torch.cat([ones, torch.zeros_like(ones)])
    with forward_hooks(layers, weighted), forward_hooks(shifted, affine), torch.no_grad():
        out = model(x)
    return float(out[1].sum())


def _all_zero(tensors: list[torch.Tensor]) -> bool:
    """Whether every element of ``tensors`` is zero (one check, not one per tensor)."""
    return not tensors or not bool(torch.cat([t.reshape(-1) for t in tensors]).any())


def _bn_shift(m: nn.BatchNorm2d) -> torch.Tensor:
    """c of an eval-mode BatchNorm y = a x + c, shaped (1, C, 1, 1)."""
    scale = 1.0 / torch.sqrt(m.running_var + m.eps)
    if m.weight is not None:
        scale = scale * m.weight
    c = -m.running_mean * scale + (m.bias if m.bias is not None else 0.0)
    return c.view(1, -1, 1, 1)


#: The float32 pass of synflow scales the input, every bias and every BatchNorm shift by
#: 2^-SCALE_LOG2: an affine network of ReLUs (positively homogeneous), pools and sums then
#: scales R and its derivative by exactly that power of two, which moves NB201's sums (up to
#: e^90, beyond float32's e^88.7) into float32's range. Results outside it go to float64.
SCALE_LOG2 = 40
SMALLEST = 2.0 ** -100  # scaled sums below this (float32 ends at 2^-126) are redone in float64


def _affine_shifts(mods: list[nn.Module]) -> list[torch.Tensor]:
    """The tensors that shift an affine network's output: biases, BatchNorm betas and
    running means (scaling them with the input scales every activation)."""
    out = []
    for m in mods:
        if isinstance(m, (*_LINEAR, nn.BatchNorm2d)):
            b = m._parameters.get("bias")
            if b is not None:
                out.append(b)
            mean = m._buffers.get("running_mean")
            if mean is not None:
                out.append(mean)
    return out


def _synflow_float32(model: nn.Module, mods: list[nn.Module], shape: tuple[int, int, int]
                     ) -> float | None:
    """:func:`_synflow_forward` in float32, scaled by 2^-SCALE_LOG2, convolution weights and
    activations channels-last (oneDNN's fast layout): 2-3x faster than float64 and within
    ~1e-6 relative of it (tests/test_proxies.py). None when the scaled sum leaves float32's
    range; the network is then as it was given (but for |weights|)."""
    shifts = _affine_shifts(mods)
    scale = 2.0 ** -SCALE_LOG2
    with torch.no_grad():
        kept = torch._foreach_mul(shifts, 1.0) if shifts else []  # copies, in one call
        for m in mods:
            if isinstance(m, nn.Conv2d):
                m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
        if shifts:
            torch._foreach_mul_(shifts, scale)
        ones = torch.full((1, *shape), scale).contiguous(memory_format=torch.channels_last)
        total = _synflow_forward(model, ones, mods)
        if math.isfinite(total) and total >= SMALLEST:
            return total * 2.0 ** SCALE_LOG2
        if shifts:
            torch._foreach_copy_(shifts, kept)
    return None


def _synflow(model: nn.Module, shape: tuple[int, int, int]) -> IndicatorValue:
    mods = list(model.modules())
    params = list(dict.fromkeys(p for m in mods for p in m._parameters.values() if p is not None))
    with torch.no_grad():
        for m in mods:  # eval mode: what Module.eval() sets, without its walk and checks
            m.__dict__["training"] = False
        torch._foreach_abs_(params)
    bn_tracks = all(m.track_running_stats for m in mods if isinstance(m, nn.BatchNorm2d))
    linear = getattr(model, "relu_linear", False) and bn_tracks
    total = _synflow_float32(model, mods, shape) if linear else None
    if total is None:
        with torch.no_grad():
            for p in params:
                p.data = p.data.double()
            for m in mods:
                for k, b in m._buffers.items():
                    if b is not None and b.is_floating_point():
                        m._buffers[k] = b.double()
        ones = torch.ones((1, *shape), dtype=torch.float64)
        total = _synflow_forward(model, ones, mods) if linear else _synflow_backward(model, ones)
    if not math.isfinite(total) or total <= 0:
        return IndicatorValue(-1e10 if total <= 0 else 1e300, ("nonfinite",))
    return IndicatorValue(math.log(total), extra={"raw": total})


@register("synflow", higher_is_better=True, deterministic=True, needs_data=False,
          paper="Tanaka et al., NeurIPS 2020; " + PAPER_ZC,
          description="synaptic flow: sum |theta * dR/dtheta| with |weights| and ones input")
def synflow(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    model = full_network(cand, s, generator(seed, "synflow", "init"))
    return _synflow(model, cand.variant_input("full"))


@register("snip", higher_is_better=True, deterministic=False, needs_data=True,
          paper="Lee et al., SNIP, ICLR 2019; " + PAPER_ZC,
          description="connection sensitivity: sum |theta * dL/dtheta|",
          shares="loss")
def snip(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    return _loss_bundle(cand, s, seed)["snip"]


@register("grad_norm", higher_is_better=True, deterministic=False, needs_data=True,
          paper=PAPER_ZC, description="sum over layers of the gradient's L2 norm",
          shares="loss")
def grad_norm(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    return _loss_bundle(cand, s, seed)["grad_norm"]


@register("jacov", higher_is_better=True, deterministic=False, needs_data=False,
          paper="Mellor et al., NAS without training (arXiv v1, 2020)",
          description="correlation of input Jacobians across a batch",
          shares="activations")
def jacov(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    return _activation_bundle(cand, s, seed)["jacov"]
