"""One function per command: resolve the arguments, make one API call, render."""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from micronas import api
from micronas.cli import render
from micronas.errors import MicronasError
from micronas.tasks import Task, resolve_task

if TYPE_CHECKING:
    from micronas.search.config import SearchConfig


def task_of(args: argparse.Namespace) -> Task:
    """The task a command runs on (``--task``/``--dataset``, or ``--input`` + ``--classes``)."""
    return resolve_task(getattr(args, "task", None), getattr(args, "input", None),
                        getattr(args, "classes", None), resolutions=getattr(args, "resolutions", None))


def space_of(args: argparse.Namespace, arch: str | None = None) -> str:
    """--space, or the space the architecture is written in, or the task's default."""
    if args.space:
        return str(args.space)
    return api.default_space(task_of(args), arch)


def cache_path(args: argparse.Namespace) -> str | None:
    from micronas.infra.cache import default_cache_path

    if getattr(args, "no_cache", False):
        return None
    return str(args.cache) if args.cache else str(default_cache_path())


def proxy_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The indicator settings the command line sets (options whose dest is ``proxy_FIELD``)."""
    return {k[len("proxy_"):]: v for k, v in vars(args).items()
            if k.startswith("proxy_") and v is not None}


def proxy_settings(args: argparse.Namespace):
    from micronas.proxies import ProxySettings

    return ProxySettings(**proxy_overrides(args))


def cmd_arch(args: argparse.Namespace) -> int:
    info = api.arch_info(args.arch, space_of(args, args.arch), task_of(args))
    render.print_json(info) if args.json else render.arch(info)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    res = api.list_named(args.kind)
    render.print_json(res.rows) if args.json else render.listing(res)
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    if getattr(args, "devices_command", None) == "add":
        dev = api.add_device(args.name, args.core, args.clock_mhz, args.sram_kb, args.flash_kb,
                             args.description, args.fpu, args.force)
        if args.json:
            render.print_json({"name": dev.name, "path": dev.path, "core": dev.core,
                               "clock_mhz": dev.clock_mhz, "sram_bytes": dev.sram_bytes,
                               "flash_bytes": dev.flash_bytes})
        else:
            print(f"added {dev.name}: {dev.description}\nprofile {dev.path} (use --device "
                  f"{dev.name}; latency constants: each runtime's for {dev.core})")
        return 0
    res = api.list_named("devices")
    if args.json:
        keys = ("name", "core", "clock_mhz", "sram_bytes", "flash_bytes", "source", "runtime")
        render.print_json([{**{k: r[k] for k in keys}, "dsp": r["dsp"] == "yes",
                            "description": r["summary"],
                            "runtimes": {name: how.rstrip(")") for name, how in (
                                item.split(" (", 1) for item in str(r["runtimes"]).split(", "))}}
                           for r in res.rows])
    else:
        render.listing(res)
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    if (args.arch is None) == (args.torch is None):
        raise MicronasError("give an architecture or --torch FILE.py:Class, one of the two")
    if args.torch is not None:
        from micronas.tasks import parse_input

        if args.input is None:
            raise MicronasError("--torch needs the model's --input HxWxC (e.g. 32x32x3)")
        res = api.cost(api.load_module(args.torch), args.device,
                       input_shape=parse_input(args.input), runtime=args.runtime)
    else:
        res = api.cost(args.arch, args.device, space_of(args, args.arch), task_of(args),
                       runtime=args.runtime)
    render.print_json(res.to_dict()) if args.json else render.cost(res, args.layers)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    res = api.score(args.arch, args.indicators, space_of(args, args.arch), task_of(args), args.seed,
                    proxy_settings(args), cache_path(args), args.executor or "serial")
    render.print_json(res.to_dict()) if args.json else render.score(res)
    return 0


def cmd_bench_correlate(args: argparse.Namespace) -> int:
    from micronas.infra.fileio import output_file
    from micronas.proxies import parse_indicators

    parse_indicators(args.indicators, ["ntk_cond"])  # bad names fail before any work
    if args.table and not args.resume:
        output_file(args.table, args.force, "--table")  # before hours of scoring
    n = None if args.all else args.sample
    space = args.space or "nb201"
    total = {"nbmacro": 3969}.get(space, 15625) if n is None else n
    with render.progress(total, "scoring", args.quiet, unit="arch") as bar:
        res = api.correlate(args.indicators, task_of(args), args.benchmark, n, args.seed,
                            args.workers, cache_path(args), proxy_settings(args), bar.update,
                            executor=args.executor, table=args.table, space=space,
                            resume=args.resume, checkpoint_seconds=args.checkpoint_minutes * 60,
                            device=None if args.no_budget else args.device,
                            runtime=args.runtime, draws=args.budget_draws)
    render.print_json(res) if args.json else render.correlate(res)
    return 0


def search_config(args: argparse.Namespace) -> SearchConfig:
    """The search's config from the command line (validated as it is made)."""
    from micronas.search.config import SearchConfig

    task = task_of(args)  # validated here; the config keeps the strings
    custom = args.input is not None
    return SearchConfig.of(
        space=space_of(args), device=args.device, runtime=args.runtime, task=task.name,
        input=args.input if custom else None, classes=args.classes if custom else None,
        resolutions=args.resolutions if custom else None,
        fixed_resolution=args.fixed_resolution, strategy=args.strategy, latency_weight=args.latency_weight,
        flops_weight=args.flops_weight, max_latency_ms=args.max_latency_ms,
        max_sram_kb=args.max_sram_kb, max_flash_kb=args.max_flash_kb,
        reserve_sram_kb=args.reserve_sram_kb, reserve_flash_kb=args.reserve_flash_kb,
        seed=args.seed,
        rank_mode=args.rank_mode, latency_mode=args.latency_mode,
        prefer_fewer_params=args.prefer_fewer_params,
        evaluations=args.evaluations, refine=args.refine, fill=args.fill, workers=args.workers,
        executor=args.executor or "",
        **({"indicators": args.indicators} if args.indicators else {}),
        **proxy_overrides(args))


