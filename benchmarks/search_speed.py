"""Wall time of the default ``micronas search`` (goal: <= 10 s on 2 cores, median of 5).

Each run is a fresh ``python -m micronas search --no-cache`` process (start-up, imports,
the whole search and the exit included, no result cache), run one after another so they do
not share the cores. ``--variants`` times several argument sets (``;``-separated, ``-`` for
none) and ``--baseline DIR`` adds the default search of another checkout (e.g. a
``git worktree`` of an earlier commit); all variants alternate run by run, so a machine
whose speed drifts affects each alike. Prints every run's wall time, each variant's median,
whether every run of a variant returned the same architecture (the search is seeded), and
writes ``benchmarks/results/search_speed.json``.

    python benchmarks/search_speed.py [--runs 5] [--variants "-;--workers 2"] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _run(argv: list[str], cwd: str | None) -> tuple[float, dict]:
    env = dict(os.environ)
    if cwd:  # import that checkout's micronas
        env["PYTHONPATH"] = os.pathsep.join([cwd, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {p.stderr.strip().splitlines()[-1:]}")
    return wall, json.loads(p.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--variants", default="-", help="';'-separated argument sets for "
                    "micronas search ('-': the default search)")
    ap.add_argument("--baseline", default=None, help="another checkout whose default search "
                    "is timed alongside")
    ap.add_argument("--out", default=str(RESULTS / "search_speed.json"))
    a = ap.parse_args()
    base = [sys.executable, "-m", "micronas", "search", "--no-cache", "--json"]
    variants = []
    for v in a.variants.split(";"):
        extra = [] if v.strip() in ("", "-") else shlex.split(v)
        variants.append({"label": "micronas search --no-cache " + " ".join(extra), "cwd": None,
                         "argv": base + extra, "runs": []})
    if a.baseline:
        variants.append({"label": f"baseline {a.baseline}: micronas search --no-cache",
                         "cwd": str(Path(a.baseline).resolve()), "argv": base, "runs": []})
    for i in range(a.runs):
        for v in variants:
            wall, res = _run(v["argv"], v["cwd"])
            v["runs"].append({"wall_s": wall, "arch": res.get("arch"),
                              "search_s": res.get("search_seconds")})
            print(f"run {i + 1}: {wall:6.2f} s wall  {v['label']}  {res.get('index')}", flush=True)
    out = []
    for v in variants:
        walls = [r["wall_s"] for r in v["runs"]]
        med = statistics.median(walls)
        same = len({r["arch"] for r in v["runs"]}) == 1
        print(f"{v['label']}: median {med:.2f} s over {len(walls)} runs (min {min(walls):.2f}, "
              f"max {max(walls):.2f}); same architecture every run: {'yes' if same else 'NO'}")
        out.append({"command": v["label"], "runs": v["runs"], "median_wall_s": med,
                    "same_architecture": same})
    Path(a.out).write_text(json.dumps({
        "variants": out, "cpu_count": os.cpu_count(), "python": platform.python_version()},
        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
