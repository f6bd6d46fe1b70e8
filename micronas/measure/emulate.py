"""Emulated MCU latency: compile the generated C for a Cortex-M core and run it in ``unicorn``.

The model is cross-compiled with Debian's ``gcc-arm-none-eabi`` (``-O2 -mthumb -mcpu=<core>``;
``__ARM_FEATURE_DSP`` selects the SIMD kernels on M4/M7/M33) and executed from a flat image in
the unicorn emulator with the core's CPU model. A basic-block hook counts every executed block
(and whether the block was left by a taken branch); each distinct block is disassembled once
with capstone, so every executed instruction is counted and classified exactly. The
``mn_mark`` calls split the counts by layer, and at each mark the finished layer's output is
read back from the emulated arena, so every tensor can be checked against the integer
reference. Cycles = the per-class table of ``cycles.toml`` (sources: the Arm TRMs) applied to
the counts; ms = cycles / clock.
"""

from __future__ import annotations

import re
import tempfile
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from micronas.deploy import require
from micronas.deploy.codegen import GeneratedModel, generate, kernel_sources
from micronas.deploy.layout import from_hwc, to_hwc
from micronas.deploy.quantize import QNetwork
from micronas.errors import MicronasBug, MicronasError
from micronas.measure.toolchain import APT_HINT, CPU_FLAGS, check_run, toolchain

PIP_HINT = "pip install unicorn capstone"
FLASH_BASE = 0x0800_0000
RAM_BASE = 0x2000_0000
STACK_BYTES = 64 * 1024


_LINKER = """
MEMORY {{ FLASH (rx) : ORIGIN = {flash:#x}, LENGTH = 64M
          RAM (rwx) : ORIGIN = {ram:#x}, LENGTH = 64M }}
ENTRY(mn_run)
SECTIONS {{
  .text : {{ *(.text*) *(.rodata*) }} > FLASH
  .data : {{ *(.data*) }} > RAM
  .bss (NOLOAD) : {{ *(.bss*) *(COMMON) }} > RAM
  /DISCARD/ : {{ *(.ARM.exidx*) *(.comment) }}
}}
"""


def _unicorn():
    return require("the unicorn/capstone emulator", PIP_HINT, "unicorn", "unicorn.arm_const",
                   "capstone")


def machine(core: str, image: bytes, ram_size: int) -> tuple[Any, Any]:
    """A unicorn Cortex-M of ``core`` with ``image`` at FLASH_BASE and ``ram_size`` bytes of
    RAM at RAM_BASE (both mapped in 64 KB pages); (the engine, unicorn's ARM constants)."""
    unicorn, arm, _ = _unicorn()
    cpu = {"cortex-m4": arm.UC_CPU_ARM_CORTEX_M4, "cortex-m7": arm.UC_CPU_ARM_CORTEX_M7,
           "cortex-m33": arm.UC_CPU_ARM_CORTEX_M33, "cortex-m0plus": arm.UC_CPU_ARM_CORTEX_M0}
    uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(cpu[core])
    uc.mem_map(FLASH_BASE, _round_up(len(image), 1 << 16))
    uc.mem_map(RAM_BASE, _round_up(ram_size, 1 << 16))
    uc.mem_write(FLASH_BASE, image)
    return uc, arm


