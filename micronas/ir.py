"""The network IR: one framework-free description of a deployed int8 network.

A :class:`Network` is an ordered list of :class:`Layer` (execution order) over named
:class:`Tensor` values (activations, channels-first, batch 1). Every cost the project reports
(MACs, params, flash, peak SRAM, latency, code generation) is computed from this IR and only
from it. Building an IR never imports torch; :func:`micronas.deploy.trace.trace` builds one from
a torch module.

Conventions
- BatchNorm is folded into the preceding convolution (the conv gains an int32 bias).
- Identity edges are buffer reuse (the same tensor name), not layers.
- A ReLU or ReLU6 whose input has no other consumer is fused into the producing layer
  (``activation``: TFLite's fused activation range), as TFLite's converter does; otherwise
  it is a layer of its own (``relu`` / ``relu6``).
- Kernels, strides and paddings are (height, width) pairs: non-square inputs (a 49x10 MFCC
  map) downsample only along the axis that allows it.
- Hardswish is a ``hard_swish`` layer; SiLU (``x * sigmoid(x)``) is a ``logistic`` layer
  and a ``mul`` of the input and the sigmoid, the way TensorFlow's converter lowers swish.
  Elementwise layers (``add``, ``mul``, activations) count no MACs.
- ``source_params`` counts the parameters of the float model a layer came from (a conv with
  its BatchNorm's gamma and beta), so published parameter counts can be reproduced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from micronas.errors import MicronasError

LAYER_OPS = (
    "conv2d",            # dense conv (groups == 1) or grouped conv
    "depthwise_conv2d",  # groups == in channels == out channels
    "fully_connected",
    "avgpool2d",
    "maxpool2d",
    "global_avgpool",
    "add",
    "concat",            # along channels (inputs and output share quantisation)
    "relu",
    "relu6",             # min(max(x, 0), 6)
    "affine",            # per-channel scale and shift (a BatchNorm that cannot be folded)
    "zeros",             # a constant zero tensor (a node with no live input)
    "pad",               # explicit zero-point padding (inserted by lower_for_tflm)
    "resize_bilinear",   # bilinear resize to the output's H x W (half-pixel centres, as
                         # PyTorch's align_corners=False; input and output share quantisation)
    "hard_swish",        # x * relu6(x + 3) / 6 (TFLite HARD_SWISH)
    "logistic",          # sigmoid 1 / (1 + exp(-x)) (TFLite LOGISTIC)
    "mul",               # elementwise product of two same-shape tensors (TFLite MUL)
)


@dataclass(frozen=True)
class Tensor:
    """An activation tensor (batch excluded). ``elem_bytes`` is 1 for int8."""

    name: str
    shape: tuple[int, ...]
    elem_bytes: int = 1

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.elem_bytes


@dataclass(frozen=True)
class Layer:
    """One deployed op. Sizes are element counts; MACs are multiply-accumulates."""

    name: str
    op: str
    inputs: tuple[str, ...]
    output: str
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)   # (height, width)
    padding: tuple[int, int] = (0, 0)  # (height, width), each applied on both sides
    groups: int = 1
    weight_params: int = 0   # int8 weights
    bias_params: int = 0     # int32 biases
    macs: int = 0
    activation: str = "none"  # fused activation: "none", "relu" or "relu6"
    source_params: int = 0   # parameters of the float layer(s) this came from
    source_bias: bool = False  # the float layer itself had a bias (not a folded BN)
    tag: str = ""            # where it came from, e.g. "s1.c0.e(0,3).nor_conv_3x3"

    @property
    def params(self) -> int:
        return self.weight_params + self.bias_params

    @property
    def fused_relu(self) -> bool:
        """Whether a fused activation (ReLU or ReLU6) clamps the output."""
        return self.activation != "none"


@dataclass
class Network:
    """A deployed network: tensors by name, layers in execution order."""

    name: str
    tensors: dict[str, Tensor]
    layers: list[Layer]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def producers(self) -> dict[str, int]:
        """Tensor name -> index of the layer that writes it."""
        return {layer.output: i for i, layer in enumerate(self.layers)}

    def consumers(self) -> dict[str, list[int]]:
        """Tensor name -> indices of the layers that read it (in order)."""
        out: dict[str, list[int]] = {name: [] for name in self.tensors}
        for i, layer in enumerate(self.layers):
            for t in layer.inputs:
                out[t].append(i)
        return out

    def validate(self) -> None:
        """Check the graph is well formed: tensors exist, each written once before use."""
        written = set(self.inputs)
        for layer in self.layers:
            if layer.op not in LAYER_OPS:
                raise MicronasError(f"layer {layer.name}: unknown op {layer.op!r}")
            if layer.activation not in ACTIVATIONS:
                raise MicronasError(f"layer {layer.name}: unknown activation {layer.activation!r}")
            for t in layer.inputs:
                if t not in written:
                    raise MicronasError(f"layer {layer.name} reads {t!r} before it is written")
            if layer.output in written:
                raise MicronasError(f"tensor {layer.output!r} is written twice")
            written.add(layer.output)
        for t in self.outputs:
            if t not in written:
                raise MicronasError(f"network output {t!r} is never written")


#: Fused activations (``Layer.activation``).
ACTIVATIONS = ("none", "relu", "relu6")


def pair(v: int | Sequence[int], what: str = "value") -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; a (height, width) pair as is."""
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(x) for x in v)
    if len(t) != 2:
        raise MicronasError(f"a {what} must be an integer or a (height, width) pair, got {v!r}")
    return t  # type: ignore[return-value]


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling window along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


