"""The bundle for the board, written from an int8 model (``docs/deploy.md``, "Bundle").

- ``model.tflite`` and the same bytes as an aligned C array, ``model_data.c`` / ``.h``;
- ``model_config.h``: input / output shapes, scales and zero points, the input
  normalisation, class names, and the arena size to give TFLM;
- ``main.cc``: a minimal TFLM program (the op resolver for exactly the model's ops);
- ``standalone/``: our own C (the int8 kernels and the planner's arena layout, no
  interpreter): ``model.c``, ``mn_model.h``, ``mn_kernels.c`` / ``.h``, and
  ``mn_preprocess.c`` / ``.h`` (raw input -> the int8 input, bit for bit as in Python);
- for an audio task, ``mn_frontend.c`` / ``mn_frontend.h``: the MFCC front end (calls
  CMSIS-DSP's ``arm_mfcc_q15`` with the checkpoint's parameters and tables; the project links
  CMSIS-DSP) producing the model's int8 input;
- ``firmware/``: a CMake project for arm-none-eabi-gcc building that C into an ELF which
  classifies a real test sample and prints the class through semihosting;
- ``arduino/MicronasModel/``: the same C as an Arduino library with an example sketch
  (:mod:`micronas.ship.firmware` renders both);
- ``bundle.json``: what was measured (float and int8 accuracy, costs, the C's flash and
  SRAM from ``arm-none-eabi-size``, whether the emulated standalone C equals TFLM).

The C and C++ files are templates (``micronas/ship/templates/*.in``) filled from one typed
description of the model (:class:`ModelDescription`).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from micronas.errors import MicronasBug, MicronasError
from micronas.hardware import Device, estimate
from micronas.infra.fileio import atomic_write
from micronas.ir import TFLITE_OPS
from micronas.measure.toolchain import CORE_FLAGS, section_sizes, toolchain
from micronas.ship.checkpoint import Checkpoint
from micronas.ship.int8 import Int8Model, quantize_checkpoint, tflm_accuracy, tflm_outputs

#: Progress callback of long stages: (stage name, done, total or None).
StageProgress = Callable[[str, int, int | None], None]

#: MicroMutableOpResolver's method for each TFLite builtin operator.
_RESOLVER = {"CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
             "FULLY_CONNECTED": "AddFullyConnected", "AVERAGE_POOL_2D": "AddAveragePool2D",
             "MAX_POOL_2D": "AddMaxPool2D", "ADD": "AddAdd", "CONCATENATION": "AddConcatenation",
             "RELU": "AddRelu", "RELU6": "AddRelu6", "PAD": "AddPad",
             "RESIZE_BILINEAR": "AddResizeBilinear",
             "HARD_SWISH": "AddHardSwish", "LOGISTIC": "AddLogistic", "MUL": "AddMul"}


@dataclass(frozen=True)
class ModelDescription:
    """What the bundle's templates say about the model: shapes, quantisation, input
    normalisation, class names, arenas and the TFLM ops it needs."""

    space: str
    arch: str
    input_shape: tuple[int, ...]     # (C, H, W) or flat
    output_shape: tuple[int, ...]
    classes: int
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    tflm_arena_bytes: int            # planned, 16-byte aligned
    tflm_ops: tuple[str, ...]        # MicroMutableOpResolver calls, sorted
    standalone_arena_bytes: int
    input_offset: int                # in the standalone arena
    output_offset: int
    #: the cost model's figures for the device and runtime the bundle was made for
    prediction: str = ""

    @staticmethod
    def of(m: Int8Model, arena: int, standalone_arena: int,
           offsets: dict[str, int]) -> ModelDescription:
        q, ck = m.qnet, m.checkpoint
        net = q.net
        inp, out = net.tensors[net.inputs[0]].shape, net.tensors[net.outputs[0]].shape
        return ModelDescription(
            ck.identity.space, ck.identity.arch, tuple(inp), tuple(out), len(ck.class_names),
            q.input_quant.scale, q.input_quant.zero_point, q.output_quant.scale,
            q.output_quant.zero_point, ck.mean, ck.std, ck.class_names, arena,
            tuple(sorted({_RESOLVER[TFLITE_OPS[la.op]] for la in net.layers})), standalone_arena,
            offsets[net.inputs[0]], offsets[net.outputs[0]])


def _template(name: str) -> Template:
    return Template((resources.files("micronas.ship") / "templates" / f"{name}.in").read_text())


def _shape_text(shape: tuple[int, ...]) -> str:
    if len(shape) == 3:
        c, h, w = shape
        return f"{{1, {h}, {w}, {c}}}"
    return "{1, " + ", ".join(map(str, shape)) + "}"


def _c_bytes(data: bytes, per_line: int = 16) -> str:
    lines = []
    for i in range(0, len(data), per_line):
        lines.append("  " + ", ".join(f"0x{b:02x}" for b in data[i:i + per_line]) + ",")
    return "\n".join(lines)


def render_config_h(d: ModelDescription) -> str:
    """``model_config.h``: how to feed and read the model."""
    inp = d.input_shape
    return _template("model_config.h").substitute(
        space=d.space, arch=d.arch, input_shape=_shape_text(inp),
        output_shape=_shape_text(d.output_shape), height=inp[1] if len(inp) == 3 else 1,
        width=inp[2] if len(inp) == 3 else 1, channels=inp[0], input_size=int(np.prod(inp)),
        output_size=int(np.prod(d.output_shape)), classes=d.classes,
        input_scale=f"{d.input_scale:.9g}", input_zero_point=d.input_zero_point,
        output_scale=f"{d.output_scale:.9g}", output_zero_point=d.output_zero_point,
        mean=", ".join(f"{v:.9g}f" for v in d.mean), std=", ".join(f"{v:.9g}f" for v in d.std),
        class_names=", ".join(json.dumps(n) for n in d.class_names), arena=d.tflm_arena_bytes,
        prediction=d.prediction.replace("*/", "* /"))


def render_main_cc(d: ModelDescription) -> str:
    """``main.cc``: the minimal TFLM program with the op resolver for exactly these ops."""
    return _template("main.cc").substitute(
        op_count=len(d.tflm_ops), resolver_adds="\n".join(f"  resolver.{op}();"
                                                          for op in d.tflm_ops))


def render_model_h(d: ModelDescription) -> str:
    """``standalone/mn_model.h``: the standalone network's arena and entry point."""
    return _template("mn_model.h").substitute(arena=max(d.standalone_arena_bytes, 16),
                                              input_offset=d.input_offset,
                                              output_offset=d.output_offset)


