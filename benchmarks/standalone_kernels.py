"""Whole-network emulated cycles of the standalone C: today's kernels vs a baseline vs CMSIS-NN.

The networks: ``--per-task`` seeded architectures of the ``mcu`` space (seed ``--seed``) on
each of four inputs (32x32x3 / 10 classes, 96x96x1 / 2, 49x10x1 / 12, 28x28x1 / 10; widths
drawn per input, see TASKS) plus the MLPerf Tiny reference networks (``mlperf:kws``, ``vww``,
``ic``, ``ad``). Each network is quantised with seeded weights and calibration
(``prepare(net, seed)``) and run on one seeded input.

Variants, each on every core of ``--cores`` (M4, M7, M33, M0+ by default):

- ``new``: the standalone C of this checkout (``micronas/deploy/codegen.py`` and
  ``micronas/deploy/c``), built and run whole in the emulator
  (:mod:`micronas.measure.emulate`); every tensor is compared with the integer reference
  (bit-exact with TFLM).
- ``baseline``: the same with the code generator and kernels of the git revision
  ``--baseline-ref`` (default: the revision before the kernel rewrite), read with
  ``git show``.
- ``cmsis-nn`` (only with ``--cmsis-nn DIR`` or ``$MICRONAS_CMSIS_NN``): every layer through
  the CMSIS-NN kernel TFLM's cmsis_nn kernels call for it (:mod:`micronas.measure.cmsis_nn`,
  -O2), on that layer's real input from the integer reference, output checked bit for bit;
  the network's cycles are the sum of its layers' kernel calls (TFLM's interpreter overhead
  not included: kernels against kernels).

Per network and variant it records cycles (per layer and total), whether every tensor was
bit-exact, the activation arena (``arena_bytes``; the TFLM greedy planner's arena on the same
network is ``tflm_arena``) and the code bytes of the firmware (functions only, weights
excluded). Results merge into ``benchmarks/results/standalone_kernels.json`` (a rerun of some
variants keeps the others); the table prints geometric-mean speed-ups per core.

    python benchmarks/standalone_kernels.py                       # new + baseline (+ cmsis-nn)
    python benchmarks/standalone_kernels.py --variants new --per-task 2 --cores cortex-m4
    python benchmarks/standalone_kernels.py --table                # print the saved table
    python benchmarks/standalone_kernels.py --merge OTHER.json     # add another run's results
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from micronas.deploy.export import prepare  # noqa: E402
from micronas.deploy.int8 import run_int8  # noqa: E402
from micronas.deploy.quantize import gaussian_batch  # noqa: E402
from micronas.hardware.planner import plan  # noqa: E402
from micronas.measure import emulate  # noqa: E402
from micronas.measure.toolchain import check_run, section_sizes, toolchain  # noqa: E402
from micronas.spaces import get_space  # noqa: E402
from micronas.tasks import Task  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "standalone_kernels.json"
CORES = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m0plus")
#: the revision whose standalone C is "today's" (the last before the kernel rewrite)
BASELINE_REF = "d95eccc"
#: (C, H, W), classes, widths (percent) drawn for that input
TASKS = (((3, 32, 32), 10, (20, 25, 30, 35, 40, 50)),
         ((1, 96, 96), 2, (20, 25, 30)),
         ((1, 49, 10), 12, (20, 25, 30, 35, 40, 50)),
         ((1, 28, 28), 10, (25, 30, 35, 40, 50)))
MLPERF = ("mlperf:kws", "mlperf:vww", "mlperf:ic", "mlperf:ad")


def networks(per_task: int, seed: int, mlperf: bool = True) -> list[tuple[str, object]]:
    """(name, network): ``per_task`` seeded mcu networks per input, then the MLPerf ones."""
    from micronas.api import build_ir

    space = get_space("mcu")
    rng = np.random.default_rng(seed)
    out: list[tuple[str, object]] = []
    for i in range(per_task * len(TASKS)):
        shape, classes, widths = TASKS[i % len(TASKS)]
        arch = space.sample(rng)
        arch = replace(arch, width=int(widths[int(rng.integers(len(widths)))]))
        name = f"{'x'.join(map(str, (shape[1], shape[2], shape[0])))}:{space.format(arch)}"
        out.append((name, space.to_network(arch, Task.custom(shape, classes))))
    if mlperf:
        out += [(m, build_ir(m)) for m in MLPERF]
    return out


def from_ref(ref: str) -> tuple[object, dict[str, str]]:
    """(generate function, kernel sources) of git revision ``ref``."""
    def show(path: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:{path}"], check=True,
                              capture_output=True, text=True).stdout

    tmp = Path(tempfile.mkdtemp(prefix="micronas-baseline-"))
    (tmp / "codegen_baseline.py").write_text(show("micronas/deploy/codegen.py"))
    spec = importlib.util.spec_from_file_location("codegen_baseline", tmp / "codegen_baseline.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["codegen_baseline"] = mod
    spec.loader.exec_module(mod)
    kernels = {n: show(f"micronas/deploy/c/{n}") for n in ("mn_kernels.h", "mn_kernels.c")}
    return mod.generate, kernels


def code_bytes(elf: Path) -> int:
    """Bytes of the functions in ``elf`` (weights and constants excluded)."""
    out = check_run([toolchain().replace("gcc", "readelf"), "-sW", str(elf)], "readelf")
    total = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] == "FUNC":
            total += int(parts[2], 0)
    return total


def run_c(q, x, ref, core: str, generator=None, kernels=None) -> dict:
    with tempfile.TemporaryDirectory(prefix="micronas-sk-") as d:
        fw = emulate.build(q, core, d, generator=generator, kernels=kernels)
        size = code_bytes(Path(d) / "model.elf")
        bss = section_sizes(check_run([toolchain().replace("gcc", "size"), "-A",
                                       str(Path(d) / "model.elf")], "size"))[2]
    m = emulate.run(fw, q, x[0])
    exact = all(np.array_equal(v.reshape(-1), ref[k][0].reshape(-1)) for k, v in m.outputs.items())
    exact = exact and len(m.outputs) == len(fw.model.offsets) - len(q.net.inputs)
    return {"cycles": m.cycles, "layers": [round(lay.cycles) for lay in m.layers],
            "bit_exact": bool(exact), "arena_bytes": fw.model.arena_bytes,
            "scratch_bytes": getattr(fw.model, "scratch_bytes", 0), "bss_bytes": bss,
            "code_bytes": size}


def run_cmsis(kern, q, ref) -> dict:
    from micronas.measure import cmsis_nn

    layers, exact = [], True
    for layer in q.net.layers:
        if cmsis_nn.kernel_op(layer) is None:
            raise SystemExit(f"{q.net.name}: layer {layer.name} ({layer.op}) has no CMSIS-NN kernel")
        r = cmsis_nn.run_layer_kernel(kern, q, layer, ref[layer.inputs[0]][0])
        if layer.op == "add" and layer.inputs[0] != layer.inputs[1]:
            pass  # the harness feeds both operands the first input: cycles do not depend on values
        else:
            exact = exact and r.bit_exact
        layers.append(round(r.cycles))
    return {"cycles": float(sum(layers)), "layers": layers, "bit_exact": bool(exact)}


def gmean(xs: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in xs) / len(xs)) if xs else float("nan")


def table(res: dict) -> str:
    nets = res["networks"]
    lines = []
    cores = [c for c in CORES if any(c in n["variants"].get(v, {}) for n in nets.values()
                                     for v in n["variants"])]
    hdr = f"{'network':<44} {'core':<13} {'baseline':>11} {'new':>11} {'cmsis-nn':>11} {'x base':>7} {'x cmsis':>7}"
    lines.append(hdr)
    for name, n in nets.items():
        for c in cores:
            v = {k: n["variants"].get(k, {}).get(c) for k in ("baseline", "new", "cmsis-nn")}
            cyc = {k: (r["cycles"] if r else None) for k, r in v.items()}
            f = [f"{cyc[k]:>11.0f}" if cyc[k] else f"{'-':>11}" for k in ("baseline", "new", "cmsis-nn")]
            sb = f"{cyc['baseline'] / cyc['new']:>7.2f}" if cyc["baseline"] and cyc["new"] else f"{'-':>7}"
            sc = f"{cyc['cmsis-nn'] / cyc['new']:>7.2f}" if cyc["cmsis-nn"] and cyc["new"] else f"{'-':>7}"
            bad = [k for k, r in v.items() if r and not r["bit_exact"]]
            lines.append(f"{name[:44]:<44} {c:<13} {' '.join(f)} {sb} {sc}"
                         + (f"  NOT BIT-EXACT: {','.join(bad)}" if bad else ""))
    lines.append("")
    lines.append("geometric mean speed-up of new (cycles of the other / cycles of new), networks "
                 "that have both:")
    for c in cores:
        row = []
        for other in ("baseline", "cmsis-nn"):
            r = [n["variants"][other][c]["cycles"] / n["variants"]["new"][c]["cycles"]
                 for n in nets.values()
                 if c in n["variants"].get(other, {}) and c in n["variants"].get("new", {})]
            row.append(f"vs {other}: {gmean(r):.2f}x over {len(r)}" if r else f"vs {other}: -")
        lines.append(f"  {c:<14} " + ";  ".join(row))
    ar = [((r := n["variants"]["new"][c])["arena_bytes"] + r.get("scratch_bytes", 0))
          / n["tflm_arena"] for n in nets.values() for c in list(n["variants"].get("new", {}))[:1]]
    if ar:
        lines.append(f"peak SRAM of new (arena + im2col scratch) / TFLM greedy arena: geometric "
                     f"mean {gmean(ar):.3f} over {len(ar)} networks (max {max(ar):.3f})")
    bad = [name for name, n in nets.items() for c, r in n["variants"].get("new", {}).items()
           if "bss_bytes" in r and r["bss_bytes"] != max(r["arena_bytes"], 16) + r["scratch_bytes"]]
    lines.append(f"firmware .bss == planned arena + scratch: "
                 f"{'yes, every network and core' if not bad else 'NO: ' + ', '.join(bad)}")
    for v in ("baseline", "new"):
        for c in cores:
            cb = [n["variants"][v][c]["code_bytes"] for n in nets.values()
                  if c in n["variants"].get(v, {})]
            if cb:
                lines.append(f"code bytes ({v}, {c}): median {int(np.median(cb))}, max {max(cb)}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-task", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-mlperf", action="store_true")
    p.add_argument("--cores", default=",".join(CORES))
    p.add_argument("--variants", default="new,baseline,cmsis-nn")
    p.add_argument("--baseline-ref", default=BASELINE_REF)
    p.add_argument("--cmsis-nn", default=os.environ.get("MICRONAS_CMSIS_NN"))
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--table", action="store_true", help="print the saved table and stop")
    p.add_argument("--merge", metavar="FILE",
                   help="merge the results of FILE (another run's --out) into the output and stop")
    p.add_argument("--skip-done", action="store_true",
                   help="keep (network, variant, core) results already in the output file")
    a = p.parse_args()
    out = Path(a.out)
    res = json.loads(out.read_text()) if out.is_file() else {"networks": {}}
    if a.merge:
        other = json.loads(Path(a.merge).read_text())
        for name, n in other["networks"].items():
            entry = res["networks"].setdefault(name, {"variants": {}})
            entry.update({k: v for k, v in n.items() if k != "variants"})
            for v, per_core in n["variants"].items():
                entry["variants"].setdefault(v, {}).update(per_core)
        out.write_text(json.dumps(res, indent=1))
    if a.table or a.merge:
        print(table(res))
        return
    variants = a.variants.split(",")
    if "cmsis-nn" in variants and not a.cmsis_nn:
        print("no CMSIS-NN checkout (--cmsis-nn or $MICRONAS_CMSIS_NN): skipping cmsis-nn")
        variants.remove("cmsis-nn")
    cores = a.cores.split(",")
    base = from_ref(a.baseline_ref) if "baseline" in variants else None
    kerns = {}
    if "cmsis-nn" in variants:
        from micronas.measure import cmsis_nn
        kerns = {c: cmsis_nn.build(a.cmsis_nn, c) for c in cores}
    res.setdefault("meta", {})
    res["meta"].update({"seed": a.seed, "per_task": a.per_task, "baseline_ref": a.baseline_ref,
                        "command": "python benchmarks/standalone_kernels.py " + " ".join(sys.argv[1:])})
    for name, net in networks(a.per_task, a.seed, not a.no_mlperf):
        q = prepare(net, a.seed)
        x = q.input_quant.quantize(gaussian_batch(net, 1, a.seed + 2))
        ref = run_int8(q, x)
        entry = res["networks"].setdefault(name, {"variants": {}})
        entry["tflm_arena"] = plan(q.net)[0]
        entry["macs"] = int(sum(getattr(lay, "macs", 0) or 0 for lay in q.net.layers))
        for v in variants:
            for c in cores:
                if a.skip_done and c in entry["variants"].get(v, {}):
                    continue
                t = time.time()
                if v == "new":
                    r = run_c(q, x, ref, c)
                elif v == "baseline":
                    r = run_c(q, x, ref, c, *base)
                else:
                    r = run_cmsis(kerns[c], q, ref)
                r["seconds"] = round(time.time() - t, 1)
                entry["variants"].setdefault(v, {})[c] = r
                print(f"{name[:50]:<50} {v:<9} {c:<13} {r['cycles']:>12.0f} "
                      f"{'ok' if r['bit_exact'] else 'NOT BIT-EXACT'} {r['seconds']}s", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1))
    print(table(res))


if __name__ == "__main__":
    main()
