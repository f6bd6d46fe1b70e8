"""The bundle's buildable firmware: input preprocessing in C, a CMake project, an Arduino
library (``docs/deploy.md``, "Firmware").

- ``standalone/mn_preprocess.c`` / ``.h``: raw input (``uint8_t`` pixels, ``int16_t`` or
  ``float`` samples; HWC) -> the model's int8 input, the same IEEE double operations as
  :func:`micronas.tasks.data.normalise` then
  :meth:`~micronas.deploy.quantize.TensorQuant.quantize` (bit for bit, tested);
- ``firmware/``: ``CMakeLists.txt``, the toolchain file ``arm-none-eabi.cmake`` (``-mcpu`` from
  the device's core), ``startup.c`` (vector table, start-up, semihosting), ``link.ld`` (the
  device's memory map), ``main.c`` (runs the network on ``mn_sample.h``, a real test sample,
  and prints the class through semihosting), ``mn_sample.h``;
- ``arduino/MicronasModel/``: ``library.properties``, ``src/`` (the same C) and
  ``examples/Classify/Classify.ino`` (with its own ``mn_sample.h``).

Everything is rendered from the ``templates/firmware`` and ``templates/arduino`` files, whose
placeholders are ``@{name}`` (CMake and C use ``${...}`` themselves).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from string import Template

import numpy as np

from micronas.deploy.quantize import TensorQuant
from micronas.errors import MicronasError
from micronas.hardware import Device
from micronas.tasks.data import normalise

#: The Arduino library's name (folder, header, library.properties).
ARDUINO_NAME = "MicronasModel"
ARDUINO_EXAMPLE = "Classify"
#: The sample kinds ``mn_sample.h`` can hold: raw values for an ``mn_preprocess_*`` function,
#: or the int8 input itself (``q``: when the network reads its input resized).
SAMPLE_KINDS = ("u8", "i16", "f32", "q")

#: Built-in devices' memory maps: (flash origin, RAM origin, RAM bytes used, note). The RAM
#: is the device's largest contiguous block that starts at the origin.
_MEMORY = {
    "nrf52840": (0x0000_0000, 0x2000_0000, None, "nRF52840: flash at 0x0, RAM at 0x20000000."),
    "nrf5340": (0x0000_0000, 0x2000_0000, None,
                "nRF5340 application core: flash at 0x0, RAM at 0x20000000."),
    "rp2040": (0x1000_0000, 0x2000_0000, None,
               "RP2040: XIP flash at 0x10000000; a bootable image also needs the 256-byte "
               "boot2 stage of the Pico SDK at its start (not included)."),
    "stm32f746": (0x0800_0000, 0x2000_0000, None, "STM32F746: DTCM + SRAM1 + SRAM2 from "
                  "0x20000000."),
    "stm32g0b1": (0x0800_0000, 0x2000_0000, None, "STM32G0B1: SRAM at 0x20000000."),
    "stm32h7a3": (0x0800_0000, 0x2400_0000, 1024 * 1024,
                  "STM32H7A3: AXI SRAM (1 MB at 0x24000000); DTCM and AHB SRAM unused."),
    "stm32l4r5": (0x0800_0000, 0x2000_0000, None, "STM32L4R5: SRAM1-3 from 0x20000000."),
    "stm32u575": (0x0800_0000, 0x2000_0000, 768 * 1024,
                  "STM32U575: SRAM1-3 (768 KB from 0x20000000); SRAM4 unused."),
}


class _At(Template):
    delimiter = "@"


def _template(path: str) -> _At:
    return _At((resources.files("micronas.ship") / "templates" / f"{path}.in").read_text())


def _c_double(v: float) -> str:
    """A C double literal of exactly ``v`` (repr is the shortest round-trip form)."""
    text = repr(float(v))
    if not np.isfinite(v):
        raise MicronasError(f"cannot write the non-finite constant {v} into C")
    return text if any(ch in text for ch in ".eE") else text + ".0"


def _c_string(s: str) -> str:
    """A C string literal: printable ASCII kept, anything else as '?'."""
    safe = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in s)
    return '"' + safe.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Preprocessing:
    """How raw input becomes the model's int8 input: the data's divisor, per-channel mean and
    standard deviation, the input quantisation, and the network's (C, H, W)."""

    shape: tuple[int, int, int]
    divisor: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    quant: TensorQuant
    #: the network reads its input resized from the data's size (torch's bilinear
    #: interpolation, which the C does not repeat): raw input must already be at its size
    resized: bool = False

    def __post_init__(self) -> None:
        if len(self.mean) != self.shape[0] or len(self.std) != self.shape[0]:
            raise MicronasError(f"preprocessing: {len(self.mean)} means and {len(self.std)} "
                                f"standard deviations for {self.shape[0]} channels")

    def reference(self, raw_hwc: np.ndarray) -> np.ndarray:
        """What the product's Python path gives the model for raw inputs ``(N, H, W, C)``
        (HWC, as the C reads them): int8 ``(N, H, W, C)``."""
        x = np.asarray(raw_hwc)
        nchw = normalise(np.moveaxis(x, -1, 1), self.divisor, self.mean, self.std)
        return np.moveaxis(self.quant.quantize(nchw.astype(np.float64)), 1, -1)


