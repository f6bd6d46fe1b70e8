"""Wall time of the default ``micronas search`` (issue 14: <= 10 s on 2 cores, median of 5).

Each run is a fresh ``python -m micronas search --no-cache`` process (start-up, imports and
the whole search included, no result cache), run one after another so they do not share the
cores. Prints every run's wall time, the median, the architecture each run returned (they
must agree: the search is seeded) and writes ``benchmarks/results/search_speed.json``.

    python benchmarks/search_speed.py [--runs 5] [-- EXTRA SEARCH ARGS]
    python benchmarks/search_speed.py --runs 3 -- --executor process:2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS / "search_speed.json"))
    ap.add_argument("extra", nargs="*", help="arguments after -- go to micronas search")
    a = ap.parse_args()
    argv = [sys.executable, "-m", "micronas", "search", "--no-cache", "--json", *a.extra]
    runs = []
    for i in range(a.runs):
        t0 = time.perf_counter()
        p = subprocess.run(argv, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            print(p.stderr.strip().splitlines()[-1:], file=sys.stderr)
            return 1
        res = json.loads(p.stdout)
        runs.append({"wall_s": wall, "arch": res.get("arch"),
                     "search_s": res.get("search_seconds")})
        print(f"run {i + 1}: {wall:6.2f} s wall  {res.get('arch')}", flush=True)
    walls = [r["wall_s"] for r in runs]
    med = statistics.median(walls)
    same = len({r["arch"] for r in runs}) == 1
    print(f"median {med:.2f} s over {len(runs)} runs (min {min(walls):.2f}, max "
          f"{max(walls):.2f}); same architecture every run: {'yes' if same else 'NO'}")
    Path(a.out).write_text(json.dumps({
        "command": "micronas search --no-cache " + " ".join(a.extra), "runs": runs,
        "median_wall_s": med, "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "same_architecture": same}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
