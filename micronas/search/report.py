"""Search artifacts: result.json, report.md, pareto.png and config.json, each written
atomically (temporary file in the same directory, then rename)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from micronas.fileio import atomic_write
from micronas.search.objective import ranks
from micronas.search.run import SearchConfig, SearchResult

LABELS = {"ntk_cond": "NTK condition number", "linear_regions": "linear regions"}


def indicator_text(values: dict[str, float]) -> str:
    """``NTK condition number 5823, linear regions 883.0, synflow 113.4``."""
    return ", ".join(f"{LABELS.get(n, n)} {v:.4g}" for n, v in values.items())


def _markdown(r: SearchResult) -> str:
    c = r.config
    lines = [
        "# micronas search result", "",
        f"- architecture: `{r.arch}` (NB201 index {r.index})",
        f"- device: {c['device']}, dataset: {c['dataset']}, strategy: {c['strategy']}, "
        f"seed: {r.seed}",
        f"- weights: latency {c['latency_weight']}, FLOPs {c['flops_weight']}, indicators "
        f"`{c['indicators']}` (rank mode {c['rank_mode']})",
        f"- budgets: latency {c['max_latency_ms']} ms, SRAM {c['max_sram_kb']} KB, "
        f"flash {c['max_flash_kb']} KB (plus the device's own memory)"
        + (f"; pruning keeps >= {c['fill']:g} of a binding budget's capacity"
           if c["strategy"] == "prune" and c["fill"] else ""), "",
        "| quantity | value |", "|---|---|",
        *[f"| {LABELS.get(n, n)} | {v:.4g} |" for n, v in r.indicators.items()],
        f"| latency | {r.latency_ms:.2f} ms |",
        f"| peak SRAM | {r.peak_sram_bytes / 1024:.1f} KB |",
        f"| flash | {r.flash_bytes / 1024:.1f} KB |",
        f"| MACs | {r.macs:,} |",
        f"| params | {r.params:,} |",
        f"| fits | {'yes' if r.fits else 'no'} |",
        f"| search time | {r.search_seconds:.1f} s ({r.evaluations} indicator evaluations) |",
    ]
    if r.accuracy is not None:
        lines += [f"| true test accuracy (NB201) | {r.accuracy:.2f} % |",
                  f"| best accuracy under the same budgets | {r.oracle_accuracy:.2f} % "
                  f"(`{r.oracle_arch}`) |"]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in r.versions.items()), ""]
    return "\n".join(lines)


def _plot(r: SearchResult, path: Path, points: list[tuple[float, float]] | None,
          ylabel: str, chosen_y: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    if points:
        xs, ys = zip(*points, strict=True)
        ax.scatter(xs, ys, s=4, c="0.7", label="architectures")
        front, best = [], float("-inf")
        for x, y in sorted(points):
            if y > best:
                front.append((x, y))
                best = y
        fx, fy = zip(*front, strict=True)
        ax.step(fx, fy, where="post", c="tab:blue", lw=1.2, label="Pareto front")
    ax.scatter([r.latency_ms], [chosen_y], marker="*", s=180, c="tab:red", zorder=5,
               label=f"chosen (index {r.index})")
    if r.config.get("max_latency_ms"):
        ax.axvline(r.config["max_latency_ms"], ls="--", c="tab:orange", lw=1,
                   label="latency budget")
    ax.set_xscale("log")
    ax.set_xlabel(f"latency on {r.config['device']} (ms, cost model)")
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"), binary=True)
    plt.close(fig)


def plot_points(r: SearchResult, table: Any, all_costs: dict | None
                ) -> tuple[list[tuple[float, float]], str, float]:
    """(points, y label, chosen y): true accuracy of every architecture when the NB201 table
    is known, else the indicator part of the objective (each indicator's percentile rank,
    weighted by its share) over what the search evaluated and the chosen architecture."""
    from micronas.search.objective import goodness

    if table is not None and all_costs is not None:
        ds = r.config["dataset"]
        pts = [(c.latency_ms, table.acc(a, ds)) for a, c in all_costs.items()]
        return pts, f"{ds} test accuracy (%, NB201)", float(r.accuracy)
    items = [x for h in r.history for x in h.get("candidates", h.get("refine", [h]))]
    items = [x for x in items if "latency_ms" in x] + [{**r.indicators, "latency_ms": r.latency_ms}]
    mix = SearchConfig(**r.config).weights().indicators
    y = sum(share * ranks(goodness(n, [x[n] for x in items]), "percentile") for n, share in mix)
    pts = [(x["latency_ms"], float(v)) for x, v in zip(items, y, strict=True)]
    return pts[:-1], "indicator part of the objective (weighted ranks)", pts[-1][1]


def write_outputs(r: SearchResult, out: Path, points: list[tuple[float, float]] | None,
                  ylabel: str, chosen_y: float) -> list[Path]:
    """Write the four artifacts into ``out``; returns their paths."""
    files = [out / "config.json", out / "result.json", out / "report.md", out / "pareto.png"]
    atomic_write(files[0], lambda f: json.dump(r.config, f, indent=2))
    atomic_write(files[1], lambda f: json.dump(r.to_json(), f, indent=2, default=str))
    atomic_write(files[2], lambda f: f.write(_markdown(r)))
    _plot(r, files[3], points, ylabel, chosen_y)
    return files
