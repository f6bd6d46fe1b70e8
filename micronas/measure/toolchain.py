"""The Arm cross-compiler: where it is, the flags per core, and running it."""

from __future__ import annotations

import shutil
import subprocess

from micronas.errors import MicronasError

APT_HINT = ("apt-get install --no-install-recommends gcc-arm-none-eabi "
            "libnewlib-arm-none-eabi")

#: -mcpu per Cortex-M core the emulator and the bundle's checks support.
CPU_FLAGS = {"cortex-m4": "-mcpu=cortex-m4", "cortex-m7": "-mcpu=cortex-m7",
             "cortex-m33": "-mcpu=cortex-m33", "cortex-m0plus": "-mcpu=cortex-m0plus"}

#: The flags the bundle's C is compiled with per core (soft float where the core has an FPU
#: variant, so the objects link into any project).
CORE_FLAGS = {"cortex-m4": ["-mcpu=cortex-m4", "-mfloat-abi=soft"],
              "cortex-m7": ["-mcpu=cortex-m7", "-mfloat-abi=soft"],
              "cortex-m33": ["-mcpu=cortex-m33", "-mfloat-abi=soft"],
              "cortex-m0plus": ["-mcpu=cortex-m0plus"]}


def toolchain() -> str:
    """Path of arm-none-eabi-gcc, or a MicronasError with the install command."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise MicronasError(f"arm-none-eabi-gcc not found; install the toolchain with "
                            f"'{APT_HINT}' (as root)")
    return gcc


def check_run(cmd: list[str], what: str) -> str:
    """Run a toolchain command; its stdout, or a MicronasError with its first error line."""
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        first = (r.stderr or r.stdout).strip().splitlines()
        raise MicronasError(f"{what} failed: {first[0] if first else 'exit ' + str(r.returncode)}")
    return r.stdout


def section_sizes(size_output: str) -> tuple[int, int, int]:
    """(text + rodata, data, bss) bytes summed from ``arm-none-eabi-size -A`` output."""
    text = data = bss = 0
    for line in size_output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            sec, n = parts[0], int(parts[1])
            if sec.startswith(".text") or sec.startswith(".rodata"):
                text += n
            elif sec.startswith(".data"):
                data += n
            elif sec.startswith(".bss") or sec == "COMMON":
                bss += n
    return text, data, bss


__all__ = ["APT_HINT", "CORE_FLAGS", "CPU_FLAGS", "check_run", "section_sizes", "toolchain"]
