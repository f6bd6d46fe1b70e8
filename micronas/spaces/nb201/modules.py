"""PyTorch modules built from an NB201 architecture or a pruning supernet.

:class:`CellNetwork` is NB201's network. Each cell edge holds a set of
ops whose outputs are averaged (one op for an architecture; several for the MicroNAS
supernet). ``stem=False`` drops the stem (input channels must equal ``C``), as TE-NAS's
linear-region network does. Every edge is computed, dead or not, as NB201 trains it.

Weights are initialised by the caller from its own generator (:mod:`micronas.infra.torchinit`).
Supernets take their convolution ops from an :class:`OpPool` (building the ~1,000 modules
of a full supernet costs more than its indicators, and the pruning search builds one per
candidate).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from micronas.infra.torchinit import init_kaiming
from micronas.spaces.nb201.arch import EDGES, OPS, NB201Arch
from micronas.spaces.nb201.network import EdgeOps, as_edge_ops
from micronas.tasks import TASKS, Task


class ReLUConvBN(nn.Module):
    """ReLU -> Conv(k, stride, same padding, no bias) -> BatchNorm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(op: str, c: int) -> nn.Module:
    """One NB201 op at width ``c`` (stride 1)."""
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 op {op!r}")


_HOOKS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
          "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks",
          "_backward_pre_hooks")


def _same_parts(parts: tuple) -> bool:
    """Whether ``parts`` (of :func:`_as_fresh`) are still the op's own modules and parameters."""
    (op, seq, relu, conv, bn), (w, g, b), _ = parts
    sub = seq._modules
    return (op._modules.get("op") is seq and sub.get("0") is relu and sub.get("1") is conv
            and sub.get("2") is bn and conv._parameters.get("weight") is w
            and bn._parameters.get("weight") is g and bn._parameters.get("bias") is b)


