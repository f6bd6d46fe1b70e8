"""From a trained checkpoint to int8 and to a bundle for the board.

:func:`quantize_checkpoint`: the trained module -> ``(Network, weights)`` with BatchNorm
folded (:func:`micronas.deploy.weights.weights_from_torch`) -> int8 post-training
quantisation with activation ranges from training samples -> ``.tflite``.
:func:`tflm_accuracy` runs a test set through the TFLM interpreter itself.

:func:`deploy` writes the bundle (``docs/deploy.md``, "Bundle"):

- ``model.tflite`` and the same bytes as an aligned C array, ``model_data.c`` / ``.h``;
- ``model_config.h``: input / output shapes, scales and zero points, the input
  normalisation, class names, and the arena size to give TFLM;
- ``main.cc``: a minimal TFLM program (the op resolver for exactly the model's ops);
- ``standalone/``: our own C (the int8 kernels and the planner's arena layout, no
  interpreter): ``model.c``, ``mn_model.h``, ``mn_kernels.c`` / ``.h``;
- ``bundle.json``: what was measured (float and int8 accuracy, costs, the C's flash and
  SRAM from ``arm-none-eabi-size``, whether the emulated standalone C equals TFLM).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from micronas.deploy.export import quantize_network
from micronas.deploy.quantize import QNetwork
from micronas.deploy.weights import weights_from_torch
from micronas.errors import MicronasError
from micronas.fileio import atomic_write
from micronas.hardware import Device, estimate
from micronas.ir import Network
from micronas.spaces import get_space
from micronas.tasks.data import Dataset, load_dataset
from micronas.train import evaluate, load_checkpoint, module_from_checkpoint, prepare_inputs

CALIBRATION_SAMPLES = 256


@dataclass
class Int8Model:
    """A trained network quantised to int8, with its .tflite."""

    checkpoint: dict[str, Any]
    net: Network                   # the traced float network (BatchNorm folded)
    qnet: QNetwork                 # lowered for TFLM and quantised
    tflite: bytes
    index: dict[str, int]
    float_accuracy: float          # torch, eval mode, whole test set
    calibration_samples: int
    weights: dict[str, Any]        # float, BatchNorm folded (layer name -> FloatParams)
    calibration: np.ndarray        # the float batch the activation ranges came from
    x_test: torch.Tensor           # float test inputs at the network's input size
    y_test: torch.Tensor


def dataset_of(ck: dict[str, Any]) -> Dataset:
    """Reload the data a checkpoint was trained on (same split)."""
    d = ck["identity"]["data"]
    ds = load_dataset(d["ref"], seed=int(d.get("split_seed", 0)))
    if (len(ds.y_train), len(ds.y_test)) != (d["train"], d["test"]):
        raise MicronasError(f"the data at {d['ref']} changed since training ({d['train']} / "
                            f"{d['test']} samples then, {len(ds.y_train)} / {len(ds.y_test)} now); "
                            "retrain or restore it")
    return ds


@dataclass
class Trained:
    """A checkpoint's network as float IR (BatchNorm folded), its calibration batch, its
    float test accuracy and test set."""

    ck: dict[str, Any]
    net: Any
    weights: dict[str, Any]
    calibration: np.ndarray
    float_accuracy: float
    x_test: torch.Tensor
    y_test: torch.Tensor


def trained_network(checkpoint: str | Path | dict[str, Any], ds: Dataset | None = None,
                    calibration_samples: int = CALIBRATION_SAMPLES, seed: int = 0) -> Trained:
    """The float network of a finished checkpoint and ``calibration_samples`` seeded
    training samples (no augmentation) to calibrate its int8 ranges on."""
    ck = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    if not ck.get("complete"):
        raise MicronasError(f"checkpoint {ck.get('path')} is from epoch {ck['epoch']} of "
                            f"{ck['epochs']}; finish training first (rerun 'micronas train' "
                            "with the same arguments)")
    sp, arch, task, module = module_from_checkpoint(ck)
    ds = ds or dataset_of(ck)
    shape = tuple(ck["network_input"])
    x_tr, x_te = prepare_inputs(ds, shape)   # type: ignore[arg-type]
    y_te = torch.from_numpy(ds.y_test)
    float_acc = evaluate(module, x_te, y_te)
    net, weights = weights_from_torch(module, shape, name=f"{sp.name}:{ck['identity']['arch']}")
    n = min(int(calibration_samples), len(x_tr))
    if n < 1:
        raise MicronasError("--calibration-samples must be at least 1")
    pick = np.sort(np.random.default_rng(seed).permutation(len(x_tr))[:n])
    calib = x_tr[torch.from_numpy(pick)].double().numpy()
    return Trained(ck, net, weights, calib, float_acc, x_te, y_te)


def quantize_checkpoint(checkpoint: str | Path | dict[str, Any], ds: Dataset | None = None,
                        calibration_samples: int = CALIBRATION_SAMPLES, seed: int = 0,
                        ) -> Int8Model:
    """int8 model of a trained checkpoint (:func:`trained_network`'s calibration)."""
    t = trained_network(checkpoint, ds, calibration_samples, seed)
    ck, net, weights, calib, float_acc, x_te, y_te = (t.ck, t.net, t.weights, t.calibration,
                                                      t.float_accuracy, t.x_test, t.y_test)
    n = len(calib)
    qnet = quantize_network(net, weights, calib)
    from micronas.deploy.tflite import build_tflite

    data, index = build_tflite(qnet)
    return Int8Model(ck, net, qnet, data, index, float_acc, n, weights, calib, x_te, y_te)


def tflm_outputs(model: Int8Model, x: torch.Tensor,
                 progress: Callable[[int], None] | None = None) -> np.ndarray:
    """int8 outputs of the TFLM interpreter for float inputs ``x`` (quantised here)."""
    from micronas.deploy.tflite import run_tflm

    xq = model.qnet.input_quant.quantize(x.double().numpy())
    outs = []
    for i in range(0, len(xq), 250):
        outs.append(run_tflm(model.tflite, xq[i:i + 250]))
        if progress is not None:
            progress(len(xq[i:i + 250]))
    return np.concatenate(outs)


def tflm_accuracy(model: Int8Model, limit: int | None = None,
                  progress: Callable[[int], None] | None = None) -> tuple[float, int]:
    """Top-1 accuracy of the .tflite in the TFLM interpreter on the test set (all of it
    unless ``limit``) and the number of samples run."""
    n = len(model.y_test) if limit is None else min(limit, len(model.y_test))
    out = tflm_outputs(model, model.x_test[:n], progress)
    return float((out.argmax(1) == model.y_test[:n].numpy()).mean()), n


def export_checkpoint(checkpoint: str | Path, fmt: str, out: str | Path, arch: Any = None,
                      check: bool = True, calibration_samples: int = CALIBRATION_SAMPLES):
    """``micronas export --weights``: the trained network as int8 .tflite (calibrated on
    training samples) or float ONNX (BatchNorm folded), checked on two test samples."""
    from micronas.deploy.export import export

    ck = load_checkpoint(checkpoint)
    want = ck["identity"]["arch"]
    if arch is not None and str(arch).strip() and str(arch).strip() != want:
        sp = get_space(ck["identity"]["space"])
        if sp.format(sp.parse(arch)) != want:
            raise MicronasError(f"--weights {ck['path']} holds architecture {want}, not {arch}; "
                                "drop the architecture or give the matching checkpoint")
    m = trained_network(ck, calibration_samples=calibration_samples)
    res = export(m.net, fmt, out, 0, m.calibration, check, m.weights,
                 m.x_test[:2].double().numpy(), f"trained ({ck['path']}, epoch {ck['epoch']})")
    res.checks["float_test_accuracy"] = m.float_accuracy
    return res


# --- the bundle -------------------------------------------------------------------------

def _c_bytes(data: bytes, per_line: int = 16) -> str:
    lines = []
    for i in range(0, len(data), per_line):
        lines.append("  " + ", ".join(f"0x{b:02x}" for b in data[i:i + per_line]) + ",")
    return "\n".join(lines)


def _ident(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).upper()


_TFLM_OPS = {"conv2d": "AddConv2D", "depthwise_conv2d": "AddDepthwiseConv2D",
             "affine": "AddDepthwiseConv2D", "fully_connected": "AddFullyConnected",
             "avgpool2d": "AddAveragePool2D", "global_avgpool": "AddAveragePool2D",
             "maxpool2d": "AddMaxPool2D", "add": "AddAdd", "concat": "AddConcatenation",
             "relu": "AddRelu", "relu6": "AddRelu6", "pad": "AddPad"}


def _shape_text(shape: tuple[int, ...]) -> str:
    if len(shape) == 3:
        c, h, w = shape
        return f"{{1, {h}, {w}, {c}}}"
    return "{1, " + ", ".join(map(str, shape)) + "}"


def _config_h(m: Int8Model, ds: Dataset, arena: int) -> str:
    q = m.qnet
    inp, out = q.net.tensors[q.net.inputs[0]].shape, q.net.tensors[q.net.outputs[0]].shape
    iq, oq = q.input_quant, q.output_quant
    names = ", ".join(json.dumps(n) for n in ds.class_names)
    mean = ", ".join(f"{v:.9g}f" for v in ds.mean)
    std = ", ".join(f"{v:.9g}f" for v in ds.std)
    return f"""/* Generated by micronas: how to feed and read the model. */
#ifndef MODEL_CONFIG_H
#define MODEL_CONFIG_H

/* Architecture: {m.checkpoint['identity']['space']} {m.checkpoint['identity']['arch']} */
/* Input: NHWC int8 {_shape_text(inp)}; output: int8 {_shape_text(out)} (logits). */
#define MN_INPUT_HEIGHT {inp[1] if len(inp) == 3 else 1}
#define MN_INPUT_WIDTH {inp[2] if len(inp) == 3 else 1}
#define MN_INPUT_CHANNELS {inp[0]}
#define MN_INPUT_SIZE {int(np.prod(inp))}
#define MN_OUTPUT_SIZE {int(np.prod(out))}
#define MN_NUM_CLASSES {ds.classes}

/* int8 quantisation: real = scale * (q - zero_point). */
#define MN_INPUT_SCALE {iq.scale:.9g}f
#define MN_INPUT_ZERO_POINT {iq.zero_point}
#define MN_OUTPUT_SCALE {oq.scale:.9g}f
#define MN_OUTPUT_ZERO_POINT {oq.zero_point}

/* The model expects normalised input: x = (pixel / 255 - mean[c]) / std[c]
 * (for .npz data: (value - mean[c]) / std[c]), then q = round(x / scale) + zero_point,
 * clamped to [-128, 127]. */
static const float mn_input_mean[MN_INPUT_CHANNELS] = {{{mean}}};
static const float mn_input_std[MN_INPUT_CHANNELS] = {{{std}}};
static const char *const mn_class_names[MN_NUM_CLASSES] = {{{names}}};

/* Tensor arena to give TFLM (micronas's planner: activations + scratch + TFLM's persistent
 * data, 16-byte aligned). TFLM's own x86 build reported it in bundle.json. */
#define MN_TFLM_ARENA_BYTES {arena}

#endif
"""


def _main_cc(m: Int8Model) -> str:
    ops = sorted({_TFLM_OPS[la.op] for la in m.qnet.net.layers})
    adds = "\n".join(f"  resolver.{op}();" for op in ops)
    return f"""// Generated by micronas: the minimal TensorFlow Lite Micro program for model_data.c.
// Build it inside a TFLM project (tensorflow/lite/micro), with the CMSIS-NN kernels for Arm.
#include <stdint.h>

#include "model_config.h"
#include "model_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

alignas(16) static uint8_t tensor_arena[MN_TFLM_ARENA_BYTES];

// Fill `input` (NHWC, MN_INPUT_SIZE values) from the sensor, normalised and quantised as
// model_config.h says; returns the predicted class.
int classify(const float* normalised) {{
  static const tflite::Model* model = tflite::GetModel(g_model_data);
  static tflite::MicroMutableOpResolver<{len(ops)}> resolver;
  static tflite::MicroInterpreter* interpreter = nullptr;
  if (interpreter == nullptr) {{
{adds}
    static tflite::MicroInterpreter instance(model, resolver, tensor_arena,
                                             MN_TFLM_ARENA_BYTES);
    if (instance.AllocateTensors() != kTfLiteOk) return -1;
    interpreter = &instance;
  }}
  TfLiteTensor* input = interpreter->input(0);
  for (int i = 0; i < MN_INPUT_SIZE; ++i) {{
    float q = normalised[i] / MN_INPUT_SCALE + MN_INPUT_ZERO_POINT;
    q = q < -128.f ? -128.f : (q > 127.f ? 127.f : q);
    input->data.int8[i] = (int8_t)(q < 0 ? q - 0.5f : q + 0.5f);
  }}
  if (interpreter->Invoke() != kTfLiteOk) return -1;
  const int8_t* out = interpreter->output(0)->data.int8;
  int best = 0;
  for (int i = 1; i < MN_OUTPUT_SIZE; ++i) if (out[i] > out[best]) best = i;
  return best;
}}

int main() {{
  static float sample[MN_INPUT_SIZE] = {{0}};
  return classify(sample) < 0;
}}
"""


def _model_h(m: Int8Model, offsets: dict[str, int], arena: int) -> str:
    net = m.qnet.net
    return f"""/* Generated by micronas: the standalone int8 network (no interpreter). */
#ifndef MN_MODEL_H
#define MN_MODEL_H
#include <stdint.h>

#define MN_ARENA_BYTES {max(arena, 16)}
extern int8_t mn_arena[MN_ARENA_BYTES];
/* Write the quantised NHWC input here, call mn_run(), read the int8 logits. */
#define MN_INPUT_OFFSET {offsets[net.inputs[0]]}
#define MN_OUTPUT_OFFSET {offsets[net.outputs[0]]}
#define mn_input() (mn_arena + MN_INPUT_OFFSET)
#define mn_output() ((const int8_t *)(mn_arena + MN_OUTPUT_OFFSET))
void mn_run(void);
#endif
"""


CORE_FLAGS = {"cortex-m4": ["-mcpu=cortex-m4", "-mfloat-abi=soft"],
              "cortex-m7": ["-mcpu=cortex-m7", "-mfloat-abi=soft"],
              "cortex-m33": ["-mcpu=cortex-m33", "-mfloat-abi=soft"],
              "cortex-m0plus": ["-mcpu=cortex-m0plus"]}


def compile_bundle(d: Path, core: str) -> dict[str, Any]:
    """Compile ``standalone/`` and ``model_data.c`` with arm-none-eabi-gcc for ``core``; the
    standalone C's flash (text + data) and SRAM (data + bss) from arm-none-eabi-size."""
    from micronas.deploy.emulate import toolchain

    gcc = toolchain()
    flags = CORE_FLAGS.get(core)
    if flags is None:
        raise MicronasError(f"no compiler flags for core {core!r}; known: {', '.join(CORE_FLAGS)}")
    with tempfile.TemporaryDirectory(prefix="micronas-bundle-") as tmp:
        objs = []
        for src in [d / "standalone" / "model.c", d / "standalone" / "mn_kernels.c",
                    d / "model_data.c"]:
            obj = Path(tmp) / (src.stem + ".o")
            cmd = [gcc, *flags, "-mthumb", "-O2", "-std=c99", "-Wall", "-Werror", "-ffreestanding",
                   "-I", str(src.parent), "-c", str(src), "-o", str(obj)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                first = (r.stderr or r.stdout).strip().splitlines()
                raise MicronasError(f"compiling {src.name} failed: {first[0] if first else ''}")
            objs.append(obj)
        size = subprocess.run([gcc.replace("gcc", "size"), "-A", str(objs[0]), str(objs[1])],
                              capture_output=True, text=True, check=True).stdout
    text = data = bss = 0
    for line in size.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            sec, n = parts[0], int(parts[1])
            if sec.startswith(".text") or sec.startswith(".rodata"):
                text += n
            elif sec.startswith(".data"):
                data += n
            elif sec.startswith(".bss") or sec == "COMMON":
                bss += n
    return {"compiler": gcc, "core": core, "flags": flags + ["-mthumb", "-O2"],
            "standalone_flash_bytes": text + data, "standalone_sram_bytes": data + bss}


def emulated_equals_tflm(m: Int8Model, core: str, samples: int = 2) -> dict[str, Any]:
    """Run the standalone C in the emulator on the first ``samples`` test inputs and compare
    its int8 outputs with TFLM's, byte for byte."""
    from micronas.deploy.emulate import build, run

    fw = build(m.qnet, core)
    xs = m.x_test[:samples]
    tflm = tflm_outputs(m, xs)
    xq = m.qnet.input_quant.quantize(xs.double().numpy())
    out = m.qnet.net.outputs[0]
    same, cycles = True, []
    for i in range(len(xq)):
        meas = run(fw, m.qnet, xq[i])
        same &= bool(np.array_equal(meas.outputs[out].reshape(-1), tflm[i].reshape(-1)))
        cycles.append(meas.cycles)
    return {"samples": int(len(xq)), "standalone_equals_tflm": same,
            "emulated_cycles": float(np.mean(cycles))}


@dataclass
class DeployResult:
    out: str
    files: list[str]
    info: dict[str, Any] = field(default_factory=dict)


def _write_text(path: Path, text: str) -> None:
    try:
        atomic_write(path, lambda f: f.write(text))
    except OSError as e:
        raise MicronasError(f"cannot write {path} ({e.strerror}); choose another --out") from None


def _write_bytes(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, lambda f: f.write(data), binary=True)
    except OSError as e:
        raise MicronasError(f"cannot write {path} ({e.strerror}); choose another --out") from None


def deploy(checkpoint: str | Path | dict[str, Any] | Int8Model, device: Device, out: str | Path,
           tflm_samples: int | None = None, verify_samples: int = 2, compile_c: bool = True,
           reserve: tuple[int, int] | None = None,
           progress: Callable[[str, int, int | None], None] | None = None) -> DeployResult:
    """Quantise a trained checkpoint, measure its int8 accuracy in TFLM, write the bundle to
    ``out`` and check it (compiled for the device's core; the emulated standalone C equal to
    TFLM on ``verify_samples`` test inputs). Needs the toolchain only for the checks."""
    from micronas.deploy.codegen import generate, kernel_sources
    from micronas.deploy.tflite import tflm_arena

    t0 = time.perf_counter()
    m = checkpoint if isinstance(checkpoint, Int8Model) else quantize_checkpoint(checkpoint)
    ck = m.checkpoint
    ds_info = ck["identity"]["data"]
    stages: dict[str, float] = {"quantise_seconds": time.perf_counter() - t0}
    t1 = time.perf_counter()
    n_total = len(m.y_test) if tflm_samples is None else min(tflm_samples, len(m.y_test))
    acc, n = tflm_accuracy(m, tflm_samples, (lambda k: progress("TFLM test set", k, n_total))
                           if progress else None)
    stages["tflm_seconds"] = time.perf_counter() - t1
    cost = estimate(m.net, device)
    arena = -(-(cost.arena_bytes + cost.scratch_bytes + cost.persistent_bytes) // 16) * 16
    gen = generate(m.qnet)
    outdir = Path(out)
    try:
        (outdir / "standalone").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MicronasError(f"--out {outdir} is not a writable directory ({e.strerror})") from None
    ds = _names_only(ck)
    files: dict[str, str | bytes] = {
        "model.tflite": m.tflite,
        "model_data.h": ("#ifndef MODEL_DATA_H\n#define MODEL_DATA_H\n"
                         "extern const unsigned char g_model_data[];\n"
                         "extern const unsigned int g_model_data_len;\n#endif\n"),
        "model_data.c": ("/* Generated by micronas: model.tflite as a C array. */\n"
                         '#include "model_data.h"\n\n'
                         "__attribute__((aligned(16))) const unsigned char g_model_data[] = {\n"
                         f"{_c_bytes(m.tflite)}\n}};\n"
                         f"const unsigned int g_model_data_len = {len(m.tflite)};\n"),
        "model_config.h": _config_h(m, ds, arena),
        "main.cc": _main_cc(m),
        "standalone/model.c": gen.source,
        "standalone/mn_model.h": _model_h(m, gen.offsets, gen.arena_bytes),
        **{f"standalone/{k}": v for k, v in kernel_sources().items()},
    }
    for name, content in files.items():
        (_write_bytes if isinstance(content, bytes) else _write_text)(outdir / name, content)
    tflm = tflm_arena(m.tflite)
    info: dict[str, Any] = {
        "space": ck["identity"]["space"], "arch": ck["identity"]["arch"],
        "task": ck["identity"]["task"], "data": ds_info, "seed": ck["identity"]["seed"],
        "recipe": ck["identity"]["recipe"], "network_input": ck["network_input"],
        "float_test_accuracy": m.float_accuracy, "int8_tflm_test_accuracy": acc,
        "int8_tflm_test_samples": n, "calibration_samples": m.calibration_samples,
        "device": device.name, "core": device.core,
        "latency_ms": cost.latency_ms,
        "latency_runtime": f"{device.runtime.name} on the board (cost model, {device.name})",
        "peak_sram_bytes": cost.peak_sram_bytes, "flash_bytes": cost.flash_bytes,
        "sram_limit_bytes": device.sram_bytes, "flash_limit_bytes": device.flash_bytes,
        "macs": cost.macs, "params": cost.params, "tflite_bytes": len(m.tflite),
        "tflm_arena_bytes_planned": arena, "tflm_arena_head_bytes_x86": tflm.head,
        "planner_activation_bytes": gen.arena_bytes, "versions": ck.get("versions", {}),
    }
    if reserve is not None:
        rs, rf = reserve
        info.update({"reserve_sram_bytes": rs, "reserve_flash_bytes": rf,
                     "fits_with_reserve": cost.peak_sram_bytes + rs <= device.sram_bytes
                     and cost.flash_bytes + rf <= device.flash_bytes})
    if compile_c:
        t2 = time.perf_counter()
        info["compiled"] = compile_bundle(outdir, device.core)
        if verify_samples > 0:
            info["emulator"] = emulated_equals_tflm(m, device.core, verify_samples)
            if not info["emulator"]["standalone_equals_tflm"]:
                raise MicronasError("the emulated standalone C differs from TFLM; please report "
                                    "this with the checkpoint")
        stages["compile_and_verify_seconds"] = time.perf_counter() - t2
    else:
        info["compiled"] = None
    info["stages"] = stages
    _write_text(outdir / "bundle.json", json.dumps(info, indent=2, default=str) + "\n")
    return DeployResult(str(outdir), sorted([*files, "bundle.json"]), info)


def _names_only(ck: dict[str, Any]) -> Dataset:
    """The bits of the dataset the headers need (class names, normalisation)."""
    norm = ck["normalisation"]
    shape = tuple(ck["network_input"])
    empty = np.zeros((1, *shape), dtype=np.float32)
    return Dataset(ck["identity"]["task"]["name"], empty, np.zeros(1, np.int64), empty,
                   np.zeros(1, np.int64), tuple(ck["class_names"]), tuple(norm["mean"]),
                   tuple(norm["std"]), ck["identity"]["data"]["source"])


__all__ = ["CALIBRATION_SAMPLES", "DeployResult", "Int8Model", "compile_bundle", "dataset_of",
           "deploy", "emulated_equals_tflm", "quantize_checkpoint", "tflm_accuracy",
           "tflm_outputs"]
