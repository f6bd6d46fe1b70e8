"""One call from a task's data to a bundle for the board: search, train, int8, TFLM, deploy.

``OUT/search/`` holds the search's result.json and report.md, ``OUT/train/checkpoint.pt``
the trained network (rerunning the same build resumes training from it), ``OUT/bundle/``
the deployable bundle (:mod:`micronas.ship.bundle`), and ``OUT/report.md`` / ``OUT/build.json``
the summary: architecture, float and int8 accuracy, latency, SRAM and flash against the
device, and how long each stage took.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from micronas.errors import MicronasBug, MicronasError
from micronas.hardware import load_device
from micronas.infra import defaults
from micronas.infra.fileio import atomic_write, check_out_dir
from micronas.search.config import SearchConfig, TaskSpec
from micronas.search.run import SearchResult, run_search
from micronas.ship.bundle import deploy
from micronas.ship.int8 import quantize_checkpoint
from micronas.ship.train import Recipe, TrainPlan, TrainResult, build_module, check_augment, time_steps, train
from micronas.tasks import input_text, is_1d
from micronas.tasks.data import Dataset, load_dataset


@dataclass
class BuildResult:
    out: str
    search: SearchResult
    train: TrainResult
    bundle: dict[str, Any]           # bundle.json
    stages: dict[str, float] = field(default_factory=dict)
    report: str = ""
    #: with a training-time budget: the networks timed and why the trained one was chosen
    training_time: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        b = self.bundle
        return {"out": self.out, "arch": self.train.arch, "space": self.train.space,
                "task": self.train.task.name, "device": b["device"],
                "float_test_accuracy": b["float_test_accuracy"],
                "int8_tflm_test_accuracy": b["int8_tflm_test_accuracy"],
                "latency_ms": b["latency_ms"], "latency_runtime": b["latency_runtime"],
                "frontend": b.get("frontend"),
                "peak_sram_bytes": b["peak_sram_bytes"], "flash_bytes": b["flash_bytes"],
                "fits_with_reserve": b.get("fits_with_reserve"), "stages": self.stages,
                "search": {k: v for k, v in self.search.to_json().items() if k != "history"},
                "train": self.train.to_dict(), "bundle": b,
                **({"training_time": self.training_time} if self.training_time else {})}


def search_config(ds: Dataset, base: SearchConfig) -> SearchConfig:
    """``base`` pointed at the dataset's task: a built-in task by name, else the data's input
    and classes (the search draws ``base``'s other resolutions where it names some)."""
    from micronas.tasks import TASKS, resolve_task

    t = ds.task()
    res = base.task.resolutions
    fixed = base.task.fixed_resolution
    if t.name in TASKS and TASKS[t.name] == t:
        resolve_task(t.name, resolutions=res)  # a built-in task's resolution is fixed: one line
        return replace(base, task=TaskSpec(t.name, fixed_resolution=fixed))
    # the data's own shape (checked as --input is) and resolutions, as a Task: no text round trip
    return replace(base, task=TaskSpec(task=replace(
        resolve_task(None, t.input_shape, t.classes, resolutions=res), frontend=t.frontend),
        fixed_resolution=fixed))


def _kb(n: float) -> str:
    return f"{n / 1024:,.1f} KB"


def report_md(r: BuildResult) -> str:
    b, s = r.bundle, r.search
    rs, rf = b.get("reserve_sram_bytes", 0), b.get("reserve_flash_bytes", 0)
    drop = 100 * (b["float_test_accuracy"] - b["int8_tflm_test_accuracy"])
    max_ms = s.config["budgets"].get("max_latency_ms")
    budget = f"max {max_ms:g} ms" if max_ms else "no budget"
    lines = [
        f"# micronas build: {r.train.task.name} on {b['device']}", "",
        f"- architecture (`{r.train.space}`): `{r.train.arch}`",
        f"- network input: {input_text(tuple(b['network_input']))}"
        f"{' (time steps x channels)' if is_1d(tuple(b['network_input'])) else ''}, "
        f"{b['macs']:,} MACs, {b['params']:,} params",
        *([f"- {s.resolution['note']}"] if s.resolution.get("note") else []),
        *([f"- search {s.parsimony['note']}"] if s.parsimony and s.parsimony.get("note") else []),
        f"- data: {b['data']['source']} ({b['data']['train']:,} train / {b['data']['test']:,} "
        "test)",
        f"- trained: {r.train.epochs} epochs, seed {r.train.seed} (recipe in build.json)"
        + (f"; planned {r.train.plan.describe()}" if r.train.plan is not None else ""),
        *([f"- training time: {r.training_time['why']}"] if r.training_time else []), "",
        "| | value | device / budget |", "|---|---|---|",
        f"| float test accuracy (torch) | {100 * b['float_test_accuracy']:.2f} % | |",
        f"| int8 test accuracy (TFLM interpreter, {b['int8_tflm_test_samples']:,} samples) | "
        f"{100 * b['int8_tflm_test_accuracy']:.2f} % | drop {drop:.2f} points |",
        f"| latency ({b['latency_runtime']}) | {b['latency_ms']:.2f} ms | {budget} |",
        f"| peak SRAM | {_kb(b['peak_sram_bytes'])} | {_kb(b['sram_limit_bytes'])} "
        f"(of which {_kb(rs)} reserved for the application) |",
        f"| flash | {_kb(b['flash_bytes'])} | {_kb(b['flash_limit_bytes'])} (of which "
        f"{_kb(rf)} reserved) |",
        *([f"| audio front end ({b['frontend']['description']}) | "
           f"{b['frontend']['cost']['latency_ms']:.2f} ms, SRAM "
           f"{_kb(b['frontend']['cost']['sram_bytes'])}, flash "
           f"{_kb(b['frontend']['cost']['flash_bytes'])} | included below |",
           f"| network + front end | {b['frontend']['total_latency_ms']:.2f} ms, SRAM "
           f"{_kb(b['frontend']['total_peak_sram_bytes'])}, flash "
           f"{_kb(b['frontend']['total_flash_bytes'])} | {budget} |"] if b.get("frontend") else []),
        f"| fits with the reserve | {'yes' if b.get('fits_with_reserve') else 'NO'} | |",
        f"| TFLM arena to allocate | {_kb(b['tflm_arena_bytes_planned'])} | |",
    ]
    comp = b.get("compiled")
    if comp:
        lines.append(f"| standalone C ({comp['core']}, -O2) | flash {_kb(comp['standalone_flash_bytes'])}, "
                     f"SRAM {_kb(comp['standalone_sram_bytes'])} | |")
    emu = b.get("emulator")
    if emu:
        lines.append(f"| standalone C in the emulator = TFLM | "
                     f"{'yes' if emu['standalone_equals_tflm'] else 'NO'} ({emu['samples']} "
                     "test samples, bit-exact) | |")
    lines += ["", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in r.stages.items()]
    lines += ["", "Files: `bundle/` (model.tflite, model_data.c/.h, model_config.h, main.cc, "
              "standalone/), `train/checkpoint.pt`, `search/result.json`.", ""]
    return "\n".join(lines)


def check_minutes(minutes: float | None) -> None:
    """Refuse a training-time budget that is not a positive number, in one line."""
    import math

    if minutes is not None and not (isinstance(minutes, int | float) and not isinstance(
            minutes, bool) and math.isfinite(minutes) and minutes > 0):
        raise MicronasError(f"--max-train-minutes must be a number > 0, got {minutes}")


def within_training_time(res: SearchResult, cfg: SearchConfig, ds: Dataset, recipe: Recipe,
                         max_minutes: float, tries: int = 4) -> tuple[SearchResult, dict[str, Any]]:
    """The network to train when training may take at most ``max_minutes`` on this machine:
    the search's choice when its whole recipe fits that time, else the best-scoring network
    of the search's latency/indicator front (the next one down in latency, then the next,
    ``tries`` timed in all) whose recipe does; when none does, the quickest one timed (its
    epochs are then cut). Each candidate is timed over a few optimiser steps
    (:func:`time_steps`). Returns the search result for that network and what was timed."""
    import torch

    from micronas.search.costs import CostModel
    from micronas.search.pareto import evaluated_archs
    from micronas.ship.train import network_input, prepare_inputs
    from micronas.spaces import Candidate, bind, get_space

    task = cfg.resolve_task()
    space = bind(get_space(cfg.space), task)
    r = recipe.resolved(len(ds.y_train) if recipe.train_subset is None
                        else min(recipe.train_subset, len(ds.y_train)))
    n = len(ds.y_train) if r.train_subset is None else min(r.train_subset, len(ds.y_train))
    steps = -(-n // r.batch_size)
    # the front, best score first: the chosen one, then the front below it in latency
    below = [p["arch"] for p in sorted(res.pareto, key=lambda p: -p["latency_ms"])
             if p["latency_ms"] < res.latency_ms and p["arch"] != res.arch]
    timed: list[dict[str, Any]] = []
    for arch_text in [res.arch, *below][:tries]:
        a = space.parse(arch_text)
        shape = network_input(space, a, task)
        k = min(len(ds.y_train), r.batch_size * 6)   # the batches time_steps reads
        x, _ = prepare_inputs(replace(ds, x_train=ds.x_train[:k], x_test=ds.x_test[:1]), shape)
        y = torch.from_numpy(ds.y_train[:k])
        m = build_module(space, a, task, cfg.seed)
        sps, _n = time_steps(m, x, y, r)
        seconds = sps * steps * r.n_epochs
        timed.append({"arch": arch_text, "seconds_per_step": sps, "estimated_seconds": seconds})
        if seconds <= max_minutes * 60:
            break
    pick = next((t for t in timed if t["estimated_seconds"] <= max_minutes * 60),
                min(timed, key=lambda t: t["estimated_seconds"]))
    fits = pick["estimated_seconds"] <= max_minutes * 60
    first = timed[0]
    if pick["arch"] == res.arch:
        if fits:
            why = (f"the search's choice trains in about {first['estimated_seconds'] / 60:.1f} "
                   f"min ({r.n_epochs} epochs), within --max-train-minutes {max_minutes:g}")
        else:
            others = [t["estimated_seconds"] / 60 for t in timed[1:]]
            why = (f"the search's choice would train for about "
                   f"{first['estimated_seconds'] / 60:.1f} min ({r.n_epochs} epochs) > "
                   f"--max-train-minutes {max_minutes:g}"
                   + (f", and the front's next {len(others)} no faster ("
                      f"{min(others):.1f}-{max(others):.1f} min)" if others else "")
                   + "; it is trained with its epochs cut to fit")
        return res, {"max_minutes": max_minutes, "timed": timed, "chosen": res.arch, "why": why}
    why = (f"the search's choice {res.arch} would train for about "
           f"{first['estimated_seconds'] / 60:.1f} min ({r.n_epochs} epochs) > "
           f"--max-train-minutes {max_minutes:g}; trained instead the front's "
           + ("best network that fits that time" if fits else "quickest network timed")
           + f", {pick['arch']}, about {pick['estimated_seconds'] / 60:.1f} min"
           + ("" if fits else " (its epochs are cut to fit)"))
    history = {h["arch"]: h for h in evaluated_archs(res.history, res.arch, res.indicators,
                                                     res.latency_ms)}
    a = space.parse(pick["arch"])
    device = load_device(cfg.device, cfg.runtime)
    c = CostModel(space, task, device, disk_cache=False).arch(a)
    h = history.get(pick["arch"], {})
    new = replace(res, arch=pick["arch"], indicators={k: h[k] for k in res.indicators if k in h},
                  latency_ms=c.latency_ms, peak_sram_bytes=c.peak_sram_bytes,
                  flash_bytes=c.flash_bytes, macs=c.macs, params=c.params,
                  fits=c.peak_sram_bytes <= device.sram_bytes and c.flash_bytes <= device.flash_bytes,
                  network_input=Candidate(space, a, task).variant_input("full"),
                  pareto=[{**p, "chosen": p["arch"] == pick["arch"]} for p in res.pareto])
    return new, {"max_minutes": max_minutes, "timed": timed, "chosen": pick["arch"],
                 "search_choice": res.arch, "why": why}


def build(data: str | Dataset, out: str | Path, search: SearchConfig | None = None,
          recipe: Recipe | None = None, tflm_samples: int | None = None,
          verify_samples: int = 2, compile_c: bool = True, cache_path: str | None = None,
          progress: Callable[[str, int, int | None], None] | None = None,
          max_train_minutes: float | None = None,
          on_plan: Callable[[TrainPlan], None] | None = None) -> BuildResult:
    """Search ``search.space`` for ``data``'s task on ``search.device`` within its budgets,
    train the chosen network, quantise it, measure it in TFLM and write the bundle.

    ``max_train_minutes``: training may take at most that long here; the search's choice
    gives way to a quicker network of its front when its training would not fit
    (:func:`within_training_time`), and the epochs are cut when even that one does not.
    ``on_plan`` receives the training plan (estimated time) before training starts."""
    from micronas.search.report import plot_points, write_outputs

    t_all = time.perf_counter()
    check_minutes(max_train_minutes)
    outdir = check_out_dir(out)
    recipe = recipe or Recipe()
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    ds = data if isinstance(data, Dataset) else load_dataset(data, seed=(search.seed if search
                                                                        else 0))
    stages["load data"] = time.perf_counter() - t0
    check_augment(recipe, ds)
    cfg = search_config(ds, search or SearchConfig(space=defaults.DATA_SPACE))
    device = load_device(cfg.device, cfg.runtime)
    t0 = time.perf_counter()
    expected = cfg.strategy.expected_evaluations(cfg.space)
    done = 0

    def searched(k: int) -> None:  # the search counts evaluations as they come
        nonlocal done
        done += k
        if progress is not None:
            progress("search", done, max(expected or done, done))

    res = run_search(cfg, None, cache_path, searched)
    stages["search"] = time.perf_counter() - t0
    if not res.fits:
        raise MicronasError(f"the search found no network that fits {device.name} within the "
                            "budgets; loosen them")
    timing: dict[str, Any] = {}
    if max_train_minutes is not None:
        res, timing = within_training_time(res, cfg, ds, recipe, max_train_minutes)
    write_outputs(res, check_out_dir(outdir / "search"), *plot_points(res, None, None))
    t0 = time.perf_counter()
    tr = train(res.arch, cfg.space, ds, outdir / "train", recipe, cfg.seed,
               (lambda i, n, info: progress("train", i, n)) if progress else None,
               max_minutes=max_train_minutes, on_plan=on_plan)
    stages["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if tr.final_checkpoint is None or tr.module is None:
        raise MicronasBug("training returned no checkpoint or module")
    # the data, the trained module and the checkpoint go on in memory (nothing is reloaded)
    m = quantize_checkpoint(tr.final_checkpoint, ds, module=tr.module)
    stages["quantise"] = m.seconds
    reserve = (res.reserve_sram_bytes, res.reserve_flash_bytes)
    dep = deploy(m, device, outdir / "bundle", tflm_samples, verify_samples, compile_c, reserve,
                 progress)
    st = dep.info["stages"]
    assert isinstance(st, dict)
    stages["TFLM test set"] = st["tflm_seconds"]
    if "compile_and_verify_seconds" in st:
        stages["compile + emulate"] = st["compile_and_verify_seconds"]
    stages["deploy total"] = time.perf_counter() - t0
    stages["total"] = time.perf_counter() - t_all
    result = BuildResult(str(outdir), res, tr, dep.info, stages, training_time=timing)
    result.report = report_md(result)
    text = result.report
    try:
        atomic_write(outdir / "report.md", lambda f: f.write(text))
        blob = json.dumps(result.to_dict(), indent=2, default=str) + "\n"
        atomic_write(outdir / "build.json", lambda f: f.write(blob))
    except OSError as e:
        raise MicronasError(f"cannot write to {outdir} ({e.strerror})") from None
    return result


__all__ = ["BuildResult", "build", "report_md", "search_config"]