def render_preprocess(p: Preprocessing) -> dict[str, str]:
    """``standalone/mn_preprocess.c`` and ``.h``."""
    c, h, w = p.shape
    divisor = float(p.divisor)
    head = _template_dollar("mn_preprocess.h").substitute(
        height=h, width=w, channels=c, size=c * h * w, resized_note=(
            "/* CAUTION: the network was trained on the data resized to this size (torch's\n"
            " * bilinear interpolation of the normalised input), which these functions do not\n"
            " * repeat: resize first; the result is then close to, not bit for bit, training's. */\n"
            if p.resized else ""),
        divisor_text=f"{divisor:g}" + (" (uint8 data)" if divisor == 255.0 else ""))
    body = _template_dollar("mn_preprocess.c").substitute(
        mean=", ".join(_c_double(v) for v in p.mean), std=", ".join(_c_double(v) for v in p.std),
        divisor=_c_double(divisor), scale=_c_double(p.quant.scale),
        zero_point=int(p.quant.zero_point))
    return {"standalone/mn_preprocess.h": head, "standalone/mn_preprocess.c": body}


def _template_dollar(name: str) -> Template:
    return Template((resources.files("micronas.ship") / "templates" / f"{name}.in").read_text())


@dataclass(frozen=True)
class Sample:
    """The test input ``mn_sample.h`` holds: its values (HWC, the kind's C type), kind,
    test-set index and true label (-1: none)."""

    values: np.ndarray
    kind: str
    index: int
    label: int
    source: str

    def __post_init__(self) -> None:
        if self.kind not in SAMPLE_KINDS:
            raise MicronasError(f"sample kind {self.kind!r}: choose from {', '.join(SAMPLE_KINDS)}")


def choose_sample(raw_chw: np.ndarray | None, quantised_chw: np.ndarray, index: int, label: int,
                  source: str) -> Sample:
    """The sample to bundle: the raw test input in the narrowest C type that holds it exactly
    (``u8``, ``i16``, ``f32``), else (no raw input, or one no type holds) the int8 input."""
    if raw_chw is not None and np.asarray(raw_chw).dtype.kind in "uif":
        raw = np.moveaxis(np.asarray(raw_chw), 0, -1).reshape(-1)
        exact = raw.astype(np.float64)
        kinds: list[tuple[str, type[np.generic]]] = [("f32", np.float32)]
        if raw.dtype.kind in "ui":
            kinds = [("u8", np.uint8), ("i16", np.int16), *kinds]
        for kind, dtype in kinds:
            with np.errstate(invalid="ignore", over="ignore"):
                cast = exact.astype(dtype)
            if np.isfinite(exact).all() and np.array_equal(cast.astype(np.float64), exact):
                return Sample(cast, kind, index, label, source)
    q = np.moveaxis(np.asarray(quantised_chw, dtype=np.int8), 0, -1).reshape(-1)
    return Sample(q, "q", index, label, source + " (already quantised: the network reads "
                  "its input resized, which the C does not repeat)")


def render_sample(s: Sample, class_names: tuple[str, ...]) -> str:
    """``mn_sample.h``: the bundled test input and how it becomes the network's input."""
    ctype = {"u8": "uint8_t", "i16": "int16_t", "f32": "float", "q": "int8_t"}[s.kind]
    if s.kind == "f32":
        body = ", ".join(_c_float(v) for v in s.values)
    else:
        body = ", ".join(str(int(v)) for v in s.values)
    to_input = {
        "u8": "return mn_preprocess_u8(mn_sample, MN_PRE_WIDTH, MN_PRE_HEIGHT, input);",
        "i16": "return mn_preprocess_i16(mn_sample, MN_SAMPLE_SIZE, input);",
        "f32": "return mn_preprocess_f32(mn_sample, MN_SAMPLE_SIZE, input);",
        "q": "int i;\n  for (i = 0; i < MN_SAMPLE_SIZE; ++i) input[i] = mn_sample[i];\n  return 0;",
    }[s.kind]
    names = ", ".join(_c_string(n) for n in class_names)
    longest = max((len(n) for n in class_names), default=1)
    lines = [
        f"/* Generated by micronas: test sample {s.index} of {s.source.replace('*/', '* /')}",
        f" * as {ctype} ({'raw, HWC' if s.kind != 'q' else 'the int8 NHWC input'}), and how it "
        "becomes the network's input. */",
        "#ifndef MN_SAMPLE_H", "#define MN_SAMPLE_H", "#include <stdint.h>", "",
        '#include "mn_preprocess.h"', "",
        f"#define MN_SAMPLE_INDEX {s.index}",
        f"#define MN_SAMPLE_LABEL {s.label}",
        f"#define MN_SAMPLE_SIZE {len(s.values)}",
        f"#define MN_SAMPLE_CLASSES {len(class_names)}",
        f"#define MN_SAMPLE_MAX_NAME {longest + 1}",
        f"static const char *const mn_sample_class_names[MN_SAMPLE_CLASSES] = {{{names}}};",
        f"static const {ctype} mn_sample[MN_SAMPLE_SIZE] = {{{body}}};", "",
        "/* Write the sample as the network's int8 input; 0, or -1 on a size mismatch. */",
        "static inline int mn_sample_to_input(int8_t *input) {", f"  {to_input}", "}",
        "#endif", ""]
    return "\n".join(lines)


