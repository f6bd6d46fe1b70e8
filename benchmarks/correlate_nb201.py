"""Correlation of every indicator with NB201 ground truth.

Part A: a seeded random sample of 1,000 architectures, CIFAR-10 test accuracy, every
indicator (the same numbers `micronas bench correlate --sample 1000 --seed 0` prints).
Part B: the 725 CIFAR-10 architectures of NASLib's zero-cost table: Spearman rho of our
naswot / synflow / jacov / snip / grad_norm with `val_accuracy`, beside the rho of the
published scores on the same rows.
Part M: the recent indicators (AZ-NAS's four and az_nas, vkdnw, meco, zico) beside the
baselines on a seeded sample (`--sample`, default 1000; the commands' default settings),
Spearman / Kendall / nDCG@10,100 on CIFAR-10, and a log-rank indicator mix chosen on the
even positions of the sample and reported on the odd ones (docs/indicators.md).

    python benchmarks/correlate_nb201.py [--data ../shared/data] [--workers 2]
        [--cache PATH] [--part A|B|M|AB] [--sample N] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr
from tqdm import tqdm

from micronas.bench.correlate import correlate, ndcg, sample_archs
from micronas.bench.table import load_table
from micronas.proxies import ProxySettings, get_indicator, score_many
from micronas.proxies.scoring import combine_columns
from micronas.spaces import get_space
from micronas.spaces.nb201 import NB201Arch
from micronas.tasks import get_task

ALL = ["ntk_cond", "linear_regions", "tenas", "naswot", "synflow", "snip", "grad_norm", "jacov",
       "params", "flops"]
#: The settings the README's correlation tables were measured with (TE-NAS's own batch and
#: repeats: more than the search's defaults, which `micronas bench correlate` uses).
SETTINGS = ProxySettings(ntk_batch=32, repeats=3, lr_batches=3, lr_input=None)
PUBLISHED = {"naswot": "nwot", "synflow": "synflow", "jacov": "jacov", "snip": "snip",
             "grad_norm": "grad_norm"}


def part_a(data: Path, workers: int, cache: str | None) -> dict:
    table = load_table(data / "nb201" / "nb201_accuracy.csv")
    archs = sample_archs(1000, 0)
    with tqdm(total=len(archs), desc="part A", file=sys.stderr) as bar:
        return correlate(table, ALL, get_task("cifar10"), 1000, 0, workers, cache, bar.update,
                         archs, SETTINGS)


def part_b(data: Path, workers: int, cache: str | None) -> dict:
    with open(data / "nb201" / "nb201_accuracy.csv") as f:
        params_m = {int(r["index"]): float(r["params_m"]) for r in csv.DictReader(f)}
    with open(data / "nb201" / "nb201_zero_cost_subset.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] == "cifar10"]
    rows = [r for r in rows
            if abs(float(r["params"]) - params_m[int(r["index"])]) / params_m[int(r["index"])]
            <= 1e-3]  # NASLib decoding slip: those rows describe another architecture
    archs = [NB201Arch.from_string(r["arch_str"]) for r in rows]
    acc = [float(r["val_accuracy"]) for r in rows]
    t0 = time.perf_counter()
    with tqdm(total=len(archs), desc="part B", file=sys.stderr) as bar:
        scores = score_many(get_space("nb201"), archs, get_task("cifar10"), list(PUBLISHED), 0,
                            SETTINGS, cache, f"process:{workers}", bar.update)
    out = {"n": len(rows), "wall_seconds": time.perf_counter() - t0, "indicators": {}}
    for ours, col in PUBLISHED.items():
        keep = [i for i, r in enumerate(rows) if r[col].strip() not in ("", "nan", "inf", "-inf")]
        mine = [scores[i][ours].value for i in keep]
        pub = [float(rows[i][col]) for i in keep]
        a = [acc[i] for i in keep]
        out["indicators"][ours] = {
            "n": len(keep),
            "ours_spearman": float(spearmanr(mine, a).statistic),
            "published_spearman": float(spearmanr(pub, a).statistic),
            "ours_kendall": float(kendalltau(mine, a).statistic),
            "published_kendall": float(kendalltau(pub, a).statistic),
        }
        d = out["indicators"][ours]
        d["gap"] = d["ours_spearman"] - d["published_spearman"]
    return out


MODERN = ["az_expressivity", "az_progressivity", "az_trainability", "az_complexity", "az_nas",
          "vkdnw", "vkdnw_single", "meco", "zico"]
BASELINES = ["ntk_cond", "linear_regions", "tenas", "synflow", "naswot", "jacov", "params",
             "flops"]
#: Indicators a mix may draw from (flops and params rank NB201 identically to az_complexity).
POOL = ["az_expressivity", "az_progressivity", "az_trainability", "az_complexity", "vkdnw",
        "vkdnw_single", "meco", "zico", "synflow", "naswot", "jacov", "ntk_cond",
        "linear_regions"]


def mix_score(rows: list[dict], names: tuple[str, ...]) -> np.ndarray:
    cols = [np.array([r[n] for r in rows]) * (1.0 if get_indicator(n).higher_is_better else -1.0)
            for n in names]
    return combine_columns(cols, "log_rank")


def metrics(score: np.ndarray, acc: np.ndarray) -> dict:
    return {"spearman": float(spearmanr(score, acc).statistic),
            "kendall": float(kendalltau(score, acc).statistic),
            "ndcg@10": ndcg(score, acc, 10), "ndcg@100": ndcg(score, acc, 100)}


def choose_mix(rows: list[dict], pool: list[str], max_size: int = 6) -> dict:
    """Every subset of ``pool`` (up to ``max_size``) combined by AZ-NAS's log-rank sum:
    the one with the best Spearman on the even positions of ``rows``, and its numbers on the
    odd positions (held out); also the held-out numbers of the fixed mixes named below."""
    pool = [n for n in pool if all(n in r for r in rows)]
    sel, held = rows[0::2], rows[1::2]
    acc_s = np.array([r["acc"] for r in sel])
    acc_h = np.array([r["acc"] for r in held])
    tried = []
    for k in range(1, max_size + 1):
        for names in itertools.combinations(pool, k):
            tried.append((float(spearmanr(mix_score(sel, names), acc_s).statistic), names))
    tried.sort(reverse=True)
    best = tried[0][1]
    fixed = {"az_nas": ("az_expressivity", "az_progressivity", "az_trainability",
                        "az_complexity"),
             "az_nas+vkdnw": ("az_expressivity", "az_progressivity", "az_trainability",
                              "az_complexity", "vkdnw")}
    return {"selection": "even positions of the sample", "held_out": "odd positions",
            "n_selection": len(sel), "n_held_out": len(held), "subsets_tried": len(tried),
            "best": list(best), "selection_metrics": metrics(mix_score(sel, best), acc_s),
            "held_out_metrics": metrics(mix_score(held, best), acc_h),
            "top5_on_selection": [{"mix": list(n), "spearman": r} for r, n in tried[:5]],
            "fixed": {k: {"mix": list(v), "selection": metrics(mix_score(sel, v), acc_s),
                          "held_out": metrics(mix_score(held, v), acc_h)}
                      for k, v in fixed.items() if all(n in pool for n in v)}}


def part_m(data: Path, workers: int, cache: str | None, n: int, names: list[str],
           seed: int = 0, mix: list[str] | None = None) -> dict:
    """``mix``: also the numbers of this log-rank mix on the whole sample (a mix chosen on
    another sample, measured on fresh architectures)."""
    table = load_table(data / "nb201" / "nb201_accuracy.csv")
    archs = sample_archs(n, seed)
    with tqdm(total=len(archs), desc="part M", file=sys.stderr) as bar:
        r = correlate(table, names, get_task("cifar10"), n, seed, workers, cache, bar.update,
                      archs, ProxySettings(), keep_values=True)
    r["mix"] = choose_mix(r["rows"], POOL)
    if mix:
        acc = np.array([row["acc"] for row in r["rows"]])
        r["given_mix"] = {"mix": mix, **metrics(mix_score(r["rows"], tuple(mix)), acc)}
    return r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cache", default=None)
    p.add_argument("--part", default="AB")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--sample", type=int, default=1000, help="part M: architectures")
    p.add_argument("--seed", type=int, default=0, help="part M: sample and indicator seed")
    p.add_argument("--mix", default=None, help="part M: a log-rank mix to measure on the "
                   "whole sample, e.g. az_expressivity,az_complexity")
    p.add_argument("--indicators", default=",".join(MODERN + BASELINES),
                   help="part M: indicators to score")
    a = p.parse_args()
    data = Path(a.data)
    if not (data / "nb201" / "nb201_accuracy.csv").is_file():
        sys.exit(f"reference data not found under {data}: pass --data")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if "B" in a.part:
        b = part_b(data, a.workers, a.cache)
        (out / "zero_cost_725.json").write_text(json.dumps(b, indent=2))
        print(f"Part B: {b['n']} CIFAR-10 rows of NASLib's zero-cost table (val_accuracy)")
        print(f"{'proxy':<10} {'rows':>5} {'ours rho':>9} {'published rho':>14} {'gap':>7}")
        for k, v in b["indicators"].items():
            print(f"{k:<10} {v['n']:>5} {v['ours_spearman']:>9.3f} "
                  f"{v['published_spearman']:>14.3f} {v['gap']:>+7.3f}")
    if "M" in a.part:
        r = part_m(data, a.workers, a.cache, a.sample, a.indicators.split(","), a.seed,
                   a.mix.split(",") if a.mix else None)
        path = out / f"correlate_modern_{r['n']}_seed{a.seed}.json.gz"
        with gzip.open(path, "wt") as f:
            json.dump(r, f)
        print(f"Part M: {r['n']} random architectures (seed {a.seed}; {r['classes']} isomorphism "
              f"classes), CIFAR-10 test accuracy; {path}")
        print(f"{'indicator':<17} {'spearman':>9} {'kendall':>8} {'ndcg@10':>8} {'ndcg@100':>9}"
              f" {'s/arch':>7} {'flagged':>7}")
        for k, v in r["indicators"].items():
            print(f"{k:<17} {v['spearman']:>9.3f} {v['kendall']:>8.3f} {v['ndcg@10']:>8.3f} "
                  f"{v['ndcg@100']:>9.3f} {v['seconds_per_arch']:>7.3f} {v['flagged']:>7}")
        m = r["mix"]
        print(f"mix chosen on {m['n_selection']} (even positions) of {m['subsets_tried']} "
              f"log-rank subsets: {','.join(m['best'])}")
        for label, d in (("selection", m["selection_metrics"]),
                         ("held out", m["held_out_metrics"])):
            print(f"  {label:<10} " + "  ".join(f"{k} {v:.3f}" for k, v in d.items()))
        if "given_mix" in r:
            g = r["given_mix"]
            print(f"  given mix {','.join(g['mix'])} on all {r['n']}: " +
                  "  ".join(f"{k} {g[k]:.3f}" for k in ("spearman", "kendall", "ndcg@10",
                                                        "ndcg@100")))
        for k, d in m["fixed"].items():
            print(f"  fixed {k:<14} held out " +
                  "  ".join(f"{kk} {vv:.3f}" for kk, vv in d["held_out"].items()))
    if "A" in a.part:
        r = part_a(data, a.workers, a.cache)
        (out / "correlate_1000.json").write_text(json.dumps(r, indent=2))
        print(f"Part A: {r['n']} random architectures (seed 0), CIFAR-10 test accuracy")
        print(f"{'indicator':<15} {'spearman':>9} {'kendall':>8}")
        for k, v in r["indicators"].items():
            print(f"{k:<15} {v['spearman']:>9.3f} {v['kendall']:>8.3f}")


if __name__ == "__main__":
    main()
