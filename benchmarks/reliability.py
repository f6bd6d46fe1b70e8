"""Reliability figures for the README: peak memory of the process tree, concurrent
writers, and kill -9 faults with a resume check.

    python benchmarks/reliability.py [--part rss|writers|faults|all] [--benchmark CSV]

- ``rss``: peak resident memory of ``micronas search`` (default settings: one process), of
  ``micronas search --workers 2`` (two worker processes) and of
  ``micronas bench correlate --sample 200 --workers 2``, summed over the process tree
  (workers included; shared pages counted once per process, so it is an upper bound),
  sampled every 50 ms; and the same tree's peak PSS (shared pages split). ``--all-seconds T``
  adds ``bench correlate --all --workers 2`` run for T seconds, then interrupted (Ctrl-C).
- ``writers``: N processes writing one results cache at once; errors and rows counted.
- ``faults``: ``bench correlate`` killed with SIGKILL at K random moments, then resumed:
  rows lost (cache rows of the resumed run that an uninterrupted run has but the resumed one
  lacks) and whether the numbers equal an uninterrupted run's.

Writes ``benchmarks/results/reliability.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

RESULTS = Path(__file__).resolve().parent / "results"


def _tree_memory(proc: psutil.Process) -> tuple[int, int]:
    rss = pss = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss += p.memory_info().rss
            pss += getattr(p.memory_full_info(), "pss", 0)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return rss, pss


def peak_memory(argv: list[str], env: dict[str, str], limit_s: float | None = None) -> dict:
    """Peak RSS / PSS of the command's process tree; ``limit_s``: interrupt it (SIGINT, as
    Ctrl-C) after that many seconds and report the peak up to then."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "micronas", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            # a shell's background job ignores SIGINT; the command must not
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    ps = psutil.Process(proc.pid)
    peak_rss = peak_pss = 0
    interrupted = False
    while proc.poll() is None:
        try:
            rss, pss = _tree_memory(ps)
        except psutil.NoSuchProcess:
            break
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        if limit_s is not None and time.perf_counter() - t0 > limit_s:
            proc.send_signal(signal.SIGINT)
            proc.wait()
            interrupted = True
            break
        time.sleep(0.05)
    err = proc.stderr.read().decode()
    if proc.returncode != 0 and not interrupted:
        raise SystemExit(f"{' '.join(argv)} failed: {err.strip().splitlines()[-1:]}")
    timing = {"interrupted_after_s": limit_s} if interrupted else \
        {"wall_s": time.perf_counter() - t0}
    return {"command": "micronas " + " ".join(argv), "peak_rss_mb": peak_rss / 2**20,
            "peak_pss_mb": peak_pss / 2**20, **timing}


def _writer(path: str, k: int, n: int, q) -> None:
    from micronas.errors import MicronasError
    from micronas.infra.cache import ResultStore

    errors = 0
    try:
        store = ResultStore(path)
        for i in range(n):
            try:
                store.put("s", "t", f"w{k}-{i}", "x", "h", 0, float(i), (), 0.0)
                if store.get("s", "t", f"w{k}-{i}", "x", "h", 0) is None:
                    errors += 1
            except MicronasError:
                errors += 1
        store.close()
    except Exception:  # noqa: BLE001 - counted, not raised
        errors += n
    q.put(errors)


def writers(n_proc: int = 8, n: int = 1500) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "r.sqlite")
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        ps = [ctx.Process(target=_writer, args=(path, k, n, q)) for k in range(n_proc)]
        t0 = time.perf_counter()
        for p in ps:
            p.start()
        errors = sum(q.get() for _ in ps)
        for p in ps:
            p.join()
        rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM results").fetchone()[0]
    return {"writers": n_proc, "commits": n_proc * n, "errors": errors, "rows": rows,
            "rows_expected": n_proc * n, "wall_s": time.perf_counter() - t0}


def faults(benchmark: str, kills: int = 5, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    base = ["bench", "correlate", "--benchmark", benchmark, "--sample", "120", "--indicators",
            "naswot,params", "--workers", "2", "--json", "--quiet"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TMPDIR": tmp}
        ref = subprocess.run([sys.executable, "-m", "micronas", *base, "--cache",
                              f"{tmp}/ref.sqlite"], env=env, capture_output=True, text=True)
        full = json.loads(ref.stdout)
        t_full = full["wall_seconds"]
        cache = f"{tmp}/faulty.sqlite"
        for _ in range(kills):
            proc = subprocess.Popen([sys.executable, "-m", "micronas", *base, "--cache", cache],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(float(rng.uniform(3.0, 3.0 + t_full)))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        time.sleep(2)
        left = [p for p in psutil.process_iter(["cmdline"])
                if "spawn_main" in " ".join(p.info["cmdline"] or []) and p.pid != os.getpid()]
        res = subprocess.run([sys.executable, "-m", "micronas", *base, "--cache", cache], env=env,
                             capture_output=True, text=True)
        resumed = json.loads(res.stdout)
        q = "SELECT iso_key, indicator, value FROM results"
        a = set(sqlite3.connect(f"{tmp}/ref.sqlite").execute(q).fetchall())
        b = set(sqlite3.connect(cache).execute(q).fetchall())
    same = all({k: v for k, v in full["indicators"][n].items() if k != "seconds_per_arch"} ==
               {k: v for k, v in resumed["indicators"][n].items() if k != "seconds_per_arch"}
               for n in full["indicators"])
    return {"kills": kills, "rows_lost": len(a - b), "rows_extra": len(b - a),
            "numbers_equal": same, "orphans_after_kills": len(left)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", default="all", choices=["rss", "writers", "faults", "all"])
    p.add_argument("--benchmark", default=os.environ.get("MICRONAS_NB201"))
    p.add_argument("--all-seconds", type=float, default=0.0,
                   help="also run bench correlate --all this long (then Ctrl-C) for its peak")
    a = p.parse_args()
    out: dict = {"cpu_count": os.cpu_count()}
    if a.part in ("rss", "all"):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "MICRONAS_CACHE": f"{tmp}/r.sqlite"}
            out["rss"] = [peak_memory(["search", "--quiet"], env),
                          peak_memory(["search", "--quiet", "--no-cache", "--workers", "2"], env)]
            if a.benchmark:
                out["rss"].append(peak_memory(["bench", "correlate", "--benchmark", a.benchmark,
                                               "--sample", "200", "--workers", "2", "--indicators",
                                               "ntk_cond,linear_regions,naswot", "--quiet"], env))
                if a.all_seconds:
                    out["rss"].append(peak_memory(
                        ["bench", "correlate", "--benchmark", a.benchmark, "--all", "--workers",
                         "2", "--indicators", "ntk_cond,linear_regions,naswot", "--quiet"], env,
                        limit_s=a.all_seconds))
    if a.part in ("writers", "all"):
        out["writers"] = writers()
    if a.part in ("faults", "all") and a.benchmark:
        out["faults"] = faults(a.benchmark)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"reliability{'' if a.part == 'all' else '_' + a.part}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
