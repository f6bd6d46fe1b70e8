"""Trace any torch module into the network IR with torch.fx, so a user's model can be costed.

Supported: Conv2d (any groups, square or not; a following BatchNorm2d / BatchNorm1d that is
its only reader is folded), Conv1d on a ``(C, L)`` input (a 1 x K convolution on a 1 x L
map), BatchNorm2d (standalone -> ``affine``), ReLU / ``F.relu`` (-> ``relu``), ReLU6 /
``F.relu6`` / ``hardtanh(0, 6)`` (-> ``relu6``), Hardswish / ``F.hardswish`` (->
``hard_swish``), Sigmoid / ``torch.sigmoid`` (-> ``logistic``), SiLU / ``F.silu`` (->
``logistic`` then ``mul`` of the input and the sigmoid), Linear, AvgPool2d, MaxPool2d,
AdaptiveAvgPool2d(1) / AdaptiveAvgPool1d(1) and ``mean`` over the spatial axes (->
``global_avgpool``), ``+`` / ``torch.add``, ``*`` / ``torch.mul`` of two tensors of one shape
(-> ``mul``), ``torch.cat`` along channels (-> ``concat``),
``F.interpolate(..., mode="bilinear", align_corners=False)`` (-> ``resize_bilinear``),
flatten / view / reshape and Identity / Dropout (buffer reuse), multiplication by a constant
0 (-> ``zeros``) and by another constant (folded into quantisation). Anything else (GELU,
ELU, concatenation along another axis, ...) raises a one-line MicronasError naming the module
or node (for an activation, with the supported ones).

``net.meta["sources"]`` maps each weighted layer to the module(s) its weights come from (the
convolution or linear layer, and the BatchNorm folded into it), so
:func:`micronas.deploy.weights.weights_from_torch` can read a trained model's weights.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from micronas.errors import MicronasError
from micronas.ir import GraphBuilder, Network, pair

_RELU_FUNCS = {torch.relu, nn.functional.relu}
_RELU6_FUNCS = {nn.functional.relu6}
_ADD_FUNCS = {operator.add, torch.add}
_FLATTEN = {torch.flatten}
_CAT = {torch.cat, torch.concat}
_HARDSWISH_FUNCS = {nn.functional.hardswish}
_SIGMOID_FUNCS = {torch.sigmoid, nn.functional.sigmoid}
_SILU_FUNCS = {nn.functional.silu}
_MUL_FUNCS = {operator.mul, torch.mul}
#: activation modules the tracer refuses, named in its error (with the supported ones)
_ACTIVATION_MODULES = (nn.GELU, nn.ELU, nn.SELU, nn.CELU, nn.LeakyReLU, nn.PReLU, nn.Mish,
                       nn.Tanh, nn.Hardsigmoid, nn.Softplus, nn.Hardtanh, nn.LogSigmoid,
                       nn.Softsign, nn.Tanhshrink, nn.RReLU, nn.Threshold, nn.GLU)
SUPPORTED_ACTIVATIONS = ("ReLU", "ReLU6 (or Hardtanh(0, 6))", "Hardswish", "SiLU", "Sigmoid")


def _pair(v: int | Sequence[int], what: str, node: str) -> tuple[int, int]:
    if isinstance(v, str):  # padding="same" / "valid"
        raise MicronasError(f"layer {node}: padding={v!r} is not supported; give the padding "
                            "as integers")
    return pair(v, what)


def _dims(node: fx.Node) -> tuple[int, ...]:
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", ())
    return (dim,) if isinstance(dim, int) else tuple(dim)


def _is_relu6(m: nn.Module) -> bool:
    return isinstance(m, nn.ReLU6) or (isinstance(m, nn.Hardtanh) and m.min_val == 0.0
                                       and m.max_val == 6.0)


def _is_activation_function(node: fx.Node) -> bool:
    """An activation called as a function (``F.gelu``, ``torch.tanh``, ``x.tanh()``)."""
    name = getattr(node.target, "__name__", str(node.target))
    return node.op in ("call_function", "call_method") and name.rstrip("_") in (
        "gelu", "elu", "selu", "celu", "leaky_relu", "prelu", "mish", "tanh", "hardsigmoid",
        "softplus", "hardtanh", "logsigmoid", "softsign", "tanhshrink", "rrelu", "threshold",
        "glu")


def trace(model: nn.Module, input_shape: Sequence[int], name: str | None = None) -> Network:
    """The IR of ``model`` for one input of ``input_shape`` (channels-first, no batch:
    ``(C, H, W)``, or ``(C, L)`` for a model of Conv1d layers, costed as ``(C, 1, L)``)."""
    shape_in = tuple(input_shape)
    if len(shape_in) == 4:
        raise MicronasError(f"input shape {shape_in} has a batch dimension; give one input's "
                            f"shape, channels first: {shape_in[1:]}")
    if not (2 <= len(shape_in) <= 3 and all(isinstance(v, int) and v >= 1 for v in shape_in)):
        raise MicronasError(f"input shape {shape_in}: give (channels, height, width) or "
                            "(channels, length), positive integers")
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001 - fx raises many kinds; report one line
        raise MicronasError(f"cannot trace {type(model).__name__} with torch.fx: {e}") from None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            try:  # the model itself first: ShapeProp prints a traceback before it raises
                model(torch.zeros(1, *input_shape))
            except (RuntimeError, ValueError, TypeError, IndexError) as e:
                first = " ".join(str(e).split())[:200]
                raise MicronasError(f"{type(model).__name__} does not run on one input of shape "
                                    f"{tuple(input_shape)} (channels first, no batch): "
                                    f"{first}") from None
            ShapeProp(gm).propagate(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
    modules = dict(gm.named_modules())
    shape = tuple(input_shape)
    g = GraphBuilder(name or type(model).__name__, shape if len(shape) == 3 else
                     (shape[0], 1, *shape[1:]) if len(shape) == 2 else shape)
    tensor: dict[str, str] = {}
    outputs: list[str] = []
    # layer name -> (the module holding its weights, the BatchNorm folded into it / itself)
    sources: dict[str, tuple[str | None, str | None]] = {}

    def src(arg: object) -> str:
        if not isinstance(arg, fx.Node) or arg.name not in tensor:
            raise MicronasError(f"unsupported input {arg!r}: only tensors produced by traced "
                                "layers can be consumed")
        return tensor[arg.name]

    def bn_follows(node: fx.Node) -> fx.Node | None:
        users = list(node.users)
        if len(users) == 1 and users[0].op == "call_module" and isinstance(
                modules[users[0].target], nn.BatchNorm2d | nn.BatchNorm1d):
            return users[0]
        return None

    for node in gm.graph.nodes:
        nm = node.name
        if node.op == "placeholder":
            tensor[nm] = g.input_name
        elif node.op == "output":
            args = node.args[0]
            outputs = [src(a) for a in (args if isinstance(args, list | tuple) else [args])]
        elif node.op == "get_attr":
            raise MicronasError(f"node {nm}: reading parameters directly is not supported")
        elif node.op == "call_module":
            m = modules[node.target]
            x = src(node.args[0])
            if isinstance(m, nn.Conv2d | nn.Conv1d):
                if m.padding_mode != "zeros":
                    raise MicronasError(f"layer {node.target}: padding_mode={m.padding_mode!r} "
                                        "is not supported (zero padding only)")
                if max(_pair(m.dilation, "dilation", nm)) != 1 if isinstance(m, nn.Conv2d) \
                        else m.dilation[0] != 1:
                    raise MicronasError(f"layer {node.target}: dilated convolution is not "
                                        "supported")
                if isinstance(m, nn.Conv1d):
                    if isinstance(m.padding, str):
                        _pair(m.padding, "padding", nm)  # the one-line error
                    k, st, pd = (1, m.kernel_size[0]), (1, m.stride[0]), (0, m.padding[0])
                else:
                    k, st, pd = (_pair(m.kernel_size, "kernel", nm), _pair(m.stride, "stride", nm),
                                 _pair(m.padding, "padding", nm))
                bn = bn_follows(node)
                out = g.conv(x, m.out_channels, k, st, pd, m.groups, bn=bn is not None,
                             bias=m.bias is not None, name=nm, tag=str(node.target))
                tensor[nm] = out
                sources[nm] = (str(node.target), None if bn is None else str(bn.target))
                if bn is not None:
                    tensor[bn.name] = out
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                if nm not in tensor:  # not folded
                    tensor[nm] = g.affine(x, name=nm)
                    sources[nm] = (None, str(node.target))
            elif isinstance(m, nn.ReLU):
                tensor[nm] = g.relu(x, name=nm)
            elif _is_relu6(m):
                tensor[nm] = g.relu6(x, name=nm)
            elif isinstance(m, nn.Hardswish):
                tensor[nm] = g.hard_swish(x, name=nm)
            elif isinstance(m, nn.Sigmoid):
                tensor[nm] = g.logistic(x, name=nm)
            elif isinstance(m, nn.SiLU):
                tensor[nm] = g.silu(x, name=nm)
            elif isinstance(m, nn.Linear):
                tensor[nm] = g.fc(x, m.out_features, bias=m.bias is not None, name=nm)
                sources[nm] = (str(node.target), None)
            elif isinstance(m, nn.AvgPool2d | nn.MaxPool2d):
                kind = "avg" if isinstance(m, nn.AvgPool2d) else "max"
                tensor[nm] = g.pool(x, _pair(m.kernel_size, "kernel", nm),
                                    _pair(m.stride or m.kernel_size, "stride", nm),
                                    _pair(m.padding, "padding", nm), kind=kind, name=nm)
            elif isinstance(m, nn.AdaptiveAvgPool2d | nn.AdaptiveAvgPool1d) and m.output_size in (
                    1, (1, 1), (1,)):
                tensor[nm] = g.global_avgpool(x, name=nm)
            elif isinstance(m, nn.Identity | nn.Dropout | nn.Flatten):
                tensor[nm] = x
            elif isinstance(m, _ACTIVATION_MODULES):
                raise MicronasError(f"layer {node.target} ({type(m).__name__}) is an activation "
                                    "the IR tracer does not support; supported activations: "
                                    f"{', '.join(SUPPORTED_ACTIVATIONS)}")
            else:
                raise MicronasError(f"layer {node.target} ({type(m).__name__}) is not supported "
                                    "by the IR tracer")
        elif node.op == "call_function" and node.target in _ADD_FUNCS:
            tensor[nm] = g.add(src(node.args[0]), src(node.args[1]), name=nm)
        elif node.op == "call_function" and node.target in _RELU_FUNCS:
            tensor[nm] = g.relu(src(node.args[0]), name=nm)
        elif node.op == "call_function" and node.target in _CAT:
            xs = node.args[0]
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            if not isinstance(xs, list | tuple) or dim not in (1, -len(shape)):
                raise MicronasError(f"node {nm}: only concatenation along channels (dim=1) is "
                                    "supported")
            tensor[nm] = g.concat([src(x) for x in xs], name=nm)
        elif node.op == "call_function" and node.target is nn.functional.interpolate:
            kw = node.kwargs
            mode = kw.get("mode", node.args[3] if len(node.args) > 3 else "nearest")
            corners = kw.get("align_corners", node.args[4] if len(node.args) > 4 else None)
            if mode != "bilinear" or corners or kw.get("antialias"):
                raise MicronasError(f"node {nm}: only bilinear interpolation without "
                                    "align_corners or antialias is supported (mode="
                                    f"{mode!r}, align_corners={corners!r})")
            size = tuple(node.meta["tensor_meta"].shape[2:])
            tensor[nm] = g.resize_bilinear(src(node.args[0]), size, name=nm)  # type: ignore[arg-type]
        elif node.op == "call_function" and node.target in _RELU6_FUNCS:
            tensor[nm] = g.relu6(src(node.args[0]), name=nm)
        elif (node.op == "call_function" and node.target in _HARDSWISH_FUNCS) or (
                node.op == "call_method" and node.target == "hardswish"):
            tensor[nm] = g.hard_swish(src(node.args[0]), name=nm)
        elif (node.op == "call_function" and node.target in _SIGMOID_FUNCS) or (
                node.op == "call_method" and node.target == "sigmoid"):
            tensor[nm] = g.logistic(src(node.args[0]), name=nm)
        elif node.op == "call_function" and node.target in _SILU_FUNCS:
            tensor[nm] = g.silu(src(node.args[0]), name=nm)
        elif ((node.op == "call_function" and node.target in _MUL_FUNCS)
              or (node.op == "call_method" and node.target == "mul")) and len(node.args) == 2 \
                and all(isinstance(a, fx.Node) for a in node.args):
            tensor[nm] = g.mul(src(node.args[0]), src(node.args[1]), name=nm)
        elif (node.op == "call_function" and node.target in _FLATTEN) or (
                node.op == "call_method" and node.target in ("flatten", "view", "reshape")):
            tensor[nm] = src(node.args[0])
        elif node.op == "call_method" and node.target == "relu":
            tensor[nm] = g.relu(src(node.args[0]), name=nm)
        elif node.op == "call_method" and node.target == "mean" and _dims(node) in (
                ((2, 3), (-2, -1)) if len(shape) == 3 else ((2,), (-1,))):
            tensor[nm] = g.global_avgpool(src(node.args[0]), name=nm)
        elif (node.op in ("call_method", "call_function")
              and node.target in ("mul", "truediv", operator.mul, operator.truediv, torch.mul)
              and len(node.args) == 2 and isinstance(node.args[1], int | float)):
            x = src(node.args[0])
            is_zero = node.target in ("mul", operator.mul, torch.mul) and node.args[1] == 0
            tensor[nm] = g.zeros(g.shape(x), name=nm) if is_zero else x
        elif node.op == "call_function" and node.target is torch.zeros_like:
            tensor[nm] = g.zeros(g.shape(src(node.args[0])), name=nm)
        elif _is_activation_function(node):
            raise MicronasError(f"node {nm} ({getattr(node.target, '__name__', node.target)}) is "
                                "an activation the IR tracer does not support; supported "
                                f"activations: {', '.join(SUPPORTED_ACTIVATIONS)}")
        else:
            raise MicronasError(f"node {nm} ({node.op} {getattr(node.target, '__name__', node.target)}) "
                                "is not supported by the IR tracer")
    return g.build(outputs, meta={"traced": type(model).__name__, "sources": sources})
