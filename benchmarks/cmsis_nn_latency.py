"""Ground the ``tflm-cmsis-nn`` latency constants in CMSIS-NN's own int8 kernels, emulated.

For each core and each layer of the seeded designed layer set
(:func:`micronas.measure.calibration.designed_layers`) whose operator TFLite Micro runs with a
CMSIS-NN kernel, the kernel is called as TFLM's cmsis_nn kernels call it (same entry point,
arguments and scratch buffer), compiled with CMSIS-NN at TFLM's kernel optimisation level
(-O2) for the core, and run in the emulator (:mod:`micronas.measure.cmsis_nn`); the cycles of
the kernel call are recorded and its output is checked bit for bit against the integer
reference (a mismatch fails the run). Per op class, the cost model's coefficients are fitted
to the measured cycles (non-negative least squares on relative error).

    python benchmarks/cmsis_nn_latency.py --cmsis-nn DIR [--cores cortex-m4,...] [--seed 0]
        [--table-out benchmarks/results/cmsis_nn_layers.csv] [--write-constants]
        [--max-layers N] [--code-size]

DIR is a CMSIS-NN source tree or git repository (a bare one works: its HEAD is exported
into the cache). ``--write-constants`` writes
micronas/hardware/runtimes/tflm-cmsis-nn/<core>.toml; ``--code-size`` writes the linked
CMSIS-NN code size per op class (benchmarks/results/cmsis_nn_code_size.csv).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from micronas.errors import MicronasError  # noqa: E402
from micronas.hardware.cost import layer_features, op_class  # noqa: E402
from micronas.hardware.tomlcheck import COEFFICIENTS  # noqa: E402
from micronas.measure import cmsis_nn  # noqa: E402
from micronas.measure.calibration import designed_layers, fit  # noqa: E402
from micronas.measure.layers import signature  # noqa: E402

CORES = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m0plus")
TABLE = REPO / "benchmarks" / "results" / "cmsis_nn_layers.csv"
SIZES = REPO / "benchmarks" / "results" / "cmsis_nn_code_size.csv"
CONSTANTS = REPO / "micronas" / "hardware" / "runtimes" / "tflm-cmsis-nn"
RUNTIME = "tflm-cmsis-nn"

#: TFLM's per-layer dispatch overhead (cycles), see DISPATCH_NOTE
DISPATCH_INSTRUCTIONS = 350
DISPATCH_NOTE = (
    "overhead_cycles: TFLM's per-operator dispatch, not measured here. Derived by counting "
    "the work per node in TFLM's source: MicroInterpreterGraph::InvokeSubgraph's loop (node "
    "and registration lookup, the profiler scope, the indirect invoke call, "
    "ResetTempAllocations) and the cmsis_nn kernel's Eval wrapper (3-4 GetEvalInput/Output "
    "lookups through the context's function pointers, RuntimeShape copies, filling the "
    "CMSIS-NN argument structs, GetScratchBuffer); the per-channel multipliers and shifts and "
    "the scratch sizes are computed in Prepare, not per call. About {n} instructions, costed "
    "at {cpi:.2f} cycles per instruction: this core's cycle table applied to the harness's own "
    "argument set-up code (loads, stores, calls: the same kind of work).")

FIELDS = ["core", "op_class", "op", "entry_point", "input_shape", "output_shape", "kernel",
          "stride", "padding", "activation", "macs", *COEFFICIENTS, "cycles", "instructions",
          "scratch_bytes", "bit_exact", "cmsis_nn_version"]


def shape(s: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in s)


def selected(seed: int, max_layers: int | None) -> list[tuple]:
    """(net, layer) of the designed set that run a CMSIS-NN kernel (``max_layers``: at most
    that many per op class, evenly spread)."""
    rows = [(n, lay) for n, lay in designed_layers(seed) if cmsis_nn.kernel_op(lay)]
    if not max_layers:
        return rows
    by: dict[str, list] = {}
    for r in rows:
        by.setdefault(op_class(r[1]), []).append(r)
    out = []
    for items in by.values():
        idx = np.unique(np.linspace(0, len(items) - 1, min(max_layers, len(items))).astype(int))
        out += [items[i] for i in idx]
    return out


class ResultCache:
    """Measured kernels per (build key, layer signature, seed), a JSON file in the cache."""

    def __init__(self, kern: cmsis_nn.Kernels, cache_dir: Path):
        self.path = cache_dir / f"results-{kern.core}-{kern.key}.json"
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(self.path)


def entry_point(layer) -> str:
    op = cmsis_nn.kernel_op(layer)
    return cmsis_nn.OPS[op][1] if op else ""


def measure_core(root: Path, core: str, design: list[tuple], seed: int, cache_dir: Path,
                 log=print) -> tuple[list[dict], cmsis_nn.Kernels]:
    t0 = time.time()
    kern = cmsis_nn.build(root, core, cache_dir)
    cache = ResultCache(kern, cache_dir)
    rows, mismatched = [], []
    for i, (net, layer) in enumerate(design):
        key = json.dumps([signature(net, layer), seed])
        if key not in cache.data:
            r = cmsis_nn.measure(kern, net, layer, seed)
            cache.data[key] = {"cycles": r.cycles, "instructions": r.instructions,
                               "scratch_bytes": r.scratch_bytes, "bit_exact": r.bit_exact,
                               "mismatches": r.mismatches}
            if (i + 1) % 20 == 0:
                cache.save()
        m = cache.data[key]
        if not m["bit_exact"]:
            mismatched.append(f"{op_class(layer)} {signature(net, layer)}: {m['mismatches']} "
                              "output values differ from the integer reference")
        feats = layer_features(net, layer)
        rows.append({"core": core, "op_class": op_class(layer), "op": layer.op,
                     "entry_point": entry_point(layer),
                     "input_shape": shape(net.tensors[layer.inputs[0]].shape),
                     "output_shape": shape(net.tensors[layer.output].shape),
                     "kernel": shape(layer.kernel), "stride": shape(layer.stride),
                     "padding": shape(layer.padding), "activation": layer.activation,
                     "macs": layer.macs, **{k: feats.get(k, 0.0) for k in COEFFICIENTS},
                     "cycles": round(m["cycles"], 1), "instructions": m["instructions"],
                     "scratch_bytes": m["scratch_bytes"], "bit_exact": m["bit_exact"],
                     "cmsis_nn_version": kern.version, "_net": net, "_layer": layer})
    cache.save()
    log(f"{core}: {len(rows)} layers measured in {time.time() - t0:.0f} s "
        f"(CMSIS-NN {kern.version})")
    if mismatched:
        raise MicronasError(f"{core}: {len(mismatched)} layers are not bit-exact with the "
                            "integer reference; first: " + mismatched[0])
    return rows, kern


def fit_rows(rows: list[dict]) -> tuple[dict, dict]:
    return fit([(r["_net"], r["_layer"], float(r["cycles"])) for r in rows])


def setup_cpi(kern: cmsis_nn.Kernels) -> float:
    """Cycles per instruction of the harness's own code on this core (argument set-up: loads,
    stores and calls, the kind of work TFLM's dispatch does), from this core's cycle table
    applied to the disassembled function, each instruction once."""
    import capstone

    from micronas.measure.emulate import block_cycles, classify, cycle_table

    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    start = kern.symbols["mn_run"] & ~1
    end = min(a & ~1 for a in kern.symbols.values() if (a & ~1) > start)
    off = start - cmsis_nn.FLASH_BASE
    insns = [classify(i.mnemonic, i.op_str)
             for i in md.disasm(kern.image[off: off + end - start], start)]
    return block_cycles(insns, cycle_table(kern.core)) / max(1, len(insns))


def toml_number(v: float) -> str:
    return f"{v:.6g}" if v else "0.0"


def write_constants(core: str, kern: cmsis_nn.Kernels, tables: dict, stats: dict, seed: int,
                    n_layers: int, command: str) -> Path:
    """micronas/hardware/runtimes/tflm-cmsis-nn/<core>.toml: emulated classes fitted, the
    others the core's built-in constants times the median measured/built-in ratio."""
    import tomllib

    from micronas.hardware.tomlcheck import OP_CLASSES

    base = tomllib.loads((REPO / "micronas" / "hardware" / "runtimes" / "optimized"
                          / f"{core}.toml").read_text())
    base_lat = base["latency"]
    cpi = setup_cpi(kern)
    overhead = round(DISPATCH_INSTRUCTIONS * cpi)
    # ratio for the classes TFLM runs without CMSIS-NN: the grounded classes' constants
    # against the built-in ones on the same layers (median over classes), applied to the
    # built-in elementwise constants
    ratios = [stats[c]["ratio"] for c in stats if stats[c].get("ratio")]
    ratio = float(np.median(ratios)) if ratios else 1.0
    import subprocess

    ver = subprocess.run([cmsis_nn.toolchain(), "-dumpversion"], capture_output=True,
                         text=True).stdout.strip()
    source = (f"CMSIS-NN {kern.version}; arm-none-eabi-gcc {ver} {cmsis_nn.CPU_FLAGS[core]} "
              f"-mthumb {cmsis_nn.OPT} (TFLM's kernel flags); unicorn + cycles.toml [{core}], "
              f"zero-wait-state memory; designed layer set seed {seed}, {n_layers} layers")
    lines = [f"# {RUNTIME} latency constants for {core}, grounded in CMSIS-NN's int8 kernels "
             "run in the emulator.",
             f"# Reproduce: {command}",
             "# Each [latency.<class>] was fitted (non-negative least squares, relative error) "
             "to the kernel-call cycles",
             "# of the designed layers in benchmarks/results/cmsis_nn_layers.csv; fit MAPE per "
             "class:"]
    for c in sorted(stats):
        lines.append(f"#   {c}: {100 * stats[c]['mape']:.2f} % over {stats[c]['rows']} layers")
    lines += ["# " + line for line in _wrap(DISPATCH_NOTE.format(n=DISPATCH_INSTRUCTIONS, cpi=cpi))]
    from micronas.hardware.cost import DERIVED_CLASSES, derived_latency

    extrap = [c for c in OP_CLASSES if c not in tables and c in base_lat
              and c not in DERIVED_CLASSES]
    if extrap:
        lines += ["# " + line for line in _wrap(
            f"Extrapolated (TFLM runs them with its own reference kernels, not CMSIS-NN, and "
            f"they are not emulated): {', '.join(extrap)}: the optimized runtime's constants "
            f"(micronas/hardware/runtimes/optimized/{core}.toml) times {ratio:.3f}, the "
            "median ratio of grounded to optimized cycles over the grounded classes.")]
    derived = {c: t for c, t in derived_latency(
        {**{c: {k: float(v) * ratio for k, v in base_lat[c].items()} for c in extrap},
         **tables}).items() if c not in tables}
    if derived:
        lines += ["# " + line for line in _wrap(
            f"Derived (not measured): {', '.join(derived)}: this file's own classes by "
            "instructions per element read from the kernels (micronas/hardware/cost.py "
            "DERIVED_CLASSES): " + "; ".join(f"{c} = {DERIVED_CLASSES[c][2]}" for c in derived))]
        extrap += list(derived)
    # the file's grounding is one word (the runtime loader's schema); the classes TFLM runs
    # with CMSIS-NN are emulated, and [class_grounding] says which are extrapolated
    lines += [f'runtime = "{RUNTIME}"', f'core = "{core}"', 'grounding = "emulated"',
              f"source = {json.dumps(source)}", ""]
    if extrap:
        lines.append("[class_grounding]  # per op class: emulated or extrapolated")
        for c in OP_CLASSES:
            if c in tables:
                lines.append(f'{c} = "emulated"')
            elif c in extrap:
                lines.append(f'{c} = "extrapolated"')
        lines.append("")
    lines.append("[fit_mape]  # per emulated class: mean |fit - measured| / measured")
    lines += [f"{c} = {stats[c]['mape']:.4f}" for c in sorted(stats)]
    lines += ["", "[latency]", f"overhead_cycles = {overhead}", ""]
    for c in OP_CLASSES:
        if c in tables:
            coefs = {k: v for k, v in tables[c].items() if v > 0} or {"cycles_per_layer": 0.0}
        elif c in derived:
            coefs = derived[c]
        elif c in extrap:
            coefs = {k: float(v) * ratio for k, v in base_lat[c].items()}
        else:
            continue
        lines.append(f"[latency.{c}]")
        lines += [f"{k} = {toml_number(v)}" for k, v in coefs.items()]
        lines.append("")
    CONSTANTS.mkdir(parents=True, exist_ok=True)
    p = CONSTANTS / f"{core}.toml"
    p.write_text("\n".join(lines))
    return p