def _note_replaced(out: str) -> None:
    """Say (on stderr) that a rerun into the same --out replaces what is there."""
    from micronas.infra.fileio import existing_outputs

    names = existing_outputs(out)
    if names:
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        sys.stderr.write(f"micronas: note: --out {out} already holds {shown}; files of the same "
                         "name are replaced\n")


def cmd_search(args: argparse.Namespace) -> int:
    from micronas.infra.execution import workers_beside

    early = workers_beside(args.workers, args.executor or "")  # before torch's import here
    try:
        return _search(args, search_config(args), early)
    finally:
        if early is not None:
            early.shutdown(wait=True, cancel_futures=True)


def _search(args: argparse.Namespace, cfg: SearchConfig, executor: Executor | None) -> int:
    from micronas.infra.fileio import check_out_dir
    from micronas.search.report import plot_points, write_outputs

    if args.out:
        _note_replaced(args.out)
    out = check_out_dir(args.out) if args.out else None
    table = None
    if args.benchmark and cfg.space != "nb201":
        raise MicronasError(f"--benchmark is NB201's accuracy table; space {cfg.space!r} has "
                            "none")
    if args.benchmark or (cfg.space == "nb201" and os.environ.get("MICRONAS_NB201")):
        from micronas.bench.table import check_task, load_table

        try:
            check_task(cfg.resolve_task())
            ground_truth = True
        except MicronasError:
            if args.benchmark:  # asked for: say why it cannot be used
                raise
            ground_truth = False  # $MICRONAS_NB201 alone: such a task searches without it
        if ground_truth:
            table = load_table(args.benchmark)
    strategy = cfg.resolved_strategy()
    expected = cfg.strategy.expected_evaluations(cfg.space)
    with render.progress(expected, f"search ({strategy})", args.quiet) as bar:
        res = api.search(cfg, table, cache_path(args), bar.update, executor)
        bar.total = bar.n  # the total was an upper bound where refining stops early
    if out is not None:
        allc = None
        if table is not None:
            from micronas.hardware import load_device
            from micronas.search.costs import CostModel
            from micronas.spaces import get_space

            allc = CostModel(get_space(cfg.space), cfg.resolve_task(),
                             load_device(cfg.device, cfg.runtime)).all_archs()
        write_outputs(res, out, *plot_points(res, table, allc))
    if args.json:
        d = res.to_json()
        d.pop("history")
        render.print_json(d)
    else:
        render.search(res, cfg.device, out)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.arch is None and not args.weights:
        raise MicronasError("give an architecture, or --weights CHECKPOINT to export a trained "
                            "network")
    if args.weights and args.calibration:
        raise MicronasError("--calibration goes with stand-in weights; a trained checkpoint is "
                            "calibrated on its own training samples")
    r = api.export(args.arch, args.format, args.out, space_of(args, args.arch), task_of(args), args.seed,
                   args.calibration, check=not args.no_check, weights=args.weights,
                   force=args.force)
    render.print_json(r.to_dict()) if args.json else render.export(r)
    return 0