def _as_fresh(op: ReLUConvBN) -> ReLUConvBN:
    """``op`` put back in the state a newly built one has, but for its weights: float32 on
    the CPU in the default layout, training mode, no hooks, no gradients, every parameter requiring grad,
    BatchNorm tracking fresh running statistics (zero mean, unit variance). Written for
    ReLUConvBN's fixed structure: the generic ``Module.to`` / ``train`` cost as much as a
    new op."""
    parts = op.__dict__.get("_parts")  # its modules and parameters, found once
    if parts is None or not _same_parts(parts):
        seq = op.op
        relu, conv, bn = seq[0], seq[1], seq[2]
        parts = ((op, seq, relu, conv, bn), (conv.weight, bn.weight, bn.bias), bn)
        op.__dict__["_parts"] = parts  # a plain attribute, not a registered submodule
    mods, params, bn = parts
    for m in mods:
        d = m.__dict__  # plain attributes: Module.__setattr__'s checks cost more than the op
        d["training"] = True
        for name in _HOOKS:
            hooks = d.get(name)
            if hooks:
                hooks.clear()
    for p in params:
        if p.dtype != torch.float32 or p.device.type != "cpu" or not p.is_contiguous():
            p.data = torch.empty(p.shape)  # values are the caller's to set
        if p.grad is not None:
            p.grad = None
        if not p.requires_grad:
            p.requires_grad_(True)
    bn.__dict__["track_running_stats"] = True
    buffers = bn._buffers
    mean, var, count = (buffers.get(k) for k in ("running_mean", "running_var", "num_batches_tracked"))
    if mean is not None and mean.dtype == torch.float32 and var is not None \
            and var.dtype == torch.float32 and count is not None:
        mean.zero_()
        var.fill_(1.0)
        count.zero_()
    else:
        c = bn.num_features
        buffers["running_mean"] = torch.zeros(c)
        buffers["running_var"] = torch.ones(c)
        buffers["num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return op


class OpPool:
    """Convolution ops of dead networks, reused by the next build (ours, for speed).

    A network built with a pool takes its cells' ``ReLUConvBN`` ops from it and gives them
    back when it is garbage-collected, so no two live networks ever share an op. A reused
    op is reset by :func:`_as_fresh`; its weights are left as they were, which is why only
    builds whose caller initialises every weight use a pool (``build_network(seed=None)``
    through the supernet, whose indicators always do). The network, and the values
    computed on it, are the same as a fresh build's: the same modules in the same order
    (tests/test_torch_network.py)."""

    def __init__(self, limit: int = 4096):
        self._free: dict[tuple[int, int], list[nn.Module]] = {}  # by (kernel, width)
        self._lock = threading.Lock()
        self._limit = limit  # at most this many idle ops per key

    @staticmethod
    def _key(m: nn.Module) -> tuple[int, int]:
        conv = m.op[1]
        return conv.kernel_size[0], conv.in_channels

    def take(self, op: str, c: int) -> nn.Module:
        if op not in ("nor_conv_1x1", "nor_conv_3x3"):
            return make_op(op, c)  # the others cost less to build than to reset
        with self._lock:
            free = self._free.get((1 if op == "nor_conv_1x1" else 3, c))
            m = free.pop() if free else None
        return make_op(op, c) if m is None else _as_fresh(m)

    def _give(self, ops: list[nn.Module]) -> None:
        with self._lock:
            for m in ops:
                free = self._free.setdefault(self._key(m), [])
                if len(free) < self._limit:
                    free.append(m)

    def lend(self, net: nn.Module, cells: Sequence[Cell]) -> None:
        """Take the convolution ops of ``cells`` back when ``net`` is collected."""
        ops = [m for cell in cells for edge in cell.edges for m in edge
               if isinstance(m, ReLUConvBN)]
        weakref.finalize(net, self._give, ops).atexit = False


class Cell(nn.Module):
    """An NB201 cell whose edges hold op sets (edge output = mean of its ops).

    ``fused=True`` (supernets, ours for speed): the ops of the edges leaving the same node
    run together: one ReLU of the node, one convolution per kernel size over the
    concatenated weights of those edges' ops, one BatchNorm over the concatenated channels,
    one pooling. Each op's modules still hold its parameters (read at every forward, so
    ``torch.func.functional_call`` and gradients see them) and their forward hooks still
    fire, each with the output that module alone would give (the same values up to float
    summation order, ~1e-7 relative); sums and means keep the unfused order. Pre-hooks,
    hooks on an op's container and global hooks make the cell run unfused."""

    def __init__(self, edge_ops: EdgeOps, c: int, pool: OpPool | None = None,
                 fused: bool = False):
        super().__init__()
        self.edge_ops = edge_ops
        take = pool.take if pool is not None else make_op
        self.edges = nn.ModuleList(
            nn.ModuleList(take(op, c) for op in sorted(ops, key=OPS.index)) for ops in edge_ops
        )
        self.fused = fused
        self._plan = _fusion_plan(self.edges) if fused else ()
        self._watch = _watched(self._plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused and _fusable(self._watch):
            return self._forward_fused(x)
        nodes = [x]
        for t in (1, 2, 3):
            nodes.append(self._node(t, x, lambda k, s: [op(nodes[s]) for op in self.edges[k]]))
        return nodes[3]

    def _node(self, t: int, x: torch.Tensor, outputs) -> torch.Tensor:
        """Node ``t``: the sum over its in-edges k (from node s) of the mean of
        ``outputs(k, s)``, the edge's op outputs in op order (zeros without in-edges)."""
        acc = None
        for k, (s, tt) in enumerate(EDGES):
            if tt != t or len(self.edges[k]) == 0:
                continue
            ys = outputs(k, s)
            y = ys[0]
            for z in ys[1:]:
                y = y + z
            if len(ys) > 1:
                y = y / len(ys)
            acc = y if acc is None else acc + y
        return acc if acc is not None else torch.zeros_like(x)

    def _forward_fused(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        out: dict[tuple[int, int], torch.Tensor] = {}  # (edge, op position) -> op output
        for src, (convs, others) in enumerate(self._plan):
            xs = nodes[src]
            for group in convs:
                out.update(_run_conv_group(group, xs))
            pooled = None
            for k, j, op in others:
                if isinstance(op, nn.AvgPool2d):
                    if pooled is None:
                        pooled = F.avg_pool2d(xs, op.kernel_size, op.stride, op.padding,
                                              op.ceil_mode, op.count_include_pad,
                                              op.divisor_override)
                    # a hooked pool gets its own copy (its hook may change it in place)
                    out[k, j] = _fire(op, (xs,), pooled.clone() if op._forward_hooks else pooled)
                else:
                    out[k, j] = op(xs)
            nodes.append(self._node(src + 1, x, lambda k, _s: [
                out[k, j] for j in range(len(self.edges[k]))]))
        return nodes[3]


_Group = tuple[tuple[int, int, "ReLUConvBN"], ...]
_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks", "_global_forward_hooks_with_kwargs")


def _fusion_plan(edges: nn.ModuleList) -> tuple:
    """Per source node: its ReLUConvBN ops grouped by (kernel, stride), and its other ops."""
    plan = []
    for src in (0, 1, 2):
        groups: dict[tuple[int, int], list[tuple[int, int, nn.Module]]] = {}
        others = []
        for k, (s, _t) in enumerate(EDGES):
            if s != src:
                continue
            for j, op in enumerate(edges[k]):
                if isinstance(op, ReLUConvBN):
                    conv = op.op[1]
                    groups.setdefault((conv.kernel_size[0], conv.stride[0]), []).append((k, j, op))
                else:
                    others.append((k, j, op))
        plan.append((tuple(tuple(g) for g in groups.values()), tuple(others)))
    return tuple(plan)


def _watched(plan: tuple) -> tuple[tuple[nn.Module, ...], tuple[nn.Module, ...]]:
    """(the modules whose every hook kind but forward hooks stops fusion, the containers
    whose forward hooks do too) of a fusion plan: every module of its ops."""
    every: list[nn.Module] = []
    containers: list[nn.Module] = []
    for convs, others in plan:
        for group in convs:
            for _k, _j, op in group:
                containers += (op, op.op)
                every += (op, op.op, *op.op)
        every += (op for _k, _j, op in others)
    return tuple(every), tuple(containers)


def _fusable(watched: tuple[tuple[nn.Module, ...], tuple[nn.Module, ...]]) -> bool:
    """No hook the fused forward cannot reproduce: pre-hooks, kwargs hooks, backward hooks,
    forward hooks on an op's containers, global module hooks."""
    from torch.nn.modules import module as _m

    if any(getattr(_m, name, None) for name in _GLOBAL_HOOKS):
        return False
    every, containers = watched
    for m in containers:
        if m._forward_hooks:
            return False
    for m in every:
        if (m._forward_pre_hooks or m._forward_hooks_with_kwargs
                or m._forward_hooks_always_called or m._backward_hooks
                or m._backward_pre_hooks):
            return False
    return True


def _fire(m: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    """``m``'s forward hooks on ``output``, as ``m(*inputs)`` would run them."""
    for hook in tuple(m._forward_hooks.values()):
        r = hook(m, inputs, output)
        if r is not None:
            output = r
    return output


def _cat(ts: list[torch.Tensor | None]) -> torch.Tensor | None:
    if ts[0] is None:
        return None
    return ts[0] if len(ts) == 1 else torch.cat(ts)


def _slices(y: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """Channel slices of ``y`` as separate views (each may be changed in place by a hook)."""
    if len(sizes) == 1:
        return [y]
    out, start = [], 0
    for n in sizes:
        out.append(y.narrow(1, start, n))
        start += n
    return out


def _run_conv_group(group: _Group, xs: torch.Tensor) -> dict[tuple[int, int], torch.Tensor]:
    """The outputs of ReLUConvBN ops (same kernel and stride) on one input, fused."""
    r = torch.relu(xs)
    # a hooked ReLU gets its own copy (its hook may change it in place, as unfused)
    ins = [_fire(op.op[0], (xs,), r.clone() if op.op[0]._forward_hooks and len(group) > 1 else r)
           for _k, _j, op in group]
    convs = [op.op[1] for _k, _j, op in group]
    bns = [op.op[2] for _k, _j, op in group]
    c0, b0 = convs[0], bns[0]
    sizes = [c.out_channels for c in convs]
    if all(i is r for i in ins):
        y = F.conv2d(r, _cat([c.weight for c in convs]), None, c0.stride, c0.padding)
        parts = _slices(y, sizes)
    else:  # a ReLU hook replaced an output: convolve each op's own input
        parts = [F.conv2d(i, c.weight, None, c.stride, c.padding) for i, c in zip(ins, convs, strict=True)]
        y = None
    hooked = [_fire(c, (i,), p) for c, i, p in zip(convs, ins, parts, strict=True)]
    if y is None or any(h is not p for h, p in zip(hooked, parts, strict=True)):
        y = hooked[0] if len(hooked) == 1 else torch.cat(hooked, 1)
    if any(b.training != b0.training or b.track_running_stats != b0.track_running_stats
           or b.momentum != b0.momentum or b.eps != b0.eps for b in bns):
        z = _slices(y, sizes)
        outs = [b(zz) for b, zz in zip(bns, z, strict=True)]
    else:
        track = b0.track_running_stats and b0.running_mean is not None
        batch = b0.training or not track
        update = b0.training and track
        mean = _cat([b.running_mean for b in bns]) if track else None
        var = _cat([b.running_var for b in bns]) if track else None
        momentum = 0.0 if b0.momentum is None else b0.momentum
        if update:
            for b in bns:
                b.num_batches_tracked.add_(1)
            if b0.momentum is None:
                momentum = 1.0 / float(b0.num_batches_tracked)
        z = F.batch_norm(y, mean if (update or not batch) else None,
                         var if (update or not batch) else None,
                         _cat([b.weight for b in bns]), _cat([b.bias for b in bns]),
                         batch, momentum, b0.eps)
        if update and len(bns) > 1:
            with torch.no_grad():
                for b, m, v in zip(bns, torch.split(mean, sizes), torch.split(var, sizes), strict=True):
                    b.running_mean.copy_(m)
                    b.running_var.copy_(v)
        z = _slices(z, sizes)
        outs = [_fire(b, (h,), zz) for b, h, zz in zip(bns, hooked, z, strict=True)]
    return {(k, j): o for (k, j, _op), o in zip(group, outs, strict=True)}


class ResNetBlock(nn.Module):
    """NB201's reduction block: two ReLU-Conv3x3-BN (stride 2 first) + AvgPool-Conv1x1."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


class CellNetwork(nn.Module):
    """NB201's network for a cell (or supernet): C, N, classes and stem are parameters."""

    #: Every forward is a composition of its modules' maps, joined by sums and means: with
    #: non-negative weights and inputs it is linear (its ReLUs pass everything). Synflow
    #: then needs one forward pass instead of a backward pass (micronas.proxies.zero_cost).
    relu_linear = True

    def __init__(self, cell: NB201Arch | Sequence[Sequence[str]], C: int = 16, N: int = 5,
                 num_classes: int = 10, in_channels: int = 3, stem: bool = True,
                 pool: OpPool | None = None, fused: bool = False):
        super().__init__()
        edge_ops = as_edge_ops(cell)
        self.stem = (
            nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
            if stem else nn.Identity()
        )
        layers: list[nn.Module] = []
        c_prev = C
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(ResNetBlock(c_prev, width))
            layers.extend(Cell(edge_ops, width, pool, fused) for _ in range(N))
            c_prev = width
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        if pool is not None:
            pool.lend(self, [m for m in layers if isinstance(m, Cell)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def build_network(cell: NB201Arch | Sequence[Sequence[str]], task: Task | None = None,
                  C: int = 16, N: int = 5, *, seed: int | None = 0,
                  stem: bool = True, pool: OpPool | None = None,
                  fused: bool = False) -> CellNetwork:
    """NB201's network for ``cell`` on ``task`` (CIFAR-10 by default), initialised from ``seed``
    (:func:`micronas.infra.torchinit.init_kaiming`); ``seed=None`` leaves torch's construction-time
    weights for the caller to overwrite from its own generator."""
    task = task or TASKS["cifar10"]
    net = CellNetwork(cell, C, N, task.classes, task.channels if stem else C, stem, pool, fused)
    if seed is not None:
        init_kaiming(net, torch.Generator().manual_seed(int(seed)))
    return net
