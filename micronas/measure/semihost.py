"""Run a whole Cortex-M ELF in the ``unicorn`` emulator, its output read through semihosting.

The bundle's firmware project (``firmware/``) builds an ordinary bare-metal image: a vector
table (initial stack pointer, reset handler), ``.data`` copied from flash, ``.bss`` zeroed,
``main``. :func:`run_elf` loads every ``PT_LOAD`` segment of the ELF at its load address,
maps the RAM the segments and the stack occupy (and the System Control Space page as plain
memory, so a start-up's write to CPACR lands), and starts at the reset vector with the
initial stack pointer of the vector table, as the core does out of reset.

Semihosting (Arm's "Semihosting for AArch32 and AArch64", v2): the program executes
``BKPT 0xAB`` with the operation in ``r0`` and its argument in ``r1``; unicorn reports the
breakpoint as interrupt 7 with the PC on the ``BKPT``, and the hook below performs the
operation and resumes after it. Implemented: ``SYS_WRITEC`` (0x03), ``SYS_WRITE0`` (0x04),
``SYS_WRITE`` (0x05, handles 1 and 2), ``SYS_EXIT`` (0x18) and ``SYS_EXIT_EXTENDED`` (0x20);
any other operation stops the run with a one-line error naming it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from micronas.errors import MicronasError
from micronas.measure.emulate import _unicorn

SYS_WRITEC, SYS_WRITE0, SYS_WRITE, SYS_EXIT, SYS_EXIT_EXTENDED = 0x03, 0x04, 0x05, 0x18, 0x20
ADP_STOPPED_APPLICATION_EXIT = 0x20026
STACK_BYTES = 64 * 1024
SCS_BASE, SCS_BYTES = 0xE000_E000, 0x1000
_PAGE = 0x1000
_BKPT_SEMIHOST = b"\xab\xbe"   # BKPT 0xAB, Thumb, little-endian


@dataclass(frozen=True)
class Segment:
    vaddr: int
    paddr: int
    data: bytes
    memsz: int


@dataclass(frozen=True)
class ElfRun:
    """What an emulated ELF did: its semihosting output and exit code (``SYS_EXIT``'s
    subcode; 0 for a plain application exit)."""

    output: str
    exit_code: int


def read_segments(path: str | Path) -> tuple[int, list[Segment]]:
    """(entry point, PT_LOAD segments) of a 32-bit little-endian Arm ELF."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise MicronasError(f"cannot read {p} ({e.strerror})") from None
    if len(raw) < 52 or raw[:4] != b"\x7fELF" or raw[4] != 1 or raw[5] != 1:
        raise MicronasError(f"{p} is not a 32-bit little-endian ELF file")
    machine, _, entry, phoff = struct.unpack_from("<HIII", raw, 18)
    if machine != 40:  # EM_ARM
        raise MicronasError(f"{p} is not an Arm ELF (e_machine {machine})")
    phentsize, phnum = struct.unpack_from("<HH", raw, 42)
    segments = []
    for i in range(phnum):
        ptype, off, vaddr, paddr, filesz, memsz = struct.unpack_from("<IIIIII", raw,
                                                                      phoff + i * phentsize)
        if ptype == 1 and (filesz or memsz):   # PT_LOAD
            segments.append(Segment(vaddr, paddr, raw[off:off + filesz], memsz))
    if not segments:
        raise MicronasError(f"{p} has no loadable segment")
    return entry, segments


