"""The MCU cost model: MACs, params, flash, peak SRAM and latency of an int8 network.

Everything here is computed from the network IR (:mod:`micronas.ir`) and a
:class:`~micronas.hardware.device.Device` costed for one runtime (its latency coefficients and
memory overheads are that runtime's, :mod:`micronas.hardware.runtime`); nothing is counted a
second way elsewhere.

Latency (docs/cost_model.md): per layer,

    cycles = overhead_cycles + cycles_per_layer + cycles_per_mac * MACs
             + cycles_per_output * out_elements + cycles_per_input * in_elements
             + cycles_per_window * window_elements + cycles_per_valid_mac * valid_MACs
             + cycles_per_kernel_row * kernel_rows

with the coefficients of the layer's op class on the device's core (``window_elements`` is
kernel area x output elements for pooling; for convolutions ``valid_MACs`` counts only the
taps inside the input, which kernels that skip the padding compute, and ``kernel_rows`` the
valid kernel rows over all outputs and output channels, the inner loop's restarts; a
coefficient a profile does not give is 0). ``latency_ms = cycles / (clock_mhz * 1e3)``.

Flash: int8 weights + int32 biases + per-channel quantisation parameters + flatbuffer
entries per operator and per tensor + the runtime's code.

Peak SRAM: the greedy-planned activation arena + the largest scratch buffer of any layer
(CMSIS-NN's im2col buffer) + TFLM's persistent allocations (per node, per tensor, per
channel) + the runtime's reserved RAM (stack, statics). For micronas-c (the standalone C)
the arena is its own planner's (:func:`micronas.hardware.planner.plan_standalone`: outputs
in place of consumed inputs, PADs folded) and the scratch its static im2col buffer: exactly
the firmware's .bss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache

from micronas.hardware.device import Device
from micronas.hardware.planner import im2col_bytes, plan, plan_standalone
from micronas.ir import TFLITE_OPS, Layer, Network, lower_for_tflm

#: the runtime of the bundle's standalone C: its own planner and im2col scratch
STANDALONE = "micronas-c"

#: Bumped whenever a formula here changes, so on-disk cost caches are not reused.
COST_MODEL_REVISION = 3

_CHANNELWISE = ("conv2d", "depthwise_conv2d", "fully_connected")

#: Op classes no runtime's constants were measured for, derived from a measured (or
#: already stated) class of the same runtime on the same core: class -> (base class, factor,
#: basis). Every runtime's ``<core>.toml`` holds the result, marked ``extrapolated`` in its
#: ``[class_grounding]``; the constants writers (benchmarks/cmsis_nn_latency.py,
#: benchmarks/micronas_c_latency.py) apply the same rule, and tests check the files against it.
#: Instructions per element, counted by reading the kernels (no emulated run):
#: TFLM's int8 RELU (``ReluQuantized``: load, offset, one MultiplyByQuantizedMultiplier,
#: clamp, store) ~14; HARD_SWISH (``reference_ops::HardSwish``: two int16 rounding doubling
#: high multiplies, a doubling high multiply, up to two saturating shifts, two rounding
#: shifts, offsets, clamp) ~50; LOGISTIC (``reference_integer_ops::Logistic``: the input
#: rescale, then gemmlowp's logistic: a 4-term polynomial for exp on [-1/4, 0), a barrel
#: shifter of 6 conditional Q31 multiplies, 3 Newton-Raphson steps of 2 Q31 multiplies each)
#: ~200; CMSIS-NN's ``arm_elementwise_mul_s8`` does one requantisation per element where
#: ``arm_elementwise_add_s8`` does three (and two left shifts), with the same loads, offsets,
#: clamps and stores: about half the add's instructions.
DERIVED_CLASSES: dict[str, tuple[str, float, str]] = {
    "hard_swish": ("relu", 3.5, "relu x 3.5 (~50 against ~14 instructions per element)"),
    "logistic": ("relu", 14.0, "relu x 14 (~200 against ~14 instructions per element)"),
    "mul": ("add", 0.5, "add x 0.5 (1 requantisation per element against add's 3)"),
}


def derived_latency(tables: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The :data:`DERIVED_CLASSES` tables computed from ``tables`` (one runtime on one core:
    its ``[latency.<class>]`` tables), coefficients rounded to 6 significant digits."""
    return {cls: {k: float(f"{v * factor:.6g}") for k, v in tables[base].items() if v}
            for cls, (base, factor, _) in DERIVED_CLASSES.items() if base in tables}


