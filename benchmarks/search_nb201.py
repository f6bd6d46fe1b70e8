"""Search quality on NB201 / CIFAR-10 / stm32f746.

For latency weights {0, 0.25, 0.5, 0.75, 0.9} (our percentile ranks, the published dense
ranks at 0.9, and our --latency-mode target), TE-NAS's own indicator mix at weight 0, and
latency budgets (half, and a quarter, of the weight-0 architecture's mean latency; pruning
with and without budget filling, and evolution; a third of each seed's weight-0 latency for
the 3x trade-off), over several seeds: mean and std of true CIFAR-10 test accuracy, device
latency (cost model), search time, and the oracle (best accuracy of any architecture meeting
the same budgets on the device), beside the published MicroNAS / TE-NAS figures. Searches
run on ``--workers`` processes with one torch thread each (search times are per process;
each search evaluates serially, ``workers=1``); the default search is timed first, alone
(with its default two evaluation processes).

    python benchmarks/search_nb201.py [--seeds 5] [--workers 2] [--data ../shared/data]
                                      [--out benchmarks/results]
    python benchmarks/search_nb201.py --refine-only 3   # only the --refine rows (ours)
    python benchmarks/search_nb201.py --budget-device stm32l4r5   # half-budget rows elsewhere
    python benchmarks/search_nb201.py --same-size 3202   # accuracies of equally sized cells

``--refine-only K`` runs latency weight 0 and the half-latency budget (from the saved
weight-0 result) with ``--refine K`` and writes ``search_refine.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from micronas.bench.table import load_table
from micronas.hardware import load_device
from micronas.search import Budgets, CostModel, SearchConfig, run_search
from micronas.search.objective import TENAS_MIX
from micronas.search.run import oracle
from micronas.spaces import get_space
from micronas.tasks import get_task

#: The runtime the published NB201 search tables were measured for (docs/results.md): the
#: latency budgets there (343.2 ms, ...) are this runtime's.
RUNTIME = "optimized"

PUBLISHED = {
    "TE-NAS (4 seeds)": "93.9 +- 0.47",
    "MicroNAS code, latency weight 0.1-0.4": "93.50",
    "MicroNAS code, latency weight 0.5-0.6": "92.20",
    "MicroNAS code, latency weight 0.8": "88.51",
    "MicroNAS code, latency weight 0.9 (all skip)": "54.30",
}


_TABLE = None


def _init(csv: str) -> None:
    import torch

    global _TABLE
    torch.set_num_threads(1)  # one thread per worker process: the workers share the cores
    _TABLE = load_table(csv)


def run(cfg: SearchConfig) -> dict:
    r = run_search(cfg, _TABLE)
    return {"seed": cfg.seed, "arch": r.arch, "index": r.index, "accuracy": r.accuracy,
            "oracle": r.oracle_accuracy, "latency_ms": r.latency_ms,
            "seconds": r.search_seconds}


def summarise(name: str, rows: list[dict]) -> dict:
    acc = [r["accuracy"] for r in rows]
    lat = [r["latency_ms"] for r in rows]
    sec = [r["seconds"] for r in rows]
    sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
    return {"setting": name, "n": len(rows), "acc_mean": statistics.mean(acc), "acc_std": sd,
            "latency_mean": statistics.mean(lat), "seconds_mean": statistics.mean(sec),
            "oracle": statistics.mean(r["oracle"] for r in rows), "runs": rows}


def run_settings(pool, settings: list[tuple[str, dict]], seeds: list[int]) -> list[dict]:
    """Every (setting, seed) search on the worker pool; one summary per setting. A setting's
    ``per_seed`` entry maps a seed to settings of that seed's run only."""
    def cfg(kw: dict, s: int) -> SearchConfig:
        own = kw.get("per_seed", {}).get(s, {})
        return SearchConfig.of(seed=s, workers=1, runtime=RUNTIME,
                               **{k: v for k, v in kw.items() if k != "per_seed"}, **own)

    jobs = [(name, pool.submit(run, cfg(kw, s))) for name, kw in settings for s in seeds]
    out = []
    for name, _ in settings:
        rows = [f.result() for n, f in jobs if n == name]
        out.append(summarise(name, rows))
        r = out[-1]
        print(f"{name}: {r['acc_mean']:.2f} +- {r['acc_std']:.2f} %, {r['latency_mean']:.1f} ms,"
              f" oracle {r['oracle']:.2f}", flush=True)
    return out


