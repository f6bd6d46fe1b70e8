"""Search artifacts: result.json, report.md, pareto.png and config.json, each written
atomically (temporary file in the same directory, then rename)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from micronas.infra.fileio import atomic_write
from micronas.search.config import ObjectiveSpec
from micronas.search.pareto import evaluated_archs, indicator_part, pareto_front
from micronas.search.run import SearchResult
from micronas.tasks import input_text

__all__ = ["evaluated_archs", "pareto_front", "plot_points", "write_outputs"]

LABELS = {"ntk_cond": "NTK condition number", "linear_regions": "linear regions"}


def indicator_text(values: dict[str, float]) -> str:
    """``NTK condition number 5823, linear regions 883.0, synflow 113.4``."""
    return ", ".join(f"{LABELS.get(n, n)} {v:.4g}" for n, v in values.items())


def _budget(value: float | None, unit: str) -> str:
    return "none" if value is None else f"{value:g} {unit}"


def arch_label(r: SearchResult) -> str:
    """``index 6111`` for spaces with an index, else the architecture string."""
    return f"index {r.index}" if r.index is not None else r.arch


def _markdown(r: SearchResult) -> str:
    c = r.config
    st, ob, bu = c["strategy"], c["objective"], c["budgets"]
    lines = [
        "# micronas search result", "",
        f"- architecture: `{r.arch}`" + (f" ({r.space} index {r.index})" if r.index is not None
                                         else f" ({r.space} space)"),
        f"- device: {c['device']}, task: {r.task} ({input_text(tuple(r.input_shape))}, {r.classes} "
        f"classes), strategy: {st['name']}, seed: {r.seed}",
        f"- weights: latency {ob['latency_weight']}, FLOPs {ob['flops_weight']}, indicators "
        f"`{ob['indicators']}` (rank mode {ob['rank_mode']})",
        f"- budgets: latency {_budget(bu['max_latency_ms'], 'ms')}, SRAM "
        f"{_budget(bu['max_sram_kb'], 'KB')}, flash {_budget(bu['max_flash_kb'], 'KB')} (plus the "
        "device's own memory)"
        + (f"; pruning keeps >= {st['fill']:g} of a binding budget's capacity"
           if st["name"] == "prune" and st["fill"] else ""),
        f"- reserved for the application: {r.reserve_sram_bytes / 1024:.1f} KB SRAM, "
        f"{r.reserve_flash_bytes / 1024:.1f} KB flash (outside every budget)",
        *([f"- {r.resolution['note']}" + (
            f" (sides searched: {', '.join(map(str, r.resolution['searched']))}; "
            "`--fixed-resolution` keeps the input's)" if r.resolution.get("chosen_by") == "search"
            else "")] if r.resolution.get("note") else []),
        *([f"- {r.parsimony['note']}"] if r.parsimony and r.parsimony.get("note") else []), "",
        "| quantity | value |", "|---|---|",
        *[f"| {LABELS.get(n, n)} | {v:.4g} |" for n, v in r.indicators.items()],
        f"| latency | {r.latency_ms:.2f} ms |",
        f"| peak SRAM | {r.peak_sram_bytes / 1024:.1f} KB |",
        f"| flash | {r.flash_bytes / 1024:.1f} KB |",
        f"| MACs | {r.macs:,} |",
        f"| params | {r.params:,} |",
        f"| fits | {'yes' if r.fits else 'no'} |",
        *([f"| network input | {r.network_input[1]}x{r.network_input[2]}x{r.network_input[0]} |"]
          if r.network_input else []),
        *([f"| Pareto front | {len(r.pareto)} evaluated architectures, "
           f"{r.pareto[0]['latency_ms']:.1f}-{r.pareto[-1]['latency_ms']:.1f} ms "
           "(`result.json`: `pareto`) |"] if len(r.pareto) > 1 else []),
        f"| search time | {r.search_seconds:.1f} s ({r.evaluations} indicator evaluations) |",
    ]
    if r.accuracy is not None:
        lines += [f"| true test accuracy (ground truth) | {r.accuracy:.2f} % |",
                  f"| best accuracy under the same budgets | {r.oracle_accuracy:.2f} % "
                  f"(`{r.oracle_arch}`) |"]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in r.versions.items()), ""]
    return "\n".join(lines)


def _plot(r: SearchResult, path: Path, points: list[tuple[float, float]],
          ylabel: str, chosen_y: float, note: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    if points:
        xs, ys = zip(*points, strict=True)
        ax.scatter(xs, ys, s=6, c="0.65", label=f"architectures ({len(points)})")
        fx, fy = zip(*pareto_front(points), strict=True)
        ax.step(fx, fy, where="post", c="tab:blue", lw=1.2, label="Pareto front")
    ax.scatter([r.latency_ms], [chosen_y], marker="*", s=180, c="tab:red", zorder=5,
               label=f"chosen ({arch_label(r)[:24]})")
    if r.config["budgets"].get("max_latency_ms"):
        ax.axvline(r.config["budgets"]["max_latency_ms"], ls="--", c="tab:orange", lw=1,
                   label="latency budget")
    xs_all = [p[0] for p in points] + [r.latency_ms]
    if max(xs_all) / min(xs_all) > 3:  # a log axis only where it spans enough
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"latency on {r.config['device']} (ms, cost model)")
    ax.set_ylabel(ylabel)
    if note:
        ax.set_title(note, fontsize=8)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"), binary=True)
    plt.close(fig)


def plot_points(r: SearchResult, table: Any, all_costs: dict | None
                ) -> tuple[list[tuple[float, float]], str, float, str | None]:
    """(points, y label, chosen y, note): true accuracy of every architecture when a
    ground-truth table is known, else the indicator part of the objective (each
    indicator's percentile rank, weighted by its share) over the complete architectures
    the search evaluated, the chosen one included."""
    if table is not None and all_costs is not None:
        from micronas.tasks import resolve_task

        task = resolve_task(r.task)
        pts = [(c.latency_ms, table.acc(a, task)) for a, c in all_costs.items()]
        return pts, f"{r.task} test accuracy (%, ground truth)", float(r.accuracy), None
    items = evaluated_archs(r.history, r.arch, r.indicators, r.latency_ms)
    y = indicator_part(items, ObjectiveSpec(**r.config["objective"]).weights().indicators)
    pts = [(x["latency_ms"], v) for x, v in zip(items, y, strict=True)]
    note = None
    if len(items) == 1:
        note = (f"{r.config['strategy']['name']} evaluated no other complete architecture (pruning "
                "scores supernets); --strategy evolution or a ground-truth table draws a front")
    elif (pts[-1][0], pts[-1][1]) not in pareto_front(pts):
        note = ("the chosen architecture maximises the whole objective (with latency and FLOPs "
                "weights and ranks over every evaluation), not this indicator part alone")
    return pts[:-1], "indicator part of the objective (weighted ranks)", pts[-1][1], note


def write_outputs(r: SearchResult, out: Path, points: list[tuple[float, float]],
                  ylabel: str, chosen_y: float, note: str | None = None) -> list[Path]:
    """Write the four artifacts into ``out``; returns their paths."""
    files = [out / "config.json", out / "result.json", out / "report.md", out / "pareto.png"]
    atomic_write(files[0], lambda f: json.dump(r.config, f, indent=2))
    atomic_write(files[1], lambda f: json.dump(r.to_json(), f, indent=2, default=str))
    atomic_write(files[2], lambda f: f.write(_markdown(r)))
    _plot(r, files[3], points, ylabel, chosen_y, note)
    return files
