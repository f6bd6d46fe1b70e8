"""How well each runtime's predicted latency matches public board measurements.

Reads ``benchmarks/data/public_runtime_measurements.csv`` (networks measured on real boards by
others, each row with its source) and, for every row micronas can rebuild (``arch`` set: the
MLPerf Tiny reference networks) on a core it models with a stated clock, predicts the latency
with the runtime the row was measured with (``microtvm-cmsis-nn`` rows are compared with
``tflm-cmsis-nn``: the same kernels without TFLM's interpreter). The device is the row's core
at the row's clock (memory sizes do not enter the latency). None of these rows was used to
obtain the ``tflm-cmsis-nn`` or ``micronas-c`` constants (they come from the emulator); the
``optimized`` constants were fitted to MLPerf Tiny v1.0/v1.1 medians, so its rows from those
rounds are marked ``seen``.

    python benchmarks/runtime_validation.py [--json benchmarks/results/runtime_validation.json]

Prints one line per row and, per runtime: rows within +-25 %, median and geometric-mean ratio
predicted / measured, MAPE and Spearman (rows >= 3).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from micronas.api import build_ir  # noqa: E402
from micronas.hardware import estimate  # noqa: E402
from micronas.hardware.device import device_from_dict  # noqa: E402
from micronas.hardware.runtime import RUNTIMES  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "public_runtime_measurements.csv"
COMPARED = {"tflm-cmsis-nn": "tflm-cmsis-nn", "tflm-reference": "tflm-reference",
            "microtvm-cmsis-nn": "tflm-cmsis-nn", "optimized": "optimized"}


def board(core: str, clock: float, runtime: str):
    raw = {"name": "board", "core": core, "clock_mhz": clock, "sram_bytes": 2**24,
           "flash_bytes": 2**24, "dsp": core != "cortex-m0plus"}
    return device_from_dict(raw, f"{core} @ {clock:g} MHz", runtime)


def rows(path: Path = DATA) -> list[dict]:
    out = []
    cores = set(RUNTIMES["tflm-cmsis-nn"].cores())
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if not r["arch"] or r["core"] not in cores or not r["clock_mhz"]:
                continue
            if r["runtime"] not in COMPARED:
                continue
            out.append(r)
    return out


def compare(path: Path = DATA) -> dict:
    results = []
    nets = {}
    for r in rows(path):
        runtime = COMPARED[r["runtime"]]
        arch = r["arch"]
        nets.setdefault(arch, build_ir(arch))
        dev = board(r["core"], float(r["clock_mhz"]), runtime)
        pred = estimate(nets[arch], dev).latency_ms
        meas = float(r["latency_ms"])
        seen = runtime == "optimized" and "tiny_results_v1" in r["source"]
        results.append({"arch": arch, "board": r["board"], "core": r["core"],
                        "clock_mhz": float(r["clock_mhz"]), "measured_runtime": r["runtime"],
                        "runtime": runtime, "grounding": dev.runtime.latency_grounding,
                        "measured_ms": meas, "predicted_ms": pred, "ratio": pred / meas,
                        "seen": seen, "source": r["source"]})
    summary = {}
    for name in sorted({x["measured_runtime"] for x in results}):
        sel = [x for x in results if x["measured_runtime"] == name and not x["seen"]]
        if not sel:
            continue
        ratio = np.array([x["ratio"] for x in sel])
        s = {"rows": len(sel), "within_25pct": int(np.sum(np.abs(ratio - 1) <= 0.25)),
             "median_ratio": float(np.median(ratio)),
             "geomean_ratio": float(np.exp(np.mean(np.log(ratio)))),
             "mape": float(np.mean(np.abs(ratio - 1)))}
        if len(sel) >= 3:
            rho = spearmanr([x["predicted_ms"] for x in sel], [x["measured_ms"] for x in sel])[0]
            s["spearman"] = None if math.isnan(rho) else float(rho)
        summary[name] = s
    return {"rows": results, "summary": summary, "data": str(path.relative_to(ROOT))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the comparison here")
    args = ap.parse_args()
    res = compare()
    print(f"{'network':<11} {'board':<28} {'core':<13} {'MHz':>4} {'measured with':<18} "
          f"{'measured':>9} {'predicted':>9} {'ratio':>6}")
    for x in res["rows"]:
        flag = "  (fitted on)" if x["seen"] else ""
        print(f"{x['arch']:<11} {x['board'][:28]:<28} {x['core']:<13} {x['clock_mhz']:>4g} "
              f"{x['measured_runtime']:<18} {x['measured_ms']:>9.2f} {x['predicted_ms']:>9.2f} "
              f"{x['ratio']:>6.2f}{flag}")
    print()
    for name, s in res["summary"].items():
        rho = f", Spearman {s['spearman']:.3f}" if s.get("spearman") is not None else ""
        print(f"{name:<18} {s['within_25pct']}/{s['rows']} within +-25 %, median ratio "
              f"{s['median_ratio']:.2f}, geomean {s['geomean_ratio']:.2f}, MAPE "
              f"{100 * s['mape']:.0f} %{rho}  (predicted with {COMPARED[name]})")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