def render_model_data(tflite: bytes) -> dict[str, str]:
    """``model_data.c`` / ``.h``: the .tflite as an aligned C array."""
    return {"model_data.h": _template("model_data.h").substitute(),
            "model_data.c": _template("model_data.c").substitute(bytes=_c_bytes(tflite),
                                                                 length=len(tflite))}


def compile_bundle(d: Path, core: str) -> dict[str, object]:
    """Compile ``standalone/`` and ``model_data.c`` with arm-none-eabi-gcc for ``core``; the
    standalone C's flash (text + data) and SRAM (data + bss) from arm-none-eabi-size."""
    gcc = toolchain()
    flags = CORE_FLAGS.get(core)
    if flags is None:
        raise MicronasError(f"no compiler flags for core {core!r}; known: {', '.join(CORE_FLAGS)}")
    with tempfile.TemporaryDirectory(prefix="micronas-bundle-") as tmp:
        objs = []
        sources = [d / "standalone" / "model.c", d / "standalone" / "mn_kernels.c",
                   d / "model_data.c"]
        if (d / "standalone" / "mn_preprocess.c").is_file():
            sources.append(d / "standalone" / "mn_preprocess.c")
        for src in sources:
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
    text, data, bss = section_sizes(size)
    return {"compiler": gcc, "core": core, "flags": flags + ["-mthumb", "-O2"],
            "standalone_flash_bytes": text + data, "standalone_sram_bytes": data + bss}


def emulated_equals_tflm(m: Int8Model, core: str, samples: int = 2) -> dict[str, object]:
    """Run the standalone C in the emulator on the first ``samples`` test inputs and compare
    its int8 outputs with TFLM's, byte for byte."""
    from micronas.measure.emulate import build, run

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


