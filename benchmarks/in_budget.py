"""Ranking inside a budget on the project's three scored tables, without rescoring.

For each table: per indicator (and FLOPs, params) the mean Kendall / Spearman with accuracy
inside +-10 % latency slices around the 10th..90th percentile latency, and the pick metric
(the percentile among the feasible networks, and the points under the best feasible one,
of the best-scored feasible network under the 25th / 50th / 75th percentile latency of the
networks that fit, and over 20 seeded budgets); the run-to-run ceiling where the table has
repeated runs (:mod:`micronas.bench.budget`). Latency and memory: the project's cost model
(default runtime of each device).

- ``nbmacro``: ``benchmarks/results/nbmacro_all_cifar10.json.gz`` (``micronas bench
  correlate --space nbmacro --all --table ...``; a partial table is a seeded uniform sample
  of the 3,969 classes), on stm32f746 and stm32l4r5 (whose memory holds most of the space);
- ``nb201``: ``benchmarks/results/nb201_all_cifar10.json.gz`` (all 15,625), on stm32f746
  and stm32l4r5;
- ``mcu``: ``benchmarks/results/mcu_groundtruth.json`` (40 networks trained 5 epochs on
  Fashion-MNIST, all within nrf52840's memory and 100 ms), on nrf52840.

    python benchmarks/in_budget.py [--only nbmacro,nb201,mcu] [--draws 20]

Writes ``benchmarks/results/in_budget.json`` and ``in_budget.txt``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from micronas.bench.budget import report, text
from micronas.bench.correlate import read_table, row_arch
from micronas.proxies.registry import INDICATORS
from micronas.proxies.scoring import Score, combine_population
from micronas.spaces import bind, get_space
from micronas.tasks import get_task

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEVICES = {"nbmacro": ("stm32f746", "stm32l4r5"), "nb201": ("stm32f746", "stm32l4r5"),
           "mcu": ("nrf52840",)}


def scored(name: str) -> dict:
    """(space, task, archs, values per indicator, accuracy, runs or None, what) of a table."""
    if name == "mcu":
        d = json.loads((RESULTS / "mcu_groundtruth.json").read_text())
        task = get_task(d["settings"]["search"]["task"])
        space = bind(get_space("mcu"), task)
        rows = d["rows"]
        names = sorted(rows[0]["indicators"])
        sc = [{n: Score(n, r["indicators"][n]) for n in names} for r in rows]
        combine_population(sc, ["micronas_mix", "tenas"])  # over the table, as bench does
        names += ["micronas_mix", "tenas"]
        return {"space": space, "task": task, "archs": [space.parse(r["arch"]) for r in rows],
                "values": {n: [s[n].value for s in sc] for n in names},
                "acc": [100 * r["test_accuracy"] for r in rows], "runs": None,
                "what": f"mcu ground truth ({len(rows)} networks, {d['settings']['epochs']} "
                        "epochs, one training seed)"}
    path = RESULTS / f"{name}_all_cifar10.json.gz"
    d = read_table(path)
    space, task = get_space(d.get("space", "nb201")), get_task(d["dataset"])
    rows = d["rows"]
    names = list(d["indicators"])  # and the parts of population indicators the rows hold
    names += [n for n in rows[0] if n in INDICATORS.names() and n not in names]
    runs = [r["runs"] for r in rows] if all("runs" in r for r in rows) else None
    part = ("" if d.get("complete", True) else
            f", partial: {d['classes']:,} of {d['total_classes']:,} classes, a seeded sample")
    return {"space": space, "task": task, "archs": [row_arch(space, r) for r in rows],
            "values": {n: [r[n] for r in rows] for n in names}, "acc": [r["acc"] for r in rows],
            "runs": runs, "what": f"{path.name} ({len(rows):,} networks{part})"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="nbmacro,nb201,mcu")
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    out_json = a.out / "in_budget.json"
    res = json.loads(out_json.read_text()) if out_json.exists() else {}
    for name in a.only.split(","):
        t0 = time.perf_counter()
        s = scored(name)
        for dev in DEVICES[name]:
            rep = report(s["space"], s["archs"], s["task"], s["values"], s["acc"], s["runs"], dev,
                         draws=a.draws)
            rep["table"] = s["what"]
            res[f"{name}/{dev}"] = rep
            print(f"{name} on {dev}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    out_json.write_text(json.dumps(res, indent=1) + "\n")
    lines = []
    for key, rep in res.items():
        lines += [f"== {key}: {rep['table']}", text(rep), ""]
    (a.out / "in_budget.txt").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
