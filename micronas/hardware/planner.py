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

from dataclasses import dataclass, replace

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


# --- the standalone C's planner: an output may overlap the input it consumes last ---------

def _hwc(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) == 3:
        c, h, w = shape
        return h, w, c
    n = 1
    for v in shape:
        n *= v
    return 1, 1, n


def overlap_lead(net: Network, i: int) -> int | None:
    """How far (bytes) the input of layer ``i`` must start above its output for the
    standalone C kernel to overwrite the input in place (the output may then overlap it), or
    None where the kernel cannot. The kernels work through the output pixels in raster order:

    - depthwise (``mn_dwconv``): each pixel's channels are written after its window's first
      channels were read, so pixel p's output must lie below the lowest input byte that
      pixels p, p+1, ... read (their clipped window's first tap);
    - convolution (``mn_conv``): two pixels' windows are copied to the im2col scratch, then
      both outputs written: the pair's output must lie below what the next pairs read;
    - add (``mn_add``): element i written after both inputs' element i were read: 0.
    """
    layer = net.layers[i]
    if layer.op == "add":
        return 0
    if layer.op not in ("conv2d", "depthwise_conv2d"):
        return None
    ih, iw, ic = _hwc(net.tensors[layer.inputs[0]].shape)
    oh, ow, oc = _hwc(net.tensors[layer.output].shape)
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    step = 2 if layer.op == "conv2d" else 1
    n = oh * ow
    lead = 0
    for p in range(step, n + step, step):  # output bytes written before pixel p is read
        if p >= n:
            break
        oy, ox = divmod(p, ow)
        iy = max(oy * sh - ph, 0)
        ix = max(ox * sw - pw, 0)
        lead = max(lead, p * oc - (iy * iw + ix) * ic)
    if step == 1:  # a depthwise pixel is written while its own window is still read
        for p in range(n):
            oy, ox = divmod(p, ow)
            iy = max(oy * sh - ph, 0)
            ix = max(ox * sw - pw, 0)
            lead = max(lead, (p + 1) * oc - (iy * iw + ix) * ic)
    return lead


def fuse_pads(net: Network) -> Network:
    """``net`` as the standalone C runs it: a PAD whose only reader is an unpadded
    convolution or depthwise convolution is folded into it (the kernel reads the PAD's input
    with the PAD's top / left padding and clips its windows at the input's edges, which reads
    the zero point where the PAD would have written it: the same result). The folded PAD's
    output tensor is not written at all."""
    readers: dict[str, list[int]] = {}
    for i, layer in enumerate(net.layers):
        for t in layer.inputs:
            readers.setdefault(t, []).append(i)
    fold: dict[int, tuple[str, tuple[int, int]]] = {}  # consumer -> (new input, padding)
    drop: set[int] = set()
    for i, layer in enumerate(net.layers):
        r = readers.get(layer.output, [])
        if layer.op != "pad" or len(r) != 1 or layer.output in net.outputs:
            continue
        c = net.layers[r[0]]
        if (c.op in ("conv2d", "depthwise_conv2d") and tuple(c.padding) == (0, 0)
                and len(c.inputs) == 1 and all(0 <= v < k for v, k in zip(layer.padding, c.kernel))):
            fold[r[0]] = (layer.inputs[0], tuple(layer.padding))
            drop.add(i)
    if not drop:
        return net
    layers = []
    for i, layer in enumerate(net.layers):
        if i in drop:
            continue
        if i in fold:
            src, pad = fold[i]
            layer = replace(layer, inputs=(src,), padding=pad)
        layers.append(layer)
    kept = {t for lay in layers for t in (*lay.inputs, lay.output)} | set(net.inputs)
    return replace(net, layers=layers, tensors={k: v for k, v in net.tensors.items() if k in kept})


def plan_standalone(net: Network, alignment: int = 16) -> tuple[int, list[Buffer]]:
    """(arena bytes, placed buffers) for the standalone C: TFLM's greedy order and placement
    (:func:`plan`), except that a layer's output may overlap the input it is the last
    reader of (not the network's input), the input starting at least
    :func:`overlap_lead` bytes above the output: depthwise and convolution outputs are
    written in place of their consumed inputs. PADs folded into their reader
    (:func:`fuse_pads`) have no buffer."""
    net = fuse_pads(net)
    bufs = lifetimes(net, alignment)
    index = {b.tensor: b for b in bufs}
    # (output, input) -> lead: the pairs allowed to overlap
    lead: dict[tuple[str, str], int] = {}
    for i, layer in enumerate(net.layers):
        d = overlap_lead(net, i)
        if d is None:
            continue
        for t in dict.fromkeys(layer.inputs):
            if t in net.inputs or t not in index or index[t].last != i:
                continue
            lead[(layer.output, t)] = _align(d, alignment)
            break  # one input per layer
    order = sorted(range(len(bufs)), key=lambda i: (-bufs[i].size_bytes, -i))
    placed: list[Buffer] = []
    for b in (bufs[i] for i in order):
        forbidden = []  # open intervals of offsets b may not start in
        for p in placed:
            if p.last < b.first or b.last < p.first:
                continue
            if (b.tensor, p.tensor) in lead:      # b is the output written over input p
                d = min(lead[(b.tensor, p.tensor)], b.size_bytes)
                forbidden.append((p.offset - d, p.offset + p.size_bytes))
            elif (p.tensor, b.tensor) in lead:    # b is the input output p is written over
                d = min(lead[(p.tensor, b.tensor)], p.size_bytes)
                forbidden.append((p.offset - b.size_bytes, p.offset + d))
            else:
                forbidden.append((p.offset - b.size_bytes, p.offset + p.size_bytes))
        offset = 0
        for lo, hi in sorted(forbidden):
            if offset <= lo:
                break
            offset = max(offset, hi)
        placed.append(Buffer(b.tensor, b.size_bytes, b.first, b.last, offset))
    arena = max((p.offset + p.size_bytes for p in placed), default=0)
    return arena, placed


def im2col_bytes(net: Network) -> int:
    """The standalone C's static im2col scratch (``mn_col``): two pixels' windows of the
    widest convolution as int16, each window kh * kw * Cin rounded up to 4 values."""
    kk4 = 0
    for layer in net.layers:
        if layer.op == "conv2d":
            cin = net.tensors[layer.inputs[0]].shape[0]
            kk4 = max(kk4, -(-layer.kernel[0] * layer.kernel[1] * cin // 4) * 4)
    return 4 * kk4
