"""Export an architecture as an int8 .tflite (checked in TFLM) or a float ONNX model (checked
with onnxruntime), written atomically."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from micronas.deploy.quantize import (
    WEIGHTED,
    FloatParams,
    QNetwork,
    TensorQuant,
    check_exportable,
    gaussian_batch,
    quantize_layers,
    random_weights,
)
from micronas.errors import MicronasError
from micronas.infra.fileio import atomic_write
from micronas.ir import Network, lower_for_tflm

FORMATS = ("tflite", "onnx")


@dataclass
class ExportResult:
    path: str
    format: str
    network: str
    size_bytes: int
    seed: int
    checks: dict[str, Any] = field(default_factory=dict)
    weights: str = "seeded stand-ins (untrained)"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "network": self.network,
                "size_bytes": self.size_bytes, "seed": self.seed, "weights": self.weights,
                "checks": self.checks}


def quantize_network(net: Network, weights: dict[str, FloatParams], calibration: np.ndarray,
                     input_quant: TensorQuant | None = None) -> QNetwork:
    """Quantise ``net`` with activation ranges from ``calibration`` (a float batch, ``(B, *input)``);
    ``input_quant``: the input's quantisation when it is fixed (an audio front end's int8
    features), else calibrated like every activation."""
    from micronas.deploy.reference import run_float

    check_exportable(net)
    net = lower_for_tflm(net)
    missing = [lay.name for lay in net.layers if lay.op in WEIGHTED and lay.name not in weights]
    if missing:
        raise MicronasError(f"no weights for layer {missing[0]}")
    acts = run_float(net, weights, calibration)
    return quantize_layers(net, weights, acts, calibration.shape[0], input_quant)


def prepare(net: Network, seed: int = 0, calibration: np.ndarray | None = None,
            weights: dict[str, FloatParams] | None = None) -> QNetwork:
    """Quantise ``net`` (seeded stand-in weights unless given; Gaussian calibration batch of
    8 from ``seed + 1`` unless given)."""
    weights = weights if weights is not None else random_weights(net, seed)
    calib = calibration if calibration is not None else gaussian_batch(net, 8, seed + 1)
    return quantize_network(net, weights, calib)


def parity(qnet: QNetwork, model: bytes, index: dict[str, int], x_q: np.ndarray) -> dict[str, Any]:
    """TFLM against the numpy integer model and the fake-quantised PyTorch reference.

    ``tflm_equals_int8_model``: every activation tensor of every sample bit-exact.
    ``layerwise_*``: each layer of the reference fed TFLM's own int8 inputs (kernel parity).
    ``output_*``: the network output of the reference run end to end on its own values."""
    from micronas.deploy.int8 import run_int8
    from micronas.deploy.reference import run_fake_quant
    from micronas.deploy.tflite import tflm_tensors

    net = qnet.net
    shapes = {k: v.shape for k, v in net.tensors.items()}
    ints = run_int8(qnet, x_q)
    exact, layer_diffs, out_diffs = True, [], []
    for i in range(len(x_q)):
        t = tflm_tensors(model, index, shapes, x_q[i])
        exact &= all(np.array_equal(t[k].reshape(-1), ints[k][i].reshape(-1)) for k in t)
        given = {k: v[None] for k, v in t.items()}
        lw = run_fake_quant(qnet, x_q[i:i + 1], given)
        layer_diffs.append(np.concatenate([np.abs(lw[k][0].astype(np.int64) - t[k]).reshape(-1)
                                           for k in t if k not in net.inputs]))
        e2e = run_fake_quant(qnet, x_q[i:i + 1])
        out = net.outputs[0]
        out_diffs.append(np.abs(e2e[out][0].astype(np.int64) - t[out]).reshape(-1))
    ld, od = np.concatenate(layer_diffs), np.concatenate(out_diffs)
    return {"samples": len(x_q), "tflm_equals_int8_model": bool(exact),
            "layerwise_values": int(ld.size), "layerwise_within_1lsb": float((ld <= 1).mean()),
            "layerwise_max_lsb": int(ld.max()),
            "output_values": int(od.size), "output_within_1lsb": float((od <= 1).mean()),
            "output_max_lsb": int(od.max())}


def export(net: Network, fmt: str, out: str | Path, seed: int = 0,
           calibration: np.ndarray | None = None, check: bool = True,
           weights: dict[str, FloatParams] | None = None, check_inputs: np.ndarray | None = None,
           weights_note: str | None = None) -> ExportResult:
    """Write ``net`` to ``out`` as ``fmt`` (``tflite`` or ``onnx``) and check it (on
    ``check_inputs``, float, or seeded Gaussian inputs). ``weights``: float weights (trained);
    seeded stand-ins from ``seed`` when None."""
    if fmt not in FORMATS:
        raise MicronasError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    path = Path(out)
    if not path.parent.exists() or path.is_dir():
        raise MicronasError(f"--out {path}: give a file path in an existing directory")
    check_exportable(net)
    note = weights_note or ("seeded stand-ins (untrained)" if weights is None else "given")
    weights = weights if weights is not None else random_weights(net, seed)
    if fmt == "tflite":
        from micronas.deploy.tflite import build_tflite, tflm_arena
        from micronas.hardware.planner import plan

        qnet = prepare(net, seed, calibration, weights)
        data, index = build_tflite(qnet)
        checks: dict[str, Any] = {}
        if check:
            x = check_inputs if check_inputs is not None else gaussian_batch(net, 2, seed + 2)
            x_q = qnet.input_quant.quantize(x)
            checks = parity(qnet, data, index, x_q)
            arena = tflm_arena(data)
            checks.update({"tflm_arena_head_bytes": arena.head, "tflm_arena_tail_bytes": arena.tail,
                           "planner_arena_bytes": plan(qnet.net)[0]})
    else:
        data, checks = _onnx(net, weights, seed, check, check_inputs)
    _write(path, data)
    return ExportResult(str(path), fmt, net.name, len(data), seed, checks, note)


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, lambda f: f.write(data), binary=True)
    except OSError as e:
        raise MicronasError(f"cannot write {path} ({e.strerror}); choose another path") from None


def _onnx(net: Network, weights: dict[str, FloatParams], seed: int, check: bool,
          check_inputs: np.ndarray | None = None) -> tuple[bytes, dict[str, Any]]:
    import torch

    from micronas.deploy.reference import IRModule, run_float

    module = IRModule(net, weights).eval()
    shape = net.tensors[net.inputs[0]].shape
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, *shape),), buf, dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    data = buf.getvalue()
    checks: dict[str, Any] = {}
    if check:
        import onnxruntime as ort

        x = check_inputs if check_inputs is not None else gaussian_batch(net, 4, seed + 2)
        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x.astype(np.float32)})[0]
        ref = run_float(net, weights, x)[net.outputs[0]]
        err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12)
        checks = {"onnxruntime_max_rel_error": float(err)}
    return data, checks