def _wrap(text: str, width: int = 96) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)


def builtin_ratio(rows: list[dict], core: str) -> dict[str, float]:
    """Per op class: median of measured kernel cycles / the built-in constants' estimate
    (without the per-layer overhead)."""
    from micronas.hardware.runtime import RUNTIMES

    lat, _, _, _ = RUNTIMES["optimized"].core_constants(core)
    out: dict[str, list[float]] = {}
    for r in rows:
        coefs = lat.get(r["op_class"], {})
        pred = sum(coefs.get(k, 0.0) * float(r[k]) for k in COEFFICIENTS)
        if pred > 0:
            out.setdefault(r["op_class"], []).append(float(r["cycles"]) / pred)
    return {c: float(np.median(v)) for c, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmsis-nn", required=True, metavar="DIR",
                    help="a CMSIS-NN source tree or git repository")
    ap.add_argument("--cores", default=",".join(CORES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table-out", default=str(TABLE))
    ap.add_argument("--write-constants", action="store_true")
    ap.add_argument("--code-size", action="store_true", help=f"also write {SIZES.name}")
    ap.add_argument("--max-layers", type=int, default=0,
                    help="at most this many layers per op class (0: all)")
    ap.add_argument("--cache", default=str(cmsis_nn.default_cache_dir()))
    args = ap.parse_args(argv)
    try:
        root = cmsis_nn.source_tree(args.cmsis_nn, args.cache)
    except MicronasError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cores = [c.strip() for c in args.cores.split(",") if c.strip()]
    bad = [c for c in cores if c not in CORES]
    if bad:
        print(f"error: unknown core {bad[0]!r}; choose from {', '.join(CORES)}", file=sys.stderr)
        return 2
    cache_dir = Path(args.cache)
    cache_dir.mkdir(parents=True, exist_ok=True)
    design = selected(args.seed, args.max_layers)
    skipped = sorted({op_class(lay) for _, lay in designed_layers(args.seed)
                      if not cmsis_nn.kernel_op(lay)})
    print(f"{len(design)} designed layers run CMSIS-NN kernels; not grounded (TFLM reference "
          f"kernels, not emulated): {', '.join(skipped)}")
    all_rows, sizes = [], []
    command = ("python benchmarks/cmsis_nn_latency.py --cmsis-nn DIR --write-constants "
               f"--seed {args.seed}" + (f" --max-layers {args.max_layers}"
                                         if args.max_layers else ""))
    for core in cores:
        t0 = time.time()
        try:
            rows, kern = measure_core(root, core, design, args.seed, cache_dir)
        except MicronasError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        tables, stats = fit_rows(rows)
        ratios = builtin_ratio(rows, core)
        for c in stats:
            stats[c]["ratio"] = ratios.get(c)
        print(f"{core}: fit per op class (MAPE, layers, measured/built-in):")
        for c, s in sorted(stats.items()):
            print(f"  {c:16s} {100 * s['mape']:6.2f} %  {s['rows']:3d}  "
                  f"x{s['ratio'] or float('nan'):.2f}")
        if args.write_constants:
            p = write_constants(core, kern, tables, stats, args.seed, len(rows), command)
            print(f"  wrote {p.relative_to(REPO)}")
        if args.code_size:
            for c, names in cmsis_nn.CLASS_ENTRY_POINTS.items():
                sizes.append({"core": core, "op_class": c, "text_bytes":
                              cmsis_nn.code_size(kern, names),
                              "entry_points": " ".join(names),
                              "cmsis_nn_version": kern.version})
        print(f"  {core} done in {time.time() - t0:.0f} s")
        all_rows += rows
    out = Path(args.table_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(all_rows)
    print(f"wrote {len(all_rows)} rows to {out}")
    if sizes:
        with open(SIZES, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["core", "op_class", "text_bytes", "entry_points",
                                              "cmsis_nn_version"])
            w.writeheader()
            w.writerows(sizes)
        print(f"wrote {SIZES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
