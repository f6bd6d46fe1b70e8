"""Runtimes: what runs the int8 network on the board, and the cost constants of each.

Every latency, flash and SRAM figure is a figure *for a runtime*. A runtime is a folder
``micronas/hardware/runtimes/<name>/``: ``runtime.toml`` says what it is, what in the bundle
runs it and its memory overheads (``[memory]``, with ``[memory.<core>]`` overrides); one
``<core>.toml`` per core holds its latency constants (a ``[latency]`` table, see
:mod:`micronas.hardware.cost`) with ``grounding`` (how they were obtained: ``emulated``,
``fitted``, ``extrapolated``) and ``source`` (from what, in one line); an optional
``code.toml`` gives the runtime's code size per core and TFLite operator, from measured builds.

The runtimes:

- ``tflm-cmsis-nn`` (the default): TensorFlow Lite Micro with CMSIS-NN kernels, what the
  bundle's ``main.cc`` runs;
- ``tflm-reference``: TensorFlow Lite Micro with its portable reference kernels;
- ``micronas-c``: the bundle's ``standalone/`` C, calibrated on the emulator;
- ``optimized``: an optimizing code generator or vendor engine (the constants fitted to
  MLPerf Tiny medians); nothing in the bundle runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from micronas.errors import DeviceError
from micronas.hardware.tomlcheck import LIMITS, latency_tables, number, read_toml, text
from micronas.infra import defaults
from micronas.infra.registry import Registry

#: The runtime a cost is for when none is named: the one the bundle's main.cc runs.
DEFAULT_RUNTIME = defaults.RUNTIME
#: Runtime names older profiles (``micronas calibrate``) wrote, and what they mean now.
LEGACY_NAMES = {"tflite-micro + cmsis-nn": "tflm-cmsis-nn"}
GROUNDINGS = ("emulated", "measured", "fitted", "extrapolated", "calibrated")


@dataclass(frozen=True)
class RuntimeProfile:
    """A runtime's memory overheads and what its latency constants are, on one core.

    Memory (bytes): the runtime's code; flash entries per operator and per tensor;
    per-channel quantisation in flash and in RAM; persistent RAM per node and per tensor;
    arena alignment; stack and statics outside the arena. Values and their sources:
    ``runtime.toml`` of each runtime.
    """

    name: str = DEFAULT_RUNTIME
    description: str = ""
    ships: str = ""
    #: how the latency constants on this core were obtained, and from what; the op classes
    #: whose constants are extrapolated although the rest are grounded
    latency_grounding: str = ""
    latency_source: str = ""
    extrapolated_classes: tuple[str, ...] = ()
    #: runtime code per TFLite operator the network uses, (op, alone, marginal) bytes: the
    #: code an op adds to the base alone, and what it adds to a build that has every other op
    #: (``code_flash_bytes`` is then the base: interpreter, allocator, start-up)
    code_per_op: tuple[tuple[str, int, int], ...] = ()
    code_source: str = ""
    #: (op, measured op) pairs of ``code_per_op`` whose sizes are another op's (not measured)
    code_stand_ins: tuple[tuple[str, str], ...] = ()
    code_flash_bytes: int = 65536
    ram_reserved_bytes: int = 8192
    arena_alignment_bytes: int = 16
    per_layer_flash_bytes: int = 48
    per_tensor_flash_bytes: int = 96
    per_channel_quant_flash_bytes: int = 12
    per_layer_ram_bytes: int = 64
    per_tensor_ram_bytes: int = 16
    per_channel_quant_ram_bytes: int = 8

    def code_bytes(self, ops: set[str]) -> int:
        """Flash of the runtime's code for a network that uses the TFLite operators ``ops``:
        the base, plus each op's marginal code, plus the largest share an op has with the
        others (the helpers the first op to need them brings), from measured builds; one
        constant where the runtime has no per-op sizes."""
        if not self.code_per_op:
            return self.code_flash_bytes
        used = [(alone, marginal) for op, alone, marginal in self.code_per_op if op in ops]
        shared = max((alone - marginal for alone, marginal in used), default=0)
        return self.code_flash_bytes + sum(m for _, m in used) + max(shared, 0)

    def code_source_for(self, ops: set[str]) -> str:
        """Where :meth:`code_bytes` for ``ops`` comes from, naming the stand-ins it used."""
        used = [f"{op} as {like}" for op, like in self.code_stand_ins if op in ops]
        return self.code_source + (f"; not measured, sized as: {', '.join(used)}" if used
                                   else "")

    def label(self) -> str:
        """``name`` plus, where its latency on this core is not grounded, the word saying so."""
        if self.latency_grounding == "extrapolated":
            return f"{self.name}, extrapolated"
        return self.name


#: The memory fields a ``[memory]`` (or a device profile's ``[runtime]``) table may set.
MEMORY_FIELDS = tuple(f.name for f in fields(RuntimeProfile)
                      if f.type in ("int", int))


def memory_values(raw: Any, where: str) -> dict[str, int]:
    """Validated memory overheads of a ``[memory]`` or ``[runtime]`` table (other keys are
    the caller's: sub-tables per core, ``name``)."""
    if not isinstance(raw, dict):
        raise DeviceError(f"{where} must be a table")
    out: dict[str, int] = {}
    for k, v in raw.items():
        if k not in MEMORY_FIELDS:
            continue
        out[k] = int(number(raw, k, where, positive=k == "arena_alignment_bytes",
                            limit=LIMITS["sram_bytes"]))
        if k == "arena_alignment_bytes" and (isinstance(v, bool) or v != out[k]
                                             or out[k] & (out[k] - 1)):
            raise DeviceError(f"{where}: 'arena_alignment_bytes' must be a whole power of two "
                              f"(1, 2, 4, ... bytes), got {v}")
    return out


@dataclass(frozen=True)
class Runtime:
    """One runtime: what it is and its constants on every core it has them for."""

    name: str
    description: str
    ships: str
    memory: dict[str, int]
    memory_per_core: dict[str, dict[str, int]]
    folder: Traversable
    #: per core: (base bytes, ((op, alone, marginal), ...), source) of measured builds
    code: dict[str, tuple[int, tuple[tuple[str, int, int], ...], str]]
    #: (runtime, scale, source): latency = another runtime's on the same core times scale
    derived: tuple[str, float, str] | None = None
    #: TFLite operators whose code was not measured -> the measured operator whose sizes
    #: stand in for theirs (``[code_stand_ins]`` of runtime.toml, each with its reason)
    code_stand_ins: dict[str, str] = field(default_factory=dict)

    def cores(self) -> list[str]:
        """The cores this runtime has latency constants for."""
        if self.derived:
            return RUNTIMES[self.derived[0]].cores()
        return sorted(p.name[:-5] for p in self.folder.iterdir()
                      if p.name.endswith(".toml") and p.name not in ("runtime.toml", "code.toml"))

    def core_constants(self, core: str) -> tuple[dict[str, dict[str, float]], float, str, str]:
        """Latency tables, per-layer overhead, grounding and source on ``core`` (a one-line
        error naming the runtimes that have constants for it, if this one has none)."""
        tables, overhead, grounding, source, _ = self.core_file(core)
        return tables, overhead, grounding, source

    def core_file(self, core: str) -> tuple[dict[str, dict[str, float]], float, str, str,
                                            tuple[str, ...]]:
        """:meth:`core_constants` plus the op classes marked extrapolated in the file's
        ``[class_grounding]`` table."""
        if self.derived:
            base, scale, source = self.derived
            tables, overhead, _, _ = RUNTIMES[base].core_constants(core)
            return ({k: {c: v * scale for c, v in t.items()} for k, t in tables.items()},
                    overhead * scale, "extrapolated", source, ())
        f = self.folder / f"{core}.toml"
        if not f.is_file():
            others = [r for r in RUNTIMES if core in RUNTIMES[r].cores()]
            raise DeviceError(
                f"runtime {self.name!r} has no latency constants for {core}; runtimes with "
                f"constants for {core}: {', '.join(others) or 'none'}")
        where = f"runtime {self.name} on {core}"
        raw = read_toml(f, "runtime file")
        tables, overhead = latency_tables(raw.get("latency", {}), where)
        grounding = text(raw, "grounding", where, "")
        if grounding not in GROUNDINGS:
            raise DeviceError(f"{where}: grounding must be one of {', '.join(GROUNDINGS)}")
        per_class = raw.get("class_grounding", {})
        if not isinstance(per_class, dict) or any(v not in GROUNDINGS for v in per_class.values()):
            raise DeviceError(f"{where}: [class_grounding] maps op classes to one of "
                              f"{', '.join(GROUNDINGS)}")
        extrapolated = tuple(sorted(k for k, v in per_class.items() if v == "extrapolated"))
        return tables, overhead or 0.0, grounding, text(raw, "source", where, ""), extrapolated

    def profile(self, core: str, overrides: dict[str, int] | None = None,
                grounding: str = "", source: str = "",
                extrapolated: tuple[str, ...] = ()) -> RuntimeProfile:
        """The runtime's memory overheads on ``core`` (plus a profile's ``overrides``)."""
        mem = {**self.memory, **self.memory_per_core.get(core, {})}
        per_op: tuple[tuple[str, int, int], ...] = ()
        stood_in: tuple[tuple[str, str], ...] = ()
        code_source = ""
        code = self.code
        if not code and self.derived:  # code not measured: the base runtime's builds
            code = RUNTIMES[self.derived[0]].code
        if core in code:
            mem["code_flash_bytes"], per_op, code_source = code[core]
            if code is not self.code:
                code_source = f"{self.derived[0]}'s {code_source} (its own not measured)"
            stand_ins = self.code_stand_ins or (RUNTIMES[self.derived[0]].code_stand_ins
                                                if self.derived else {})
            sizes = {op: (alone, marginal) for op, alone, marginal in per_op}
            added = [(op, *sizes[like]) for op, like in stand_ins.items()
                     if op not in sizes and like in sizes]
            per_op = (*per_op, *added)
            stood_in = tuple((op, stand_ins[op]) for op, _, _ in added)
        if overrides and "code_flash_bytes" in overrides:
            per_op, code_source = (), ""  # the profile states its runtime's code size itself
            stood_in = ()
        mem.update(overrides or {})
        return RuntimeProfile(name=self.name, description=self.description, ships=self.ships,
                              latency_grounding=grounding, latency_source=source,
                              extrapolated_classes=extrapolated, code_per_op=per_op,
                              code_source=code_source, code_stand_ins=stood_in, **mem)


def _read_runtime(folder: Traversable) -> Runtime:
    raw = read_toml(folder / "runtime.toml", "runtime file")
    name = folder.name
    where = f"runtime {name}"
    if raw.get("name") != name:
        raise DeviceError(f"{where}: runtime.toml must say name = {name!r}")
    mem_raw = raw.get("memory", {})
    memory = memory_values(mem_raw, f"{where} [memory]")
    per_core = {k: memory_values(v, f"{where} [memory.{k}]")
                for k, v in mem_raw.items() if isinstance(v, dict)}
    code: dict[str, tuple[int, tuple[tuple[str, int, int], ...], str]] = {}
    code_raw = read_toml(folder / "code.toml", "runtime code file") if (
        folder / "code.toml").is_file() else {}
    for core, t in code_raw.items():
        w = f"{where} code.toml [{core}]"
        if not isinstance(t, dict) or not isinstance(t.get("ops", {}), dict):
            raise DeviceError(f"{w} must be a table with base and ops")
        ops = []
        for op, v in t.get("ops", {}).items():
            if (not isinstance(v, list) or len(v) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                               for x in v)):
                raise DeviceError(f"{w}: ops.{op} must be [alone, marginal] in bytes")
            ops.append((str(op), int(v[0]), int(v[1])))
        code[core] = (int(number(t, "base", w, limit=LIMITS["flash_bytes"])), tuple(ops),
                      text(t, "source", w, ""))
    derived = None
    if "derived" in raw:
        d = raw["derived"]
        if not isinstance(d, dict) or not isinstance(d.get("from"), str):
            raise DeviceError(f"{where}: [derived] must name the runtime it scales (from = ...)")
        derived = (d["from"], number(d, "scale", f"{where} [derived]"),
                   text(d, "source", f"{where} [derived]", ""))
    stand_ins = raw.get("code_stand_ins", {})
    if not isinstance(stand_ins, dict) or not all(isinstance(v, str) for v in stand_ins.values()):
        raise DeviceError(f"{where}: [code_stand_ins] maps TFLite operators to the measured "
                          "operator whose code size stands in for theirs")
    return Runtime(name, text(raw, "description", where, name), text(raw, "ships", where, ""),
                   memory, per_core, folder, code, derived, dict(stand_ins))


def _load_runtimes(reg: Registry[Runtime]) -> None:
    root = resources.files("micronas.hardware") / "runtimes"
    for p in sorted(root.iterdir(), key=lambda q: q.name):
        if p.is_dir() and (p / "runtime.toml").is_file():
            rt = _read_runtime(p)
            reg.register(rt.name, rt, rt.description, "built-in")


#: The runtimes micronas has cost constants for.
RUNTIMES: Registry[Runtime] = Registry("runtime", error=DeviceError, loader=_load_runtimes,
                                       aliases=LEGACY_NAMES)


def get_runtime(name: str) -> Runtime:
    """A runtime by name (an unknown one: a one-line error naming the closest)."""
    return RUNTIMES[name]
