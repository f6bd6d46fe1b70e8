"""Latency constants of micronas-c (the project's own int8 C) per core, and their check.

For each core:

1. **Fit.** The designed, seeded single-layer set
   (:func:`micronas.measure.calibration.designed_layers`, seed ``--design-seed``) is compiled
   with the generated C (``arm-none-eabi-gcc -O2 -mthumb -mcpu=<core>``) and run on the
   emulated core (unicorn; cycles from ``micronas/measure/cycles.toml``); per op class the
   coefficients are a non-negative least-squares fit on relative error. With
   ``--write-constants`` they are written to
   ``micronas/hardware/runtimes/micronas-c/<core>.toml`` (the ``[latency]`` schema of the
   core files).
2. **Check.** ``--networks`` seeded architectures of the ``mcu`` space (seed ``--seed``; the
   same list on every core; the fit set holds single layers of the designed grid only, no
   network; the report counts the networks' distinct layers whose signature the grid happens
   to hold too), emulated against the cost model with the constants just fitted (as written
   to the TOML text, i.e. rounded as committed): MAPE, max error, Spearman, and per op class
   the error of the distinct layers. ``--method layers`` (default) emulates each distinct
   layer alone (``measure_network(method="layers")``, cached per layer signature);
   ``--method whole`` builds and runs each network once and reads every layer's cycles at its
   mark (the two agree within 0.2 %; ``whole`` is several times faster when few layers
   repeat, as in these networks).

The networks rotate over four inputs, small widths for the large ones (emulation time grows
with the MACs): 32x32x3 (10 classes) and 49x10x1 (12) at widths 0.2-0.5, 64x64x1 (2) at
0.2-0.25, 96x96x1 (2) at 0.2; kernels, expansions, depths and head as the space draws
them.

    python benchmarks/micronas_c_latency.py --method whole --write-constants   # all four cores
    python benchmarks/micronas_c_latency.py --cores cortex-m4 --networks 10

Emulated layers and networks are cached per core in the cache directory
(``$MICRONAS_CACHE``'s folder, else ``~/.cache/micronas``), so a rerun resumes where it
stopped. Writes ``benchmarks/results/micronas_c_latency.json`` (every 5 networks while it
runs: ``networks_done`` says how many it holds).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import textwrap
import time
import tomllib
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from micronas import __version__
from micronas.deploy.export import prepare
from micronas.deploy.quantize import gaussian_batch
from micronas.hardware import load_device
from micronas.hardware.cost import layer_cycles, op_class
from micronas.hardware.device import Device
from micronas.hardware.tomlcheck import COEFFICIENTS
from micronas.hardware.tomlcheck import latency_tables as _latency_tables
from micronas.infra.cache import Memo
from micronas.ir import Network, lower_for_tflm
from micronas.measure import emulate
from micronas.measure.layers import LayerCache, _code_hash, measure_layer, measure_network, signature
from micronas.spaces import get_space
from micronas.tasks import Task

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
CONSTANTS = REPO / "micronas" / "hardware" / "runtimes" / "micronas-c"
CORES = ("cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33")
#: the device whose clock turns cycles into ms per core (the constants are in cycles)
DEVICE = {"cortex-m0plus": "stm32g0b1", "cortex-m4": "stm32l4r5", "cortex-m7": "stm32f746",
          "cortex-m33": "stm32u575"}
#: (C, H, W), classes, widths (percent) drawn for that input
TASKS = (((3, 32, 32), 10, (20, 25, 30, 35, 40, 50)),
         ((1, 49, 10), 12, (20, 25, 30, 35, 40, 50)),
         ((1, 64, 64), 2, (20, 25)),
         ((1, 96, 96), 2, (20,)))
COMPILER_FLAGS = "arm-none-eabi-gcc -O2 -mthumb -mcpu=<core> -ffreestanding -nostdlib"


def networks(n: int, seed: int) -> list[tuple[str, tuple[int, int, int], int, Network]]:
    """``n`` seeded mcu architectures: (arch string, input (C, H, W), classes, network)."""
    space = get_space("mcu")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        shape, classes, widths = TASKS[i % len(TASKS)]
        arch = space.sample(rng)
        arch = replace(arch, width=int(widths[int(rng.integers(len(widths)))]))
        out.append((space.format(arch), shape, classes,
                    space.to_network(arch, Task.custom(shape, classes))))
    return out


def _num(v: float) -> str:
    return repr(float(f"{v:.6g}"))


def constants_toml(core: str, tables: dict[str, dict[str, float]], overhead: float,
                   design_seed: int, rows: int, fit_mape: float, command: str) -> str:
    """The constants file of ``core`` (the ``[latency]`` schema of the core files)."""
    from micronas.hardware.cost import DERIVED_CLASSES, derived_latency

    # derived from this fit's own classes (any derived values in ``tables`` are stale)
    tables = {**{c: t for c, t in tables.items() if c not in DERIVED_CLASSES},
              **derived_latency(tables)}
    today = datetime.date.today().isoformat()
    source = (f"emulated standalone C (micronas-c) on {core}: {COMPILER_FLAGS.replace('<core>', core)}; "
              f"cycles from micronas/measure/cycles.toml (Arm TRMs, zero-wait-state memory); "
              f"designed layer set seed {design_seed}")
    lines = [
        f"# Latency constants of micronas-c (micronas's own int8 C kernels) on {core}.",
        f"# Fitted by non-negative least squares (relative error) to {rows} designed single layers",
        f"# run on the emulated core (micronas {__version__}, {today}); fit MAPE "
        f"{100 * fit_mape:.2f} %.",
        "# Reproduce with:",
        f"#   {command}",
        "# Schema: the [latency] table of every runtime's <core>.toml (cycles; a missing",
        "# coefficient is 0). The zeros class is not emulated: its value is the optimized runtime's.",
        *("# " + w for w in textwrap.wrap(
            f"{', '.join(DERIVED_CLASSES)}: not emulated (the generated C has no kernel for "
            "them); derived from this file's own classes by instructions per element read from "
            "TFLM's and CMSIS-NN's kernels (micronas/hardware/cost.py DERIVED_CLASSES)", 94)),
        'runtime = "micronas-c"',
        f'core = "{core}"',
        'grounding = "emulated"',
        f"source = {json.dumps(source)}",
        "",
        "[class_grounding]  # zeros: no such layer in the generated C to emulate; the optimized value",
        'zeros = "extrapolated"',
        *(f'{c} = "extrapolated"' for c in DERIVED_CLASSES),
        "",
        "[latency]",
        f"overhead_cycles = {_num(overhead)}",
    ]
    for cls in sorted(tables):
        lines.append("")
        lines.append(f"[latency.{cls}]")
        for k in COEFFICIENTS:
            if k in tables[cls]:
                lines.append(f"{k} = {_num(tables[cls][k])}")
    return "\n".join(lines) + "\n"


def load_constants(text: str, where: str) -> tuple[dict[str, dict[str, float]], float]:
    """(tables, overhead_cycles) of a constants file's text, validated as a core file is."""
    raw = tomllib.loads(text)
    tables, overhead = _latency_tables(raw["latency"], where)
    return tables, overhead or 0.0


