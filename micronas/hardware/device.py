"""Device profiles: an MCU (core, clock, memories) plus the runtime's cost constants.

A profile is a TOML file: built-in ones live in ``micronas/hardware/devices/``; any file
given by path works the same. The core's latency constants come from
``micronas/hardware/cores/<core>.toml`` and may be overridden by a ``[latency]`` table in the
device file (calibration writes such a table).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from micronas.errors import DeviceError
from micronas.infra.registry import Registry

OP_CLASSES = ("conv", "conv1x1", "depthwise", "fully_connected", "pool", "global_pool", "add",
              "concat", "relu", "affine", "zeros", "pad")
COEFFICIENTS = ("cycles_per_mac", "cycles_per_output", "cycles_per_input", "cycles_per_window",
                "cycles_per_layer", "cycles_per_valid_mac", "cycles_per_kernel_row",
                "cycles_per_pixel", "cycles_per_unaligned_mac", "cycles_per_unaligned_output",
                "cycles_per_generic_mac", "cycles_per_generic_output", "cycles_per_generic_pixel",
                "cycles_per_aligned_output")


@dataclass(frozen=True)
class RuntimeProfile:
    """Memory overheads of the deployed runtime (TFLite Micro + CMSIS-NN by default).

    Defaults: code size of a TFLM interpreter with the CMSIS-NN kernels NB201 needs, built
    with -Os (the TFLM micro_speech / person_detection examples link 50-70 KB); flatbuffer
    entries per operator (~48 B) and per tensor (~96 B: shape, name, quantisation header);
    per-channel quantisation in flash (float32 scale + int64 zero point = 12 B per channel)
    and in RAM (int32 multiplier + int32 shift = 8 B per channel, TFLM's persistent arena);
    TFLM's per-node (~64 B) and per-tensor (TfLiteEvalTensor, 16 B) persistent RAM; 16-byte
    arena alignment; 8 KB of stack and runtime statics outside the arena.
    """

    name: str = "tflite-micro + cmsis-nn"
    code_flash_bytes: int = 65536
    ram_reserved_bytes: int = 8192
    arena_alignment_bytes: int = 16
    per_layer_flash_bytes: int = 48
    per_tensor_flash_bytes: int = 96
    per_channel_quant_flash_bytes: int = 12
    per_layer_ram_bytes: int = 64
    per_tensor_ram_bytes: int = 16
    per_channel_quant_ram_bytes: int = 8


@dataclass(frozen=True)
class Device:
    """One MCU target. Memory sizes in bytes, clock in MHz."""

    name: str
    description: str
    core: str
    clock_mhz: float
    sram_bytes: int
    flash_bytes: int
    dsp: bool
    fpu: bool
    latency: dict[str, dict[str, float]]
    overhead_cycles: float
    runtime: RuntimeProfile = field(default_factory=RuntimeProfile)
    sources: tuple[str, ...] = ()
    path: str = ""

    def coefficients(self, op_class: str) -> dict[str, float]:
        """Latency coefficients of an op class (missing ones are 0)."""
        return self.latency.get(op_class, {})


def user_devices_dir() -> Path:
    """Where ``micronas devices add`` keeps your profiles: ``$MICRONAS_CONFIG/devices``, else
    ``$XDG_CONFIG_HOME/micronas/devices``, else ``~/.config/micronas/devices``."""
    if os.environ.get("MICRONAS_CONFIG"):
        return Path(os.environ["MICRONAS_CONFIG"]) / "devices"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "micronas" / "devices"


def _load_devices(reg: Registry[Traversable]) -> None:
    root = resources.files("micronas.hardware") / "devices"
    for p in sorted(root.iterdir(), key=lambda q: q.name):
        if p.name.endswith(".toml"):
            reg.register(p.name[:-5], p, "", "built-in")
    user = user_devices_dir()
    if user.is_dir():
        for q in sorted(user.glob("*.toml")):
            name = q.name[:-5]
            if NAME_RE.fullmatch(name) and name.lower() not in reg:  # built-ins come first
                reg.register(name, q, "", f"yours ({q})")


#: The device profiles: the built-in ones, then yours (``micronas devices add``).
DEVICES: Registry[Traversable] = Registry(
    "device", hint="or give the path of a .toml profile", error=DeviceError, loader=_load_devices)


def builtin_devices() -> list[str]:
    """Names of the built-in device profiles, sorted."""
    return sorted(e.name for e in DEVICES.entries() if e.source == "built-in")


#: A device or core name: a safe identifier (it names files and cache entries).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Upper bounds that no real MCU reaches: a value above them is a typo or an attack.
LIMITS = {"clock_mhz": 10_000.0, "sram_bytes": float(2**36), "flash_bytes": float(2**36)}
_COEFF_MAX = 1e9        # cycles per MAC / output / layer ...
_TOML_MAX_BYTES = 1 << 20


def _read_toml(path: Path | Any, what: str) -> dict[str, Any]:
    try:
        if not path.is_file():
            raise DeviceError(f"{what} {path} is not a regular file")
        with path.open("rb") as f:
            blob = f.read(_TOML_MAX_BYTES + 1)
    except OSError as e:
        raise DeviceError(f"cannot read {what} {path}: {e.strerror}") from None
    if len(blob) > _TOML_MAX_BYTES:
        raise DeviceError(f"{what} {path} is over 1 MB; a profile is a small TOML file")
    try:
        return tomllib.loads(blob.decode("utf-8"))
    except UnicodeDecodeError:
        raise DeviceError(f"{what} {path} is not UTF-8 text; save it as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as e:
        raise DeviceError(f"{what} {path} is not valid TOML: {e}") from None


def _number(table: dict[str, Any], key: str, where: str, *, positive: bool = True,
            limit: float = _COEFF_MAX) -> float:
    if key not in table:
        raise DeviceError(f"{where}: missing required key {key!r}")
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise DeviceError(f"{where}: {key!r} must be a number, got {v!r}")
    if not math.isfinite(v):
        raise DeviceError(f"{where}: {key!r} must be a finite number, got {v!r}")
    if positive and not v > 0:
        raise DeviceError(f"{where}: {key!r} must be > 0, got {v!r}")
    if not positive and v < 0:
        raise DeviceError(f"{where}: {key!r} must be >= 0, got {v!r}")
    if v > limit:
        raise DeviceError(f"{where}: {key!r} = {v!r} is out of range (at most {limit:g})")
    return float(v)


def _name(raw: dict[str, Any], key: str, where: str) -> str:
    v = raw.get(key)
    if not isinstance(v, str) or not v:
        raise DeviceError(f"{where}: missing required key {key!r} (a string)")
    if not NAME_RE.fullmatch(v):
        shown = v if len(v) <= 40 else v[:40] + "..."
        raise DeviceError(f"{where}: {key} {shown!r} is not a valid name; use up to 64 letters, "
                          "digits, '.', '_' or '-', starting with a letter or digit")
    return v


def _text(raw: dict[str, Any], key: str, where: str, default: str, limit: int = 300) -> str:
    v = raw.get(key, default)
    if not isinstance(v, str) or len(v) > limit or any(ord(c) < 32 for c in v):
        raise DeviceError(f"{where}: {key!r} must be one line of text of at most {limit} "
                          "characters")
    return v


def _latency_tables(raw: dict[str, Any], where: str) -> tuple[dict[str, dict[str, float]], float | None]:
    if not isinstance(raw, dict):
        raise DeviceError(f"{where}: [latency] must be a table")
    tables: dict[str, dict[str, float]] = {}
    overhead = None
    for key, value in raw.items():
        if key == "overhead_cycles":
            overhead = _number(raw, key, where, positive=False)
            continue
        if key not in OP_CLASSES:
            raise DeviceError(f"{where}: unknown op class [latency.{key}]; "
                              f"known: {', '.join(OP_CLASSES)}")
        if not isinstance(value, dict):
            raise DeviceError(f"{where}: [latency.{key}] must be a table")
        for c in value:
            if c not in COEFFICIENTS:
                raise DeviceError(f"{where}: unknown coefficient {c!r} in [latency.{key}]; "
                                  f"known: {', '.join(COEFFICIENTS)}")
        tables[key] = {c: _number(value, c, f"{where} [latency.{key}]", positive=False)
                       for c in value}
    return tables, overhead


def _load_cores(reg: Registry[Traversable]) -> None:
    root = resources.files("micronas.hardware") / "cores"
    for p in sorted(root.iterdir(), key=lambda q: q.name):
        if p.name.endswith(".toml"):
            reg.register(p.name[:-5], p, "", "built-in")


#: The Cortex-M cores with latency constants (``cores/*.toml``).
CORES: Registry[Traversable] = Registry("core", error=DeviceError, loader=_load_cores)


def _core_file(core: str) -> dict[str, Any]:
    """The parsed file of a core (exact name; an unknown one names the closest)."""
    if CORES.key(core) != core:  # CORES.key: the one-line error for an unknown core
        raise DeviceError(f"core {core!r}: write it as {CORES.entry(core).name!r}")
    return _read_toml(CORES[core], "core file")


def load_core(core: str) -> tuple[dict[str, dict[str, float]], float]:
    """Latency tables and per-layer overhead of a built-in core."""
    tables, overhead = _latency_tables(_core_file(core).get("latency", {}), f"core {core}")
    return tables, overhead or 0.0


def device_from_dict(raw: dict[str, Any], where: str) -> Device:
    """Validate a parsed profile and build a :class:`Device` (``where`` names it in errors)."""
    name, core = _name(raw, "name", where), _name(raw, "core", where)
    description = _text(raw, "description", where, name)
    clock = _number(raw, "clock_mhz", where, limit=LIMITS["clock_mhz"])
    sram = int(_number(raw, "sram_bytes", where, limit=LIMITS["sram_bytes"]))
    flash = int(_number(raw, "flash_bytes", where, limit=LIMITS["flash_bytes"]))
    sources = raw.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(x, str) and len(x) <= 500
                                                for x in sources):
        raise DeviceError(f"{where}: 'sources' must be a list of strings, e.g. "
                          "sources = [\"datasheet rev 8\"]")
    tables, overhead = load_core(core)
    if "latency" in raw:
        override, ov = _latency_tables(raw["latency"], where)
        for k, v in override.items():
            tables[k] = {**tables.get(k, {}), **v}
        if ov is not None:
            overhead = ov
    rt_raw = raw.get("runtime", {})
    if not isinstance(rt_raw, dict):
        raise DeviceError(f"{where}: [runtime] must be a table")
    rt_fields = {f for f in RuntimeProfile.__dataclass_fields__}
    rt_kwargs: dict[str, Any] = {}
    for k in rt_raw:
        if k not in rt_fields:
            raise DeviceError(f"{where}: unknown key {k!r} in [runtime]; "
                              f"known: {', '.join(sorted(rt_fields))}")
        if k == "name":
            rt_kwargs[k] = _text(rt_raw, k, f"{where} [runtime]", "")
            continue
        rt_kwargs[k] = int(_number(rt_raw, k, f"{where} [runtime]",
                                   positive=k == "arena_alignment_bytes", limit=LIMITS["sram_bytes"]))
    raw_align = rt_raw.get("arena_alignment_bytes", RuntimeProfile.arena_alignment_bytes)
    align = rt_kwargs.get("arena_alignment_bytes", RuntimeProfile.arena_alignment_bytes)
    if isinstance(raw_align, bool) or raw_align != align or align < 1 or align & (align - 1):
        raise DeviceError(f"{where} [runtime]: 'arena_alignment_bytes' must be a whole power of "
                          f"two (1, 2, 4, ... bytes), got {raw_align}")
    for flag in ("dsp", "fpu"):
        if flag in raw and not isinstance(raw[flag], bool):
            raise DeviceError(f"{where}: {flag!r} must be true or false")
    return Device(
        name=name, description=description,
        core=core, clock_mhz=clock, sram_bytes=sram, flash_bytes=flash,
        dsp=bool(raw.get("dsp", True)), fpu=bool(raw.get("fpu", False)), latency=tables,
        overhead_cycles=overhead, runtime=RuntimeProfile(**rt_kwargs),
        sources=tuple(sources), path=where,
    )


def load_device(name_or_path: str | Path) -> Device:
    """A built-in profile by name (``stm32f746``) or any profile file by path."""
    text = str(name_or_path)
    p = Path(text)
    if text.endswith(".toml") or p.is_file():
        if not p.is_file():
            raise DeviceError(f"device file {text} does not exist")
        return device_from_dict(_read_toml(p, "device file"), str(p))
    key = DEVICES.key(text)
    return device_from_dict(_read_toml(DEVICES[key], "device file"), key)


def add_device(name: str, core: str, clock_mhz: float, sram_kb: float, flash_kb: float,
               description: str | None = None, fpu: bool = False, force: bool = False) -> Device:
    """Write a profile of your own board into :func:`user_devices_dir` (validated as every
    profile is; the latency constants are its core's) and return it. An existing profile of
    yours is replaced only with ``force``; a built-in name is refused."""
    import tomli_w

    from micronas.infra.fileio import atomic_write

    key = str(name).strip()
    if key in DEVICES and DEVICES.entry(key).source == "built-in":
        raise DeviceError(f"{key!r} is a built-in device; give your board another name")
    core_raw = _core_file(core)
    for what, v in (("--clock-mhz", clock_mhz), ("--sram-kb", sram_kb), ("--flash-kb", flash_kb)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise DeviceError(f"{what} must be a positive number, got {v}")
    raw: dict[str, Any] = {
        "name": key, "description": description or (
            f"{key}, {core} @ {clock_mhz:g} MHz, {sram_kb:g} KB SRAM, {flash_kb:g} KB flash"),
        "core": core, "clock_mhz": clock_mhz, "sram_bytes": round(sram_kb * 1024),
        "flash_bytes": round(flash_kb * 1024), "dsp": bool(core_raw.get("dsp", False)),
        "fpu": bool(fpu), "sources": ["micronas devices add (your values)"]}
    path = user_devices_dir() / f"{key}.toml"
    device = device_from_dict(raw, str(path))  # validates before anything is written
    if path.exists() and not force:
        raise DeviceError(f"you already have a device {key!r} ({path}); add --force to replace it")
    blob = ("# Your board, written by 'micronas devices add'; latency constants: the core's.\n"
            + tomli_w.dumps(raw))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(blob))
    except OSError as e:
        raise DeviceError(f"cannot write {path} ({e.strerror}); set MICRONAS_CONFIG to a "
                          "writable folder") from None
    DEVICES.register(key, path, "", f"yours ({path})")
    return device


def _load_runtimes(reg: Registry[RuntimeProfile]) -> None:
    users: dict[str, list[str]] = {}
    profiles: dict[str, RuntimeProfile] = {}
    for name in builtin_devices():
        rt = load_device(name).runtime
        users.setdefault(rt.name, []).append(name)
        profiles.setdefault(rt.name, rt)
    for name, rt in profiles.items():
        reg.register(name, rt, f"runtime code {rt.code_flash_bytes / 1024:g} KB flash, "
                     f"{rt.ram_reserved_bytes / 1024:g} KB RAM outside the arena",
                     "device profiles: " + ", ".join(users[name]))


#: The runtimes the built-in device profiles hold memory overheads for.
RUNTIMES: Registry[RuntimeProfile] = Registry("runtime", loader=_load_runtimes)
