"""The mcu space's user tasks, timed: indicator seconds per architecture and the default
``micronas search --space mcu`` for three user tasks (each a fresh process, no
cache: start-up, search and report included).

    python benchmarks/search_mcu.py [--n 20] [--seed 0] [--json FILE]

Targets (2 cores): the default indicator mix <= 0.5 s per architecture (measured serially
and on ``--workers`` processes, as benchmarks/indicator_speed.py does for NB201); each
search < 60 s,
meeting its latency budget and fitting the device with the application's reserve.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from micronas.proxies import ProxySettings, score_many
from micronas.search.objective import DEFAULT_MIX, parse_mix
from micronas.spaces import get_space
from micronas.tasks import Task

TASKS = [  # (input, classes, device, max latency ms)
    ("32x32x3", 10, "nrf52840", 100),
    ("96x96x1", 2, "nrf52840", 200),
    ("49x10x1", 12, "stm32l4r5", 50),
]
#: Searched only (not in the indicator timing): a budget the 96x96 input's floor misses (the
#: search lowers the resolution) and a 1-D time series (128 steps x 3 axes).
SEARCH_ONLY = [("96x96x1", 2, "nrf52840", 150), ("128x3", 6, "nrf52840", 10)]


def indicator_speed(n: int, seed: int, workers: int) -> list[dict]:
    """Seconds per architecture: wall time over ``n`` fresh architectures per task, on
    ``workers`` processes (one torch thread each) or serially (0: torch's own threads)."""
    space = get_space("mcu")
    names = [name for name, _ in parse_mix(DEFAULT_MIX)]
    rows = []
    for inp, classes, _, _ in TASKS:
        h, w, c = map(int, inp.split("x"))
        task = Task.custom((c, h, w), classes)
        rng = np.random.default_rng(seed)
        archs = [space.sample(rng) for _ in range(n + 1)]
        executor = f"process:{workers}" if workers else "serial"
        score_many(space, archs[:1], task, names, seed, ProxySettings())  # warm-up (imports)
        t0 = time.perf_counter()
        res = score_many(space, archs[1:], task, names, seed, ProxySettings(), None, executor)
        wall = (time.perf_counter() - t0) / n
        per = {k: float(np.mean([r[k].seconds for r in res])) for k in names}
        rows.append({"input": inp, "workers": workers, "seconds_per_arch": wall,
                     "per_indicator": per})
        print(f"{inp:>8}, {workers or 'no'} worker processes: {wall:.2f} s per architecture (wall; "
              "per worker: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in per.items()) + f"; {n} architectures)",
              flush=True)
    return rows


def searches(seed: int) -> list[dict]:
    rows = []
    for inp, classes, device, lat in [*TASKS, *SEARCH_ONLY]:
        cmd = [sys.executable, "-m", "micronas", "search", "--space", "mcu", "--input", inp,
               "--classes", str(classes),
               "--device", device, "--max-latency-ms", str(lat), "--seed", str(seed),
               "--no-cache", "--json", "--quiet"]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if p.returncode:
            print(f"{' '.join(cmd)} failed: {p.stderr.strip()}", file=sys.stderr)
            rows.append({"cmd": cmd, "error": p.stderr.strip()})
            continue
        d = json.loads(p.stdout)
        from micronas.hardware import load_device

        dev = load_device(device)
        ok = (d["latency_ms"] <= lat
              and d["peak_sram_bytes"] <= dev.sram_bytes - d["reserve_sram_bytes"]
              and d["flash_bytes"] <= dev.flash_bytes - d["reserve_flash_bytes"])
        rows.append({"cmd": " ".join(cmd[:-3]), "wall_s": wall, "search_s": d["search_seconds"],
                     "arch": d["arch"], "latency_ms": d["latency_ms"],
                     "peak_sram_bytes": d["peak_sram_bytes"], "flash_bytes": d["flash_bytes"],
                     "reserve": [d["reserve_sram_bytes"], d["reserve_flash_bytes"]],
                     "meets_budgets_with_reserve": ok, "pareto": len(d["pareto"]),
                     "resolution": d.get("resolution")})
        print(f"{inp:>8} {device:>9} <= {lat} ms: {wall:5.1f} s wall ({d['search_seconds']:.1f} s "
              f"search), {d['latency_ms']:.1f} ms, SRAM {d['peak_sram_bytes'] / 1024:.1f} KB, "
              f"flash {d['flash_bytes'] / 1024:.1f} KB, within budgets and reserve: "
              f"{'yes' if ok else 'NO'}  {d['arch']}", flush=True)
        if (d.get("resolution") or {}).get("note"):
            print(f"{'':>8} {d['resolution']['note']}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="indicator processes (0: serial)")
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--searches-only", action="store_true", help="skip the indicator timing")
    a = ap.parse_args()
    print(f"default indicator mix {DEFAULT_MIX!r}:")
    speed = [] if a.searches_only else (
        indicator_speed(a.n, a.seed, 0) + (indicator_speed(a.n, a.seed, a.workers)
                                           if a.workers else []))
    print("\nmicronas search --space mcu (defaults: evolution, 54 evaluations):")
    runs = searches(a.seed)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"settings": vars(a), "indicator_speed": speed, "searches": runs}, f,
                      indent=1)


if __name__ == "__main__":
    main()