def with_constants(device: Device, tables, overhead: float) -> Device:
    return replace(device, latency=tables, overhead_cycles=overhead)


def fit_core(core: str, design_seed: int, progress=None):
    """Emulate the designed set on ``core`` and fit (tables, stats, rows, fit MAPE)."""
    from micronas.measure.calibration import designed_layers, fit

    design = designed_layers(design_seed)
    cache = LayerCache(core)
    samples = []
    for i, (net, layer) in enumerate(design):
        samples.append((net, layer, measure_layer(net, layer, core, cache, design_seed).cycles))
        if (i + 1) % 20 == 0:
            cache.save()
            if progress:
                progress(i + 1, len(design))
    cache.save()
    tables, stats = fit(samples)
    rows = sum(s["rows"] for s in stats.values())
    mape = float(sum(s["mape"] * s["rows"] for s in stats.values()) / rows)
    return tables, stats, rows, mape, samples


def versions() -> dict[str, str]:
    out = {"micronas": str(__version__), "numpy": np.__version__,
           "python": platform.python_version()}
    try:
        gcc = subprocess.run(["arm-none-eabi-gcc", "--version"], capture_output=True, text=True)
        out["arm-none-eabi-gcc"] = gcc.stdout.splitlines()[0] if gcc.stdout else "?"
    except OSError:
        out["arm-none-eabi-gcc"] = "absent"
    for mod in ("unicorn", "capstone"):
        try:
            out[mod] = str(__import__(mod).__version__)
        except Exception:  # noqa: BLE001 - a version is only reported
            out[mod] = "?"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", nargs="+", default=list(CORES), choices=CORES)
    ap.add_argument("--networks", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="architecture sampling seed")
    ap.add_argument("--design-seed", type=int, default=0, help="designed layer set seed")
    ap.add_argument("--write-constants", action="store_true",
                    help="write micronas/hardware/runtimes/micronas-c/<core>.toml")
    ap.add_argument("--method", default="layers", choices=["layers", "whole"],
                    help="layers: each distinct layer emulated alone, cached (measure_network); "
                         "whole: each network built and run once, per-layer cycles from its "
                         "marks (no cache; faster when few layers repeat)")
    ap.add_argument("--out", default=str(RESULTS / "micronas_c_latency.json"))
    args = ap.parse_args()
    command = (f"python benchmarks/micronas_c_latency.py --cores {' '.join(args.cores)} "
               f"--networks {args.networks} --seed {args.seed} --design-seed {args.design_seed} "
               f"--method {args.method} --write-constants")
    args.command = command
    t_start = time.time()

    # 1. fit per core
    consts: dict[str, dict] = {}
    for core in args.cores:
        t0 = time.time()
        tables, stats, rows, mape, samples = fit_core(
            core, args.design_seed,
            lambda i, n, core=core: print(f"  {core}: {i}/{n} designed layers", flush=True))
        base = load_device(DEVICE[core], "optimized")
        for cls, coefs in base.latency.items():   # classes not emulated: the optimized values
            tables.setdefault(cls, dict(coefs))
        text = constants_toml(core, tables, 0.0, args.design_seed, rows, mape, command)
        tables_r, overhead_r = load_constants(text, f"{core} constants")
        if args.write_constants:
            CONSTANTS.mkdir(parents=True, exist_ok=True)
            (CONSTANTS / f"{core}.toml").write_text(text)
        consts[core] = {"fit_signatures": {signature(n, lay) for n, lay, _ in samples},
                        "tables": tables_r, "overhead": overhead_r, "fit_rows": rows,
                        "fit_mape": mape, "fit_per_class": stats, "fit_seconds": time.time() - t0}
        print(f"{core}: fitted on {rows} designed layers, fit MAPE {100 * mape:.2f} % "
              f"({time.time() - t0:.0f} s); per class: " + ", ".join(
                  f"{c} {100 * s['mape']:.1f} % ({s['rows']})" for c, s in stats.items()),
              flush=True)

    # 2. validation networks, interleaved over the cores (same list on every core)
    nets = networks(args.networks, args.seed)
    caches = {core: LayerCache(core) for core in args.cores}
    # per network and core, the emulated cycles of each layer: a rerun resumes
    done = {core: Memo(f"micronas-c-networks-{core}-{_code_hash(core)}.json") for core in args.cores}
    devs = {core: with_constants(load_device(DEVICE[core], "micronas-c"), consts[core]["tables"],
                                 consts[core]["overhead"]) for core in args.cores}
    # ... and from the rows of an earlier output (same seed, method and C code): a run that
    # spans sessions resumes from what is committed
    for core, rows_done in resumable(args).items():
        for r in rows_done:
            key = json.dumps([args.method, args.seed, r["arch"], r["shape"], r["classes"]])
            if done[core].get(key) is None:
                done[core].put(key, r["layer_cycles"])
    rows: dict[str, list[dict]] = {core: [] for core in args.cores}
    layer_err: dict[str, dict[str, dict]] = {core: {} for core in args.cores}
    t0 = time.time()
    for i, (arch, shape, classes, net) in enumerate(nets):
        low = lower_for_tflm(net)
        key = json.dumps([args.method, args.seed, arch, shape, classes])
        q = None
        for core in args.cores:
            dev = devs[core]
            khz = dev.clock_mhz * 1e3
            emu = done[core].get(key)
            if emu is None:
                if args.method == "whole":
                    if q is None:
                        q = prepare(net, args.seed)
                        x = q.input_quant.quantize(gaussian_batch(net, 1, args.seed + 2))[0]
                    m = emulate.measure(q, core, x)   # one build and run: per-layer marks
                else:
                    m = measure_network(net, core, "layers", seed=args.seed, cache=caches[core])
                emu = [lay.cycles for lay in m.layers]
                done[core].put(key, emu)
            pred = [layer_cycles(low, lay, dev) for lay in low.layers]
            for lay, p, e in zip(low.layers, pred, emu, strict=True):
                sig = signature(low, lay)
                layer_err[core][sig] = {"class": op_class(lay), "pred": p, "emu": e,
                                        "in_fit_set": sig in consts[core]["fit_signatures"]}
            rows[core].append({"arch": arch, "input": "x".join(map(str, (shape[1], shape[2], shape[0]))),
                               "classes": classes, "macs": int(low.macs),
                               "predicted_ms": sum(pred) / khz, "emulated_ms": sum(emu) / khz,
                               "shape": list(shape), "layer_cycles": list(emu)})
        if (i + 1) % 5 == 0 or i + 1 == len(nets):
            for c in [*caches.values(), *done.values()]:
                c.save()
            if i + 1 < len(nets):
                report(args, nets[:i + 1], consts, devs, rows, layer_err, t_start, quiet=True)
            parts = []
            for core in args.cores:
                e = np.array([r["emulated_ms"] for r in rows[core]])
                p = np.array([r["predicted_ms"] for r in rows[core]])
                parts.append(f"{core} {100 * np.mean(np.abs(p - e) / e):.2f} %")
            print(f"  {i + 1}/{len(nets)} networks ({time.time() - t0:.0f} s): running MAPE "
                  + ", ".join(parts), flush=True)

    report(args, nets, consts, devs, rows, layer_err, t_start)
    return 0


