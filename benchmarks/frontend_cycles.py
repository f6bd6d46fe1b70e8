"""Emulated cycles and flash of the audio front end (CMSIS-DSP arm_mfcc_q15 + the int8
scaling, micronas/deploy/frontend.py) per Cortex-M core; writes
micronas/hardware/frontend_cycles.toml, the front-end cost model's constants.

    MICRONAS_CMSIS_DSP=/path/to/cmsisdsp-1.10.3 python benchmarks/frontend_cycles.py

The clip: one second of seeded speech-band noise (the MFCC's integer code has few
data-dependent branches). Both CMSIS-DSP builds are run: portable C (-D__GNUC_PYTHON__, what
the cmsisdsp Python package runs: features bit-exact with training's) and, on cores with the
DSP extension, CMSIS-DSP's DSP-extension paths (faster; compared with the Python features).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tomli_w

from micronas.measure.frontend import run_frontend
from micronas.tasks.frontend import FeatureScaling, FrontEnd

CORES = ("cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33")


def main() -> None:
    fe = FrontEnd()
    rng = np.random.default_rng(0)
    clip = np.clip(rng.standard_normal(fe.clip_samples) * 3000, -32768, 32767).astype(np.int16)
    fe = FrontEnd(scaling=FeatureScaling.fit(fe.mfcc(clip[None])))
    ref = fe.features(clip[None])[0]
    out: dict[str, object] = {
        "source": "emulated: benchmarks/frontend_cycles.py (CMSIS-DSP 1.10.3 from the cmsisdsp "
                  "sdist, arm-none-eabi-gcc -O2, unicorn + micronas/measure/cycles.toml)",
        "reference": {"fft_length": fe.fft_length, "mel_bands": fe.mel_bands,
                      "coefficients": fe.coefficients, "frames": fe.frames}}
    for core in CORES:
        row: dict[str, object] = {}
        for portable in (True, False):
            if not portable and core == "cortex-m0plus":
                continue
            r = run_frontend(fe, core, clip, portable=portable)
            same = bool(np.array_equal(r.features, ref))
            diff = int(np.count_nonzero(r.features != ref))
            key = "portable" if portable else "dsp"
            row[f"{key}_cycles_per_frame"] = round(r.cycles_per_frame, 1)
            row[f"{key}_code_flash_bytes"] = int(r.flash_bytes - r.table_bytes)
            row[f"{key}_bit_exact"] = same
            print(f"{core:14s} {key:8s} {r.cycles_per_frame:10.0f} cycles/frame "
                  f"{r.cycles / 1e6:6.2f} M cycles/clip  flash {r.flash_bytes:6d} B "
                  f"(tables {r.table_bytes})  = Python features: {same} ({diff} of {ref.size} differ)",
                  flush=True)
        out[core] = row
    path = Path(__file__).resolve().parent.parent / "micronas" / "hardware" / "frontend_cycles.toml"
    if "--write" in sys.argv:
        path.write_text("# written by benchmarks/frontend_cycles.py --write; do not edit\n"
                        + tomli_w.dumps(out))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