def op_class(layer: Layer) -> str:
    """The latency op class of a layer (a key of the core's ``[latency]`` tables)."""
    if layer.op == "conv2d":
        return "conv1x1" if layer.kernel == (1, 1) and layer.padding == (0, 0) else "conv"
    if layer.op == "depthwise_conv2d":
        return "depthwise"
    if layer.op in ("avgpool2d", "maxpool2d"):
        return "pool"
    if layer.op == "global_avgpool":
        return "global_pool"
    if layer.op == "relu6":
        return "relu"  # the same elementwise clamp, with an upper bound
    if layer.op == "resize_bilinear":
        return "resize"
    return layer.op


def out_channels(net: Network, layer: Layer) -> int:
    """Output channels (features for a fully connected layer)."""
    return net.tensors[layer.output].shape[0]


def scratch_bytes(net: Network, layer: Layer, device: Device) -> int:
    """Scratch buffer of the CMSIS-NN kernel that runs ``layer`` on ``device``.

    arm_convolve_s8 with DSP: an int16 im2col buffer of two columns (2 x 2 x Cin x k x k
    bytes); the 1x1 fast path and the 3x3 depthwise kernel need none; the generic depthwise
    kernel with DSP: Cin x k x k int16; arm_avgpool_s8 with DSP: Cin int32 accumulators.
    Without the DSP extension the plain-C kernels use no scratch. micronas-c (the
    standalone C): one static im2col scratch of two pixels' windows per convolution, on
    every core (:func:`micronas.hardware.planner.im2col_bytes`).
    """
    if device.runtime.name == STANDALONE:  # the im2col rows of two pixels, int16, any core
        if layer.op != "conv2d":
            return 0
        return im2col_bytes(Network("", net.tensors, [layer], (), ()))
    if not device.dsp:
        return 0
    cin = net.tensors[layer.inputs[0]].shape[0] if layer.inputs else 0
    kh, kw = layer.kernel
    if layer.op == "conv2d" and op_class(layer) == "conv":
        return 4 * cin * kh * kw
    if layer.op == "depthwise_conv2d" and not (layer.kernel == (3, 3) and max(layer.padding) <= 1):
        return 2 * cin * kh * kw
    if layer.op == "avgpool2d":
        return 4 * cin
    return 0


@lru_cache(maxsize=4096)
def _valid_taps(size: int, out: int, kernel: int, stride: int, pad: int) -> int:
    """Kernel taps inside the input along one axis, summed over the output positions."""
    return sum(min(size, o * stride - pad + kernel) - max(0, o * stride - pad) for o in range(out))