def run_marked(uc: Any, arm: Any, image: bytes, core: str, start: int, done: int, mark: int,
               max_instructions: int, what: str) -> tuple[float, Counter, int]:
    """Run from ``start`` until it returns to ``done`` (the caller has set SP and LR), counting
    the basic blocks executed between the code's ``mark(1)`` and ``mark(0)`` calls, and price
    them with ``core``'s cycle table: (cycles, executed instructions per class, taken
    branches). ``what`` names the run in the one-line error."""
    unicorn, _, capstone = _unicorn()
    counts: Counter = Counter()
    taken: Counter = Counter()
    sizes: dict[int, int] = {}
    st = {"on": False, "last": -1, "last_end": -1}

    def on_block(_uc: Any, address: int, size: int, _data: Any) -> None:
        if address == mark:
            st["on"] = uc.reg_read(arm.UC_ARM_REG_R0) == 1
            st["last"] = -1
            return
        if not st["on"]:
            return
        if address != st["last_end"] and st["last"] >= 0:
            taken[st["last"]] += 1
        counts[address] += 1
        sizes[address] = size
        st["last"], st["last_end"] = address, address + size

    uc.hook_add(unicorn.UC_HOOK_BLOCK, on_block)
    try:
        uc.emu_start(start | 1, done, count=max_instructions)
    except unicorn.UcError as e:
        raise MicronasError(f"emulating {what} failed at pc="
                            f"{uc.reg_read(arm.UC_ARM_REG_PC):#x}: {e}") from None
    if uc.reg_read(arm.UC_ARM_REG_PC) & ~1 != done:
        raise MicronasError(f"emulating {what}: stopped before it returned (instruction limit)")
    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    table = cycle_table(core)
    classes: Counter = Counter()
    cycles = 0.0
    for addr, n in counts.items():
        code = image[addr - FLASH_BASE: addr - FLASH_BASE + sizes[addr]]
        insns = [classify(i.mnemonic, i.op_str) for i in md.disasm(code, addr)]
        for cls, _ in insns:
            classes[cls] += n
        cycles += n * block_cycles(insns, table)
    n_taken = sum(taken.values())
    return cycles + n_taken * table["branch_taken"], classes, n_taken


def cycle_table(core: str) -> dict[str, float]:
    raw = tomllib.loads((resources.files("micronas.measure") / "cycles.toml").read_text())
    if core not in raw:
        raise MicronasError(f"no instruction cycle table for core {core!r}; known: "
                            f"{', '.join(sorted(raw))}")
    return {k: float(v) for k, v in raw[core].items()}


@dataclass
class Firmware:
    image: bytes
    symbols: dict[str, int]
    core: str
    model: GeneratedModel


def build(qnet: QNetwork, core: str, workdir: str | Path | None = None,
          generator: Any = None, kernels: dict[str, str] | None = None) -> Firmware:
    """Generate C for ``qnet`` and cross-compile it for ``core``. ``generator`` (a function
    like :func:`micronas.deploy.codegen.generate`) and ``kernels`` (file name -> text) replace
    today's code generator and kernel library (benchmarks compare kernel versions)."""
    if core not in CPU_FLAGS:
        raise MicronasError(f"no emulation support for core {core!r}; supported: "
                            f"{', '.join(CPU_FLAGS)}")
    gcc = toolchain()
    model = (generator or generate)(qnet)
    with tempfile.TemporaryDirectory(prefix="micronas-fw-") as tmp:
        d = Path(workdir) if workdir else Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        for name, text in (kernels or kernel_sources()).items():
            (d / name).write_text(text)
        (d / "model.c").write_text(model.source)
        (d / "link.ld").write_text(_LINKER.format(flash=FLASH_BASE, ram=RAM_BASE))
        elf, binary = d / "model.elf", d / "model.bin"
        cmd = [gcc, CPU_FLAGS[core], "-mthumb", "-O2", "-ffreestanding", "-nostdlib",
               "-DMN_NO_LIBC", "-fno-common", "-T", str(d / "link.ld"), str(d / "mn_kernels.c"),
               str(d / "model.c"), "-lgcc", "-o", str(elf)]
        check_run(cmd, "compiling the generated model")
        objcopy = gcc.replace("gcc", "objcopy")
        check_run([objcopy, "-O", "binary", "-j", ".text", str(elf), str(binary)], "objcopy")
        nm = check_run([gcc.replace("gcc", "nm"), str(elf)], "nm")
        symbols = {}
        for line in nm.splitlines():
            parts = line.split()
            if len(parts) == 3:
                symbols[parts[2]] = int(parts[0], 16)
        image = binary.read_bytes()
    for s in ("mn_run", "mn_mark", "mn_done", "mn_arena"):
        if s not in symbols:
            raise MicronasBug(f"firmware build: symbol {s} missing from the generated model")
    return Firmware(image, symbols, core, model)