def _ranges(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Page-aligned, merged [start, end) ranges covering ``spans``."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted((lo // _PAGE * _PAGE, -(-hi // _PAGE) * _PAGE) for lo, hi in spans
                         if hi > lo):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def run_elf(path: str | Path, core: str, max_instructions: int = 500_000_000) -> ElfRun:
    """Run the ELF at ``path`` on ``core`` from reset until it calls ``SYS_EXIT``; its
    semihosting output and exit code. A fault, an unsupported semihosting call or running
    past ``max_instructions`` raises a one-line MicronasError."""
    unicorn, arm, _ = _unicorn()
    cpu = {"cortex-m4": arm.UC_CPU_ARM_CORTEX_M4, "cortex-m7": arm.UC_CPU_ARM_CORTEX_M7,
           "cortex-m33": arm.UC_CPU_ARM_CORTEX_M33, "cortex-m0plus": arm.UC_CPU_ARM_CORTEX_M0}
    if core not in cpu:
        raise MicronasError(f"no emulation support for core {core!r}; supported: "
                            f"{', '.join(cpu)}")
    _, segments = read_segments(path)
    # the vector table is at the lowest load address: initial SP, then the reset handler
    table = min(segments, key=lambda s: s.paddr)
    if len(table.data) < 8:
        raise MicronasError(f"{path}: no vector table at the start of its first segment")
    sp, reset = struct.unpack_from("<II", table.data, 0)
    spans = [(s.paddr, s.paddr + len(s.data)) for s in segments]
    spans += [(s.vaddr, s.vaddr + s.memsz) for s in segments]
    # the stack: down to the RAM segments when they lie below it (the linker script's RAM
    # region, up to 64 MB), else STACK_BYTES
    below = [s.vaddr for s in segments if s.vaddr < sp and sp - s.vaddr <= 64 << 20]
    spans.append((min([sp - STACK_BYTES, *below]), sp))
    # the System Control Space (CPACR, SCB) as plain memory: the start-up's writes land there
    spans.append((SCS_BASE, SCS_BASE + SCS_BYTES))
    uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(cpu[core])
    for lo, hi in _ranges(spans):
        uc.mem_map(lo, hi - lo)
    for s in segments:
        uc.mem_write(s.paddr, s.data)
    uc.reg_write(arm.UC_ARM_REG_SP, sp)

    out = bytearray()
    state: dict[str, object] = {"exit": None, "error": None}

    def c_string(addr: int) -> bytes:
        buf = bytearray()
        while len(buf) < 1 << 20:
            chunk = bytes(uc.mem_read(addr + len(buf), 64))
            end = chunk.find(b"\0")
            if end >= 0:
                return bytes(buf + chunk[:end])
            buf += chunk
        raise MicronasError("SYS_WRITE0: string without a terminating NUL")

    def on_interrupt(_uc: object, intno: int, _data: object) -> None:
        pc = uc.reg_read(arm.UC_ARM_REG_PC)
        if intno != 7 or bytes(uc.mem_read(pc, 2)) != _BKPT_SEMIHOST:
            state["error"] = f"exception {intno} at pc={pc:#x} (not a semihosting call)"
            uc.emu_stop()
            return
        op, arg = uc.reg_read(arm.UC_ARM_REG_R0), uc.reg_read(arm.UC_ARM_REG_R1)
        result = 0
        if op == SYS_WRITEC:
            out.extend(uc.mem_read(arg, 1))
        elif op == SYS_WRITE0:
            out.extend(c_string(arg))
        elif op == SYS_WRITE:
            handle, buf, n = struct.unpack("<III", bytes(uc.mem_read(arg, 12)))
            if handle not in (1, 2):
                result = n       # nothing written
            else:
                out.extend(uc.mem_read(buf, n))
        elif op in (SYS_EXIT, SYS_EXIT_EXTENDED):
            if op == SYS_EXIT_EXTENDED:
                reason, sub = struct.unpack("<II", bytes(uc.mem_read(arg, 8)))
            else:
                reason, sub = arg, 0
            code = sub if reason == ADP_STOPPED_APPLICATION_EXIT else 128 + (reason & 0xFF)
            state["exit"] = code - (1 << 32) if code >= 1 << 31 else code
            uc.emu_stop()
            return
        else:
            state["error"] = f"semihosting operation {op:#x} at pc={pc:#x} is not supported"
            uc.emu_stop()
            return
        uc.reg_write(arm.UC_ARM_REG_R0, result)
        uc.reg_write(arm.UC_ARM_REG_PC, (pc + 2) | 1)

    def on_unmapped(_uc: object, access: int, address: int, size: int, _value: int,
                    _data: object) -> bool:
        state["error"] = (f"access to unmapped address {address:#x} ({size} bytes) at "
                          f"pc={uc.reg_read(arm.UC_ARM_REG_PC):#x}")
        return False

    uc.hook_add(unicorn.UC_HOOK_INTR, on_interrupt)
    uc.hook_add(unicorn.UC_HOOK_MEM_UNMAPPED, on_unmapped)
    try:
        uc.emu_start(reset | 1, 0xFFFF_FFFE, count=max_instructions)
    except unicorn.UcError as e:
        raise MicronasError(f"{Path(path).name}: emulation failed: "
                            f"{state['error'] or e} (pc={uc.reg_read(arm.UC_ARM_REG_PC):#x})"
                            ) from None
    if state["error"]:
        raise MicronasError(f"{Path(path).name}: {state['error']}")
    if state["exit"] is None:
        raise MicronasError(f"{Path(path).name}: no SYS_EXIT within {max_instructions:,} "
                            "instructions")
    return ElfRun(out.decode("utf-8", "replace"), int(str(state["exit"])))


__all__ = ["ElfRun", "Segment", "main", "read_segments", "run_elf"]


def main(argv: list[str] | None = None) -> int:
    """``python -m micronas.measure.semihost ELF --core CORE``: run a firmware ELF in the
    emulator, print its semihosting output, exit with its exit code (2 on bad input)."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m micronas.measure.semihost",
                                 description="Run a Cortex-M ELF in the emulator; print what it "
                                 "writes through semihosting and exit with its exit code.")
    ap.add_argument("elf", help="the ELF file (e.g. build/micronas_model.elf)")
    ap.add_argument("--core", required=True, help="cortex-m0plus, cortex-m4, cortex-m7 or "
                    "cortex-m33")
    ap.add_argument("--max-instructions", type=int, default=500_000_000,
                    help="stop with an error after this many instructions")
    args = ap.parse_args(argv)
    try:
        r = run_elf(args.elf, args.core, args.max_instructions)
    except MicronasError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(r.output)
    return r.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