def cmd_measure(args: argparse.Namespace) -> int:
    with render.progress(None, "emulating", args.quiet or args.json, unit="layer") as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        r = api.measure(args.arch, args.device, space_of(args, args.arch), task_of(args), args.method,
                        args.seed, progress)
    d = r.to_dict()
    render.print_json(d) if args.json else render.measure(r, d, args.layers)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from micronas.infra.fileio import output_file
    from micronas.measure.calibration import write_profile

    out = args.out or f"{args.device.removesuffix('.toml').split('/')[-1]}-calibrated.toml"
    output_file(out, args.force)  # before minutes of emulation
    bar = None
    if not args.measurements:
        bar = render.progress(None, "emulating layers", args.quiet or args.json, unit="layer")

    def progress(i: int, n: int) -> None:
        bar.total = n
        bar.update(i - bar.n)

    try:
        cal = api.calibrate(args.device, args.measurements, args.space, task_of(args),
                            args.seed, progress if bar is not None else None, args.runtime)
    finally:
        if bar is not None:
            bar.close()
    path = write_profile(cal, out, force=args.force)
    if args.json:
        render.print_json({"profile": str(path), "source": cal.source, "rows": cal.rows,
                           "summary": cal.summary(), "fit_mape": cal.fit_mape,
                           "per_class": cal.per_class, "latency": cal.tables})
    else:
        render.calibrate(cal, path)
    return 0


def data_of(args: argparse.Namespace) -> str:
    """``--data PATH`` or a built-in ``--task`` with data."""
    from micronas.tasks.data import DATASETS

    if args.data:
        return args.data
    name = str(args.task).strip().lower().replace("_", "-")
    if name not in DATASETS:
        raise MicronasError(f"task {args.task!r} has no data in micronas; give --task "
                            f"{' | '.join(DATASETS)} or --data PATH (an image folder or .npz)")
    return name


def recipe_of(args: argparse.Namespace):
    from micronas.ship.train import Recipe

    r = Recipe(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, augment=args.augment,
               train_subset=args.train_subset)
    return r


def cmd_train(args: argparse.Namespace) -> int:
    recipe = recipe_of(args)
    ds = api.dataset(data_of(args), args.seed)
    with render.progress(None, "train", args.quiet, unit="step") as bar:
        def progress(i: int, n: int, info: dict) -> None:
            bar.total = n
            bar.update(i - bar.n)
            bar.set_postfix(epoch=info["epoch"], loss=f"{info['loss']:.3f}",
                            acc=f"{info['acc']:.3f}", refresh=False)

        res = api.train(args.arch, ds, args.out, args.space, seed=args.seed, recipe=recipe,
                        progress=progress, max_minutes=args.max_train_minutes,
                        on_plan=_print_plan(args.quiet or args.json))
    render.print_json(res.to_dict()) if args.json else render.train(res)
    return 0


def _print_plan(quiet: bool):
    """The training plan as one line on stderr before training starts (none when quiet)."""
    def show(plan) -> None:
        if not quiet:
            sys.stderr.write(f"micronas: training {plan.describe()}\n")
            sys.stderr.flush()
    return show


def _stage_bar(quiet: bool):
    bars: dict = {}

    def progress(stage: str, i: int, n: int | None) -> None:
        if stage not in bars:
            for b in bars.values():
                b.close()
            unit = {"search": "eval", "TFLM test set": "sample"}.get(stage, "step")
            bars[stage] = render.progress(n, stage, quiet, unit=unit)
        b = bars[stage]
        if stage == "TFLM test set":
            b.update(i)
        else:
            b.total = n
            b.update(i - b.n)

    def close() -> None:
        for b in bars.values():
            b.close()

    return progress, close


def cmd_deploy(args: argparse.Namespace) -> int:
    from micronas.infra.fileio import check_out_dir

    _note_replaced(args.out)
    check_out_dir(args.out)
    progress, close = _stage_bar(args.quiet or args.json)
    try:
        res = api.deploy(args.checkpoint, args.device, args.out, args.tflm_samples,
                         args.verify_samples, not args.no_compile, progress, args.runtime)
    finally:
        close()
    render.print_json(res.info) if args.json else render.deploy(res)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from micronas.search.config import SearchConfig

    recipe = recipe_of(args)
    cfg = SearchConfig.of(space=args.space, device=args.device, runtime=args.runtime,
                          max_latency_ms=args.max_latency_ms, max_sram_kb=args.max_sram_kb,
                          max_flash_kb=args.max_flash_kb, reserve_sram_kb=args.reserve_sram_kb,
                          reserve_flash_kb=args.reserve_flash_kb,
                          latency_weight=args.latency_weight, evaluations=args.evaluations,
                          prefer_fewer_params=args.prefer_fewer_params,
                          fixed_resolution=args.fixed_resolution, seed=args.seed, workers=0)
    data = data_of(args)
    progress, close = _stage_bar(args.quiet or args.json)
    try:
        res = api.build(data, args.out, cfg, recipe=recipe, tflm_samples=args.tflm_samples,
                        verify_samples=args.verify_samples, compile_c=not args.no_compile,
                        cache_path=cache_path(args), progress=progress,
                        max_train_minutes=args.max_train_minutes,
                        on_plan=_print_plan(args.quiet or args.json))
    finally:
        close()
    if args.json:
        render.print_json(res.to_dict())
    else:
        print(res.report)
    return 0
