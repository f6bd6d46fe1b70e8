"""int8 .tflite files from a :class:`QNetwork`, run and measured with TensorFlow Lite Micro.

The flatbuffer is written with the model builder the ``tflite-micro`` PyPI package ships
(``compression/model_editor.py``; no TensorFlow needed) and executed with that package's TFLM
Python interpreter (x86 build, reference kernels).

Mapping (IR channels-first -> TFLite NHWC): conv2d -> CONV_2D (OHWI weights, per-channel
scales on axis 0); depthwise_conv2d and affine -> DEPTHWISE_CONV_2D (``1 x kh x kw x C``,
scales on axis 3; an affine is a 1x1 depthwise); fully_connected -> FULLY_CONNECTED
(per-tensor weights, columns permuted from CHW to HWC order when the input is spatial);
avgpool2d / maxpool2d -> AVERAGE_POOL_2D / MAX_POOL_2D; global_avgpool -> AVERAGE_POOL_2D
over the whole map; add -> ADD; concat -> CONCATENATION (channels); relu / relu6 -> RELU /
RELU6; pad -> PAD (the pad value is the input zero point); resize_bilinear -> RESIZE_BILINEAR
(a constant int32 size tensor ``[H, W]``, half_pixel_centers, no align_corners: PyTorch's
``align_corners=False``); hard_swish -> HARD_SWISH (no options); logistic -> LOGISTIC
(output scale 1/256, zero point -128); mul -> MUL (MulOptions). SAME/VALID come from
:func:`micronas.ir.window_padding`; fused ReLU / ReLU6 become ``fusedActivationFunction``;
strides are (height, width).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np

from micronas.deploy import require
from micronas.deploy.layout import conv_weight, depthwise_weight, fc_weight, from_hwc, to_hwc
from micronas.deploy.quantize import QNetwork
from micronas.errors import MicronasBug, MicronasError
from micronas.ir import Layer, window_padding

INSTALL_HINT = "pip install tflite-micro"


def _tflm():
    runtime, me, fb = require(
        "the tflite-micro package", INSTALL_HINT, "tflite_micro.python.tflite_micro.runtime",
        "tflite_micro.tensorflow.lite.micro.compression.model_editor",
        "tflite_micro.tensorflow.lite.micro.python.schema_py_generated")
    return me, fb, runtime


def _nhwc(shape: tuple[int, ...]) -> list[int]:
    if len(shape) == 3:
        c, h, w = shape
        return [1, h, w, c]
    return [1, *shape]


def to_tflite(qnet: QNetwork) -> bytes:
    """The .tflite flatbuffer of ``qnet``."""
    return build_tflite(qnet)[0]


def build_tflite(qnet: QNetwork) -> tuple[bytes, dict[str, int]]:
    """The .tflite flatbuffer of ``qnet`` and each activation tensor's index in it."""
    me, fb, _ = _tflm()
    net = qnet.net
    model = me.Model(description=f"micronas {net.name}")
    sg = model.add_subgraph(name="main")
    tensors: dict[str, object] = {}

    def act(name: str, shape: list[int] | None = None):
        if name not in tensors:
            tq = qnet.tensors[name]
            tensors[name] = sg.add_tensor(shape=shape or _nhwc(net.tensors[name].shape),
                                          dtype=fb.TensorType.INT8, name=name,
                                          quantization=me.Quantization(tq.scale, tq.zero_point))
        return tensors[name]

    def const(name: str, arr: np.ndarray, dtype: int, scales: list[float], axis: int | None):
        return sg.add_tensor(shape=list(arr.shape), dtype=dtype, name=name, data=arr,
                             quantization=me.Quantization(scales, [0] * len(scales), axis))

    def padding_of(layer: Layer) -> int:
        mode = window_padding(net.tensors[layer.inputs[0]].shape, layer.kernel, layer.stride,
                              layer.padding)
        if mode is None:
            raise MicronasBug(f"layer {layer.name}: padding {layer.padding} has no TFLite "
                              "equivalent; the network was not lowered (lower_for_tflm)")
        return fb.Padding.SAME if mode == "SAME" else fb.Padding.VALID

    acts = {"none": fb.ActivationFunctionType.NONE, "relu": fb.ActivationFunctionType.RELU,
            "relu6": fb.ActivationFunctionType.RELU6}
    for layer in net.layers:
        fused = acts[layer.activation]
        sh, sw = layer.stride
        ins = [act(t) for t in layer.inputs]
        if layer.op == "global_avgpool":
            out = act(layer.output, [1, 1, 1, net.tensors[layer.output].shape[0]])
        else:
            out = act(layer.output)
        op = fb.OperatorT()
        if layer.op in ("conv2d", "depthwise_conv2d", "affine"):
            qp = qnet.params[layer.name]
            if layer.op == "conv2d":
                w = conv_weight(qp.weight)
                axis, code = 0, fb.BuiltinOperator.CONV_2D
                opts = fb.Conv2DOptionsT(padding=padding_of(layer), strideW=sw,
                                         strideH=sh, fusedActivationFunction=fused)
                op.builtinOptionsType = fb.BuiltinOptions.Conv2DOptions
            else:
                w = depthwise_weight(qp.weight)[None]  # 1HWC
                axis, code = 3, fb.BuiltinOperator.DEPTHWISE_CONV_2D
                pad = fb.Padding.VALID if layer.op == "affine" else padding_of(layer)
                opts = fb.DepthwiseConv2DOptionsT(padding=pad, strideW=sw,
                                                  strideH=sh, depthMultiplier=1,
                                                  fusedActivationFunction=fused)
                op.builtinOptionsType = fb.BuiltinOptions.DepthwiseConv2DOptions
            s_in = qnet.tensors[layer.inputs[0]].scale
            ws = [float(s) for s in qp.weight_scale]
            ins += [const(f"{layer.name}.weight", w, fb.TensorType.INT8, ws, axis),
                    const(f"{layer.name}.bias", qp.bias, fb.TensorType.INT32,
                          [float(np.float32(s_in * s)) for s in ws], 0)]
        elif layer.op == "fully_connected":
            qp = qnet.params[layer.name]
            w = fc_weight(net, layer, qp.weight)
            s_in = qnet.tensors[layer.inputs[0]].scale
            ins += [const(f"{layer.name}.weight", w, fb.TensorType.INT8,
                          [float(qp.weight_scale[0])], None),
                    const(f"{layer.name}.bias", qp.bias, fb.TensorType.INT32,
                          [float(np.float32(s_in * qp.weight_scale[0]))], None)]
            code = fb.BuiltinOperator.FULLY_CONNECTED
            opts = fb.FullyConnectedOptionsT(fusedActivationFunction=fused)
            op.builtinOptionsType = fb.BuiltinOptions.FullyConnectedOptions
        elif layer.op in ("avgpool2d", "maxpool2d", "global_avgpool"):
            if layer.op == "global_avgpool":
                (kh, kw), (sh, sw), pad = net.tensors[layer.inputs[0]].shape[1:3], (1, 1), fb.Padding.VALID
            else:
                (kh, kw), pad = layer.kernel, padding_of(layer)
            code = (fb.BuiltinOperator.MAX_POOL_2D if layer.op == "maxpool2d"
                    else fb.BuiltinOperator.AVERAGE_POOL_2D)
            opts = fb.Pool2DOptionsT(padding=pad, strideW=sw, strideH=sh, filterWidth=kw,
                                     filterHeight=kh, fusedActivationFunction=fused)
            op.builtinOptionsType = fb.BuiltinOptions.Pool2DOptions
        elif layer.op == "add":
            code = fb.BuiltinOperator.ADD
            opts = fb.AddOptionsT(fusedActivationFunction=fused)
            op.builtinOptionsType = fb.BuiltinOptions.AddOptions
        elif layer.op == "concat":
            code = fb.BuiltinOperator.CONCATENATION
            opts = fb.ConcatenationOptionsT(axis=3 if len(net.tensors[layer.output].shape) == 3
                                            else 1, fusedActivationFunction=fused)
            op.builtinOptionsType = fb.BuiltinOptions.ConcatenationOptions
        elif layer.op == "relu":
            code, opts = fb.BuiltinOperator.RELU, None
        elif layer.op == "relu6":
            code, opts = fb.BuiltinOperator.RELU6, None
        elif layer.op == "pad":
            _, h, w_ = net.tensors[layer.output].shape
            _, hi, wi = net.tensors[layer.inputs[0]].shape
            ph, pw = layer.padding
            pads = np.array([[0, 0], [ph, h - hi - ph], [pw, w_ - wi - pw], [0, 0]], np.int32)
            ins.append(sg.add_tensor(shape=[4, 2], dtype=fb.TensorType.INT32,
                                     name=f"{layer.name}.paddings", data=pads))
            code = fb.BuiltinOperator.PAD
            opts = fb.PadOptionsT()
            op.builtinOptionsType = fb.BuiltinOptions.PadOptions
        elif layer.op == "resize_bilinear":
            size = np.array(net.tensors[layer.output].shape[1:], np.int32)
            ins.append(sg.add_tensor(shape=[2], dtype=fb.TensorType.INT32,
                                     name=f"{layer.name}.size", data=size))
            code = fb.BuiltinOperator.RESIZE_BILINEAR
            opts = fb.ResizeBilinearOptionsT(alignCorners=False, halfPixelCenters=True)
            op.builtinOptionsType = fb.BuiltinOptions.ResizeBilinearOptions
        elif layer.op in _ELEMENTWISE:
            code, opts = _elementwise_op(fb, layer, fused)
            if opts is not None:
                op.builtinOptionsType = fb.BuiltinOptions.MulOptions
        else:
            raise MicronasError(f"layer {layer.name}: op {layer.op!r} has no TFLite mapping")
        op.builtinOptions = opts
        sg.operators.append(me.Operator(opcode=code, inputs=ins, outputs=[out], _fb=op))
    sg.inputs = [act(net.inputs[0])]
    sg.outputs = [tensors[net.outputs[0]]]
    data = bytes(model.build())
    return data, {name: t.index for name, t in tensors.items()}


