"""Does zero-shot choose well on a real MCU task?

On ``fashion-mnist``, ``--n`` seeded architectures of the ``mcu`` space that meet nrf52840's
memory less the application's reserve (10 % of SRAM and flash, the search's default) and
``--max-latency-ms`` (100), each trained with one fixed short recipe (``--epochs`` epochs on a
seeded ``--train-subset`` of the training set, ``--augment`` (none: the short recipe learns
faster without crops and flips), the default recipe otherwise, training seed 0), tested on
the whole 10,000-image test set. Their accuracies are the project's own ground-truth
table; every indicator (the search's settings) and the default mix are rank-correlated with
them; the network the default search picks is trained with the same recipe and placed among
them.

    python benchmarks/mcu_groundtruth.py --executor process:2   # 40 archs, ~25 min on 2 cores
    python benchmarks/mcu_groundtruth.py --n 8 --epochs 1 --train-subset 2000   # a quick look
    python benchmarks/mcu_groundtruth.py --executor dask://HOST:8786   # trainings on a cluster

The table worth trusting (24 networks, 20 epochs on all 60,000 images, two training seeds;
hours on 2 cores, so its rows are committed as they come and any later run continues them)::

    python benchmarks/mcu_groundtruth.py --n 24 --epochs 20 --train-subset 0 --augment auto \
        --train-seeds 0,1 --rows benchmarks/results/mcu_groundtruth_e20.rows.jsonl \
        --out benchmarks/results/mcu_groundtruth_e20      # add --report-only for a partial table

``--executor`` runs the trainings (each one task, torch threads = cores / workers) serially,
on worker processes or on Dask workers; the driver writes the rows. Resumable: each network
trains in ``--work/RECIPE/NN`` (checkpointed per epoch; on Dask workers of other machines the
checkpoints stay on those machines) and its row is appended to ``--work/RECIPE/rows.jsonl``;
rerunning skips what is done. Writes
``benchmarks/results/mcu_groundtruth.json`` (the table, indicator values, correlations,
settings, versions) and ``.txt`` (the report the README quotes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from micronas.errors import MicronasError
from micronas.hardware import load_device
from micronas.infra.execution import make_executor
from micronas.proxies import score_many
from micronas.proxies.registry import get_indicator, list_indicators
from micronas.proxies.scoring import combine_columns
from micronas.search import SearchConfig
from micronas.search.costs import BudgetFilter, Budgets, CostModel
from micronas.search.objective import TENAS_MIX, hybrid_scores, parse_mix
from micronas.search.run import run_search
from micronas.ship.train import Recipe, train, versions
from micronas.spaces import bind, get_space
from micronas.tasks.data import load_dataset

RESULTS = Path(__file__).resolve().parent / "results"


def corr(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(x)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0:
        return float("nan"), float("nan")
    return float(spearmanr(x[ok], y[ok])[0]), float(kendalltau(x[ok], y[ok])[0])


#: The log-rank mix chosen on NB201 (docs/indicators.md), measured here as well.
NB201_MIX = ("az_expressivity", "az_progressivity", "az_complexity", "synflow", "jacov",
             "linear_regions")

_DATA: dict = {}


def train_row(label: str, arch: str, recipe: Recipe, work: str, seed: int = 0) -> dict:
    """Train one architecture (in a worker) with training seed ``seed`` and return its row
    (accuracy, time, history)."""
    if "ds" not in _DATA:
        _DATA["ds"] = load_dataset("fashion-mnist", seed=0)
    ds = _DATA["ds"]
    space = bind(get_space("mcu"), ds.task())
    t0 = time.perf_counter()
    res = train(arch, space, ds, Path(work) / (label if seed == 0 else f"{label}_s{seed}"),
                recipe, seed=seed)
    return {"label": label, "arch": arch, "train_seed": seed, "test_accuracy": res.test_accuracy,
            "train_seconds": time.perf_counter() - t0, "resumed_from_epoch": res.resumed_from,
            "final_train_accuracy": res.history[-1]["train_accuracy"] if res.history else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0, help="architecture sampling seed")
    ap.add_argument("--device", default="nrf52840")
    ap.add_argument("--max-latency-ms", type=float, default=100.0)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--train-subset", type=int, default=15000, help="0: all 60,000 images")
    ap.add_argument("--train-seeds", default="0", help="training seeds, e.g. 0,1: each network "
                    "is trained once per seed; the table is their mean, and the two seeds' "
                    "agreement is the noise ceiling")
    ap.add_argument("--rows", help="the row file to append to and resume from (default: "
                    "WORK/RECIPE/rows.jsonl; give a path under benchmarks/results to commit it, "
                    "so a later session continues the table)")
    ap.add_argument("--report-only", action="store_true", help="report on the rows done so far "
                    "(networks with every training seed), train nothing")
    ap.add_argument("--augment", default="none", choices=["auto", "none", "crop", "crop-flip"])
    ap.add_argument("--executor", default="serial",
                    help="where the trainings run: serial, process:N, local:N, dask://HOST:PORT")
    ap.add_argument("--work", default="/tmp/micronas-groundtruth")
    ap.add_argument("--out", default=str(RESULTS / "mcu_groundtruth"))
    args = ap.parse_args()
    try:
        ds = load_dataset("fashion-mnist", seed=0)
    except MicronasError as e:
        print(f"skipped: {e}", file=sys.stderr)
        return 0
    cfg = SearchConfig.of(space="mcu", device=args.device, task="fashion-mnist",
                       max_latency_ms=args.max_latency_ms, workers=0)
    task = cfg.resolve_task()
    space = bind(get_space("mcu"), task)
    dev = load_device(args.device)
    costs = CostModel(space, task, dev)
    budgets = cfg.budgets.for_device(dev)
    filt = BudgetFilter(costs, budgets, Budgets.with_device(dev, None, None, None,
                                                            *cfg.reserves(dev)))
    rng = np.random.default_rng(args.seed)
    archs: list = []
    while len(archs) < args.n:
        a = filt.sample(rng)
        if space.format(a) not in {space.format(b) for b in archs}:
            archs.append(a)
    seeds = [int(x) for x in args.train_seeds.split(",")]
    recipe = Recipe(epochs=args.epochs, train_subset=args.train_subset or None,
                    augment=args.augment)
    work = Path(args.work) / f"e{args.epochs}_n{args.train_subset}_{args.augment}"
    work.mkdir(parents=True, exist_ok=True)
    rows_path = Path(args.rows) if args.rows else work / "rows.jsonl"
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    done: dict = {}   # (arch, training seed) -> row
    if rows_path.exists():
        for line in rows_path.read_text().splitlines():
            r = json.loads(line)
            done[(r["arch"], r.get("train_seed", 0))] = r

    def add_row(row: dict) -> dict:
        c = costs.arch(space.parse(row["arch"]))
        row = {**row, "latency_ms": c.latency_ms, "peak_sram_bytes": c.peak_sram_bytes,
               "flash_bytes": c.flash_bytes, "macs": c.macs, "params": c.params}
        with rows_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        done[(row["arch"], row["train_seed"])] = row
        print(f"{row['label']} s{row['train_seed']} {100 * row['test_accuracy']:6.2f} %  {c.latency_ms:6.1f} ms  "
              f"{c.macs / 1e6:5.2f} M MACs  {row['train_seconds']:5.0f} s  {row['arch']}",
              flush=True)
        return row

    def run_all(jobs: list[tuple[str, str]]) -> None:
        # every network's first seed before any network's second: a partial table is a
        # table of more networks
        todo = [(label, text, sd) for sd in seeds for label, text in jobs
                if (text, sd) not in done]
        if not todo or args.report_only:
            return
        ex = make_executor(args.executor)
        try:
            futures = [ex.submit(train_row, label, text, recipe, str(work), sd)
                       for label, text, sd in todo]
            for f in futures:
                add_row(f.result())
        finally:
            ex.shutdown(wait=True, cancel_futures=True)

    def merged(text: str) -> dict:
        """The row of a network: the mean accuracy over the training seeds."""
        per = [done[(text, sd)] for sd in seeds]
        return {**per[0], "test_accuracy": float(np.mean([r["test_accuracy"] for r in per])),
                "seed_accuracies": [r["test_accuracy"] for r in per],
                "train_seconds": float(sum(r["train_seconds"] for r in per))}

    def run_one(label: str, a) -> dict:
        run_all([(label, space.format(a))])
        return merged(space.format(a))

    run_all([(f"{i:02d}", space.format(a)) for i, a in enumerate(archs)])
    archs = [a for a in archs if all((space.format(a), sd) in done for sd in seeds)]
    if len(archs) < 3:
        print(f"only {len(archs)} networks have every training seed in {rows_path}; nothing "
              "to report yet", file=sys.stderr)
        return 0
    rows = [merged(space.format(a)) for a in archs]
    acc = np.array([r["test_accuracy"] for r in rows])
    ceiling = None
    if len(seeds) >= 2:  # how well one training ranks the networks as the other does
        a0 = np.array([r["seed_accuracies"][0] for r in rows])
        a1 = np.array([r["seed_accuracies"][1] for r in rows])
        ceiling = corr(a0, a1)

    names = [n for n in list_indicators() if not get_indicator(n).population]
    t0 = time.perf_counter()
    scores = score_many(space, archs, task, names + ["tenas"], cfg.seed, cfg.proxy,
                        executor=args.executor)
    score_s = time.perf_counter() - t0
    values = [{n: float(s[n].value) for n in names} for s in scores]
    table_corr = {}
    for n in names:
        v = np.array([vv[n] for vv in values])
        v = v if get_indicator(n).higher_is_better else -v
        table_corr[n] = corr(v, acc)
    table_corr["tenas"] = corr(np.array([float(s["tenas"].value) for s in scores]), acc)
    macs = [r["macs"] for r in rows]
    lat = [r["latency_ms"] for r in rows]
    for label, mix in (("default mix (" + cfg.objective.indicators + ")", cfg.objective.indicators),
                       ("TE-NAS mix (" + TENAS_MIX + ")", TENAS_MIX)):
        w = cfg.weights()
        w = type(w)(w.latency, w.flops, parse_mix(mix))
        table_corr[label] = corr(hybrid_scores(values, macs, lat, w, cfg.objective.rank_mode), acc)
    if all(n in names for n in NB201_MIX):
        cols = [np.array([vv[n] for vv in values]) *
                (1.0 if get_indicator(n).higher_is_better else -1.0) for n in NB201_MIX]
        table_corr["NB201-chosen log-rank mix"] = corr(
            combine_columns(cols, "log_rank"), acc)

    t0 = time.perf_counter()
    found = run_search(cfg)
    search_s = time.perf_counter() - t0
    if args.report_only and not all((found.arch, sd) in done for sd in seeds):
        chosen = None
    else:
        chosen = run_one("searched", space.parse(found.arch))
    pct = None if chosen is None else float((acc < chosen["test_accuracy"]).mean() * 100)

    lines = [
        f"mcu ground truth on fashion-mnist: {len(rows)} seeded architectures (seed {args.seed}) "
        f"meeting {args.device} with the 10 % reserve and <= {args.max_latency_ms:g} ms;",
        f"recipe: {args.epochs} epochs on "
        f"{args.train_subset or len(ds.y_train)} training images (seeded), augment "
        f"{args.augment}, default recipe otherwise, training seed(s) {args.train_seeds} (the "
        f"table is their mean); test on all {len(ds.y_test)} test images.", "",
        f"accuracy: mean {100 * acc.mean():.2f} %, best {100 * acc.max():.2f} %, worst "
        f"{100 * acc.min():.2f} %, std {100 * acc.std():.2f}",
        *([f"noise ceiling: training seed {seeds[0]} vs seed {seeds[1]}, Spearman "
           f"{ceiling[0]:.3f}, Kendall {ceiling[1]:.3f} (no indicator can rank the networks "
           "much better than one training ranks them as another)"] if ceiling else []), "",
        f"{'indicator':<52} {'Spearman':>9} {'Kendall':>8}"]
    for n, (rho, tau) in sorted(table_corr.items(), key=lambda kv: -np.nan_to_num(kv[1][0],
                                                                                 nan=-9)):
        lines.append(f"{n:<52} {rho:9.3f} {tau:8.3f}")
    head = (f"default search ({cfg.resolved_strategy()}, {cfg.strategy.evaluations} evaluations, "
            f"seed {cfg.seed}, {search_s:.0f} s): {found.arch}")
    lines += ["", head, f"  same recipe: {100 * chosen['test_accuracy']:.2f} % (mean of the "
              f"{len(rows)}: {100 * acc.mean():.2f} %, best {100 * acc.max():.2f} %; better "
              f"than {pct:.0f} % of them), {chosen['latency_ms']:.1f} ms, "
              f"{chosen['macs'] / 1e6:.2f} M MACs" if chosen else "  not trained yet",
              f"indicators scored in {score_s:.0f} s"]
    report = "\n".join(lines)
    print(report)
    out = Path(args.out)
    payload = {"settings": {**vars(args), "recipe": recipe.__dict__,
                            "proxy_settings": cfg.proxy.__dict__,
                            "search": cfg.to_dict()},
               "versions": versions(), "rows": [{**r, "indicators": v}
                                                for r, v in zip(rows, values, strict=True)],
               "correlations": {k: {"spearman": v[0], "kendall": v[1]}
                                for k, v in table_corr.items()},
               "searched": chosen, "searched_arch": found.arch, "searched_percentile": pct,
               "noise_ceiling": None if ceiling is None else {"spearman": ceiling[0],
                                                              "kendall": ceiling[1]}}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    out.with_suffix(".txt").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
