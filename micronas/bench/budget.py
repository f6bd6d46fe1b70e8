"""Ranking inside a budget: what a budgeted search needs of an indicator.

A search under a latency budget only ever compares networks of about the same cost, so the
whole-space rank correlation (which rewards any indicator that grows with size) says little
about it. Two measures of a scored table, for one device:

- **in-slice correlation**: Kendall tau and Spearman rho of each indicator with accuracy
  among the networks whose latency is within +-10 % of the 10th, 20th, ..., 90th
  percentile latency of the table, averaged over the slices (slices with fewer than
  :data:`MIN_SLICE` networks are left out);
- **pick**: for a latency budget (the 25th, 50th, 75th percentile latency of the networks
  that fit the device's memory less the application's reserve, and ``draws`` more
  percentiles drawn uniformly in 10..90 with a seed), the network an exhaustive search with
  the indicator as its objective returns (its best-scored feasible network; ties count as
  their mean), as the percentile of its accuracy among the feasible networks (100: no
  feasible network is better) and its distance in accuracy points to the best feasible one.

Indicators are oriented so that higher is better (``ntk_cond`` is negated). Where the table
holds repeated training runs, the **run-to-run ceiling** is the same measure with run ``i``
as the "indicator" and the mean of the other runs as the truth, averaged over ``i``: no
indicator can be expected to rank better than a second training does.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

from micronas.hardware import estimate, load_device
from micronas.infra import defaults
from micronas.spaces import AnySpace, cost_key
from micronas.tasks import Task

SLICE_CENTRES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
SLICE_WIDTH = 0.10
BUDGET_PERCENTILES = (25, 50, 75)
MIN_SLICE = 5


def costs(space: AnySpace, archs: Sequence[Any], task: Task, device: str,
          runtime: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(latency in ms, fits) of each architecture on ``device`` under ``runtime`` (the
    project's cost model); fits: peak SRAM and flash within the device's memory less the
    default application reserve (:data:`~micronas.infra.defaults.RESERVE_SHARE`)."""
    dev = load_device(device, runtime)
    keep = 1.0 - defaults.RESERVE_SHARE
    seen: dict[str, tuple[float, bool]] = {}
    lat, fits = [], []
    for a in archs:
        k = cost_key(space, a)
        if k not in seen:
            r = estimate(space.to_network(a, task), dev)
            seen[k] = (r.latency_ms, r.peak_sram_bytes <= keep * dev.sram_bytes
                       and r.flash_bytes <= keep * dev.flash_bytes)
        lat.append(seen[k][0])
        fits.append(seen[k][1])
    return np.array(lat), np.array(fits, dtype=bool)