def filled_and_published(prefix: str, base_lat: float, frac: float, **kw
                         ) -> list[tuple[str, dict]]:
    """The default search (budget filling) and published pruning (--fill 0) under a budget
    of ``frac`` x the weight-0 latency."""
    budget = frac * base_lat
    return [(f"{prefix}, --max-latency-ms {budget:.1f}{note}", {**kw, "max_latency_ms": budget,
                                                               **extra})
            for note, extra in ((f" ({frac:g} x weight-0 latency)", {}),
                                (", --fill 0 (published pruning)", {"fill": 0.0}))]


def mark_budgets(settings: list[tuple[str, dict]], rows: list[dict]) -> None:
    """Each run's latency budget, and whether every run of a setting met its own."""
    for (_, kw), r in zip(settings, rows, strict=True):
        for x in r["runs"]:
            x["budget_ms"] = kw.get("per_seed", {}).get(x["seed"], kw)["max_latency_ms"]
        r["all_within_budget"] = all(x["latency_ms"] <= x["budget_ms"] for x in r["runs"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--workers", type=int, default=2, help="search processes (one thread each)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--refine-only", type=int, default=0)
    p.add_argument("--same-size", type=int, metavar="INDEX", help="only print the NB201 "
                   "accuracies of every architecture with the same latency and parameters as "
                   "INDEX on stm32f746 (how much the found one's accuracy is noise)")
    p.add_argument("--budget-device", help="only the half-budget rows (weight 0, then half its "
                   "mean latency with and without --fill) on this device; writes "
                   "search_budget_DEVICE.json")
    p.add_argument("--mixes", help="only the default weights and the half-latency budget for each "
                   "indicator mix given ('mix;mix;...', e.g. 'ntk_cond,linear_regions,synflow:2;"
                   "naswot,jacov'); writes search_mixes.json")
    a = p.parse_args()
    csv = Path(a.data) / "nb201" / "nb201_accuracy.csv"
    if not csv.is_file():
        sys.exit(f"{csv} not found: pass --data")
    seeds = list(range(a.seeds))
    if a.refine_only:
        refine_rows(a, csv, seeds)
        return
    if a.budget_device:
        budget_rows(a, csv, seeds)
        return
    if a.mixes:
        mix_rows(a, csv, seeds)
        return
    if a.same_size is not None:
        same_size(csv, a.same_size)
        return

    t0 = time.perf_counter()
    default = run_search(SearchConfig.of(workers=0, runtime=RUNTIME), None)  # as the CLI runs it, alone
    print(f"default `micronas search` (no table): {default.search_seconds:.1f} s, "
          f"arch index {default.index}", flush=True)

    settings: list[tuple[str, dict]] = [
        (f"latency weight {w}", {"latency_weight": w}) for w in (0.0, 0.25, 0.5, 0.75, 0.9)]
    settings.append(("latency weight 0, --indicators ntk_cond,linear_regions (TE-NAS)",
                     {"indicators": TENAS_MIX}))
    settings.append(("latency weight 0.9, dense ranks (published)",
                     {"latency_weight": 0.9, "rank_mode": "dense"}))
    settings += [(f"latency weight {w}, --latency-mode target",
                  {"latency_weight": w, "latency_mode": "target"}) for w in (0.25, 0.5, 0.75, 0.9)]
    with ProcessPoolExecutor(a.workers, initializer=_init, initargs=(str(csv),)) as pool:
        results = run_settings(pool, settings, seeds)
        base_lat = results[0]["latency_mean"]
        budgeted: list[tuple[str, dict]] = []
        for frac in (0.5, 0.25):
            budgeted += filled_and_published("latency weight 0", base_lat, frac)
        budgeted.append((f"--strategy evolution, --max-latency-ms {0.5 * base_lat:.1f}",
                         {"strategy": "evolution", "max_latency_ms": 0.5 * base_lat}))
        budgeted.append((f"--strategy evolution --indicators synflow --evaluations 300, "
                         f"--max-latency-ms {0.5 * base_lat:.1f}",
                         {"strategy": "evolution", "indicators": "synflow", "evaluations": 300,
                          "max_latency_ms": 0.5 * base_lat}))
        budgeted.append(("latency weight 0, --max-latency-ms 212.5 (an earlier default budget)",
                         {"max_latency_ms": 212.5}))
        # 3x: each seed's budget is a third of that seed's weight-0 architecture's latency
        third = {x["seed"]: {"max_latency_ms": x["latency_ms"] / 3} for x in results[0]["runs"]}
        budgeted.append(("--strategy evolution --indicators params --evaluations 300, "
                         "--max-latency-ms (same seed's weight-0 latency) / 3",
                         {"strategy": "evolution", "indicators": "params", "evaluations": 300,
                          "per_seed": third}))
        budgeted.append(("latency weight 0, --max-latency-ms (same seed's weight-0 latency) / 3",
                         {"per_seed": third}))
        more = run_settings(pool, budgeted, seeds)
    mark_budgets(budgeted, more)
    results += more

    print(f"\n{'setting':<62} {'CIFAR-10 acc':>15} {'latency ms':>11} {'search s':>9} "
          f"{'oracle':>7}")
    for r in results:
        print(f"{r['setting']:<62} {r['acc_mean']:>7.2f} +- {r['acc_std']:<5.2f} "
              f"{r['latency_mean']:>11.1f} {r['seconds_mean']:>9.1f} {r['oracle']:>7.2f}")
    base = results[0]
    own = {x["seed"]: x for x in base["runs"]}
    best = None
    same_seed = None  # against the weight-0 architecture the same seed found
    for r in results:
        for run_ in r["runs"]:
            speed = base["latency_mean"] / run_["latency_ms"]
            drop = base["acc_mean"] - run_["accuracy"]
            if drop <= 1.5 and (best is None or speed > best[0]):
                best = (speed, drop, r["setting"], run_)
            ref = own[run_["seed"]]
            speed, drop = ref["latency_ms"] / run_["latency_ms"], ref["accuracy"] - run_["accuracy"]
            if drop <= 1.5 and (same_seed is None or speed > same_seed[0]):
                same_seed = (speed, drop, r["setting"], run_)
    if best:
        print(f"\nbest trade-off: {best[0]:.2f}x faster than the weight-0 mean with "
              f"{best[1]:.2f} points lower accuracy ({best[2]}, seed {best[3]['seed']}, "
              f"index {best[3]['index']})")
    if same_seed:
        print(f"best trade-off against the same seed's weight-0 architecture: "
              f"{same_seed[0]:.2f}x faster, {same_seed[1]:.2f} points lower ({same_seed[2]}, "
              f"seed {same_seed[3]['seed']}, index {same_seed[3]['index']})")
    for r in results:
        if "/ 3" in r["setting"]:
            print(f"{r['setting']}, per seed (speed-up, accuracy drop against that seed's "
                  "weight-0 architecture): " + ", ".join(
                      f"seed {x['seed']} {own[x['seed']]['latency_ms'] / x['latency_ms']:.2f}x "
                      f"{own[x['seed']]['accuracy'] - x['accuracy']:+.2f}" for x in r["runs"]))
    # what the space allows: the best true accuracy at >= 3x the weight-0 mean's speed
    dev = load_device("stm32f746", RUNTIME)
    cap = base["latency_mean"] / 3
    c10 = get_task("cifar10")
    top, top_arch = oracle(load_table(csv), CostModel(get_space("nb201"), c10, dev),
                           Budgets.with_device(dev, cap), c10)
    print(f"best accuracy of any architecture >= 3x faster than the weight-0 mean "
          f"(<= {cap:.1f} ms): {top:.2f} % ({top_arch.index}); the weight-0 mean is "
          f"{base['acc_mean']:.2f} %")
    print("\npublished (MicroNAS, DATE 2024; TE-NAS, ICLR 2021):")
    for k, v in PUBLISHED.items():
        print(f"  {k}: {v}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_nb201.json").write_text(json.dumps(
        {"default_search_seconds": default.search_seconds, "results": results,
         "best_tradeoff": best and {"speedup": best[0], "accuracy_drop": best[1],
                                    "setting": best[2], "run": best[3]},
         "best_tradeoff_same_seed": same_seed and {
             "speedup": same_seed[0], "accuracy_drop": same_seed[1], "setting": same_seed[2],
             "run": same_seed[3]},
         "oracle_at_3x": {"max_latency_ms": cap, "accuracy": top, "index": top_arch.index},
         "wall_seconds": time.perf_counter() - t0}, indent=2))


def same_size(csv: Path, index: int) -> None:
    from micronas.spaces.nb201 import NB201Arch

    costs = CostModel(get_space("nb201"), get_task("cifar10"), load_device("stm32f746", RUNTIME)).all_archs()
    table = load_table(csv)
    ref = costs[NB201Arch.from_index(index)]
    acc = [table.acc(a, get_task("cifar10")) for a, c in costs.items()
           if (c.latency_ms, c.params) == (ref.latency_ms, ref.params)]
    print(f"{len(acc)} architectures at {ref.latency_ms:.2f} ms and {ref.params:,} params: "
          f"CIFAR-10 accuracy mean {statistics.mean(acc):.2f} %, {min(acc):.2f}-{max(acc):.2f}")


def budget_rows(a, csv: Path, seeds: list[int]) -> None:
    """Budget filling on another device (held out: --fill was set on stm32f746)."""
    dev = a.budget_device
    with ProcessPoolExecutor(a.workers, initializer=_init, initargs=(str(csv),)) as pool:
        base = run_settings(pool, [(f"{dev}, latency weight 0", {"device": dev})], seeds)
        settings = filled_and_published(dev, base[0]["latency_mean"], 0.5, device=dev)
        rows = run_settings(pool, settings, seeds)
    mark_budgets(settings, rows)
    for r in rows:
        print(f"{r['setting']}: gap to oracle {r['oracle'] - r['acc_mean']:.2f} points, all "
              f"within budget: {r['all_within_budget']}")
    (Path(a.out) / f"search_budget_{dev}.json").write_text(
        json.dumps({"results": base + rows}, indent=2))


def mix_rows(a, csv: Path, seeds: list[int]) -> None:
    """Each indicator mix with the default weights and under the half-latency budget (from the
    saved weight-0 result): how close to the oracle each objective gets."""
    saved = json.loads((Path(a.out) / "search_nb201.json").read_text())
    base_lat = next(r for r in saved["results"] if r["setting"] == "latency weight 0.0")["latency_mean"]
    settings = []
    for mix in a.mixes.split(";"):
        settings += [(f"--indicators {mix}, default weights", {"indicators": mix}),
                     (f"--indicators {mix}, --max-latency-ms {0.5 * base_lat:.1f}",
                      {"indicators": mix, "max_latency_ms": 0.5 * base_lat})]
    with ProcessPoolExecutor(a.workers, initializer=_init, initargs=(str(csv),)) as pool:
        results = run_settings(pool, settings, seeds)
    lines = [f"{'setting':<70} {'acc':>14} {'oracle':>7} {'gap':>5} {'s':>5}"]
    for r in results:
        lines.append(f"{r['setting']:<70} {r['acc_mean']:6.2f} +- {r['acc_std']:4.2f} "
                     f"{r['oracle']:7.2f} {r['oracle'] - r['acc_mean']:5.2f} "
                     f"{r['seconds_mean']:5.1f}")
    print("\n".join(lines))
    out = Path(a.out) / "search_mixes"
    old = json.loads(out.with_suffix(".json").read_text())["results"] if out.with_suffix(
        ".json").is_file() else []
    keep = [r for r in old if r["setting"] not in {s for s, _ in settings}]
    out.with_suffix(".json").write_text(json.dumps({"results": keep + results}, indent=2))
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")


def refine_rows(a, csv: Path, seeds: list[int]) -> None:
    saved = json.loads((Path(a.out) / "search_nb201.json").read_text())
    base_lat = next(r for r in saved["results"] if r["setting"] == "latency weight 0.0")["latency_mean"]
    settings = [(f"latency weight 0, --refine {a.refine_only}", {"refine": a.refine_only}),
                (f"latency weight 0, --max-latency-ms {0.5 * base_lat:.1f}, --refine "
                 f"{a.refine_only}", {"max_latency_ms": 0.5 * base_lat, "refine": a.refine_only})]
    with ProcessPoolExecutor(a.workers, initializer=_init, initargs=(str(csv),)) as pool:
        results = run_settings(pool, settings, seeds)
    for r in results:
        print(f"{r['setting']}: {r['seconds_mean']:.1f} s per search; per seed "
              f"{[round(x['accuracy'], 2) for x in r['runs']]}")
    (Path(a.out) / "search_refine.json").write_text(json.dumps({"results": results}, indent=2))


if __name__ == "__main__":
    main()
