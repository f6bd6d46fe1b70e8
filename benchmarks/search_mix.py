"""The search's indicator mix, chosen on one dataset and reported on the others.

Each mix (``--indicators`` of ``micronas search``) runs the default pruning search at latency
weight 0 on stm32f746 for ``--seeds`` seeds on CIFAR-100 (where the mix is chosen: highest
mean accuracy), CIFAR-10 and ImageNet16-120 (held out: reported, not used to choose); true
test accuracies from the NB201 table. One torch thread per worker process; the indicator
values are shared through one results cache (``--cache``), so mixes with common parts
reuse them (the values do not depend on the mix).

    python benchmarks/search_mix.py --mixes "ntk_cond,linear_regions,synflow:2;..." \
        [--seeds 5] [--workers 2] [--cache /tmp/mix.sqlite] [--out benchmarks/results]

Writes ``search_mix.json`` (every run: seed, task, architecture, accuracy, seconds) and
prints one line per (mix, task).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from micronas import __version__
from micronas.bench.table import load_table
from micronas.search import SearchConfig, run_search

TASKS = ("cifar100", "cifar10", "imagenet16-120")  # the first chooses; the others are held out
_TABLE = None


def _init(csv: str) -> None:
    import torch

    global _TABLE
    torch.set_num_threads(1)
    _TABLE = load_table(csv)


def _run(mix: str, task: str, seed: int, cache: str | None, runtime: str | None = None) -> dict:
    r = run_search(SearchConfig.of(task=task, seed=seed, indicators=mix, executor="serial",
                                   runtime=runtime), _TABLE, cache)
    return {"mix": mix, "task": task, "seed": seed, "arch": r.arch, "index": r.index,
            "accuracy": r.accuracy, "oracle": r.oracle_accuracy, "seconds": r.search_seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mixes", required=True, help="mixes separated by ';'")
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cache", default=None, help="results cache shared by the runs")
    p.add_argument("--runtime", default=None,
                   help="the runtime the budgets are for (default: micronas's default)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    a = p.parse_args()
    csv = Path(a.data) / "nb201" / "nb201_accuracy.csv"
    if not csv.is_file():
        sys.exit(f"{csv} not found: pass --data")
    mixes = [m.strip() for m in a.mixes.split(";") if m.strip()]
    for m in mixes:  # bad mixes fail here, in one line, before any work
        SearchConfig.of(indicators=m)
    jobs = [(m, t, s) for m in mixes for t in TASKS for s in range(a.seeds)]
    with ProcessPoolExecutor(a.workers, initializer=_init, initargs=(str(csv),)) as pool:
        futs = [pool.submit(_run, m, t, s, a.cache, a.runtime) for m, t, s in jobs]
        runs = [f.result() for f in futs]
    summary = []
    for m in mixes:
        row: dict = {"mix": m}
        for t in TASKS:
            acc = [r["accuracy"] for r in runs if r["mix"] == m and r["task"] == t]
            row[t] = {"mean": statistics.mean(acc),
                      "std": statistics.stdev(acc) if len(acc) > 1 else 0.0}
            print(f"{m:<55} {t:<15} {row[t]['mean']:6.2f} +- {row[t]['std']:.2f}", flush=True)
        summary.append(row)
    chosen = max(summary, key=lambda r: r[TASKS[0]]["mean"])
    print(f"chosen on {TASKS[0]}: {chosen['mix']}")
    out = Path(a.out) / "search_mix.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"version": __version__, "seeds": a.seeds, "chosen_on": TASKS[0],
                               "chosen": chosen["mix"], "summary": summary, "runs": runs},
                              indent=1))
    tmp.replace(out)


if __name__ == "__main__":
    main()
