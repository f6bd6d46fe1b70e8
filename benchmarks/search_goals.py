"""Can any search reach the NB201 search goals (within 0.5 points of the oracle, 3x faster)?
The ceilings, from the NB201 table and our cost model.

For the default search setting (stm32f746, latency weight 0, the device's memory less the
default application reserve; and, for comparison, with no reserve as micronas first searched) this
prints, per dataset, how many of the 15,625 networks are feasible, the best true test
accuracy among them (the oracle) and how many reach the goal (CIFAR-10 94.0 %,
CIFAR-100 72.0 %, ImageNet16-120 45.5 %).

For the trade-off goal (a network >= 3.23x faster on stm32f746 than the latency-weight-0
result of the same seed at <= 1 point lower CIFAR-10 accuracy) it takes each seed's weight-0
result (``--results``, default: the default mix's CIFAR-10 runs in
``benchmarks/results/search_mix.json``, or ``--archs`` given by hand) and prints the best
accuracy of any feasible network within 1/3.23 of its latency: the goal is reachable for a
seed only if that oracle is >= its accuracy - 1. It also prints the largest speed-up any
network offers at <= 1 point lower accuracy.

    python benchmarks/search_goals.py [--data ../shared/data] [--results FILE | --archs I,J,...]
        [--json benchmarks/results/search_goals.json]

No indicator is computed: this bounds every strategy and every indicator mix.

``--simulate FILE`` (a whole-space table written by ``micronas bench correlate --all
--table``, default ``benchmarks/results/nb201_all_cifar10.json.gz``) also runs the real
``Evolution`` and ``Exhaustive`` strategies (latency weight 0, the default budgets) with an
evaluator that reads each architecture's values from that table instead of computing them:
what a search with the whole-space mix's six parts as its objective
(``--indicators az_expressivity,...,linear_regions``) would return if it could afford them.
The table holds seed-0 values, so only the strategy's seed varies.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from functools import cache
from pathlib import Path

import numpy as np

from micronas.bench.table import load_table
from micronas.hardware import load_device
from micronas.search.config import SearchConfig
from micronas.search.costs import Budgets, CostModel
from micronas.spaces import bind, get_space, index_of
from micronas.tasks import get_task

#: The runtime the published NB201 search tables were measured for (docs/results.md): the
#: latency budgets there (343.2 ms, ...) are this runtime's.
RUNTIME = "optimized"

MIX = ("az_expressivity", "az_progressivity", "az_complexity", "synflow", "jacov",
       "linear_regions")
GOALS = {"cifar10": 94.0, "cifar100": 72.0, "imagenet16-120": 45.5}
SPEEDUP, DROP = 3.23, 1.0
HERE = Path(__file__).resolve().parent


@cache
def cost_model(device_name: str, task_name: str) -> CostModel:
    """One cost model per (device, task), its every architecture costed once."""
    task = get_task(task_name)
    costs = CostModel(bind(get_space("nb201"), task), task, load_device(device_name, RUNTIME),
                      disk_cache=False)
    costs.all_archs()
    return costs


def feasible(device_name: str, task_name: str, reserve: bool) -> dict:
    """{arch: Costs} of every architecture meeting the device's memory (less the reserve)."""
    device = load_device(device_name, RUNTIME)
    cfg = SearchConfig.of(device=device_name, runtime=RUNTIME, task=task_name,
                       reserve_sram_kb=None if reserve else 0.0,
                       reserve_flash_kb=None if reserve else 0.0)
    limits = Budgets.with_device(device, None, None, None, *cfg.reserves(device))
    allc = cost_model(device_name, task_name).all_archs()
    return {a: c for a, c in allc.items() if limits.ok(c)}


def ceilings(table, device: str) -> list[dict]:
    rows = []
    for reserve in (True, False):
        for name, goal in GOALS.items():
            feas = feasible(device, name, reserve)
            task = get_task(name)
            acc = np.array([table.acc(a, task) for a in feas])
            rows.append({"task": name, "reserve": reserve, "feasible": len(feas),
                         "oracle": float(acc.max()), "goal": goal,
                         "reaching_goal": int((acc >= goal).sum())})
    return rows


def tradeoff(table, device: str, archs: list[tuple[int, str]]) -> list[dict]:
    feas = feasible(device, "cifar10", True)
    task = get_task("cifar10")
    space = get_space("nb201")
    lat = {a: c.latency_ms for a, c in feas.items()}
    acc = {a: table.acc(a, task) for a in feas}
    out = []
    for seed, text in archs:
        a0 = space.parse(text)
        l0 = cost_model(device, "cifar10").arch(a0).latency_ms
        acc0 = table.acc(a0, task)
        fast = [a for a in feas if lat[a] <= l0 / SPEEDUP]
        best = max(fast, key=lambda a: acc[a]) if fast else None
        close = [a for a in feas if acc[a] >= acc0 - DROP]
        quickest = min(close, key=lambda a: lat[a])
        out.append({"seed": seed, "index": index_of(space, a0), "accuracy": acc0, "latency_ms": l0,
                    "budget_ms": l0 / SPEEDUP,
                    "oracle_within_budget": acc[best] if best is not None else None,
                    "oracle_index": index_of(space, best) if best is not None else None,
                    "needed": acc0 - DROP,
                    "reachable": best is not None and acc[best] >= acc0 - DROP,
                    "max_speedup_within_1_point": l0 / lat[quickest],
                    "max_speedup_index": index_of(space, quickest)})
    return out


