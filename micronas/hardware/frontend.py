"""Cost of an audio front end (CMSIS-DSP's q15 MFCC + the int8 scaling) on a device.

Latency: cycles per frame measured in the emulator for each core (``frontend_cycles.toml``,
written by ``benchmarks/frontend_cycles.py``: the generated ``mn_frontend.c`` compiled with
CMSIS-DSP 1.10.3's sources by arm-none-eabi-gcc -O2, run in unicorn, costed with
``micronas/measure/cycles.toml``), for the portable-C build of CMSIS-DSP whose features are
bit-exact with training's. The measured front end is the default (FFT 512, 40 mel bands, 10
coefficients); another FFT length is scaled by N log2 N, other mel / DCT sizes are not
modelled (the FFT dominates), and such a cost says ``extrapolated``. The whole clip's frames
are counted (the bundle's ``mn_frontend`` computes them in one call).

SRAM: the int16 clip buffer, the frame copy, ``arm_mfcc_q15``'s q31 scratch (2 x FFT
length) and the instance. Flash: the front end's const tables plus CMSIS-DSP's code and the
FFT length's twiddle tables as linked (measured, ``--gc-sections``).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from micronas.errors import MicronasError
from micronas.hardware.device import Device
from micronas.tasks.frontend import FrontEnd


@dataclass(frozen=True)
class FrontEndCost:
    """What the front end adds to the network's costs on a device (ms, bytes)."""

    latency_ms: float
    cycles: float
    cycles_per_frame: float
    frames: int
    sram_bytes: int
    flash_bytes: int
    audio_buffer_bytes: int
    work_buffer_bytes: int
    table_bytes: int
    code_bytes: int
    core: str
    source: str
    extrapolated: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """``8.91 ms, SRAM 36.8 KB, flash 44.2 KB`` (with ``(extrapolated)``)."""
        return (f"{self.latency_ms:.2f} ms, SRAM {self.sram_bytes / 1024:.1f} KB, flash "
                f"{self.flash_bytes / 1024:.1f} KB" + (" (extrapolated)" if self.extrapolated else ""))


def _table() -> dict[str, Any]:
    return tomllib.loads((resources.files("micronas.hardware") / "frontend_cycles.toml").read_text())


def frontend_cost(fe: FrontEnd, device: Device) -> FrontEndCost:
    """The front end's latency, SRAM and flash on ``device`` (see the module's docstring)."""
    raw = _table()
    row = raw.get(device.core)
    if row is None:
        raise MicronasError(f"no measured front-end cycles for core {device.core!r}; known: "
                            f"{', '.join(k for k in raw if k.startswith('cortex'))}")
    ref = raw["reference"]
    n0 = int(ref["fft_length"])
    n = fe.fft_length
    per_frame = float(row["portable_cycles_per_frame"]) * (n * math.log2(n)) / (n0 * math.log2(n0))
    extrapolated = (n, fe.mel_bands, fe.coefficients) != (n0, int(ref["mel_bands"]),
                                                          int(ref["coefficients"]))
    cycles = per_frame * fe.frames
    audio = 2 * fe.clip_samples
    work = 2 * n + 4 * 2 * n + 64
    tables = (2 * (n + fe.coefficients * fe.mel_bands) + 8 * fe.mel_bands
              + 2 * _filter_coefficients(fe) + 8 * fe.coefficients)
    code = int(row["portable_code_flash_bytes"])
    return FrontEndCost(cycles / (device.clock_mhz * 1e3), cycles, per_frame, fe.frames,
                        audio + work, tables + code, audio, work, tables, code, device.core,
                        str(raw["source"]), extrapolated)


def _filter_coefficients(fe: FrontEnd) -> int:
    """Non-zero mel filter coefficients (as ``cmsisdsp.mfcc.melFilterMatrix`` packs them)."""
    return int(fe.tables().filter_coefs.size)


__all__ = ["FrontEndCost", "frontend_cost"]