def resumable(args) -> dict[str, list[dict]]:
    """Per core, the rows of ``args.out`` that carry their per-layer cycles and were emulated
    with the same seed, method and generated C as this run (empty when there is none)."""
    try:
        old = json.loads(Path(args.out).read_text())
    except (OSError, ValueError):
        return {}
    s = old.get("settings", {})
    if s.get("seed") != args.seed or s.get("method") != args.method:
        return {}
    out = {}
    for core in args.cores:
        c = old.get("cores", {}).get(core, {})
        if c.get("code_hash") == _code_hash(core):
            out[core] = [r for r in c.get("rows", []) if "layer_cycles" in r and "shape" in r]
    return out


def report(args, nets, consts, devs, rows, layer_err, t_start, quiet=False) -> None:
    """Print the summary (unless ``quiet``) and write the JSON (a partial one while running:
    ``networks_done`` says how many)."""
    import contextlib
    import io

    if quiet:
        with contextlib.redirect_stdout(io.StringIO()):
            _report(args, nets, consts, devs, rows, layer_err, t_start)
    else:
        _report(args, nets, consts, devs, rows, layer_err, t_start)


def _report(args, nets, consts, devs, rows, layer_err, t_start) -> None:
    command = args.command
    tasks = [{"input": "x".join(map(str, (s[1], s[2], s[0]))), "classes": k,
              "widths": [w / 100 for w in ws]} for s, k, ws in TASKS]
    settings = {k: v for k, v in vars(args).items() if k != "command"}
    out = {"settings": {**settings, "tasks": tasks, "compiler": COMPILER_FLAGS,
                        "devices": {c: DEVICE[c] for c in args.cores}, "command": command},
           "networks_done": len(nets), "versions": versions(), "cores": {}}
    print(f"\n{len(nets)} mcu networks (seed {args.seed}; inputs "
          f"{', '.join(t['input'] for t in out['settings']['tasks'])}):")
    print(f"{'core':<14} {'MAPE %':>7} {'max %':>6} {'Spearman':>9} {'fit MAPE %':>10} "
          f"{'emulated ms':>16}")
    for core in args.cores:
        e = np.array([r["emulated_ms"] for r in rows[core]])
        p = np.array([r["predicted_ms"] for r in rows[core]])
        err = np.abs(p - e) / e
        rho = float(spearmanr(p, e)[0]) if len(e) > 2 else float("nan")
        per_class: dict[str, dict] = {}
        by: dict[str, list] = defaultdict(list)
        for v in layer_err[core].values():
            by[v["class"]].append(v)
        total = sum(v["emu"] for v in layer_err[core].values())
        for cls, vs in sorted(by.items()):
            pe = np.array([v["pred"] for v in vs])
            ee = np.array([v["emu"] for v in vs])
            per_class[cls] = {"distinct_layers": len(vs),
                              "mape": float(np.mean(np.abs(pe - ee) / ee)),
                              "max_error": float(np.max(np.abs(pe - ee) / ee)),
                              "bias": float(pe.sum() / ee.sum() - 1),
                              "cycle_share": float(ee.sum() / total)}
        c = consts[core]
        out["cores"][core] = {
            "device": DEVICE[core], "clock_mhz": devs[core].clock_mhz,
            "code_hash": _code_hash(core),
            "mape": float(err.mean()), "max_error": float(err.max()), "spearman": rho,
            "emulated_ms_range": [float(e.min()), float(e.max())],
            "fit": {"rows": c["fit_rows"], "mape": c["fit_mape"], "per_class": c["fit_per_class"],
                    "seconds": c["fit_seconds"]},
            "per_class_layers": per_class,
            "distinct_layers": len(layer_err[core]),
            "distinct_layers_also_in_fit_set": sum(v["in_fit_set"] for v in layer_err[core].values()),
            "rows": rows[core]}
        print(f"{core:<14} {100 * err.mean():7.2f} {100 * err.max():6.1f} {rho:9.4f} "
              f"{100 * c['fit_mape']:10.2f} {e.min():7.1f}..{e.max():.0f}")
    for core in args.cores:
        o = out["cores"][core]
        print(f"\n{core}: {o['distinct_layers_also_in_fit_set']} of the networks' "
              f"{o['distinct_layers']} distinct layers are also in the fit set")
        print(f"{core}: distinct layers of the networks, per op class (MAPE / max / bias of "
              "the sum / share of cycles)")
        for cls, s in out["cores"][core]["per_class_layers"].items():
            print(f"  {cls:<16} {s['distinct_layers']:5d}  {100 * s['mape']:6.2f} % "
                  f"{100 * s['max_error']:6.1f} % {100 * s['bias']:+6.2f} % "
                  f"{100 * s['cycle_share']:5.1f} %")
    out["seconds"] = time.time() - t_start
    print(f"\ntotal {out['seconds']:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