class GraphBuilder:
    """Builds a :class:`Network` layer by layer, computing shapes, params and MACs."""

    def __init__(self, name: str, input_shape: Sequence[int], input_name: str = "input"):
        self.name = name
        self.tensors: dict[str, Tensor] = {input_name: Tensor(input_name, tuple(input_shape))}
        self.layers: list[Layer] = []
        self.input_name = input_name
        self._relu_of: dict[tuple[str, str], str] = {}

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.tensors[tensor].shape

    def _add(self, layer: Layer, shape: tuple[int, ...]) -> str:
        if layer.output in self.tensors:
            raise MicronasError(f"duplicate tensor name {layer.output!r}")
        self.tensors[layer.output] = Tensor(layer.output, shape)
        self.layers.append(layer)
        return layer.output

    def conv(self, x: str, out_ch: int, kernel: int | tuple[int, int],
             stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
             groups: int = 1, *, bn: bool = True, bias: bool = False, name: str,
             tag: str = "") -> str:
        """Conv2d (+ folded BatchNorm when ``bn``). Returns the output tensor name.

        ``kernel``, ``stride`` and ``padding`` may be (height, width) pairs."""
        c, h, w = self.shape(x)
        (kh, kw), (sh, sw) = pair(kernel, "kernel"), pair(stride, "stride")
        ph, pw = pair(padding, "padding")
        if c % groups or out_ch % groups:
            raise MicronasError(f"{name}: channels {c}->{out_ch} not divisible by groups {groups}")
        ho, wo = conv_out(h, kh, sh, ph), conv_out(w, kw, sw, pw)
        if ho < 1 or wo < 1:
            raise MicronasError(f"{name}: a {kh}x{kw} window does not fit a {h}x{w} input")
        weights = out_ch * (c // groups) * kh * kw
        depthwise = groups > 1 and groups == c == out_ch
        layer = Layer(
            name=name, op="depthwise_conv2d" if depthwise else "conv2d", inputs=(x,),
            output=name, kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw),
            groups=groups, weight_params=weights,
            bias_params=out_ch if (bn or bias) else 0,
            macs=weights * ho * wo,
            source_params=weights + (out_ch if bias else 0) + (2 * out_ch if bn else 0),
            source_bias=bias, tag=tag or name,
        )
        return self._add(layer, (out_ch, ho, wo))

    def pool(self, x: str, kernel: int | tuple[int, int], stride: int | tuple[int, int],
             padding: int | tuple[int, int] = 0, *, kind: str = "avg", name: str,
             tag: str = "") -> str:
        c, h, w = self.shape(x)
        (kh, kw), (sh, sw) = pair(kernel, "kernel"), pair(stride, "stride")
        ph, pw = pair(padding, "padding")
        ho, wo = conv_out(h, kh, sh, ph), conv_out(w, kw, sw, pw)
        if ho < 1 or wo < 1:
            raise MicronasError(f"{name}: a {kh}x{kw} window does not fit a {h}x{w} input")
        layer = Layer(name=name, op=f"{kind}pool2d", inputs=(x,), output=name,
                      kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw), tag=tag or name)
        return self._add(layer, (c, ho, wo))

    def global_avgpool(self, x: str, *, name: str) -> str:
        c = self.shape(x)[0]
        return self._add(Layer(name=name, op="global_avgpool", inputs=(x,), output=name,
                               kernel=tuple(self.shape(x)[1:3]), tag=name), (c,))

    def fc(self, x: str, out_features: int, *, bias: bool = True, bn: bool = False,
           name: str) -> str:
        """Fully connected layer (+ folded BatchNorm when ``bn``)."""
        n = math.prod(self.shape(x))
        layer = Layer(name=name, op="fully_connected", inputs=(x,), output=name,
                      weight_params=n * out_features,
                      bias_params=out_features if (bias or bn) else 0, macs=n * out_features,
                      source_params=n * out_features + (out_features if bias else 0)
                      + (2 * out_features if bn else 0),
                      source_bias=bias, tag=name)
        return self._add(layer, (out_features,))

    def add(self, a: str, b: str, *, name: str, tag: str = "") -> str:
        if self.shape(a) != self.shape(b):
            raise MicronasError(f"{name}: cannot add shapes {self.shape(a)} and {self.shape(b)}")
        return self._add(Layer(name=name, op="add", inputs=(a, b), output=name,
                               tag=tag or name), self.shape(a))

    def concat(self, xs: Sequence[str], *, name: str, tag: str = "") -> str:
        """Concatenation along channels (the first axis) of tensors of one spatial shape."""
        if len(xs) < 2:
            raise MicronasError(f"{name}: a concatenation needs at least two inputs")
        rest = {self.shape(x)[1:] for x in xs}
        if len(rest) != 1:
            raise MicronasError(f"{name}: cannot concatenate shapes "
                                f"{', '.join(str(self.shape(x)) for x in xs)} along channels")
        shape = (sum(self.shape(x)[0] for x in xs), *rest.pop())
        return self._add(Layer(name=name, op="concat", inputs=tuple(xs), output=name,
                               tag=tag or name), shape)

    def sum(self, terms: Sequence[str], *, name: str, tag: str = "") -> str:
        """Sum of ``terms`` as a chain of adds; one term is returned as is (buffer reuse)."""
        if not terms:
            raise MicronasError(f"{name}: sum of no terms")
        acc = terms[0]
        for i, t in enumerate(terms[1:]):
            acc = self.add(acc, t, name=f"{name}.add{i}" if len(terms) > 2 else name, tag=tag)
        return acc

    def relu(self, x: str, *, name: str | None = None, op: str = "relu") -> str:
        """ReLU (``op="relu6"``: ReLU6) of ``x``, shared: asking twice for the same tensor
        reuses the first."""
        if op not in ("relu", "relu6"):
            raise MicronasError(f"unknown activation {op!r}")
        if (x, op) in self._relu_of:
            return self._relu_of[(x, op)]
        name = name or f"{x}.{op}"
        out = self._add(Layer(name=name, op=op, inputs=(x,), output=name, tag=name),
                        self.shape(x))
        self._relu_of[(x, op)] = out
        return out

    def relu6(self, x: str, *, name: str | None = None) -> str:
        return self.relu(x, name=name, op="relu6")

    def hard_swish(self, x: str, *, name: str) -> str:
        """Hardswish ``x * relu6(x + 3) / 6`` of ``x`` (no parameters, no MACs)."""
        return self._add(Layer(name=name, op="hard_swish", inputs=(x,), output=name, tag=name),
                         self.shape(x))

    def logistic(self, x: str, *, name: str) -> str:
        """The sigmoid of ``x`` (no parameters, no MACs)."""
        return self._add(Layer(name=name, op="logistic", inputs=(x,), output=name, tag=name),
                         self.shape(x))

    def mul(self, a: str, b: str, *, name: str, tag: str = "") -> str:
        """Elementwise product of two tensors of one shape (no MACs counted, as for ``add``)."""
        if self.shape(a) != self.shape(b):
            raise MicronasError(f"{name}: cannot multiply shapes {self.shape(a)} and "
                                f"{self.shape(b)} elementwise (same shapes only)")
        return self._add(Layer(name=name, op="mul", inputs=(a, b), output=name,
                               tag=tag or name), self.shape(a))

    def silu(self, x: str, *, name: str) -> str:
        """SiLU (swish) ``x * sigmoid(x)``: a ``logistic`` layer ``{name}.sigmoid`` and the
        ``mul`` ``name`` of ``x`` and it. Returns the product's tensor name."""
        s = self.logistic(x, name=f"{name}.sigmoid")
        return self.mul(x, s, name=name)

    def affine(self, x: str, *, name: str) -> str:
        c = self.shape(x)[0]
        return self._add(Layer(name=name, op="affine", inputs=(x,), output=name,
                               weight_params=c, bias_params=c, source_params=2 * c, tag=name),
                         self.shape(x))

    def resize_bilinear(self, x: str, size: int | tuple[int, int], *, name: str,
                        tag: str = "") -> str:
        """Bilinear resize of ``x`` to ``size`` (height, width): half-pixel centres, no
        corner alignment (PyTorch's ``align_corners=False``, TFLite's
        ``half_pixel_centers=True``). No parameters, no MACs."""
        if len(self.shape(x)) != 3:
            raise MicronasError(f"{name}: a resize needs a (C, H, W) input, got {self.shape(x)}")
        h, w = pair(size, "size")
        if h < 1 or w < 1:
            raise MicronasError(f"{name}: cannot resize to {h}x{w}")
        return self._add(Layer(name=name, op="resize_bilinear", inputs=(x,), output=name,
                               tag=tag or name), (self.shape(x)[0], h, w))

    def zeros(self, shape: Sequence[int], *, name: str) -> str:
        return self._add(Layer(name=name, op="zeros", inputs=(), output=name, tag=name),
                         tuple(shape))

    def build(self, outputs: Sequence[str], meta: dict[str, object] | None = None) -> Network:
        net = Network(self.name, dict(self.tensors), list(self.layers), (self.input_name,),
                      tuple(outputs), dict(meta or {}))
        net = fuse_relu(net)
        net.validate()
        return net


