"""Emulated cycles, flash and output of the audio front end on a Cortex-M core.

The generated ``mn_frontend.c`` (:mod:`micronas.deploy.frontend`) is cross-compiled with
CMSIS-DSP's own sources (the ``cmsisdsp`` sdist, ``$MICRONAS_CMSIS_DSP``) at ``-O2`` for the
core, with the DSP-extension paths CMSIS-DSP takes on M4/M7/M33 (``ARM_MATH_DSP``) and the
portable C on the M0+; CMSIS-Core's ``cmsis_compiler.h`` is replaced by the small header
:data:`COMPILER_H` (the intrinsics CMSIS-DSP uses, through ACLE). It runs in unicorn on a clip
and the executed instructions between two marks are costed with the per-core table of
:mod:`micronas.measure.emulate`; the int8 features are read back, to be compared with the
Python front end's. Flash: the image linked with the front end less the image without it.
``benchmarks/frontend_cycles.py`` runs this over a designed set of front ends and writes
``micronas/hardware/frontend_cycles.toml``, the cost model's constants.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from micronas.deploy.frontend import cmsis_dsp_sources, render_frontend, source_files
from micronas.errors import MicronasError
from micronas.measure.emulate import _LINKER, FLASH_BASE, RAM_BASE, machine, run_marked
from micronas.measure.toolchain import CPU_FLAGS, check_run, section_sizes, toolchain
from micronas.tasks.frontend import FrontEnd

#: the optimisation level (the project's kernels' and TFLM's)
OPT = "-O2"

#: Stands in for CMSIS-Core's cmsis_compiler.h: the macros and intrinsics CMSIS-DSP uses,
#: through GCC's ACLE (``arm_acle.h``) where the core has the DSP extension.
COMPILER_H = r"""
#ifndef MN_CMSIS_COMPILER_H
#define MN_CMSIS_COMPILER_H
#include <stdint.h>
#include <arm_acle.h>
#define __ASM __asm
#define __INLINE inline
#define __STATIC_INLINE static inline
#define __STATIC_FORCEINLINE static inline __attribute__((always_inline))
#define __ALIGNED(x) __attribute__((aligned(x)))
#define __PACKED __attribute__((packed))
#define __WEAK __attribute__((weak))
#define __RESTRICT __restrict
__STATIC_FORCEINLINE uint8_t __CLZ(uint32_t v) { return v == 0U ? 32U : (uint8_t)__builtin_clz(v); }
__STATIC_FORCEINLINE uint32_t __ROR(uint32_t a, uint32_t b) {
  b %= 32U; return b == 0U ? a : (a >> b) | (a << (32U - b)); }
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#define __SSAT(x, n) __ssat((x), (n))
#define __USAT(x, n) __usat((x), (n))
#else
__STATIC_FORCEINLINE int32_t __SSAT(int32_t val, uint32_t sat) {
  if (sat >= 1U && sat <= 32U) { const int32_t max = (int32_t)((1U << (sat - 1U)) - 1U);
    const int32_t min = -1 - max; if (val > max) return max; if (val < min) return min; }
  return val; }
__STATIC_FORCEINLINE uint32_t __USAT(int32_t val, uint32_t sat) {
  if (sat <= 31U) { const uint32_t max = ((1U << sat) - 1U);
    if (val > (int32_t)max) return max; if (val < 0) return 0U; }
  return (uint32_t)val; }