def _firmware_files(m: Int8Model, device: Device, standalone: dict[str, str],
                    ) -> tuple[dict[str, str], dict[str, object]]:
    """The preprocessing C, ``firmware/`` and ``arduino/`` files, and what bundle.json says
    of them (the bundled sample and TFLM's class for it)."""
    from micronas.ship.firmware import (
        ARDUINO_EXAMPLE,
        ARDUINO_NAME,
        Preprocessing,
        choose_sample,
        render_arduino,
        render_firmware,
        render_preprocess,
        render_sample,
    )

    ck, t = m.checkpoint, m.trained
    shape = m.qnet.net.tensors[m.qnet.net.inputs[0]].shape
    if len(shape) != 3:
        raise MicronasBug(f"a trained network with input shape {shape}, not (C, H, W)")
    pre = Preprocessing((int(shape[0]), int(shape[1]), int(shape[2])), t.raw_divisor,
                        ck.mean, ck.std, m.qnet.input_quant, resized=t.raw_test is None)
    pre_files = render_preprocess(pre)
    index = 0
    xq = m.qnet.input_quant.quantize(m.x_test[index:index + 1].double().numpy())[0]
    raw = t.raw_test[index] if t.raw_test is not None else None
    sample = choose_sample(raw, xq, index, int(m.y_test[index]),
                           f"the test set of {ck.identity.task.name} (label "
                           f"{int(m.y_test[index])})")
    tflm_class = int(tflm_outputs(m, m.x_test[index:index + 1])[0].argmax())
    sample_h = render_sample(sample, ck.class_names)
    lib = {k.split("/", 1)[1]: v for k, v in {**standalone, **pre_files}.items()}
    files = {**pre_files, **render_firmware(device, sample_h),
             **render_arduino(lib, sample_h, ck.identity.task.name, ck.identity.space,
                              ck.identity.arch)}
    info: dict[str, object] = {
        "cmake": "cmake -S firmware -B build && cmake --build build",
        "core": device.core, "elf": "build/micronas_model.elf", "output": "semihosting",
        "arduino_library": f"arduino/{ARDUINO_NAME}",
        "arduino_example": f"arduino/{ARDUINO_NAME}/examples/{ARDUINO_EXAMPLE}",
        "sample_index": index, "sample_kind": sample.kind, "sample_label": sample.label,
        "sample_tflm_class": tflm_class, "preprocess_divisor": t.raw_divisor,
        "preprocess_bit_exact": t.raw_test is not None}
    return files, info


@dataclass
class DeployResult:
    out: str
    files: list[str]
    info: dict[str, object] = field(default_factory=dict)   # bundle.json