def _c_float(v: float) -> str:
    """A C float literal of exactly the float32 value ``v``."""
    if not np.isfinite(v):
        raise MicronasError(f"the test sample holds the non-finite value {v}")
    text = repr(float(np.float32(v)))
    return (text if any(ch in text for ch in ".eE") else text + ".0") + "f"


def memory_map(device: Device) -> tuple[int, int, int, int, str]:
    """(flash origin, flash bytes, RAM origin, RAM bytes, note) for ``link.ld``."""
    known = _MEMORY.get(device.name)
    if known is None:
        return (0x0800_0000, device.flash_bytes, 0x2000_0000, device.sram_bytes,
                f"{device.name} is not a built-in device: the origins are the common STM32 ones "
                "(flash 0x08000000, RAM 0x20000000), an assumption to check.")
    flash, ram, ram_bytes, note = known
    return flash, device.flash_bytes, ram, min(ram_bytes or device.sram_bytes,
                                               device.sram_bytes), note


def render_firmware(device: Device, sample: str) -> dict[str, str]:
    """``firmware/``: the CMake project for ``device`` (its core by default)."""
    flash, flash_bytes, ram, ram_bytes, note = memory_map(device)
    fpu = "ON" if device.fpu and device.core != "cortex-m0plus" else "OFF"
    files = {
        "firmware/CMakeLists.txt": _template("firmware/CMakeLists.txt").substitute(),
        "firmware/arm-none-eabi.cmake": _template("firmware/arm-none-eabi.cmake").substitute(
            device=device.name, core=device.core, fpu=fpu),
        "firmware/link.ld": _template("firmware/link.ld").substitute(
            device=device.name, description=device.description.replace("*/", "* /"),
            origin_note=note, flash_origin=f"{flash:#010x}", flash_bytes=flash_bytes,
            ram_origin=f"{ram:#010x}", ram_bytes=ram_bytes),
        "firmware/startup.c": _template("firmware/startup.c").substitute(),
        "firmware/main.c": _template("firmware/main.c").substitute(),
        "firmware/mn_app.h": _template("firmware/mn_app.h").substitute(),
        "firmware/mn_sample.h": sample,
    }
    return files


def render_arduino(standalone: dict[str, str], sample: str, task: str, space: str,
                   arch: str) -> dict[str, str]:
    """``arduino/MicronasModel/``: the library (``standalone``: file name -> text of the
    standalone C, preprocessing included) and its example sketch."""
    root = f"arduino/{ARDUINO_NAME}"
    short = arch if len(arch) <= 60 else arch[:57] + "..."
    files = {f"{root}/library.properties": _template("arduino/library.properties").substitute(
                 name=ARDUINO_NAME, task=re.sub(r"[\r\n]", " ", task), space=space,
                 arch_short=re.sub(r"[\r\n]", " ", short)),
             f"{root}/src/{ARDUINO_NAME}.h": _template("arduino/library.h").substitute(
                 guard=ARDUINO_NAME.upper() + "_H"),
             f"{root}/examples/{ARDUINO_EXAMPLE}/{ARDUINO_EXAMPLE}.ino":
                 _template("arduino/example.ino").substitute(name=ARDUINO_NAME),
             f"{root}/examples/{ARDUINO_EXAMPLE}/mn_sample.h": sample}
    for name, text in standalone.items():
        files[f"{root}/src/{name}"] = text
    return files


__all__ = ["ARDUINO_EXAMPLE", "ARDUINO_NAME", "SAMPLE_KINDS", "Preprocessing", "Sample",
           "choose_sample", "memory_map", "render_arduino", "render_firmware",
           "render_preprocess", "render_sample"]
