"""NB201 architecture (or supernet) -> network IR. No torch.

The network is NB201's: stem Conv3x3+BN; N cells at C; a residual
reduction block; N cells at 2C; reduction; N cells at 4C; BN-ReLU, global average pool,
linear classifier.

A cell edge holds a set of ops (one for an architecture, several for the pruning supernet,
whose edge output is the mean of its ops: the 1/k scale folds into quantisation, so the IR
holds the ops and the adds). With ``keep_dead=False`` (the deployed network) dead edges and
``none`` are dropped; with ``keep_dead=True`` every non-``none`` op is computed, as NB201
builds and trains the network (used for NB201's published FLOPs and parameter counts).
"""

from __future__ import annotations

from collections.abc import Sequence

from micronas.errors import ArchError
from micronas.ir import GraphBuilder, Network
from micronas.spaces.nb201.arch import EDGES, OPS, NB201Arch
from micronas.tasks import TASKS, Task

EdgeOps = tuple[frozenset[str], ...]


def as_edge_ops(cell: NB201Arch | Sequence[Sequence[str]]) -> EdgeOps:
    """Normalise an architecture or a per-edge list of op sets to ``EdgeOps``."""
    if isinstance(cell, NB201Arch):
        return tuple(frozenset([op]) for op in cell.ops)
    sets = tuple(frozenset(ops) for ops in cell)
    if len(sets) != len(EDGES):
        raise ArchError(f"an NB201 cell has {len(EDGES)} edges, got {len(sets)}")
    for s in sets:
        bad = s - set(OPS)
        if bad:
            raise ArchError(f"unknown NB201 op(s) {sorted(bad)}; choose from {', '.join(OPS)}")
    return sets


def live_edge_mask(edge_ops: EdgeOps) -> tuple[bool, ...]:
    """Which edges affect the cell output (see :meth:`NB201Arch.live_edges`)."""
    active = [bool(s - {"none"}) for s in edge_ops]
    nonzero = {0}
    for (s, t), a in zip(EDGES, active, strict=True):
        if a and s in nonzero:
            nonzero.add(t)
    reaches = {3}
    for (s, t), a in sorted(zip(EDGES, active, strict=True), key=lambda e: -e[0][1]):
        if a and t in reaches and s in nonzero:
            reaches.add(s)
    return tuple(a and s in nonzero and t in reaches
                 for (s, t), a in zip(EDGES, active, strict=True))


def _cell(g: GraphBuilder, x: str, edge_ops: EdgeOps, prefix: str, keep_dead: bool) -> str:
    """Append one cell. Each node accumulates its terms as they are computed (add after each
    term, as the torch module does), which keeps fewer partial results live."""
    live = live_edge_mask(edge_ops)
    node: dict[int, str] = {0: x}
    shape = g.shape(x)
    for t in (1, 2, 3):
        acc: str | None = None
        n_adds = 0
        for k, ((s, tt), ops) in enumerate(zip(EDGES, edge_ops, strict=True)):
            if tt != t or not (live[k] or keep_dead):
                continue
            for op in sorted(ops - {"none"}, key=OPS.index):
                tag = f"{prefix}.e{s}{t}.{op}"
                src = node[s]
                if op == "skip_connect":
                    term = src
                elif op == "avg_pool_3x3":
                    term = g.pool(src, 3, 1, 1, name=tag)
                else:
                    k_ = 3 if op == "nor_conv_3x3" else 1
                    term = g.conv(g.relu(src), shape[0], k_, 1, k_ // 2, name=tag)
                if acc is None:
                    acc = term
                else:
                    acc = g.add(acc, term, name=f"{prefix}.n{t}.add{n_adds}")
                    n_adds += 1
        if acc is not None:
            node[t] = acc
        elif t == 3 or keep_dead:
            node[t] = g.zeros(shape, name=f"{prefix}.n{t}.zeros")
    return node[3]


def _reduction(g: GraphBuilder, x: str, out_ch: int, prefix: str) -> str:
    a = g.conv(g.relu(x), out_ch, 3, 2, 1, name=f"{prefix}.conv_a")
    b = g.conv(g.relu(a), out_ch, 3, 1, 1, name=f"{prefix}.conv_b")
    p = g.pool(x, 2, 2, 0, name=f"{prefix}.shortcut.pool")
    s = g.conv(p, out_ch, 1, 1, 0, bn=False, name=f"{prefix}.shortcut.conv")
    return g.add(b, s, name=f"{prefix}.add")


def nb201_network(cell: NB201Arch | Sequence[Sequence[str]], task: Task | None = None,
                  C: int = 16, N: int = 5, *, keep_dead: bool = False) -> Network:
    """The NB201 network for ``cell`` on ``task`` (CIFAR-10 by default) as a deployed int8
    IR (any input shape:
    the two reductions halve height and width, rounding up).

    ``C`` is the stem width (stages use C, 2C, 4C) and ``N`` the cells per stage.
    """
    task = task or TASKS["cifar10"]
    edge_ops = as_edge_ops(cell)
    name = str(cell) if isinstance(cell, NB201Arch) else "nb201-supernet"
    g = GraphBuilder(name, task.input_shape)
    x = g.conv(g.input_name, C, 3, 1, 1, name="stem")
    widths = (C, 2 * C, 4 * C)
    for stage, width in enumerate(widths, start=1):
        if stage > 1:
            x = _reduction(g, x, width, f"s{stage - 1}.reduce")
        for i in range(N):
            x = _cell(g, x, edge_ops, f"s{stage}.c{i}", keep_dead)
    x = g.relu(g.affine(x, name="lastact.bn"))
    x = g.global_avgpool(x, name="gap")
    x = g.fc(x, task.classes, name="classifier")
    return g.build([x], meta={"space": "nb201", "task": task.name, "C": C, "N": N,
                              "keep_dead": keep_dead})


def nb201_counts(cell: NB201Arch, task: Task | None = None) -> tuple[float, float]:
    """(FLOPs in millions, params in millions) of the network as NB201 builds and trains it.

    Every edge is computed, dead or not (``keep_dead=True``), and counted the way NB201's
    published FLOPs are (checked against all 2,174 rows of NASLib's NB201 table, within
    0.0011 M FLOPs): convolution and linear layers one per multiply-accumulate (no bias
    term); BatchNorm two per element; each ReLU-Conv-BN its own ReLU, one per input element
    (NB201 does not share ReLUs between edges, the deployed IR does); ``AvgPool2d`` the kernel
    area per output element; the global average pool one per input element; adds nothing.
    Params include BatchNorm's gamma and beta (``source_params``).
    """
    net = nb201_network(cell, task, keep_dead=True)
    flops = 0
    for layer in net.layers:
        out = net.tensors[layer.output].numel
        if layer.op == "avgpool2d":
            flops += layer.kernel[0] * layer.kernel[1] * out
        elif layer.op in ("conv2d", "fully_connected"):
            flops += layer.macs
            has_bn = layer.source_params > layer.weight_params + (
                layer.bias_params if layer.source_bias else 0)
            if has_bn:
                flops += 2 * out
                if layer.inputs[0] != net.inputs[0]:  # every BN conv but the stem: ReLU first
                    flops += net.tensors[layer.inputs[0]].numel
        elif layer.op == "affine":  # final BN + ReLU
            flops += 3 * out
        elif layer.op == "global_avgpool":
            flops += net.tensors[layer.inputs[0]].numel
    params = sum(layer.source_params for layer in net.layers)
    return flops / 1e6, params / 1e6
