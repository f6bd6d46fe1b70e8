"""Choosing the search objective on held-out halves: which indicator mix ranks networks of
equal cost.

A budgeted search only compares networks of about the same latency, so the objective is
chosen on how it ranks inside latency slices (:mod:`micronas.bench.budget`), not over a
whole space. Candidates are rank mixes, as the search computes them: each indicator oriented
(higher is better) and turned into percentile ranks over the table, the ranks summed with
shares. The candidates: every single indicator (and FLOPs, params), every equal-share mix of
two and three of the best six single indicators, and shares 0..3 over those six found by
coordinate ascent.

Two tables choose, two report (a seeded split of each table's networks into halves A and
B, seed ``--seed``):

- ``nbmacro``: NAS-Bench-Macro, ``benchmarks/results/nbmacro_all_cifar10.json.gz``
  (CIFAR-10, mean of three runs), slices on stm32f746;
- ``nb201``: NB201, the networks of ``--nb201-extra`` (a ``bench correlate --table`` with
  the indicators the all-networks table lacks, e.g. naswot) joined with
  ``benchmarks/results/nb201_all_cifar10.json.gz``, slices on stm32f746.

The objective maximising the mean in-slice Spearman over nbmacro-A and nb201-A is chosen;
every candidate's held-out figures (B halves: in-slice Spearman and Kendall, and the pick
metric under the 25th/50th/75th percentile latency budgets on stm32l4r5 for nbmacro) and its
figures on the ``mcu`` ground truth (``benchmarks/results/mcu_groundtruth*.json``: all its
networks meet one budget, so the whole table is one slice) are reported beside it.

    python benchmarks/objective_study.py --nb201-extra benchmarks/results/nb201_2000_zc.json.gz

Writes ``benchmarks/results/objective_study.json`` and ``.txt``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from micronas.bench.budget import costs, in_slices, oriented, picks
from micronas.bench.correlate import read_table, row_arch
from micronas.infra.stats import rankdata
from micronas.proxies.registry import INDICATORS
from micronas.spaces import bind, get_space
from micronas.tasks import get_task

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: never candidates: rank combinations over a set, and the aliases of FLOPs
POPULATION = {"tenas", "micronas_mix"}
DEFAULT = {"ntk_cond": 1, "linear_regions": 1, "synflow": 2}


def load_nbmacro(path: Path = RESULTS / "nbmacro_all_cifar10.json.gz") -> dict:
    d = read_table(path)
    space, task = get_space("nbmacro"), get_task(d["dataset"])
    rows = d["rows"]
    names = [n for n in rows[0] if n in INDICATORS.names() and n not in POPULATION]
    return {"space": space, "task": task, "archs": [row_arch(space, r) for r in rows],
            "values": {n: np.array([r[n] for r in rows], dtype=float) for n in names},
            "acc": np.array([r["acc"] for r in rows]),
            "what": f"nbmacro ({len(rows):,} of {d.get('total_classes', len(rows)):,} classes)"}


def load_nb201(extra: Path | None) -> dict:
    base = {r["index"]: r for r in read_table(RESULTS / "nb201_all_cifar10.json.gz")["rows"]}
    if extra is None:  # a seeded 2,000 of the all-networks table, without what it lacks
        keys = sorted(base)
        pick = np.random.default_rng(0).choice(len(keys), 2000, replace=False)
        more = [{"index": keys[int(i)]} for i in sorted(pick)]
    else:
        more = read_table(extra)["rows"]
    space, task = get_space("nb201"), get_task("cifar10")
    rows = [{**base[r["index"]], **r} for r in more if r["index"] in base]
    names = [n for n in rows[0] if n in INDICATORS.names() and n not in POPULATION
             and all(n in r for r in rows)]
    return {"space": space, "task": task, "archs": [space.parse(str(r["index"])) for r in rows],
            "values": {n: np.array([r[n] for r in rows], dtype=float) for n in names},
            "acc": np.array([r["acc"] for r in rows]),
            "what": f"nb201 ({len(rows):,} seeded networks"
                    + (f" of {extra.name})" if extra else ", all-networks table: no naswot)")}


def load_mcu(path: Path) -> dict | None:
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    rows = d["rows"]
    task = get_task(d["settings"]["search"]["task"])
    names = [n for n in rows[0]["indicators"] if n not in POPULATION]
    vals = {n: np.array([r["indicators"][n] for r in rows], dtype=float) for n in names}
    vals.setdefault("params", np.array([r["params"] for r in rows], dtype=float))
    vals.setdefault("flops", np.array([r["macs"] for r in rows], dtype=float))
    return {"space": bind(get_space("mcu"), task), "task": task, "archs": None, "values": vals,
            "acc": np.array([100 * r["test_accuracy"] for r in rows]),
            "what": f"{path.name} ({len(rows)} networks, {d['settings']['epochs']} epochs)"}


def rank_columns(t: dict) -> dict[str, np.ndarray]:
    """Each indicator oriented and as percentile ranks over the table (NaN: lowest)."""
    out = {}
    for n, v in t["values"].items():
        o = oriented(n, v)
        o = np.where(np.isfinite(o), o, -np.inf)
        out[n] = (rankdata(o, method="average") - 1.0) / max(len(o) - 1, 1)
    return out


def mix(ranks: dict[str, np.ndarray], shares: dict[str, float]) -> np.ndarray | None:
    if not all(n in ranks for n in shares):
        return None
    return sum(w * ranks[n] for n, w in shares.items())


def label(shares: dict[str, float]) -> str:
    return ",".join(n if w == 1 else f"{n}:{w:g}" for n, w in shares.items())


def slice_rho(t: dict, col: np.ndarray, idx: np.ndarray) -> float:
    r = in_slices({"x": col[idx]}, t["acc"][idx], t["latency"][idx])
    return float(r["indicators"]["x"]["spearman"])


def whole(col: np.ndarray, acc: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(col, acc).statistic), float(kendalltau(col, acc).statistic)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nb201-extra", type=Path, help="a bench correlate --table of NB201 "
                   "networks with the indicators the all-networks table lacks (naswot, snip, "
                   "zico, meco, grad_norm); without it, NB201 judges only the indicators that "
                   "table holds and the others are chosen on nbmacro alone")
    p.add_argument("--nbmacro", type=Path, default=RESULTS / "nbmacro_all_cifar10.json.gz",
                   help="the scored NAS-Bench-Macro table (a partial one is a seeded sample)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "objective_study")
    a = p.parse_args(argv)
    tables = {"nbmacro": load_nbmacro(a.nbmacro), "nb201": load_nb201(a.nb201_extra)}
    for name, t in tables.items():
        t["latency"], t["fits"] = costs(t["space"], t["archs"], t["task"], "stm32f746")
        t["ranks"] = rank_columns(t)
        perm = np.random.default_rng(a.seed).permutation(len(t["acc"]))
        t["A"], t["B"] = np.sort(perm[: len(perm) // 2]), np.sort(perm[len(perm) // 2:])
    common = sorted(tables["nbmacro"]["ranks"])

    def fit(shares: dict[str, float]) -> float:
        """Mean A-half in-slice Spearman over the tables that hold every indicator of the
        mix (nbmacro always)."""
        vals = [slice_rho(t, c, t["A"]) for t in tables.values()
                if (c := mix(t["ranks"], shares)) is not None]
        return float(np.mean(vals))

    singles = {n: fit({n: 1}) for n in common}
    top = [n for n, _ in sorted(singles.items(), key=lambda kv: -kv[1])
           if n not in ("flops", "params")][:6]
    cands: dict[str, dict[str, float]] = {label({n: 1}): {n: 1} for n in common}
    cands[label(DEFAULT)] = dict(DEFAULT)
    for k in (2, 3):
        for combo in itertools.combinations(top, k):
            cands[label(dict.fromkeys(combo, 1))] = dict.fromkeys(combo, 1)
    score = {lab: fit(s) for lab, s in cands.items()}
    # shares 0..3 over the six by coordinate ascent from the best equal mix
    best = dict(cands[max((lab for lab in score if "," in lab and ":" not in lab),
                          key=lambda lab: score[lab])])
    cur = fit(best)
    for _ in range(4):
        moved = False
        for n in top:
            for w in (0, 1, 2, 3):
                trial = {**best, n: w}
                trial = {k: v for k, v in trial.items() if v > 0}
                if not trial:
                    continue
                f = fit(trial)
                if f > cur + 1e-4:
                    best, cur, moved = trial, f, True
        if not moved:
            break
    cands[label(best) + " (learned)"] = best
    score[label(best) + " (learned)"] = cur
    chosen = max(score, key=lambda lab: score[lab])

    mcu = {p.stem: t for p in sorted(RESULTS.glob("mcu_groundtruth*.json"))
           if (t := load_mcu(p)) is not None}
    for t in mcu.values():
        t["ranks"] = rank_columns(t)
    l4 = tables["nbmacro"]
    l4_lat, l4_fits = costs(l4["space"], l4["archs"], l4["task"], "stm32l4r5")
    rows = []
    for lab, shares in cands.items():
        row = {"objective": lab, "shares": shares, "A": score[lab],
               "chosen_on": [n for n, t in tables.items() if mix(t["ranks"], shares) is not None]}
        for name, t in tables.items():
            c = mix(t["ranks"], shares)
            if c is None:
                continue
            B = t["B"]
            sl = in_slices({"x": c[B]}, t["acc"][B], t["latency"][B])["indicators"]["x"]
            row[f"{name}_B_slice_rho"] = sl["spearman"]
            row[f"{name}_B_slice_tau"] = sl["kendall"]
            row[f"{name}_B_whole_rho"] = whole(c[B], t["acc"][B])[0]
        c = mix(l4["ranks"], shares)
        if c is not None:
            B = l4["B"]
            pk = picks({"x": c[B]}, l4["acc"][B], l4_lat[B], l4_fits[B], draws=0)
            row["nbmacro_B_l4r5_pick_pct"] = pk["indicators"]["x"]["mean_percentile"]
            row["nbmacro_B_l4r5_pick_gap"] = pk["indicators"]["x"]["mean_gap"]
        for name, t in mcu.items():
            c = mix(t["ranks"], shares)
            if c is not None:
                row[f"{name}_rho"] = whole(c, t["acc"])[0]
        rows.append(row)
    rows.sort(key=lambda r: -r["A"])

    def f(v: float | None, d: int = 3) -> str:
        return "  n/a" if v is None or not np.isfinite(v) else f"{v:.{d}f}"

    mcu_cols = list(mcu)
    head = (f"{'objective':<58} {'A rho':>6} {'macro B':>7} {'201 B':>6} {'macro tau':>9} "
            f"{'201 tau':>7} {'L4 pct':>6} {'L4 gap':>6} "
            + " ".join(f"{n.replace('mcu_groundtruth', 'mcu'):>8}" for n in mcu_cols))
    lines = [f"tables: {tables['nbmacro']['what']}; {tables['nb201']['what']}; "
             + "; ".join(t["what"] for t in mcu.values()),
             f"halves: seed {a.seed}; in-slice = mean Spearman inside +-10 % latency slices "
             "(stm32f746, 10th..90th percentile); L4 = pick on stm32l4r5 under the 25/50/75th "
             "percentile budgets (percentile among the feasible networks / points under the "
             "oracle), half B of nbmacro; mcu = Spearman over the whole mcu table (one budget)",
             "A rho: mean in-slice Spearman on the A halves of nbmacro and nb201 (* nbmacro "
             "alone: the nb201 table lacks an indicator of the mix)",
             f"chosen on the A halves: {chosen}", "", head]
    for r in rows:
        lines.append(
            f"{(r['objective'] + ('' if len(r['chosen_on']) > 1 else ' *'))[:58]:<58} "
            f"{f(r['A']):>6} {f(r.get('nbmacro_B_slice_rho')):>7} "
            f"{f(r.get('nb201_B_slice_rho')):>6} {f(r.get('nbmacro_B_slice_tau')):>9} "
            f"{f(r.get('nb201_B_slice_tau')):>7} {f(r.get('nbmacro_B_l4r5_pick_pct'), 1):>6} "
            f"{f(r.get('nbmacro_B_l4r5_pick_gap'), 2):>6} "
            + " ".join(f"{f(r.get(n + '_rho')):>8}" for n in mcu_cols))
    text = "\n".join(lines)
    print(text)
    a.out.with_suffix(".txt").write_text(text + "\n")
    a.out.with_suffix(".json").write_text(json.dumps(
        {"seed": a.seed, "chosen": chosen, "chosen_shares": cands[chosen], "rows": rows,
         "tables": {k: t["what"] for k, t in {**tables, **mcu}.items()}}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