_ELEMENTWISE = ("hard_swish", "logistic", "mul")


def _elementwise_op(fb, layer: Layer, fused: int) -> tuple[int, object]:
    """The builtin operator and options of an elementwise activation or product: HARD_SWISH
    and LOGISTIC take no options, MUL takes MulOptions (the fused activation)."""
    if layer.op == "hard_swish":
        return fb.BuiltinOperator.HARD_SWISH, None
    if layer.op == "logistic":
        return fb.BuiltinOperator.LOGISTIC, None
    return fb.BuiltinOperator.MUL, fb.MulOptionsT(fusedActivationFunction=fused)


def run_tflm(model: bytes, x_q: np.ndarray, arena_size: int | None = None) -> np.ndarray:
    """Outputs (batch first, flattened per sample) of the TFLM interpreter for int8 inputs."""
    _, _, runtime = _tflm()
    interp = runtime.Interpreter.from_bytes(model, arena_size=arena_size or 4 * len(model) + (1 << 20))
    outs = []
    for x in np.asarray(x_q, dtype=np.int8):
        interp.set_input(to_hwc(x)[None], 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)).reshape(-1))
    return np.stack(outs)


def tflm_tensors(model: bytes, index: dict[str, int], shapes: dict[str, tuple[int, ...]],
                 x_q: np.ndarray) -> dict[str, np.ndarray]:
    """Every activation tensor TFLM computes for one int8 input (channels-first, no batch;
    ``shapes`` are the IR's)."""
    _, _, runtime = _tflm()
    interp = runtime.Interpreter.from_bytes(
        model, arena_size=4 * len(model) + (4 << 20),
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    interp.set_input(to_hwc(np.asarray(x_q, dtype=np.int8))[None], 0)
    interp.invoke()
    out = {}
    for name, i in index.items():
        t = np.array(interp.GetTensor(i, 0)["tensor_data"]).reshape(-1)
        out[name] = from_hwc(t, shapes[name])
    return out


@dataclass(frozen=True)
class ArenaReport:
    """TFLM's arena use. ``head`` is the planned non-persistent (activation) area; ``tail``
    the persistent host structures of the x86 build; ``used`` their sum."""

    used: int
    head: int
    tail: int


_USED = re.compile(r"Arena allocation total (\d+) bytes")
_HEAD = re.compile(r"Arena allocation head (\d+) bytes")
_TAIL = re.compile(r"Arena allocation tail (\d+) bytes")


@contextlib.contextmanager
def _capture_fd2():
    """Capture what C++ writes to stderr (file descriptor 2)."""
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        holder: list[str] = []
        try:
            yield holder
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            holder.append(tmp.read().decode(errors="replace"))


def tflm_arena(model: bytes) -> ArenaReport:
    """The arena TFLM allocates for ``model`` (from its recording allocator's report)."""
    _, _, runtime = _tflm()
    interp = runtime.Interpreter.from_bytes(model, arena_size=4 * len(model) + (4 << 20))
    with _capture_fd2() as text:
        interp.print_allocations()
    report = text[0] if text else ""
    m_used, m_head, m_tail = _USED.search(report), _HEAD.search(report), _TAIL.search(report)
    if not (m_used and m_head and m_tail):
        raise MicronasError("could not read TFLM's allocation report")
    return ArenaReport(int(m_used.group(1)), int(m_head.group(1)), int(m_tail.group(1)))
