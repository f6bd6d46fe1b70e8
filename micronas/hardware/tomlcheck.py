"""Validation of the small TOML files that describe devices, cores and runtimes: each check
raises a one-line :class:`~micronas.errors.DeviceError` naming the file and the key."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

from micronas.errors import DeviceError

OP_CLASSES = ("conv", "conv1x1", "depthwise", "fully_connected", "pool", "global_pool", "add",
              "concat", "relu", "affine", "zeros", "pad", "resize",
              "hard_swish", "logistic", "mul")
COEFFICIENTS = ("cycles_per_mac", "cycles_per_output", "cycles_per_input", "cycles_per_window",
                "cycles_per_layer", "cycles_per_valid_mac", "cycles_per_kernel_row",
                "cycles_per_pixel", "cycles_per_unaligned_mac", "cycles_per_unaligned_output",
                "cycles_per_generic_mac", "cycles_per_generic_output", "cycles_per_generic_pixel",
                "cycles_per_aligned_output")

#: A device or core name: a safe identifier (it names files and cache entries).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Upper bounds that no real MCU reaches: a value above them is a typo or an attack.
LIMITS = {"clock_mhz": 10_000.0, "sram_bytes": float(2**36), "flash_bytes": float(2**36)}
_COEFF_MAX = 1e9        # cycles per MAC / output / layer ...
_TOML_MAX_BYTES = 1 << 20


def read_toml(path: Path | Any, what: str) -> dict[str, Any]:
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


def number(table: dict[str, Any], key: str, where: str, *, positive: bool = True,
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


def name_of(raw: dict[str, Any], key: str, where: str) -> str:
    v = raw.get(key)
    if not isinstance(v, str) or not v:
        raise DeviceError(f"{where}: missing required key {key!r} (a string)")
    if not NAME_RE.fullmatch(v):
        shown = v if len(v) <= 40 else v[:40] + "..."
        raise DeviceError(f"{where}: {key} {shown!r} is not a valid name; use up to 64 letters, "
                          "digits, '.', '_' or '-', starting with a letter or digit")
    return v


def text(raw: dict[str, Any], key: str, where: str, default: str, limit: int = 300) -> str:
    v = raw.get(key, default)
    if not isinstance(v, str) or len(v) > limit or any(ord(c) < 32 for c in v):
        raise DeviceError(f"{where}: {key!r} must be one line of text of at most {limit} "
                          "characters")
    return v


def latency_tables(raw: dict[str, Any], where: str) -> tuple[dict[str, dict[str, float]], float | None]:
    if not isinstance(raw, dict):
        raise DeviceError(f"{where}: [latency] must be a table")
    tables: dict[str, dict[str, float]] = {}
    overhead = None
    for key, value in raw.items():
        if key == "overhead_cycles":
            overhead = number(raw, key, where, positive=False)
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
        tables[key] = {c: number(value, c, f"{where} [latency.{key}]", positive=False)
                       for c in value}
    return tables, overhead


