"""Recent training-free indicators: AZ-NAS's four and its rank aggregation, a Fisher-spectrum
indicator in the spirit of VKDNW, MeCo and ZiCo. Implemented from the papers' descriptions
(docs/indicators.md, "Recent indicators", says where we had to choose).

Every indicator runs on the space's ``full`` module (any space: NB201's C=16 network, the
``mcu`` space's network) with the zero-cost baselines' initialisation (``zc_init``) and
image-like inputs (``zc_input``), all drawn from generators seeded by ``seed`` and a label
(common random numbers: every architecture sees the same inputs). BatchNorm in training
mode (batch statistics), the network as it would start training.

- **AZ-NAS** (Lee & Ham, CVPR 2024), from one initialisation and one batch: expressivity and
  progressivity from a forward pass, trainability from a forward and a backward pass (the
  same values as one shared pass; the split spares the mix its backward). The network's
  *primary blocks* are the children of its body (:func:`body_blocks`: on NB201 the 15 cells
  and 2 reduction blocks, on ``mcu`` the inverted-residual blocks).

  - ``az_expressivity``: for each block output X (B, C, H, W), the B*H*W positions are
    samples of a C-dimensional feature; the eigenvalues of their covariance (float64),
    normalised to sum to 1, have entropy E_l (isotropic features: log C, one direction: 0).
    Score = sum_l E_l. An all-zero block output has E_l = 0 and flag ``zero_features``.
  - ``az_progressivity``: min over consecutive blocks of E_l - E_{l-1} (expressivity should
    grow with depth). One block only: 0 with flag ``single_block``.
  - ``az_trainability``: the backward signal g_l at each block's output (a seeded N(0, 1)
    vector injected at the logits: no labels) and g_{l-1} at its input give
    sigma_l = ||g_{l-1}|| / ||g_l||, an estimate of the block Jacobian's spectral norm. Score =
    -mean_l (sigma_l + 1/sigma_l - 2): 0 when every block keeps gradient norms, negative
    when they shrink or grow (symmetric in log sigma). A block whose input receives no
    gradient (an output that ignores its input) counts sigma = 1e-6 and sets flag
    ``no_gradient``; a block that receives none is skipped.
  - ``az_complexity``: the deployed network's MACs (the paper's FLOPs).
  - ``az_nas`` (population): sum over the four of log(rank / N), ranks ascending over the
    scored set (1 = worst, N = best, average ranks for ties): networks ranked high by all
    four win, one bad rank costs a lot.

- ``vkdnw`` (Tybl & Neumann, CVPR 2025, in its spirit): the Fisher information of the
  network's predictive distribution at initialisation, F = 1/B sum_n J_n^T (diag p_n -
  p_n p_n^T) J_n, J_n the Jacobian of sample n's logits (exact expectation over the model's
  own classes: no labels), restricted to one weight per Conv2d / Linear layer (picked from the
  seed) so F is small; score = entropy of the normalised deciles (10 % .. 90 %) of F's
  eigenvalues (float64): high when no direction of weight space is much easier or harder to
  estimate than the others. At most log 9. ``vkdnw_single`` adds the number of layers whose
  picked weight moves the output (VKDNW's size term). A zero spectrum gives 0 with flag
  ``degenerate``. CPU-sized like the NTK: the NTK's network (``network``: on NB201 TE-NAS's
  small C=3 network; the full one costs ~15 s per network on one core), Kaiming
  initialisation, ``ntk_batch`` image-like inputs at the NTK's resolution cap.
- ``meco`` (Jiang et al., NeurIPS 2023): one input; for every Conv2d output (C, H, W) the
  Pearson correlation of its C channels over the H*W positions; score = sum of the minimum
  eigenvalues. Constant channels (no variance) get zero correlation and flag
  ``constant_channel``; a layer with H*W = 1 is skipped.
- ``zico`` (Li et al., ICLR 2023): cross-entropy gradients of two batches (random labels);
  per weight, mean and standard deviation over the batches of |dL/dw|; score = sum over
  Conv2d / Linear layers of log(sum_w mean / std) over the weights with std > 0. No such
  weight anywhere: -1e10 with flag ``degenerate``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jvp, vmap

from micronas.proxies.common import (
    forward_hooks,
    full_network,
    generator,
    images,
    labels,
    ntk_network,
    ntk_variant,
)
from micronas.proxies.registry import IndicatorValue, ProxySettings, register, register_population
from micronas.spaces import Candidate

WORST = -1e10
SIGMA_FLOOR = 1e-6
#: ZiCo's batches (each of ``zc_batch // 2`` images).
ZICO_BATCHES = 2

PAPER_AZ = "Lee & Ham, AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search, CVPR 2024"
PAPER_VK = ("Tybl & Neumann, Training-free Neural Architecture Search through Variance of "
            "Knowledge of Deep Network Weights (VKDNW), CVPR 2025")
AZ_PARTS = ("az_expressivity", "az_progressivity", "az_trainability", "az_complexity")


# --- shared pieces -------------------------------------------------------------------------

def body_blocks(model: nn.Module) -> list[nn.Module]:
    """The network's primary blocks, found from its structure (no names): among the root's
    direct ``nn.Sequential`` children whose children are all composite (have submodules of
    their own), the longest one's children. A network without one gives its direct
    children that hold a convolution."""
    best: list[nn.Module] = []
    for child in model.children():
        if isinstance(child, nn.Sequential) and len(child) > len(best):
            kids = list(child.children())
            if kids and all(any(True for _ in k.children()) for k in kids):
                best = kids
    if best:
        return best
    return [c for c in model.children() if any(isinstance(m, nn.Conv2d) for m in c.modules())]


def spectral_entropy(ev: np.ndarray) -> float:
    """Entropy (nats) of non-negative values normalised to sum 1 (0 log 0 = 0); 0 for a zero
    vector."""
    ev = np.clip(np.asarray(ev, dtype=np.float64), 0.0, None)
    total = ev.sum()
    if not np.isfinite(total) or total <= 0:
        return 0.0
    p = ev[ev > 0] / total
    return float(-(p * np.log(p)).sum())


def feature_entropy(x: torch.Tensor) -> tuple[float, bool]:
    """AZ-NAS's expressivity of one feature map (B, C, H, W) or (B, C): entropy of the
    normalised eigenvalues of the channel covariance over all positions; (value, degenerate)."""
    f = x.detach().to(torch.float64)
    f = f.transpose(0, 1).reshape(f.shape[1], -1) if f.dim() > 2 else f.T  # C x samples
    f = f - f.mean(dim=1, keepdim=True)
    cov = f @ f.T / max(f.shape[1], 1)
    if not torch.isfinite(cov).all() or float(cov.trace()) <= 0:
        return 0.0, True
    return spectral_entropy(torch.linalg.eigvalsh(cov).numpy()), False


def _inputs(cand: Candidate, s: ProxySettings, batch: int, *labels_: object,
            resolution: int | None = None) -> torch.Tensor:
    return images(cand.variant_input("full"), batch, generator(*labels_), resolution,
                  kind=s.zc_input)


# --- AZ-NAS --------------------------------------------------------------------------------

def _az_pass(cand: Candidate, s: ProxySettings, seed: int, backward: bool
             ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One initialisation's forward pass (and, with ``backward``, one backward pass from a
    seeded N(0, 1) signal at the logits): the primary blocks' inputs and outputs, with
    their gradients when ``backward``. The forward values do not depend on ``backward``."""
    model = full_network(cand, s, generator(seed, "az", "init")).train()
    x = _inputs(cand, s, s.zc_batch, seed, "zc-batch")
    blocks = body_blocks(model)
    ins: list[torch.Tensor] = []
    outs: list[torch.Tensor] = []

    def hook(_m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        ins.append(inp[0])
        outs.append(out)
        if backward:
            out.retain_grad()
            if inp[0].requires_grad:
                inp[0].retain_grad()

    if not backward:
        with forward_hooks(blocks, hook), torch.no_grad():
            model(x)
        return ins, outs
    for p in model.parameters():  # only the blocks' input and output gradients are read
        p.requires_grad_(False)
    x = x.requires_grad_(True)
    with forward_hooks(blocks, hook):
        logits = model(x)
    v = torch.randn(logits.shape, generator=generator(seed, "az", "signal"))
    logits.backward(v)
    return ins, outs


@lru_cache(maxsize=8)
def _az_forward(cand: Candidate, s: ProxySettings, seed: int) -> dict[str, IndicatorValue]:
    """AZ-NAS's expressivity and progressivity: the forward pass alone."""
    _, outs = _az_pass(cand, s, seed, backward=False)
    ent, zero = [], False
    for o in outs:
        e, degenerate = feature_entropy(o)
        ent.append(e)
        zero |= degenerate
    eflags = ("zero_features",) if zero else ()
    expressivity = IndicatorValue(float(sum(ent)), eflags, {"per_block": ent})
    if len(ent) < 2:
        progressivity = IndicatorValue(0.0, ("single_block",) + eflags)
    else:
        progressivity = IndicatorValue(float(min(np.diff(ent))), eflags)
    return {"az_expressivity": expressivity, "az_progressivity": progressivity}


@lru_cache(maxsize=8)
def _az_trainability(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    """AZ-NAS's trainability from the forward and backward pass (the same initialisation
    and batch as expressivity's)."""
    ins, outs = _az_pass(cand, s, seed, backward=True)
    penalties, no_grad = [], False
    for i, o in zip(ins, outs, strict=True):
        g_out = o.grad
        g_in = i.grad
        if g_out is None or float(g_out.norm()) == 0.0:
            continue  # nothing reaches this block: it says nothing about propagation
        n_in = 0.0 if g_in is None else float(g_in.double().norm())
        sigma = n_in / float(g_out.double().norm())
        if sigma <= SIGMA_FLOOR:
            sigma, no_grad = SIGMA_FLOOR, True
        penalties.append(sigma + 1.0 / sigma - 2.0)
    if penalties:
        return IndicatorValue(-float(np.mean(penalties)), ("no_gradient",) if no_grad else ())
    return IndicatorValue(-1.0 / SIGMA_FLOOR, ("no_gradient",))


@register("az_expressivity", higher_is_better=True, deterministic=False, needs_data=False,
          paper=PAPER_AZ, description="sum over blocks of the entropy of the feature "
                                      "covariance spectrum (isotropic features)",
          shares="az_forward")
def az_expressivity(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    return _az_forward(cand, s, seed)["az_expressivity"]


@register("az_progressivity", higher_is_better=True, deterministic=False, needs_data=False,
          paper=PAPER_AZ, description="smallest increase of block expressivity from one "
                                      "block to the next",
          shares="az_forward")
def az_progressivity(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    return _az_forward(cand, s, seed)["az_progressivity"]


@register("az_trainability", higher_is_better=True, deterministic=False, needs_data=False,
          paper=PAPER_AZ, description="-mean(sigma + 1/sigma - 2) of the blocks' backward "
                                      "gain sigma (1 = stable gradient propagation)")
def az_trainability(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    return _az_trainability(cand, s, seed)


@register("az_complexity", higher_is_better=True, deterministic=True, needs_data=False,
          paper=PAPER_AZ, description="MACs of the deployed network (AZ-NAS's FLOPs term)")
def az_complexity(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    return IndicatorValue(float(cand.network().macs))


register_population(
    "az_nas", paper=PAPER_AZ, parts=AZ_PARTS, combine="log_rank",
    description="sum of log(rank / N) of az_expressivity, az_progressivity, az_trainability "
                "and az_complexity over the scored set (higher is better)")

#: The mix chosen on NB201 (docs/indicators.md: the best of 4,095 log-rank subsets on 100
#: networks, then measured on 300 fresh ones and on the whole space).
MIX_PARTS = ("az_expressivity", "az_progressivity", "az_complexity", "synflow", "jacov",
             "linear_regions")
register_population(
    "micronas_mix", paper="ours (chosen on NB201, docs/indicators.md); parts from AZ-NAS, "
                          "synflow, jacov and TE-NAS", parts=MIX_PARTS, combine="log_rank",
    description="sum of log(rank / N) of az_expressivity, az_progressivity, az_complexity, "
                "synflow, jacov and linear_regions over the scored set (higher is better)")


# --- VKDNW-style Fisher spectrum ------------------------------------------------------------

def pick_weights(model: nn.Module, gen: torch.Generator, per_layer: int = 1
                 ) -> list[tuple[str, int]]:
    """(parameter name, flat index) of ``per_layer`` weights of every Conv2d / Linear layer,
    drawn from ``gen`` in module order."""
    picks = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            n = m.weight.numel()
            for i in torch.randperm(n, generator=gen)[:per_layer].tolist():
                picks.append((f"{name}.weight" if name else "weight", int(i)))
    return picks


def logit_jacobian(model: nn.Module, x: torch.Tensor, picks: list[tuple[str, int]],
                   chunk: int = 8) -> torch.Tensor:
    """d logits / d (picked weights): (B, classes, len(picks)), for one batch forward
    (BatchNorm's batch coupling included). Forward mode: one Jacobian-vector product per
    picked weight, ``chunk`` of them vectorised at once (cheaper than B * classes backward
    passes when few weights are picked)."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    fixed = dict(model.named_buffers())
    basis = []
    for n, i in picks:
        e = torch.zeros(params[n].numel(), dtype=params[n].dtype)
        e[i] = 1.0
        basis.append((n, e.view_as(params[n])))

    def f(delta: torch.Tensor) -> torch.Tensor:
        w = dict(params)
        for j, (n, e) in enumerate(basis):
            w[n] = w[n] + delta[j] * e
        return functional_call(model, {**fixed, **w}, (x,))

    m = len(picks)
    delta0 = torch.zeros(m, dtype=x.dtype)
    eye = torch.eye(m, dtype=x.dtype)
    cols = [vmap(lambda t: jvp(f, (delta0,), (t,))[1])(eye[a:a + chunk])
            for a in range(0, m, chunk)]
    return torch.cat(cols).permute(1, 2, 0)


def fisher_from_jacobian(jac: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """F = 1/B sum_n J_n^T (diag p_n - p_n p_n^T) J_n in float64 (p_n = softmax of sample n's
    logits): the Fisher information of the model's own predictive distribution."""
    j = jac.to(torch.float64)
    p = torch.softmax(logits.detach().to(torch.float64), dim=1)
    h = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    return torch.einsum("bcm,bcd,bdk->mk", j, h, j) / j.shape[0]


def decile_entropy(ev: np.ndarray) -> float:
    """Entropy of the normalised 10 %, 20 %, ..., 90 % quantiles of eigenvalues ``ev``."""
    q = np.quantile(np.clip(ev, 0.0, None), np.arange(1, 10) / 10.0)
    return spectral_entropy(q)


@lru_cache(maxsize=8)
def _vk_bundle(cand: Candidate, s: ProxySettings, seed: int) -> dict[str, IndicatorValue]:
    gen = generator(seed, "vkdnw", "init")
    model = ntk_network(cand, s, gen).train()
    x = images(cand.variant_input(ntk_variant(s)), s.ntk_batch, generator(seed, "vkdnw-batch"),
               s.ntk_resolution, kind=s.zc_input)
    picks = pick_weights(model, generator(seed, "vkdnw", "pick"))
    with torch.no_grad():
        logits = model(x)
    jac = logit_jacobian(model, x, picks)
    fisher = fisher_from_jacobian(jac, logits)
    live = int((jac.abs().sum(dim=(0, 1)) > 0).sum())
    if not torch.isfinite(fisher).all():
        bad = IndicatorValue(0.0, ("nonfinite",))
        return {"vkdnw": bad, "vkdnw_single": IndicatorValue(float(live), ("nonfinite",))}
    ev = torch.linalg.eigvalsh(fisher).numpy()
    h = decile_entropy(ev)
    flags = ("degenerate",) if h == 0.0 else ()
    extra = {"layers": live, "eig_max": float(ev[-1]) if len(ev) else 0.0}
    return {"vkdnw": IndicatorValue(h, flags, extra),
            "vkdnw_single": IndicatorValue(live + h, flags, extra)}


@register("vkdnw", higher_is_better=True, deterministic=False, needs_data=False,
          paper=PAPER_VK, description="entropy of the deciles of the Fisher information "
                                      "spectrum at initialisation (one weight per layer)",
          shares="vkdnw")
def vkdnw(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    return _vk_bundle(cand, s, seed)["vkdnw"]


@register("vkdnw_single", higher_is_better=True, deterministic=False, needs_data=False,
          paper=PAPER_VK, description="vkdnw plus the number of layers that move the output",
          shares="vkdnw")
def vkdnw_single(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    return _vk_bundle(cand, s, seed)["vkdnw_single"]


# --- MeCo ----------------------------------------------------------------------------------

def min_corr_eig(f: torch.Tensor) -> tuple[float, bool]:
    """Minimum eigenvalue of the Pearson correlation of the rows of ``f`` (channels x
    positions), float64; constant rows correlate 0 with the others and 1 with themselves
    (returned flag: whether any row was constant)."""
    f = f.detach().to(torch.float64)
    f = f - f.mean(dim=1, keepdim=True)
    norm = f.norm(dim=1)
    const = norm <= 1e-12 * max(float(norm.max()), 1e-300)
    z = torch.where(const[:, None], torch.zeros_like(f), f / norm.clamp_min(1e-300)[:, None])
    corr = z @ z.T
    corr = corr + torch.diag(const.to(torch.float64))
    return float(torch.linalg.eigvalsh(corr)[0]), bool(const.any())


@register("meco", higher_is_better=True, deterministic=False, needs_data=False,
          paper="Jiang et al., MeCo: Zero-Shot NAS with One Data and Single Forward Pass via "
                "Minimum Eigenvalue of Correlation, NeurIPS 2023",
          description="sum over conv layers of the minimum eigenvalue of the channel "
                      "correlation matrix of one input's feature map")
def meco(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    model = full_network(cand, s, generator(seed, "meco", "init")).train()
    x = _inputs(cand, s, 1, seed, "meco-input")
    feats: list[torch.Tensor] = []
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    with forward_hooks(convs, lambda _m, _i, o: feats.append(o.detach())), torch.no_grad():
        model(x)
    total, const, used = 0.0, False, 0
    for o in feats:
        f = o[0].reshape(o.shape[1], -1)
        if f.shape[1] < 2:
            continue
        v, c = min_corr_eig(f)
        total += v
        const |= c
        used += 1
    flags = (("constant_channel",) if const else ()) + (() if used else ("no_layers",))
    return IndicatorValue(float(total), flags, {"layers": used})


# --- ZiCo ----------------------------------------------------------------------------------

def zico_from_grads(grads: list[list[torch.Tensor]]) -> tuple[float, int]:
    """ZiCo from per-batch gradients ``grads[batch][layer]``: sum over layers of
    log(sum_w mean_b |g| / std_b |g|) over weights with std > 0 (population std, float64);
    returns (score, layers used)."""
    score, used = 0.0, 0
    for layer in zip(*grads, strict=True):
        g = torch.stack([t.detach().to(torch.float64).abs().reshape(-1) for t in layer])
        mean, std = g.mean(dim=0), g.std(dim=0, unbiased=False)
        keep = std > 0
        if not bool(keep.any()):
            continue
        ratio = float((mean[keep] / std[keep]).sum())
        if ratio > 0 and math.isfinite(ratio):
            score += math.log(ratio)
            used += 1
    return score, used


@register("zico", higher_is_better=True, deterministic=False, needs_data=True,
          paper="Li et al., ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on "
                "Gradients, ICLR 2023",
          description="sum over layers of log(sum of mean/std of |gradient| across batches)")
def zico(cand: Candidate, s: ProxySettings, seed: int) -> IndicatorValue:
    model = full_network(cand, s, generator(seed, "zico", "init")).train()
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    batch = max(2, s.zc_batch // ZICO_BATCHES)
    grads = []
    for b in range(ZICO_BATCHES):
        gen = generator(seed, "zico-batch", b)
        x = images(cand.variant_input("full"), batch, gen, kind=s.zc_input)
        y = labels(cand.task.classes, batch, gen)
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        grads.append([m.weight.grad.clone() if m.weight.grad is not None
                      else torch.zeros_like(m.weight) for m in layers])
    score, used = zico_from_grads(grads)
    if used == 0:
        return IndicatorValue(WORST, ("degenerate",))
    return IndicatorValue(score, (), {"layers": used})
