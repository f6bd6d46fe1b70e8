"""Emulated latency of whole networks, fast: every distinct layer is emulated once.

A layer's instruction stream depends on its op, shapes, kernel, stride, padding and fused
activation, not on the values it computes (the kernels' data-dependent branches are
predicated), so ``measure_network(..., method="layers")`` emulates each distinct layer
*signature* once, as a one-layer network, and sums. Results are cached on disk per core,
keyed by a hash of the kernels, the code generator and the cycle table. ``method="whole"``
emulates the whole network in one run and checks every tensor against the integer
reference; ``benchmarks/emulated_latency.py`` compares the two.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from importlib import resources

import numpy as np

from micronas.deploy import codegen
from micronas.deploy.export import prepare
from micronas.deploy.quantize import check_exportable, gaussian_batch
from micronas.errors import MicronasError
from micronas.infra.cache import Memo
from micronas.ir import GraphBuilder, Layer, Network, Tensor, lower_for_tflm
from micronas.measure import emulate
from micronas.measure.emulate import LayerMeasurement, Measurement


def signature(net: Network, layer: Layer) -> str:
    shapes = [net.tensors[t].shape for t in layer.inputs]
    return json.dumps([layer.op, shapes, net.tensors[layer.output].shape, layer.kernel,
                       layer.stride, layer.padding, layer.groups, layer.activation,
                       layer.bias_params > 0])


def single_layer_network(net: Network, layer: Layer) -> Network:
    """``layer`` alone, reading a fresh input (both operands of an add read it). A
    concatenation of differently sized inputs reads 1x1 convolutions of one input (only the
    concatenation is measured)."""
    src = layer.inputs[0]
    if layer.op == "concat" and len({net.tensors[t].shape for t in layer.inputs}) > 1:
        shapes = [net.tensors[t].shape for t in layer.inputs]
        g = GraphBuilder("concat", (max(s[0] for s in shapes), *shapes[0][1:]), "x")
        xs = [g.conv("x", s[0], 1, name=f"x{i}") for i, s in enumerate(shapes)]
        g.concat(xs, name=layer.output)
        one = g.build([layer.output])
        one.layers[-1] = replace(layer, inputs=tuple(xs))
        return one
    tensors = {"x": Tensor("x", net.tensors[src].shape), layer.output: net.tensors[layer.output]}
    one = replace(layer, inputs=tuple("x" for _ in layer.inputs))
    return Network(f"{layer.op}", tensors, [one], ("x",), (layer.output,), {})


def _code_hash(core: str) -> str:
    h = hashlib.sha256()
    for text in codegen.kernel_sources().values():
        h.update(text.encode())
    for pkg, mod in (("deploy", "codegen.py"), ("measure", "emulate.py"),
                     ("measure", "cycles.toml"), ("deploy", "int8.py"), ("deploy", "layout.py"),
                     ("measure", "layers.py")):
        h.update((resources.files(f"micronas.{pkg}") / mod).read_bytes())
    h.update(core.encode())
    return h.hexdigest()[:16]


class LayerCache(Memo):
    """Per-core memo of emulated layer signatures, in the cache directory (it is only a
    cache; the file name carries a hash of the kernels, the generator and the core)."""

    def __init__(self, core: str, disk: bool = True):
        super().__init__(f"emulated-{core}-{_code_hash(core)}.json", enabled=disk)
        self.core = core

    @property
    def memo(self) -> dict[str, dict]:
        return self.data


def measure_layer(net: Network, layer: Layer, core: str, cache: LayerCache | None = None,
                  seed: int = 0) -> LayerMeasurement:
    """Emulated instructions and cycles of one layer of ``net`` (memoised by signature)."""
    key = signature(net, layer)
    if cache is not None and key in cache.memo:
        m = cache.memo[key]
        return LayerMeasurement(layer.name, m["instructions"], m["cycles"], m["classes"])
    one = single_layer_network(net, layer)
    q = prepare(one, seed)
    x = q.input_quant.quantize(gaussian_batch(one, 1, seed + 2))[0]
    res = emulate.measure(q, core, x).layers[-1]  # the measured layer comes last
    if cache is not None:
        cache.put(key, {"instructions": res.instructions, "cycles": res.cycles,
                           "classes": res.classes})
    return LayerMeasurement(layer.name, res.instructions, res.cycles, res.classes)


def measure_network(net: Network, core: str, method: str = "layers", seed: int = 0,
                    cache: LayerCache | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Measurement:
    """Emulated per-layer instructions and cycles of ``net`` on ``core``. ``progress(done,
    total)``: after each layer (``layers``) or once (``whole``)."""
    check_exportable(net)
    if method == "whole":
        from micronas.deploy.int8 import run_int8

        q = prepare(net, seed)
        x = q.input_quant.quantize(gaussian_batch(net, 1, seed + 2))
        m = emulate.measure(q, core, x[0])
        ref = run_int8(q, x)
        m.bit_exact = all(np.array_equal(v.reshape(-1), ref[k][0].reshape(-1))
                          for k, v in m.outputs.items())
        if progress is not None:
            progress(1, 1)
        return m
    if method != "layers":
        raise MicronasError(f"unknown measurement method {method!r}; choose layers or whole")
    lowered = lower_for_tflm(net)
    own = cache is None
    cache = cache if cache is not None else LayerCache(core)
    layers = []
    for i, layer in enumerate(lowered.layers):
        layers.append(measure_layer(lowered, layer, core, cache, seed))
        if progress is not None:
            progress(i + 1, len(lowered.layers))
    if own:
        cache.save()
    return Measurement(core, layers, method="layers")