_FUSABLE = {"conv2d", "depthwise_conv2d", "fully_connected", "add", "affine"}


def fuse_relu(net: Network) -> Network:
    """Fuse each ReLU / ReLU6 into its producer when the producer's output has no other
    reader (the producer's ``activation`` becomes the op's name)."""
    consumers = net.consumers()
    producers = net.producers()
    rename: dict[str, str] = {}
    drop: set[int] = set()
    fused: dict[int, str] = {}
    for i, layer in enumerate(net.layers):
        if layer.op not in ("relu", "relu6"):
            continue
        src = layer.inputs[0]
        p = producers.get(src)
        if (p is None or net.layers[p].op not in _FUSABLE or net.layers[p].fused_relu
                or len(consumers[src]) != 1 or src in net.outputs):
            continue
        fused[p] = layer.op
        drop.add(i)
        rename[layer.output] = src
    if not drop:
        return net
    layers = []
    for i, layer in enumerate(net.layers):
        if i in drop:
            continue
        inputs = tuple(rename.get(t, t) for t in layer.inputs)
        if i in fused:
            layer = replace(layer, inputs=inputs, activation=fused[i])
        elif inputs != layer.inputs:
            layer = replace(layer, inputs=inputs)
        layers.append(layer)
    tensors = {k: v for k, v in net.tensors.items() if k not in rename}
    outputs = tuple(rename.get(t, t) for t in net.outputs)
    return Network(net.name, tensors, layers, net.inputs, outputs, net.meta)