@dataclass
class LayerMeasurement:
    name: str
    instructions: int
    cycles: float
    classes: dict[str, int] = field(default_factory=dict)


@dataclass
class Measurement:
    """Per-layer emulated counts of a network. ``method``: ``whole`` (one run; ``outputs``
    holds every tensor read back, ``bit_exact`` their comparison with the integer reference)
    or ``layers`` (each distinct layer emulated alone, see :mod:`micronas.measure.layers`)."""

    core: str
    layers: list[LayerMeasurement]
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # tensor -> int8 (C, H, W)
    method: str = "whole"
    bit_exact: bool | None = None

    @property
    def instructions(self) -> int:
        return sum(lay.instructions for lay in self.layers)

    @property
    def cycles(self) -> float:
        return sum(lay.cycles for lay in self.layers)


_COND = {"eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt",
         "gt", "le", "al"}


def classify(mnemonic: str, op_str: str) -> tuple[str, int]:
    """(class, registers moved) of one Thumb instruction (see cycles.toml)."""
    m = mnemonic.split(".")[0].lower()
    nregs = op_str.count(",") + 1 if "{" in op_str else 0
    if m in ("b", "bl", "blx", "bx", "cbz", "cbnz", "tbb", "tbh") or (
            len(m) == 3 and m[0] == "b" and m[1:] in _COND):
        return "branch", 0
    if m.startswith("it"):
        return "it", 0
    if m in ("pop", "ldm", "ldmia", "ldmfd", "ldmdb"):
        return ("branch_pop" if "pc" in op_str else "load_multiple"), nregs
    if m in ("push", "stm", "stmia", "stmea", "stmdb", "stmfd"):
        return "store_multiple", nregs
    if m.startswith("ldrd"):
        return "load_double", 0
    if m.startswith("strd"):
        return "store_double", 0
    if m.startswith("ldr") or m.startswith("ldrex"):
        return ("branch_load" if re.match(r"^pc\b", op_str) else "load"), 0
    if m.startswith("str"):
        return "store", 0
    if m in ("mul", "muls"):
        return "mul", 0
    if m in ("mla", "mls"):
        return "mla", 0
    if m in ("smull", "umull", "smlal", "umlal"):
        return "mul_long", 0
    if m in ("sdiv", "udiv"):
        return "div", 0
    if m.startswith(("smla", "smlsd", "smua", "smusd", "smul", "smmla", "smmul", "smlal")):
        return "simd_mac", 0
    if m in ("sxtb16", "sxtab16", "uxtb16", "uxtab16", "sadd16", "ssub16", "qadd16", "qsub16",
             "sadd8", "qadd8", "ssat16", "pkhbt", "pkhtb", "sel"):
        return "simd", 0
    if m == "nop":
        return "nop", 0
    return "alu", 0


def block_cycles(insns: list[tuple[str, int]], table: dict[str, float]) -> float:
    """Cycles of one pass through a block (its final branch counted as not taken)."""
    total, prev_mem = 0.0, False
    for cls, nregs in insns:
        if cls == "load":
            total += table["load_pipelined"] if prev_mem else table["load"]
        elif cls in ("load_multiple", "store_multiple"):
            total += table[cls] + table["per_register"] * nregs
        elif cls == "branch_pop":
            total += table["load_multiple"] + table["per_register"] * nregs + table["branch_taken"]
        elif cls == "branch_load":
            total += table["load"] + table["branch_taken"]
        else:
            total += table[cls]
        prev_mem = cls in ("load", "store", "load_double", "store_double")
    return total