def _write(path: Path, content: str | bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            atomic_write(path, lambda f: f.write(content), binary=True)
        else:
            atomic_write(path, lambda f: f.write(content))
    except OSError as e:
        raise MicronasError(f"cannot write {path} ({e.strerror}); choose another --out") from None


def deploy(checkpoint: str | Path | Checkpoint | Int8Model, device: Device, out: str | Path,
           tflm_samples: int | None = None, verify_samples: int = 2, compile_c: bool = True,
           reserve: tuple[int, int] | None = None,
           progress: StageProgress | None = None) -> DeployResult:
    """Quantise a trained checkpoint (or take its int8 model), measure its int8 accuracy in
    TFLM, write the bundle to ``out`` and check it (compiled for the device's core; the
    emulated standalone C equal to TFLM on ``verify_samples`` test inputs). Needs the
    toolchain only for the checks."""
    from micronas.deploy.codegen import generate, kernel_sources
    from micronas.deploy.tflite import tflm_arena

    m = checkpoint if isinstance(checkpoint, Int8Model) else quantize_checkpoint(checkpoint)
    ck = m.checkpoint
    stages: dict[str, float] = {"quantise_seconds": m.seconds}
    t1 = time.perf_counter()
    n_total = len(m.y_test) if tflm_samples is None else min(tflm_samples, len(m.y_test))
    acc, n = tflm_accuracy(m, tflm_samples, (lambda k: progress("TFLM test set", k, n_total))
                           if progress else None)
    stages["tflm_seconds"] = time.perf_counter() - t1
    cost = estimate(m.net, device)
    arena = -(-(cost.arena_bytes + cost.scratch_bytes + cost.persistent_bytes) // 16) * 16
    gen = generate(m.qnet)
    rt = device.runtime
    desc = replace(ModelDescription.of(m, arena, gen.arena_bytes, gen.offsets), prediction=(
        f"{device.name} with runtime {rt.label()}: latency {cost.latency_ms:.2f} ms, peak SRAM "
        f"{cost.peak_sram_bytes:,} B, flash {cost.flash_bytes:,} B (micronas cost model; "
        f"latency constants: {rt.latency_source})"))
    outdir = Path(out)
    try:
        (outdir / "standalone").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MicronasError(f"--out {outdir} is not a writable directory ({e.strerror})") from None
    standalone: dict[str, str] = {
        "standalone/model.c": gen.source,
        "standalone/mn_model.h": render_model_h(desc),
        **{f"standalone/{k}": v for k, v in kernel_sources().items()},
    }
    fw_files, fw_info = _firmware_files(m, device, standalone)
    files: dict[str, str | bytes] = {
        "model.tflite": m.tflite,
        **render_model_data(m.tflite),
        "model_config.h": render_config_h(desc),
        "main.cc": render_main_cc(desc),
        **standalone,
        **fw_files,
    }
    fe = ck.identity.task.frontend
    fe_cost = None
    if fe is not None:
        from micronas.deploy.frontend import render_frontend
        from micronas.hardware.frontend import frontend_cost

        files.update(render_frontend(fe))
        fe_cost = frontend_cost(fe, device)
    for name, content in files.items():
        _write(outdir / name, content)
    tflm = tflm_arena(m.tflite)
    ident = ck.identity
    info: dict[str, object] = {
        "space": ident.space, "arch": ident.arch, "task": ident.task_dict(),
        "data": ident.data.to_dict(), "seed": ident.seed, "recipe": ident.recipe,
        "network_input": list(ck.network_input),
        "float_test_accuracy": m.float_accuracy, "int8_tflm_test_accuracy": acc,
        "int8_tflm_test_samples": n, "calibration_samples": m.calibration_samples,
        "device": device.name, "core": device.core,
        "latency_ms": cost.latency_ms,
        "latency_runtime": f"{device.runtime.label()} on the board (cost model, {device.name})",
        "runtime": device.runtime.name, "runtime_source": device.runtime.latency_source,
        "peak_sram_bytes": cost.peak_sram_bytes, "flash_bytes": cost.flash_bytes,
        "sram_limit_bytes": device.sram_bytes, "flash_limit_bytes": device.flash_bytes,
        "macs": cost.macs, "params": cost.params, "tflite_bytes": len(m.tflite),
        "tflm_arena_bytes_planned": arena, "tflm_arena_head_bytes_x86": tflm.head,
        "planner_activation_bytes": gen.arena_bytes, "firmware": fw_info,
        "files": sorted([*files, "bundle.json"]), "versions": ck.versions,
    }
    fe_sram = fe_flash = 0
    if fe is not None and fe_cost is not None:
        fe_sram, fe_flash = fe_cost.sram_bytes, fe_cost.flash_bytes
        info["frontend"] = {
            "parameters": fe.to_dict(), "description": fe.describe(), "cost": fe_cost.to_dict(),
            "files": ["mn_frontend.c", "mn_frontend.h"],
            "total_latency_ms": cost.latency_ms + fe_cost.latency_ms,
            "total_peak_sram_bytes": cost.peak_sram_bytes + fe_sram,
            "total_flash_bytes": cost.flash_bytes + fe_flash}
    if reserve is not None:
        rs, rf = reserve
        info.update({"reserve_sram_bytes": rs, "reserve_flash_bytes": rf,
                     "fits_with_reserve": cost.peak_sram_bytes + fe_sram + rs <= device.sram_bytes
                     and cost.flash_bytes + fe_flash + rf <= device.flash_bytes})
    if compile_c:
        t2 = time.perf_counter()
        info["compiled"] = compile_bundle(outdir, device.core)
        if verify_samples > 0:
            emu = emulated_equals_tflm(m, device.core, verify_samples)
            info["emulator"] = emu
            if not emu["standalone_equals_tflm"]:
                raise MicronasBug("the emulated standalone C differs from TFLM on the same "
                                  f"int8 input (checkpoint {ck.path})")
        stages["compile_and_verify_seconds"] = time.perf_counter() - t2
    else:
        info["compiled"] = None
    info["stages"] = stages
    _write(outdir / "bundle.json", json.dumps(info, indent=2, default=str) + "\n")
    return DeployResult(str(outdir), sorted([*files, "bundle.json"]), info)


__all__ = ["DeployResult", "ModelDescription", "StageProgress", "compile_bundle", "deploy",
           "emulated_equals_tflm", "render_config_h", "render_main_cc", "render_model_data",
           "render_model_h"]
