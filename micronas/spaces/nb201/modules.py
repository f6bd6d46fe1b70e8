"""PyTorch modules built from an NB201 architecture or a pruning supernet.

:class:`CellNetwork` is NB201's network (method.md section 2). Each cell edge holds a set of
ops whose outputs are averaged (one op for an architecture; several for the MicroNAS
supernet). ``stem=False`` drops the stem (input channels must equal ``C``), as TE-NAS's
linear-region network does. Every edge is computed, dead or not, as NB201 trains it.

Weights are initialised by the caller from its own generator (:mod:`micronas.torchinit`).
Supernets take their convolution ops from an :class:`OpPool` (building the ~1,000 modules
of a full supernet costs more than its indicators, and the pruning search builds one per
candidate).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

import torch
from torch import nn

from micronas.spaces.nb201.arch import EDGES, OPS, NB201Arch
from micronas.spaces.nb201.network import EdgeOps, as_edge_ops
from micronas.tasks import BUILTIN, Task
from micronas.torchinit import init_kaiming


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


def _as_fresh(op: ReLUConvBN) -> ReLUConvBN:
    """``op`` put back in the state a newly built one has, but for its weights: float32 on
    the CPU, training mode, no hooks, no gradients, every parameter requiring grad,
    BatchNorm tracking fresh running statistics (zero mean, unit variance). Written for
    ReLUConvBN's fixed structure: the generic ``Module.to`` / ``train`` cost as much as a
    new op."""
    seq = op.op
    relu, conv, bn = seq[0], seq[1], seq[2]
    for m in (op, seq, relu, conv, bn):
        m.training = True
        for name in _HOOKS:
            hooks = getattr(m, name, None)
            if hooks:
                hooks.clear()
    for p in (conv.weight, bn.weight, bn.bias):
        if p.dtype != torch.float32 or p.device.type != "cpu":
            p.data = torch.empty(p.shape)  # values are the caller's to set
        p.grad = None
        p.requires_grad_(True)
    c = bn.num_features
    bn.track_running_stats = True
    bn._buffers["running_mean"] = torch.zeros(c)
    bn._buffers["running_var"] = torch.ones(c)
    bn._buffers["num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
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
    """An NB201 cell whose edges hold op sets (edge output = mean of its ops)."""

    def __init__(self, edge_ops: EdgeOps, c: int, pool: OpPool | None = None):
        super().__init__()
        self.edge_ops = edge_ops
        take = pool.take if pool is not None else make_op
        self.edges = nn.ModuleList(
            nn.ModuleList(take(op, c) for op in sorted(ops, key=OPS.index)) for ops in edge_ops
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for t in (1, 2, 3):
            acc = None
            for k, (s, tt) in enumerate(EDGES):
                if tt != t or len(self.edges[k]) == 0:
                    continue
                ops = self.edges[k]
                y = ops[0](nodes[s])
                for op in ops[1:]:
                    y = y + op(nodes[s])
                if len(ops) > 1:
                    y = y / len(ops)
                acc = y if acc is None else acc + y
            nodes.append(acc if acc is not None else torch.zeros_like(x))
        return nodes[3]


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
                 pool: OpPool | None = None):
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
            layers.extend(Cell(edge_ops, width, pool) for _ in range(N))
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
                  stem: bool = True, pool: OpPool | None = None) -> CellNetwork:
    """NB201's network for ``cell`` on ``task`` (CIFAR-10 by default), initialised from ``seed``
    (:func:`micronas.torchinit.init_kaiming`); ``seed=None`` leaves torch's construction-time
    weights for the caller to overwrite from its own generator."""
    task = task or BUILTIN["cifar10"]
    net = CellNetwork(cell, C, N, task.classes, task.channels if stem else C, stem, pool)
    if seed is not None:
        init_kaiming(net, torch.Generator().manual_seed(int(seed)))
    return net