#endif
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define __QADD8(a, b) ((uint32_t)__qadd8((a), (b)))
#define __QSUB8(a, b) ((uint32_t)__qsub8((a), (b)))
#define __QADD16(a, b) ((uint32_t)__qadd16((a), (b)))
#define __SHADD16(a, b) ((uint32_t)__shadd16((a), (b)))
#define __QSUB16(a, b) ((uint32_t)__qsub16((a), (b)))
#define __SHSUB16(a, b) ((uint32_t)__shsub16((a), (b)))
#define __QASX(a, b) ((uint32_t)__qasx((a), (b)))
#define __SHASX(a, b) ((uint32_t)__shasx((a), (b)))
#define __QSAX(a, b) ((uint32_t)__qsax((a), (b)))
#define __SHSAX(a, b) ((uint32_t)__shsax((a), (b)))
#define __SMUAD(a, b) ((uint32_t)__smuad((a), (b)))
#define __SMUADX(a, b) ((uint32_t)__smuadx((a), (b)))
#define __SMUSD(a, b) ((uint32_t)__smusd((a), (b)))
#define __SMUSDX(a, b) ((uint32_t)__smusdx((a), (b)))
#define __SMLAD(a, b, c) ((uint32_t)__smlad((a), (b), (c)))
#define __SMLADX(a, b, c) ((uint32_t)__smladx((a), (b), (c)))
#define __SMLSDX(a, b, c) ((uint32_t)__smlsdx((a), (b), (c)))
#define __SMLALD(a, b, c) ((uint64_t)__smlald((a), (b), (c)))
#define __SMLALDX(a, b, c) ((uint64_t)__smlaldx((a), (b), (c)))
#define __SXTB16(a) ((uint32_t)__sxtb16((a)))
#define __QADD(a, b) __qadd((a), (b))
#define __QSUB(a, b) __qsub((a), (b))
#define __PKHBT(a, b, s) ((((uint32_t)(a)) & 0x0000FFFFUL) | ((((uint32_t)(b)) << (s)) & 0xFFFF0000UL))
#define __PKHTB(a, b, s) ((((uint32_t)(a)) & 0xFFFF0000UL) | ((((uint32_t)(b)) >> (s)) & 0x0000FFFFUL))
__STATIC_FORCEINLINE int32_t __SMMLA(int32_t a, int32_t b, int32_t c) {
  int32_t r; __ASM volatile ("smmla %0, %1, %2, %3" : "=r" (r) : "r" (a), "r" (b), "r" (c)); return r; }