def run(fw: Firmware, qnet: QNetwork, x_q: np.ndarray, max_instructions: int = 2_000_000_000,
        ) -> Measurement:
    """Run the firmware on one int8 input (channels-first) and measure every layer."""
    unicorn, _, capstone = _unicorn()
    model = fw.model
    ram_size = _round_up(model.arena_bytes + STACK_BYTES + 4096, 1 << 16)
    uc, arm = machine(fw.core, fw.image, ram_size)
    arena = fw.symbols["mn_arena"]
    net = qnet.net
    x = np.asarray(x_q, dtype=np.int8)
    uc.mem_write(arena + model.offsets[net.inputs[0]], to_hwc(x).tobytes())
    done = fw.symbols["mn_done"] & ~1
    mark = fw.symbols["mn_mark"] & ~1
    uc.reg_write(arm.UC_ARM_REG_SP, RAM_BASE + ram_size - 16)
    uc.reg_write(arm.UC_ARM_REG_LR, done | 1)

    per_layer: list[Counter] = []
    per_layer_taken: list[Counter] = []
    outputs: dict[str, np.ndarray] = {}
    sizes: dict[int, int] = {}
    state = {"counts": Counter(), "taken": Counter(), "last": -1, "last_end": -1}
    per_layer.append(state["counts"])
    per_layer_taken.append(state["taken"])

    def read_tensor(name: str) -> np.ndarray:
        shape = net.tensors[name].shape
        raw = uc.mem_read(arena + model.offsets[name], int(np.prod(shape)))
        return from_hwc(np.frombuffer(bytes(raw), dtype=np.int8), shape)

    def on_block(_uc, address, size, _data):
        if address != state["last_end"] and state["last"] >= 0:
            state["taken"][state["last"]] += 1
        if address == mark:
            i = uc.reg_read(arm.UC_ARM_REG_R0)
            if i > 0 and net.layers[i - 1].output in model.offsets:  # (a folded PAD has none)
                outputs[net.layers[i - 1].output] = read_tensor(net.layers[i - 1].output)
            state["counts"], state["taken"] = Counter(), Counter()
            per_layer.append(state["counts"])
            per_layer_taken.append(state["taken"])
        state["counts"][address] += 1
        sizes[address] = size
        state["last"], state["last_end"] = address, address + size

    uc.hook_add(unicorn.UC_HOOK_BLOCK, on_block)
    try:
        uc.emu_start(fw.symbols["mn_run"] | 1, done, count=max_instructions)
    except unicorn.UcError as e:
        raise MicronasError(f"emulation failed at pc={uc.reg_read(arm.UC_ARM_REG_PC):#x}: {e}") from None
    if uc.reg_read(arm.UC_ARM_REG_PC) & ~1 != done:
        raise MicronasError("emulation stopped before the network finished (instruction limit)")

    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    table = cycle_table(fw.core)
    decoded: dict[int, list[tuple[str, int]]] = {}
    for addr, size in sizes.items():
        code = fw.image[addr - FLASH_BASE: addr - FLASH_BASE + size]
        decoded[addr] = [classify(i.mnemonic, i.op_str) for i in md.disasm(code, addr)]
    # per_layer[0] is the prologue before the first mark, [1..L] the layers, [L+1] the epilogue.
    layers = []
    for i, lay in enumerate(net.layers):
        counts, taken = per_layer[i + 1], per_layer_taken[i + 1]
        classes: Counter = Counter()
        cycles = 0.0
        for addr, n in counts.items():
            insns = decoded[addr]
            for cls, _ in insns:
                classes[cls] += n
            cycles += n * block_cycles(insns, table)
        branches_taken = sum(taken.values())
        cycles += branches_taken * table["branch_taken"]
        classes["branches_taken"] = branches_taken
        instructions = sum(v for k, v in classes.items() if k != "branches_taken")
        layers.append(LayerMeasurement(lay.name, int(instructions), cycles, dict(classes)))
    return Measurement(fw.core, layers, outputs)


def _round_up(n: int, k: int) -> int:
    return max(k, -(-n // k) * k)


def measure(qnet: QNetwork, core: str, x_q: np.ndarray) -> Measurement:
    """Build for ``core`` and run on ``x_q`` (one int8 input, channels-first)."""
    return run(build(qnet, core), qnet, x_q)


__all__ = ["APT_HINT", "Firmware", "LayerMeasurement", "Measurement", "build", "classify",
           "cycle_table", "measure", "run", "toolchain"]
