"""Device profiles: an MCU (core, clock, memories) plus the cost constants of a runtime on it.

A profile is a TOML file: built-in ones live in ``micronas/hardware/devices/``, yours in
:func:`user_devices_dir`; any file given by path works the same. The latency constants and
memory overheads are the chosen runtime's on the device's core
(:mod:`micronas.hardware.runtime`); a ``[latency]`` table in the device file (calibration
writes one) overrides them for the runtime the file names in ``[runtime] name``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from micronas.errors import DeviceError
from micronas.hardware.runtime import (
    DEFAULT_RUNTIME,
    LEGACY_NAMES,
    MEMORY_FIELDS,
    RUNTIMES,
    RuntimeProfile,
    memory_values,
)
from micronas.hardware.tomlcheck import (
    LIMITS,
    NAME_RE,
    latency_tables,
    name_of,
    number,
    read_toml,
    text,
)
from micronas.infra.registry import Registry


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
    #: where the profile came from: "built-in", "yours (PATH)" or "file PATH"
    origin: str = ""

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
    return read_toml(CORES[core], "core file")


def _runtime_of_profile(raw: dict[str, Any], where: str) -> str | None:
    """The runtime a profile names in its ``[runtime]`` table (its ``[latency]`` overrides are
    for that runtime), or None."""
    rt_raw = raw.get("runtime", {})
    if not isinstance(rt_raw, dict):
        raise DeviceError(f"{where}: [runtime] must be a table")
    for k in rt_raw:
        if k != "name" and k not in MEMORY_FIELDS:
            raise DeviceError(f"{where}: unknown key {k!r} in [runtime]; "
                              f"known: {', '.join(sorted(('name', *MEMORY_FIELDS)))}")
    if "name" not in rt_raw:
        return None
    name = text(rt_raw, "name", f"{where} [runtime]", "")
    if name.startswith("micronas standalone C"):   # what emulation calibration used to write
        return "micronas-c"
    return LEGACY_NAMES.get(name, name)


def device_from_dict(raw: dict[str, Any], where: str, runtime: str | None = None) -> Device:
    """Validate a parsed profile and build a :class:`Device` for ``runtime`` (default: the
    runtime the profile names, else :data:`DEFAULT_RUNTIME`); ``where`` names it in errors.

    The latency constants are the runtime's on the profile's core; a ``[latency]`` table in
    the profile (``micronas calibrate`` writes one) overrides them for the runtime the profile
    names in ``[runtime] name`` only, as do its memory values."""
    name, core = name_of(raw, "name", where), name_of(raw, "core", where)
    description = text(raw, "description", where, name)
    clock = number(raw, "clock_mhz", where, limit=LIMITS["clock_mhz"])
    sram = int(number(raw, "sram_bytes", where, limit=LIMITS["sram_bytes"]))
    flash = int(number(raw, "flash_bytes", where, limit=LIMITS["flash_bytes"]))
    sources = raw.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(x, str) and len(x) <= 500
                                                for x in sources):
        raise DeviceError(f"{where}: 'sources' must be a list of strings, e.g. "
                          "sources = [\"datasheet rev 8\"]")
    _core_file(core)  # an unknown core: the one-line error naming the closest
    own = _runtime_of_profile(raw, where)
    chosen = RUNTIMES.entry(runtime or own or DEFAULT_RUNTIME).name
    rt = RUNTIMES[chosen]
    tables, overhead, grounding, source, extrapolated = rt.core_file(core)
    overrides: dict[str, int] = {}
    if "latency" in raw:
        override, ov = latency_tables(raw["latency"], where)
        if chosen == (own or DEFAULT_RUNTIME):
            for k, v in override.items():
                tables[k] = {**tables.get(k, {}), **v}
            if ov is not None:
                overhead = ov
            grounding, source, extrapolated = "calibrated", f"calibrated in {where}", ()
    if chosen == (own or DEFAULT_RUNTIME):
        overrides = memory_values(raw.get("runtime", {}), f"{where} [runtime]")
    for flag in ("dsp", "fpu"):
        if flag in raw and not isinstance(raw[flag], bool):
            raise DeviceError(f"{where}: {flag!r} must be true or false")
    return Device(
        name=name, description=description,
        core=core, clock_mhz=clock, sram_bytes=sram, flash_bytes=flash,
        dsp=bool(raw.get("dsp", True)), fpu=bool(raw.get("fpu", False)), latency=tables,
        overhead_cycles=overhead,
        runtime=rt.profile(core, overrides, grounding, source, extrapolated),
        sources=tuple(sources), path=where,
    )


def load_device(name_or_path: str | Path, runtime: str | None = None) -> Device:
    """A built-in profile by name (``stm32f746``) or any profile file by path, with the cost
    constants of ``runtime`` (default: the profile's, else ``tflm-cmsis-nn``)."""
    txt = str(name_or_path)
    p = Path(txt)
    if txt.endswith(".toml") or p.is_file():
        if not p.is_file():
            raise DeviceError(f"device file {txt} does not exist")
        return replace(device_from_dict(read_toml(p, "device file"), str(p), runtime),
                       origin=f"file {p}")
    key = DEVICES.key(txt)
    return replace(device_from_dict(read_toml(DEVICES[key], "device file"), key, runtime),
                   origin=DEVICES.entry(key).source)


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