#endif
#endif
"""

_HARNESS = r"""
#include <stdint.h>
#include "mn_frontend.h"
int16_t mn_audio[MN_FE_CLIP_SAMPLES];
int8_t mn_features[MN_FE_FEATURES];
volatile int32_t mn_status;
void __attribute__((noinline)) mn_mark(int32_t phase) { __asm volatile("" ::: "memory"); }
void __attribute__((noinline)) mn_done(void) { for (;;) { __asm volatile(""); } }
int32_t mn_run(void)
{
    if (mn_status < -1000) mn_done();
    int32_t st = mn_frontend_init();
    if (st == 0) { mn_mark(1); st = mn_frontend(mn_audio, mn_features); mn_mark(2); }
    mn_status = st;
    return st;
}
"""

_EMPTY = r"""
#include <stdint.h>
volatile int32_t mn_status;
void __attribute__((noinline)) mn_done(void) { for (;;) { __asm volatile(""); } }
int32_t mn_run(void) { if (mn_status < -1000) mn_done(); mn_status = 0; return 0; }
"""


@dataclass
class FrontEndRun:
    """One emulated run of ``mn_frontend`` on a clip."""

    core: str
    cycles: float                 # mn_frontend, all frames
    instructions: int
    frames: int
    features: np.ndarray          # int8 (frames, coefficients) read back
    flash_bytes: int              # linked code + tables less an empty image
    table_bytes: int              # the front end's own const tables

    @property
    def cycles_per_frame(self) -> float:
        return self.cycles / self.frames


def _link(d: Path, core: str, src: Path, main: str, with_frontend: bool,
          portable: bool = False) -> tuple[bytes, dict[str, int], int]:
    gcc = toolchain()
    (d / "cmsis_compiler.h").write_text(COMPILER_H)
    (d / "main.c").write_text(main)
    (d / "link.ld").write_text(_LINKER.format(flash=FLASH_BASE, ram=RAM_BASE))
    elf = d / ("fe.elf" if with_frontend else "empty.elf")
    srcs = [str(d / "main.c")]
    if with_frontend:
        srcs += [str(d / "mn_frontend.c"), *map(str, source_files(src))]
    check_run([gcc, CPU_FLAGS[core], "-mthumb", OPT, "-std=c11", "-w", "-ffunction-sections",
               *(["-D__GNUC_PYTHON__"] if portable else []),
               "-fdata-sections", "-fno-common", "-nostartfiles", "-Wl,--gc-sections",
               "-I", str(d), "-I", str(src / "Include"), "-I", str(src / "PrivateInclude"),
               "-T", str(d / "link.ld"), *srcs, "-lc", "-lm", "-lgcc", "-o", str(elf)],
              f"compiling the front end with CMSIS-DSP for {core}")
    binary = d / (elf.stem + ".bin")
    check_run([gcc.replace("gcc", "objcopy"), "-O", "binary", "-j", ".text", str(elf),
               str(binary)], "objcopy")
    symbols = {}
    for line in check_run([gcc.replace("gcc", "nm"), str(elf)], "nm").splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols[parts[2]] = int(parts[0], 16)
    text, data, _ = section_sizes(check_run([gcc.replace("gcc", "size"), "-A", str(elf)], "size"))
    return binary.read_bytes(), symbols, text + data


def run_frontend(fe: FrontEnd, core: str, clip: np.ndarray, root: str | Path | None = None,
                 max_instructions: int = 2_000_000_000, portable: bool = False) -> FrontEndRun:
    """Compile ``fe``'s ``mn_frontend.c`` with CMSIS-DSP for ``core`` and run it in the
    emulator on one int16 ``clip``. ``portable``: CMSIS-DSP's portable C only
    (``-D__GNUC_PYTHON__``: no DSP-extension paths, no CMSIS-Core), as the Python package's
    build."""
    if core not in CPU_FLAGS:
        raise MicronasError(f"no emulation support for core {core!r}; supported: "
                            f"{', '.join(CPU_FLAGS)}")
    src = cmsis_dsp_sources(root)
    with tempfile.TemporaryDirectory(prefix="micronas-fe-") as tmp:
        d = Path(tmp)
        for name, text in render_frontend(fe).items():
            (d / name).write_text(text)
        image, sym, flash = _link(d, core, src, _HARNESS, True, portable)
        _, _, flash_empty = _link(d, core, src, _EMPTY, False, portable)
    ram_size = 4 << 20
    uc, arm = machine(core, image, ram_size)
    uc.mem_write(sym["mn_audio"], np.asarray(clip, dtype="<i2").reshape(-1).tobytes())
    done, mark = sym["mn_done"] & ~1, sym["mn_mark"] & ~1
    uc.reg_write(arm.UC_ARM_REG_SP, RAM_BASE + ram_size - 16)
    uc.reg_write(arm.UC_ARM_REG_LR, done | 1)
    cycles, classes, n_taken = run_marked(uc, arm, image, core, sym["mn_run"], done, mark,
                                          max_instructions, "the front end")
    n_insn = sum(classes.values())
    status = int(np.frombuffer(bytes(uc.mem_read(sym["mn_status"], 4)), dtype=np.int32)[0])
    if status != 0:
        raise MicronasError(f"the front end returned status {status} on {core}")
    raw = bytes(uc.mem_read(sym["mn_features"], fe.frames * fe.coefficients))
    feats = np.frombuffer(raw, dtype=np.int8).reshape(fe.frames, fe.coefficients)
    return FrontEndRun(core, cycles, n_insn, fe.frames, feats.copy(), flash - flash_empty,
                       fe.tables().flash_bytes() + 8 * fe.coefficients)


__all__ = ["COMPILER_H", "FrontEndRun", "run_frontend"]
