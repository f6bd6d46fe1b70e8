"""Predicted vs measured latency of the MLPerf Tiny reference networks on STM32 boards.

Measured: median over all v1.0/v1.1 closed-division submissions for that board and task in
``shared/data/mcu/mlperf_tiny_latency.csv`` (TFLite Micro, X-CUBE-AI, microTVM, Plumerai,
HALE, ONNC: a range of runtimes). Predicted: ``micronas cost mlperf:TASK --device D``.

    python benchmarks/mlperf_latency.py [--data ../shared/data] [--fit]

``--fit`` prints, per core, the multiplicative scale on all latency coefficients that makes
the geometric mean of measured/predicted equal 1 over kws and vww (ad is held out), which is
how the built-in core constants were set (docs/cost_model.md). ``--emulated`` adds the
latency of the same network with micronas's own int8 kernels on the emulated core
(``micronas measure``), to separate kernel quality from the cost model.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from micronas.api import cost

BOARDS = {"L4R5": "stm32l4r5", "U575": "stm32u575", "H7A3": "stm32h7a3", "F746": "stm32f746",
          "G0B1": "stm32g0b1", "NRF5340": "nrf5340"}
TASKS = {"kws": "kws", "keyword_spotting": "kws", "vww": "vww", "visual_wake_words": "vww",
         "ad": "ad", "anomaly_detection": "ad"}


def measured(path: Path) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    with open(path) as f:
        for r in csv.DictReader(f):
            task = TASKS.get(r["task"].strip().lower())
            system = (r["system"] + " " + r.get("board", "")).upper().replace("-", "").replace("_", "")
            dev = next((d for key, d in BOARDS.items() if key in system), None)
            if task and dev and r["latency_ms"]:
                out[(dev, task)].append(float(r["latency_ms"]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--fit", action="store_true")
    p.add_argument("--emulated", action="store_true", help="add micronas measure's latency")
    p.add_argument("--runtime", default="optimized",
                   help="the runtime whose prediction is compared (default optimized: the runtime "
                        "these medians, mostly from vendor engines, were fitted for)")
    a = p.parse_args()
    path = Path(a.data) / "mcu" / "mlperf_tiny_latency.csv"
    if not path.is_file():
        sys.exit(f"{path} not found: pass --data")
    meas = measured(path)
    print(f"{'device':<10} {'task':<4} {'n':>2} {'measured ms':>12} {'range':>17} "
          f"{'predicted ms':>13} {'pred/meas':>9}" + (f" {'emulated ms':>12} {'emu/meas':>8}"
                                                       if a.emulated else ""))
    ratios: dict[str, list[float]] = defaultdict(list)
    all_ratios = []
    for (dev, task), vals in sorted(meas.items()):
        med = statistics.median(vals)
        res = cost(f"mlperf:{task}", dev, runtime=a.runtime)
        pred = res.report.latency_ms
        ratio = pred / med
        all_ratios.append((dev, task, ratio))
        core = res.report.device
        if task in ("kws", "vww"):
            ratios[core].append(med / pred)
        extra = ""
        if a.emulated:
            from micronas.api import measure

            emu = measure(f"mlperf:{task}", dev).latency_ms
            extra = f" {emu:>12.2f} {emu / med:>8.2f}"
        print(f"{dev:<10} {task:<4} {len(vals):>2} {med:>12.2f} {min(vals):>8.2f}-{max(vals):<8.2f}"
              f" {pred:>13.2f} {ratio:>9.2f}{extra}")
    within = sum(1 for *_, r in all_ratios if 1 / 1.35 <= r <= 1.35)
    print(f"\nwithin +-35 %: {within} of {len(all_ratios)} (board, task) pairs")
    if a.fit:
        from micronas.hardware import load_device

        per_core: dict[str, list[float]] = defaultdict(list)
        for dev, rs in ratios.items():
            per_core[load_device(dev).core] += rs
        for core, rs in sorted(per_core.items()):
            g = math.exp(sum(math.log(r) for r in rs) / len(rs))
            print(f"{core:<14} scale all latency coefficients by {g:.3f} (from {len(rs)} points)")


if __name__ == "__main__":
    main()