class TableEvaluator:
    """The search's evaluator, with indicator values read from a whole-space table."""

    def __init__(self, costs: CostModel, rows: dict[int, dict], space) -> None:
        self.costs, self.rows, self.space = costs, rows, space
        self.evaluations = 0

    def evaluate(self, cands, progress=None):
        from micronas.search.evaluate import Evaluation

        self.evaluations += len(cands)
        out = []
        for c in cands:
            row = self.rows[index_of(self.space, c.arch)]
            out.append(Evaluation(c, {n: row[n] for n in MIX}, self.costs.arch(c.arch)))
        return out


def simulate(table, device: str, path: str, evaluations=(54, 200), seeds=range(5)) -> list[dict]:
    from micronas.search.costs import BudgetFilter
    from micronas.search.strategies import drive, make_strategy

    doc = json.loads(gzip.open(path, "rt").read())
    rows = {r["index"]: r for r in doc["rows"]}
    task = get_task(doc["dataset"])
    space = bind(get_space("nb201"), task)
    dev = load_device(device, RUNTIME)
    cfg = SearchConfig.of(device=device, runtime=RUNTIME, task=doc["dataset"], indicators=",".join(MIX))
    limits = Budgets.with_device(dev, None, None, None, *cfg.reserves(dev))
    costs = cost_model(device, doc["dataset"])
    filt = BudgetFilter(costs, limits, limits)
    out = []
    for strategy, ns in (("evolution", evaluations), ("exhaustive", (None,))):
        for n in ns:
            accs = []
            for seed in (seeds if strategy == "evolution" else (0,)):
                opts = {"n": n} if n else {}
                st = make_strategy(strategy, space, task, filt, cfg.weights(),
                                   np.random.default_rng(seed), **opts)
                res = drive(st, TableEvaluator(costs, rows, space))
                accs.append(table.acc(res.arch, task))
            out.append({"strategy": strategy, "evaluations": n, "dataset": doc["dataset"],
                        "indicator_seed": doc["seed"], "accuracies": accs,
                        "mean": float(np.mean(accs)), "std": float(np.std(accs))})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data"))
    p.add_argument("--device", default="stm32f746")
    p.add_argument("--results", default=str(HERE / "results" / "search_mix.json"),
                   help="search_mix.json whose default-mix CIFAR-10 runs give the weight-0 "
                        "results per seed")
    p.add_argument("--archs", default=None,
                   help="comma-separated NB201 indices of the weight-0 results (seed 0, 1, ...)")
    p.add_argument("--json", default=None, help="write the numbers here")
    p.add_argument("--simulate", nargs="?", const=str(HERE / "results" / "nb201_all_cifar10.json.gz"),
                   default=None, help="also run evolution / exhaustive on a whole-space table's "
                   "values of the mix's parts")
    a = p.parse_args()
    csv = Path(a.data) / "nb201" / "nb201_accuracy.csv"
    if not csv.is_file():
        sys.exit(f"{csv} not found: pass --data (the NB201 table is needed)")
    table = load_table(csv)
    if a.archs:
        archs = [(s, i.strip()) for s, i in enumerate(a.archs.split(","))]
    else:
        runs = json.loads(Path(a.results).read_text())["runs"]
        archs = [(r["seed"], r["arch"]) for r in runs
                 if r["task"] == "cifar10" and r["mix"] == "ntk_cond,linear_regions,synflow:2"]
    ceil = ceilings(table, a.device)
    print(f"search-goal ceilings on {a.device}, latency weight 0 (the device's memory less the "
          "application reserve, or none):")
    print(f"{'task':16} {'reserve':8} {'feasible':>8} {'oracle':>7} {'goal':>6} {'networks >= goal':>17}")
    for r in ceil:
        print(f"{r['task']:16} {'10 %' if r['reserve'] else 'none':8} {r['feasible']:8d} "
              f"{r['oracle']:7.2f} {r['goal']:6.1f} {r['reaching_goal']:17d}")
    trade = tradeoff(table, a.device, archs)
    print(f"\ntrade-off: >= {SPEEDUP}x faster than the seed's weight-0 result at <= {DROP} point "
          "lower CIFAR-10 accuracy (reserve 10 %):")
    for r in trade:
        ob = "none" if r["oracle_within_budget"] is None else f"{r['oracle_within_budget']:.2f} %"
        print(f"seed {r['seed']}: index {r['index']} {r['accuracy']:.2f} % at {r['latency_ms']:.1f} ms; "
              f"best within {r['budget_ms']:.1f} ms: {ob} (needs {r['needed']:.2f}): "
              f"{'reachable' if r['reachable'] else 'NOT reachable'}; largest speed-up at "
              f"<= {DROP} point: {r['max_speedup_within_1_point']:.2f}x (index {r['max_speedup_index']})")
    sims = simulate(table, a.device, a.simulate) if a.simulate else []
    if sims:
        print(f"\nsearches on the whole-space table's values of {','.join(MIX)} "
              f"({sims[0]['dataset']}, indicator seed {sims[0]['indicator_seed']}, reserve 10 %, "
              "latency weight 0):")
    for r in sims:
        n = f"{r['evaluations']} evaluations, 5 seeds" if r["evaluations"] else "every feasible network"
        print(f"{r['strategy']:10} {n:28} {r['mean']:.2f} +- {r['std']:.2f} %  "
              f"{[round(x, 2) for x in r['accuracies']]}")
    if a.json:
        Path(a.json).write_text(json.dumps({"device": a.device, "ceilings": ceil,
                                            "tradeoff": trade, "simulated": sims},
                                           indent=1) + "\n")


if __name__ == "__main__":
    main()