def tflite_padding(size: int, kernel: int, stride: int, pad: int) -> str | None:
    """TFLite's name for a symmetric PyTorch-style ``pad`` along one axis, or None.

    ``VALID`` when ``pad`` is 0; ``SAME`` when TFLite's SAME padding (total
    ``(out - 1) * stride + kernel - size``, the smaller half on top) reads exactly the windows
    PyTorch reads; None when neither does (an explicit pad layer is needed).
    """
    if pad == 0:
        return "VALID"
    out = conv_out(size, kernel, stride, pad)
    total = max((out - 1) * stride + kernel - size, 0)
    if out == -(-size // stride) and total // 2 == pad:
        return "SAME"
    return None


def _axis_modes(size: int, kernel: int, stride: int, pad: int) -> set[str]:
    """The TFLite paddings that read exactly PyTorch's windows along one axis: VALID and / or
    SAME (an unpadded axis is also SAME where SAME adds nothing there, e.g. the width 1 of a
    time series under a k x 1 kernel)."""
    mode = tflite_padding(size, kernel, stride, pad)
    modes = {mode} if mode else set()
    if pad == 0:
        out = conv_out(size, kernel, stride, 0)
        if out == -(-size // stride) and (out - 1) * stride + kernel - size <= 0:
            modes.add("SAME")
    return modes


def window_padding(shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int]) -> str | None:
    """TFLite's padding for a window over a (C, H, W) input: ``VALID`` or ``SAME`` where
    one of them reads exactly PyTorch's windows on both axes (VALID preferred), else None
    (an explicit pad layer is needed)."""
    _, h, w = shape
    common = (_axis_modes(h, kernel[0], stride[0], padding[0])
              & _axis_modes(w, kernel[1], stride[1], padding[1]))
    return "VALID" if "VALID" in common else "SAME" if "SAME" in common else None


_WINDOWED = {"conv2d", "depthwise_conv2d", "avgpool2d", "maxpool2d"}

#: The TFLite builtin operator each op of the lowered network runs as in TFLite Micro (the
#: exporter's choice; the bundle's op resolver and the runtime code-size model read it here).
TFLITE_OPS = {"conv2d": "CONV_2D", "depthwise_conv2d": "DEPTHWISE_CONV_2D",
              "affine": "DEPTHWISE_CONV_2D", "fully_connected": "FULLY_CONNECTED",
              "avgpool2d": "AVERAGE_POOL_2D", "global_avgpool": "AVERAGE_POOL_2D",
              "maxpool2d": "MAX_POOL_2D", "add": "ADD", "concat": "CONCATENATION",
              "relu": "RELU", "relu6": "RELU6", "pad": "PAD",
              "resize_bilinear": "RESIZE_BILINEAR",
              "hard_swish": "HARD_SWISH", "logistic": "LOGISTIC", "mul": "MUL"}


def lower_for_tflm(net: Network) -> Network:
    """The network as TFLite Micro runs it: a convolution whose padding TFLite's SAME/VALID
    cannot express reads an explicit ``pad`` layer (top/left = the layer's padding; bottom/right
    only as far as the last window reaches), then runs with VALID padding."""
    layers: list[Layer] = []
    tensors = dict(net.tensors)
    changed = False
    for layer in net.layers:
        if layer.op not in _WINDOWED or layer.padding == (0, 0):
            layers.append(layer)
            continue
        c, h, w = net.tensors[layer.inputs[0]].shape
        (kh, kw), (ph, pw) = layer.kernel, layer.padding
        sh, sw = layer.stride
        if window_padding((c, h, w), layer.kernel, layer.stride, layer.padding) is not None:
            layers.append(layer)
            continue
        if layer.op in ("avgpool2d", "maxpool2d"):
            raise MicronasError(f"layer {layer.name}: a {kh}x{kw} pool with padding {layer.padding} "
                                "has no TFLite equivalent")
        _, ho, wo = net.tensors[layer.output].shape
        hp, wp = (ho - 1) * sh + kh, (wo - 1) * sw + kw
        name = f"{layer.name}.pad"
        tensors[name] = Tensor(name, (c, hp, wp))
        layers.append(Layer(name=name, op="pad", inputs=layer.inputs, output=name, padding=(ph, pw),
                            tag=layer.tag))
        layers.append(replace(layer, inputs=(name,), padding=(0, 0)))
        changed = True
    if not changed:
        return net
    out = Network(net.name, tensors, layers, net.inputs, net.outputs, dict(net.meta))
    out.meta["lowered"] = "tflm"
    out.validate()
    return out