def _corr(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = kendalltau(x, y).statistic
        rho = spearmanr(x, y).statistic
    return (float(tau) if np.isfinite(tau) else 0.0, float(rho) if np.isfinite(rho) else 0.0)


def slices(latency: np.ndarray, centres: Sequence[float] = SLICE_CENTRES,
           width: float = SLICE_WIDTH) -> list[dict[str, Any]]:
    """The latency slices: percentile, centre latency and the members' positions."""
    out = []
    for p in centres:
        c = float(np.percentile(latency, p))
        idx = np.flatnonzero(np.abs(latency - c) <= width * c)
        out.append({"percentile": p, "latency_ms": c, "idx": idx})
    return out


def in_slices(columns: Mapping[str, np.ndarray], acc: np.ndarray, latency: np.ndarray,
              runs: np.ndarray | None = None, centres: Sequence[float] = SLICE_CENTRES,
              width: float = SLICE_WIDTH) -> dict[str, Any]:
    """Mean in-slice Kendall and Spearman of each column (oriented: higher is better) with
    ``acc``; ``runs`` (networks x runs): the run-to-run ceiling in the same slices."""
    sl = [s for s in slices(latency, centres, width) if len(s["idx"]) >= MIN_SLICE]
    out: dict[str, Any] = {"slices": [{"percentile": s["percentile"],
                                       "latency_ms": s["latency_ms"], "n": int(len(s["idx"]))}
                                      for s in sl], "indicators": {}}
    for name, col in columns.items():
        per = [_corr(col[s["idx"]], acc[s["idx"]]) for s in sl]
        out["indicators"][name] = {
            "kendall": float(np.mean([p[0] for p in per])) if per else None,
            "spearman": float(np.mean([p[1] for p in per])) if per else None,
            "kendall_per_slice": [p[0] for p in per]}
    if runs is not None and runs.shape[1] > 1 and sl:
        per_run = []
        for i in range(runs.shape[1]):
            others = np.delete(runs, i, axis=1).mean(axis=1)
            per_run.append([_corr(runs[s["idx"], i], others[s["idx"]]) for s in sl])
        arr = np.array(per_run)  # runs x slices x (tau, rho)
        out["ceiling"] = {"kendall": float(arr[..., 0].mean()),
                          "spearman": float(arr[..., 1].mean()),
                          "kendall_per_slice": arr[..., 0].mean(axis=0).tolist()}
    return out


def _pick_one(score: np.ndarray, truth: np.ndarray, feasible: np.ndarray) -> tuple[float, float]:
    """(percentile among the feasible networks, points under the best feasible one) of the
    best-scored feasible network; ties averaged."""
    s, a = score[feasible], truth[feasible]
    top = s == s.max()
    pct = float(np.mean([100.0 * np.mean(a <= x) for x in a[top]]))
    return pct, float(a.max() - a[top].mean())


def budgets(latency: np.ndarray, fits: np.ndarray, percentiles: Sequence[float] =
            BUDGET_PERCENTILES, draws: int = 0, seed: int = 0) -> list[dict[str, Any]]:
    """The latency budgets: ``percentiles`` of the latency of the networks that fit, then
    ``draws`` percentiles drawn uniformly in 10..90 with ``seed``."""
    lat_fit = latency[fits]
    if not len(lat_fit):
        return []
    ps = [float(p) for p in percentiles]
    ps += [float(p) for p in np.random.default_rng(seed).uniform(10, 90, draws)]
    return [{"percentile": p, "latency_ms": float(np.percentile(lat_fit, p)),
             "drawn": i >= len(percentiles)} for i, p in enumerate(ps)]


def picks(columns: Mapping[str, np.ndarray], acc: np.ndarray, latency: np.ndarray,
          fits: np.ndarray, runs: np.ndarray | None = None,
          percentiles: Sequence[float] = BUDGET_PERCENTILES, draws: int = 20,
          seed: int = 0) -> dict[str, Any]:
    """The pick metric of each column for every budget (:func:`budgets`); the oracle is the
    best feasible network; ``runs``: the run-to-run ceiling (pick by run i, judged on the
    mean of the others)."""
    bs = budgets(latency, fits, percentiles, draws, seed)
    out: dict[str, Any] = {"budgets": [], "indicators": {}}
    for b in bs:
        feas = fits & (latency <= b["latency_ms"])
        b = {**b, "feasible": int(feas.sum()), "oracle": float(acc[feas].max())}
        out["budgets"].append(b)
    for name, col in columns.items():
        per = [_pick_one(col, acc, fits & (latency <= b["latency_ms"])) for b in bs]
        out["indicators"][name] = _pick_summary(per, bs)
    if runs is not None and runs.shape[1] > 1 and bs:
        per = []
        for b in bs:
            feas = fits & (latency <= b["latency_ms"])
            got = [_pick_one(runs[:, i], np.delete(runs, i, axis=1).mean(axis=1), feas)
                   for i in range(runs.shape[1])]
            per.append((float(np.mean([g[0] for g in got])), float(np.mean([g[1] for g in got]))))
        out["ceiling"] = _pick_summary(per, bs)
    return out


def _pick_summary(per: list[tuple[float, float]], bs: list[dict[str, Any]]) -> dict[str, Any]:
    fixed = [p for p, b in zip(per, bs, strict=True) if not b["drawn"]]
    drawn = [p for p, b in zip(per, bs, strict=True) if b["drawn"]]
    return {"percentile": [p[0] for p in fixed], "gap": [p[1] for p in fixed],
            "mean_percentile": float(np.mean([p[0] for p in fixed])) if fixed else None,
            "mean_gap": float(np.mean([p[1] for p in fixed])) if fixed else None,
            **({"drawn_mean_percentile": float(np.mean([p[0] for p in drawn])),
                "drawn_mean_gap": float(np.mean([p[1] for p in drawn]))} if drawn else {})}


def oriented(name: str, values: Sequence[float]) -> np.ndarray:
    """``values`` of indicator ``name`` with higher = better (lower-is-better negated)."""
    from micronas.proxies import get_indicator

    v = np.asarray(values, dtype=np.float64)
    return v if get_indicator(name).higher_is_better else -v


def report(space: AnySpace, archs: Sequence[Any], task: Task, values: Mapping[str, Sequence[float]],
           acc: Sequence[float], runs: Sequence[Sequence[float]] | None = None,
           device: str = "stm32f746", runtime: str | None = None, draws: int = 20,
           seed: int = 0) -> dict[str, Any]:
    """Both measures for a scored set: ``values`` per indicator (as computed), ``acc`` the
    accuracy, ``runs`` each network's runs where the table has several."""
    lat, fits = costs(space, archs, task, device, runtime)
    cols = {n: oriented(n, v) for n, v in values.items()}
    a = np.asarray(acc, dtype=np.float64)
    r = None if runs is None else np.asarray(runs, dtype=np.float64)
    dev = load_device(device, runtime)
    return {"device": dev.name, "runtime": dev.runtime.name, "n": len(a),
            "fit": int(fits.sum()), "reserve_share": defaults.RESERVE_SHARE,
            "slice_width": SLICE_WIDTH, "min_slice": MIN_SLICE,
            "latency_ms": {"min": float(lat.min()), "median": float(np.median(lat)),
                           "max": float(lat.max())},
            "in_slice": in_slices(cols, a, lat, r),
            "pick": picks(cols, a, lat, fits, r, draws=draws, seed=seed)}


def text(rep: dict[str, Any]) -> str:
    """The report as a table: per indicator, the mean in-slice Kendall / Spearman, then the
    pick at the 25th / 50th / 75th percentile budgets (percentile among the feasible networks,
    points under the oracle) and their means (and over the drawn budgets)."""
    sl, pk = rep["in_slice"], rep["pick"]
    lines = [f"{rep['n']:,} networks on {rep['device']} ({rep['runtime']}): latency "
             f"{rep['latency_ms']['min']:.1f}-{rep['latency_ms']['max']:.1f} ms (median "
             f"{rep['latency_ms']['median']:.1f}); {rep['fit']:,} fit the memory less "
             f"{rep['reserve_share']:.0%}",
             f"in-slice: +-{rep['slice_width']:.0%} latency around the "
             + ", ".join(f"{s['percentile']}th" for s in sl["slices"])
             + " percentile (" + ", ".join(str(s["n"]) for s in sl["slices"]) + " networks)"]
    if pk["budgets"]:
        fixed = [b for b in pk["budgets"] if not b["drawn"]]
        lines.append("pick budgets: " + ", ".join(
            f"p{b['percentile']:.0f} {b['latency_ms']:.1f} ms ({b['feasible']} feasible, oracle "
            f"{b['oracle']:.2f})" for b in fixed)
            + f"; {len(pk['budgets']) - len(fixed)} drawn budgets")
    head = (f"{'indicator':<17} {'slice tau':>9} {'slice rho':>9} "
            + " ".join(f"{'p' + str(int(b['percentile'])) + ' pct/gap':>15}"
                       for b in pk["budgets"] if not b["drawn"])
            + f" {'mean pct/gap':>14} {'drawn pct/gap':>14}")
    lines.append(head)

    def f(v: float | None, d: int = 3) -> str:
        return "n/a" if v is None else f"{v:.{d}f}"

    names = list(sl["indicators"]) + (["run-to-run"] if "ceiling" in sl else [])
    for name in names:
        s = sl["ceiling"] if name == "run-to-run" else sl["indicators"][name]
        p = pk.get("ceiling") if name == "run-to-run" else pk["indicators"].get(name)
        cells = ""
        if p:
            cells = " ".join(f"{pc:>8.1f}/{g:<6.2f}" for pc, g in zip(p["percentile"], p["gap"],
                                                                        strict=True))
            cells += f" {f(p['mean_percentile'], 1):>7}/{f(p['mean_gap'], 2):<6}"
            if "drawn_mean_percentile" in p:
                cells += f" {p['drawn_mean_percentile']:>7.1f}/{p['drawn_mean_gap']:<6.2f}"
        lines.append(f"{name:<17} {f(s['kendall']):>9} {f(s['spearman']):>9} {cells}")
    return "\n".join(lines)