def layer_features(net: Network, layer: Layer) -> dict[str, float]:
    """The quantities the latency coefficients multiply (keys = coefficient names)."""
    out = net.tensors[layer.output].numel
    inp = sum(net.tensors[t].numel for t in layer.inputs)
    window = layer.kernel[0] * layer.kernel[1] * out if layer.op.endswith("pool2d") else 0
    valid = rows = 0.0
    if layer.op in ("conv2d", "depthwise_conv2d"):
        cin, h, w = net.tensors[layer.inputs[0]].shape
        cout, oh, ow = net.tensors[layer.output].shape
        (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
        vy, vx = _valid_taps(h, oh, kh, sh, ph), _valid_taps(w, ow, kw, sw, pw)
        per = 1 if layer.op == "depthwise_conv2d" else cin // layer.groups
        valid, rows = float(vy * vx * per * cout), float(vy * ow * cout)
    # CMSIS-NN's dispatch (the tflm-cmsis-nn constants): output pixels (H x W); convolutions
    # whose input depth is not a multiple of 4 (the SIMD loops' leftovers); and the generic
    # kernels instead of a fast path (depthwise other than 3x3 with padding <= 1, 1x1 strided);
    # a depthwise conv's outputs in whole groups of 4 channels (its channel-blocked loops)
    shape = net.tensors[layer.output].shape
    pixels = float(shape[1] * shape[2]) if len(shape) == 3 else 0.0
    depth = net.tensors[layer.inputs[0]].shape[0] if layer.inputs else 0
    unaligned = (layer.op == "conv2d" and (depth // layer.groups) % 4 != 0) or (
        layer.op == "depthwise_conv2d" and depth % 4 != 0)
    generic = ((layer.op == "depthwise_conv2d"
                and not (layer.kernel == (3, 3) and max(layer.padding) <= 1))
               or (layer.op == "conv2d" and layer.kernel == (1, 1) and layer.stride != (1, 1)))
    return {"cycles_per_mac": float(layer.macs), "cycles_per_output": float(out),
            "cycles_per_input": float(inp), "cycles_per_window": float(window),
            "cycles_per_layer": 1.0, "cycles_per_valid_mac": valid,
            "cycles_per_kernel_row": rows, "cycles_per_pixel": pixels,
            "cycles_per_unaligned_mac": float(layer.macs) if unaligned else 0.0,
            "cycles_per_unaligned_output": float(out) if unaligned else 0.0,
            "cycles_per_generic_mac": float(layer.macs) if generic else 0.0,
            "cycles_per_generic_output": float(out) if generic else 0.0,
            "cycles_per_generic_pixel": pixels if generic else 0.0,
            "cycles_per_aligned_output": pixels * (depth // 4 * 4)
            if layer.op == "depthwise_conv2d" else 0.0}


def layer_cycles(net: Network, layer: Layer, device: Device) -> float:
    """Estimated cycles of one layer on ``device`` (formula in the module docstring)."""
    c = device.coefficients(op_class(layer))
    f = layer_features(net, layer)
    return device.overhead_cycles + sum(c.get(k, 0.0) * v for k, v in f.items())


def layer_flash_bytes(net: Network, layer: Layer, device: Device) -> int:
    """Flash of one layer: weights, biases, quantisation, operator and constant-tensor entries."""
    rt = device.runtime
    n = layer.weight_params + 4 * layer.bias_params + rt.per_layer_flash_bytes
    if layer.op in _CHANNELWISE:
        n += rt.per_channel_quant_flash_bytes * out_channels(net, layer)
    n += rt.per_tensor_flash_bytes * ((layer.weight_params > 0) + (layer.bias_params > 0))
    return n


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer."""

    name: str
    op: str
    output_shape: tuple[int, ...]
    macs: int
    params: int
    flash_bytes: int
    scratch_bytes: int
    cycles: float
    latency_ms: float


@dataclass(frozen=True)
class CostReport:
    """Whole-network cost on one device. Bytes, ms, cycles; ``fits`` = SRAM and flash fit."""

    device: str
    macs: int
    params: int
    flash_bytes: int
    peak_sram_bytes: int
    arena_bytes: int
    scratch_bytes: int
    persistent_bytes: int
    reserved_bytes: int
    cycles: float
    latency_ms: float
    fits: bool
    sram_limit_bytes: int
    flash_limit_bytes: int
    layers: list[LayerCost] = field(default_factory=list)
    #: the runtime the latency and memory are for, and how its latency on this core is known
    runtime: str = ""
    runtime_grounding: str = ""
    runtime_source: str = ""
    #: where the device profile came from ("built-in", "yours (PATH)", "file PATH")
    device_origin: str = ""
    #: flash of the runtime's own code (in ``flash_bytes``) and where its size comes from
    runtime_code_bytes: int = 0
    runtime_code_source: str = ""

    @property
    def runtime_label(self) -> str:
        """The runtime's name, with what is extrapolated where not all of its latency is
        grounded (``tflm-cmsis-nn, relu extrapolated``)."""
        g = self.runtime_grounding
        if g == "extrapolated":
            return f"{self.runtime}, extrapolated"
        return f"{self.runtime}, {g.partition('; ')[2]}" if "; " in g else self.runtime

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def tflite_ops(net: Network) -> set[str]:
    """The TFLite operators ``net`` runs as."""
    return {TFLITE_OPS[la.op] for la in net.layers if la.op in TFLITE_OPS}


def runtime_code_bytes(net: Network, device: Device) -> int:
    """Flash of the runtime's own code for ``net``: per TFLite operator it uses where the
    runtime has measured sizes (:meth:`RuntimeProfile.code_bytes`), else one constant."""
    return device.runtime.code_bytes(tflite_ops(net))


def grounding_of(net: Network, device: Device) -> str:
    """How the latency of ``net`` on ``device`` is known: the runtime's grounding on the core,
    with the op classes of ``net`` whose constants are extrapolated (``emulated; relu
    extrapolated``)."""
    rt = device.runtime
    guessed = sorted({op_class(la) for la in net.layers} & set(rt.extrapolated_classes))
    if guessed and rt.latency_grounding != "extrapolated":
        return f"{rt.latency_grounding}; {', '.join(guessed)} extrapolated"
    return rt.latency_grounding


def latency_ms(net: Network, device: Device) -> float:
    """Whole-network latency alone (the same per-layer formula as :func:`estimate`)."""
    net = lower_for_tflm(net)
    return sum(layer_cycles(net, layer, device) for layer in net.layers) / (device.clock_mhz * 1e3)


def estimate(net: Network, device: Device) -> CostReport:
    """Estimate MACs, params, flash, peak SRAM and latency of ``net`` on ``device``, for the
    runtime ``device`` is costed for (``device.runtime``).

    Costs are those of the network as TFLite Micro runs it (:func:`lower_for_tflm`)."""
    net = lower_for_tflm(net)
    rt = device.runtime
    khz = device.clock_mhz * 1e3
    layers: list[LayerCost] = []
    for layer in net.layers:
        cyc = layer_cycles(net, layer, device)
        layers.append(LayerCost(
            name=layer.name, op=layer.op, output_shape=net.tensors[layer.output].shape,
            macs=layer.macs, params=layer.params,
            flash_bytes=layer_flash_bytes(net, layer, device),
            scratch_bytes=scratch_bytes(net, layer, device), cycles=cyc,
            latency_ms=cyc / khz))
    if rt.name == STANDALONE:  # the bundle's own planner (in-place outputs, PADs folded)
        arena, _ = plan_standalone(net, rt.arena_alignment_bytes)
    else:
        arena, _ = plan(net, rt.arena_alignment_bytes)
    scratch = max((lc.scratch_bytes for lc in layers), default=0)
    channels = sum(out_channels(net, layer) for layer in net.layers if layer.op in _CHANNELWISE)
    n_tensors = len(net.tensors) + sum((lay.weight_params > 0) + (lay.bias_params > 0)
                                       for lay in net.layers)
    persistent = (rt.per_layer_ram_bytes * len(net.layers) + rt.per_tensor_ram_bytes * n_tensors
                  + rt.per_channel_quant_ram_bytes * channels)
    peak = arena + scratch + persistent + rt.ram_reserved_bytes
    code = runtime_code_bytes(net, device)
    flash = sum(lc.flash_bytes for lc in layers) + rt.per_tensor_flash_bytes * len(net.tensors) + code
    cycles = sum(lc.cycles for lc in layers)
    return CostReport(
        device=device.name, macs=net.macs, params=net.params, flash_bytes=flash,
        peak_sram_bytes=peak, arena_bytes=arena, scratch_bytes=scratch,
        persistent_bytes=persistent, reserved_bytes=rt.ram_reserved_bytes, cycles=cycles,
        latency_ms=cycles / khz, fits=peak <= device.sram_bytes and flash <= device.flash_bytes,
        sram_limit_bytes=device.sram_bytes, flash_limit_bytes=device.flash_bytes, layers=layers,
        runtime=rt.name, runtime_grounding=grounding_of(net, device),
        runtime_source=rt.latency_source, runtime_code_bytes=code, device_origin=device.origin,
        runtime_code_source=rt.code_source_for(tflite_ops(net)) if rt.code_source
        else f"{rt.name}'s estimate (one constant)")
