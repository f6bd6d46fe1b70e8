"""Activation memory: tensor lifetimes and a greedy offline buffer planner.

The planner follows TensorFlow Lite Micro's ``GreedyMemoryPlanner``: every activation tensor
is a buffer with a lifetime ``[first layer that writes it, last layer that reads it]`` (the
network input is live from layer 0, outputs to the last layer); buffers are placed in order
of decreasing size (equal sizes: the tensor created last first, as TFLM fills its sort list
from the tail and bubble-sorts it stably), each at the lowest offset where it overlaps no
already-placed buffer whose lifetime intersects its own. Checked against TFLM's own arena
report (benchmarks/tflm_parity.py). Sizes are rounded up to the arena alignment. The arena is
the highest end offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from micronas.ir import Network


@dataclass(frozen=True)
class Buffer:
    tensor: str
    size_bytes: int
    first: int
    last: int
    offset: int = 0


def _align(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def lifetimes(net: Network, alignment: int = 16) -> list[Buffer]:
    """One buffer per activation tensor that some layer reads or writes."""
    first: dict[str, int] = {t: 0 for t in net.inputs}
    last: dict[str, int] = {t: 0 for t in net.inputs}
    for i, layer in enumerate(net.layers):
        first.setdefault(layer.output, i)
        last[layer.output] = max(last.get(layer.output, i), i)
        for t in layer.inputs:
            last[t] = max(last.get(t, 0), i)
    end = max(len(net.layers) - 1, 0)
    for t in net.outputs:
        last[t] = end
    return [Buffer(t, _align(net.tensors[t].nbytes, alignment), first[t], last[t])
            for t in first]


def plan(net: Network, alignment: int = 16) -> tuple[int, list[Buffer]]:
    """(arena bytes, placed buffers) from the greedy planner."""
    bufs = lifetimes(net, alignment)  # in tensor creation order
    order = sorted(range(len(bufs)), key=lambda i: (-bufs[i].size_bytes, -i))
    bufs = [bufs[i] for i in order]
    placed: list[Buffer] = []
    for b in bufs:
        clashes = sorted((p for p in placed if not (p.last < b.first or b.last < p.first)),
                         key=lambda p: p.offset)
        offset = 0
        for p in clashes:
            if offset + b.size_bytes <= p.offset:
                break
            offset = max(offset, p.offset + p.size_bytes)
        placed.append(Buffer(b.tensor, b.size_bytes, b.first, b.last, offset))
    arena = max((p.offset + p.size_bytes for p in placed), default=0)
    return arena, placed


def live_bytes(net: Network, alignment: int = 16) -> list[int]:
    """Bytes of activations live during each layer (a lower bound on any arena)."""
    bufs = lifetimes(net, alignment)
    return [sum(b.size_bytes for b in bufs if b.first <= i <= b.last)
            for i in range(len(net.layers))]
