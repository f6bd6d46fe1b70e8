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


def train_row(label: str, arch: str, recipe: Recipe, work: str) -> dict:
    """Train one architecture (in a worker) and return its row (accuracy, time, history)."""
    if "ds" not in _DATA:
        _DATA["ds"] = load_dataset("fashion-mnist", seed=0)
    ds = _DATA["ds"]
    space = bind(get_space("mcu"), ds.task())
    t0 = time.perf_counter()
    res = train(arch, space, ds, Path(work) / label, recipe, seed=0)
    return {"label": label, "arch": arch, "test_accuracy": res.test_accuracy,
            "train_seconds": time.perf_counter() - t0, "resumed_from_epoch": res.resumed_from,
            "final_train_accuracy": res.history[-1]["train_accuracy"] if res.history else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0, help="architecture sampling seed")
    ap.add_argument("--device", default="nrf52840")
    ap.add_argument("--max-latency-ms", type=float, default=100.0)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--train-subset", type=int, default=15000)
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
    recipe = Recipe(epochs=args.epochs, train_subset=args.train_subset, augment=args.augment)
    work = Path(args.work) / f"e{args.epochs}_n{args.train_subset}_{args.augment}"
    work.mkdir(parents=True, exist_ok=True)
    rows_path = work / "rows.jsonl"
    done = {}
    if rows_path.exists():
        for line in rows_path.read_text().splitlines():
            r = json.loads(line)
            done[r["arch"]] = r

    def add_row(row: dict) -> dict:
        c = costs.arch(space.parse(row["arch"]))
        row = {**row, "latency_ms": c.latency_ms, "peak_sram_bytes": c.peak_sram_bytes,
               "flash_bytes": c.flash_bytes, "macs": c.macs, "params": c.params}
        with rows_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        done[row["arch"]] = row
        print(f"{row['label']} {100 * row['test_accuracy']:6.2f} %  {c.latency_ms:6.1f} ms  "
              f"{c.macs / 1e6:5.2f} M MACs  {row['train_seconds']:5.0f} s  {row['arch']}",
              flush=True)
        return row

    def run_all(jobs: list[tuple[str, str]]) -> None:
        todo = [(label, text) for label, text in jobs if text not in done]
        if not todo:
            return
        ex = make_executor(args.executor)
        try:
            futures = [ex.submit(train_row, label, text, recipe, str(work))
                       for label, text in todo]
            for f in futures:
                add_row(f.result())
        finally:
            ex.shutdown(wait=True, cancel_futures=True)

    def run_one(label: str, a) -> dict:
        run_all([(label, space.format(a))])
        return done[space.format(a)]

    run_all([(f"{i:02d}", space.format(a)) for i, a in enumerate(archs)])
    rows = [done[space.format(a)] for a in archs]
    acc = np.array([r["test_accuracy"] for r in rows])

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
    chosen = run_one("searched", space.parse(found.arch))
    pct = float((acc < chosen["test_accuracy"]).mean() * 100)

    lines = [
        f"mcu ground truth on fashion-mnist: {len(rows)} seeded architectures (seed {args.seed}) "
        f"meeting {args.device} with the 10 % reserve and <= {args.max_latency_ms:g} ms;",
        f"recipe: {args.epochs} epochs on {args.train_subset} training images (seeded), augment "
        f"{args.augment}, default recipe otherwise, training seed 0; test on all "
        f"{len(ds.y_test)} test images.", "",
        f"accuracy: mean {100 * acc.mean():.2f} %, best {100 * acc.max():.2f} %, worst "
        f"{100 * acc.min():.2f} %, std {100 * acc.std():.2f}", "",
        f"{'indicator':<52} {'Spearman':>9} {'Kendall':>8}"]
    for n, (rho, tau) in sorted(table_corr.items(), key=lambda kv: -np.nan_to_num(kv[1][0],
                                                                                 nan=-9)):
        lines.append(f"{n:<52} {rho:9.3f} {tau:8.3f}")
    lines += ["", f"default search ({cfg.resolved_strategy()}, {cfg.strategy.evaluations} evaluations, seed "
              f"{cfg.seed}, {search_s:.0f} s): {chosen['arch']}",
              f"  same recipe: {100 * chosen['test_accuracy']:.2f} % (mean of the {len(rows)}: "
              f"{100 * acc.mean():.2f} %, best {100 * acc.max():.2f} %; better than {pct:.0f} % "
              f"of them), {chosen['latency_ms']:.1f} ms, {chosen['macs'] / 1e6:.2f} M MACs",
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
               "searched": chosen, "searched_percentile": pct}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    out.with_suffix(".txt").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
