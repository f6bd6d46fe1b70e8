"""Latency constants of the ``resize`` op class (RESIZE_BILINEAR: the mcu network's own input
resize) on every runtime and core.

- **micronas-c** (emulated): the designed layer set's resize layers
  (:func:`micronas.measure.calibration.designed_layers`, seed ``--design-seed``) are compiled
  with the generated C and run on each emulated core, bit-exact against the integer reference;
  the ``resize`` coefficients are a non-negative least-squares fit on relative error, as
  ``benchmarks/micronas_c_latency.py`` fits every other class (a full rerun of that script
  fits ``resize`` too, from the same layers).
- **optimized** (extrapolated): micronas-c's constants. An optimizing engine has no fitted
  resize on MLPerf Tiny (none of its networks resizes), and the kernel is a plain loop of
  four loads and multiplies per output value, which our C already is.
- **tflm-cmsis-nn** (extrapolated): CMSIS-NN has no resize kernel; TFLM runs its reference
  ``ResizeBilinearInteger``. As for relu and concat (the other reference-kernel classes) the
  constants are the optimized runtime's times the file's ratio of grounded to optimized cycles
  (its relu constant over the optimized relu constant).
- **tflm-reference** scales tflm-cmsis-nn's constants (runtime.toml), resize included.

Each file's ``[class_grounding]`` marks ``resize`` emulated or extrapolated. With
``--write-constants`` the ``[latency.resize]`` tables are replaced in place (the rest of each
file is left as it is).

    python benchmarks/resize_latency.py --write-constants
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

from micronas.hardware.cost import op_class
from micronas.measure.calibration import designed_layers, fit
from micronas.measure.layers import LayerCache, measure_layer

REPO = Path(__file__).resolve().parent.parent
RUNTIMES = REPO / "micronas" / "hardware" / "runtimes"
CORES = ("cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33")


def toml_number(v: float) -> str:
    return f"{float(v):.6g}" if "e" not in f"{float(v):.6g}" else f"{float(v):.6e}"


def measure(core: str, seed: int) -> tuple[dict[str, float], float, int]:
    """The fitted resize coefficients on ``core``, their fit MAPE and the number of layers."""
    cache = LayerCache(core)
    samples = []
    for net, layer in designed_layers(seed):
        if op_class(layer) != "resize":
            continue
        m = measure_layer(net, layer, core, cache, seed)
        samples.append((net, layer, m.cycles))
    cache.save()
    tables, stats = fit(samples)
    return tables["resize"], stats["resize"]["mape"], len(samples)


def set_table(text: str, table: dict[str, float], comment: str) -> str:
    """``text`` with its ``[latency.resize]`` table (and its comment line) replaced, or
    appended at the end."""
    body = "".join(f"{k} = {toml_number(v)}\n" for k, v in table.items() if v > 0) or \
        "cycles_per_layer = 0.0\n"
    block = f"# {comment}\n[latency.resize]\n{body}"
    pat = re.compile(r"(?:# [^\n]*\n)?\[latency\.resize\]\n(?:[^\[\n#][^\n]*\n|\n)*", re.M)
    if pat.search(text):
        return pat.sub(lambda _m: block + "\n", text, count=1).rstrip("\n") + "\n"
    return text.rstrip("\n") + "\n\n" + block


def set_grounding(text: str, kind: str) -> str:
    """``text`` with ``resize = "<kind>"`` in its ``[class_grounding]`` table (made before
    ``[latency]`` when the file has none)."""
    line = f'resize = "{kind}"\n'
    text = re.sub(r'^resize = "[a-z]+"\n', "", text, flags=re.M)
    m = re.search(r"^\[class_grounding\][^\n]*\n", text, re.M)
    if m:
        return text[:m.end()] + line + text[m.end():]
    m = re.search(r"^\[latency\]", text, re.M)
    assert m, "no [latency] table"
    return (text[:m.start()] + "[class_grounding]  # per op class where not the file's "
            "grounding\n" + line + "\n" + text[m.start():])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cores", nargs="+", default=list(CORES), choices=CORES)
    ap.add_argument("--design-seed", type=int, default=0)
    ap.add_argument("--write-constants", action="store_true",
                    help="replace [latency.resize] in each runtime's <core>.toml")
    args = ap.parse_args(argv)
    print(f"{'core':14s} {'layers':>6s} {'fit MAPE':>9s}  micronas-c resize coefficients; "
          "tflm-cmsis-nn ratio")
    for core in args.cores:
        coefs, mape, n = measure(core, args.design_seed)
        files = {rt: RUNTIMES / rt / f"{core}.toml" for rt in ("micronas-c", "optimized",
                                                                "tflm-cmsis-nn")}
        raw = {rt: tomllib.loads(p.read_text()) for rt, p in files.items()}
        ratio = (raw["tflm-cmsis-nn"]["latency"]["relu"]["cycles_per_output"]
                 / raw["optimized"]["latency"]["relu"]["cycles_per_output"])
        print(f"{core:14s} {n:6d} {100 * mape:8.2f} %  "
              + ", ".join(f"{k} {v:.4g}" for k, v in coefs.items() if v > 0)
              + f"; x {ratio:.3f}")
        if not args.write_constants:
            continue
        how = (f"resize: fitted to {n} emulated resize layers of the designed set (seed "
               f"{args.design_seed}), fit MAPE {100 * mape:.2f} %; benchmarks/resize_latency.py")
        t = set_table(files["micronas-c"].read_text(), coefs, how)
        files["micronas-c"].write_text(t)
        t = set_table(files["optimized"].read_text(), coefs,
                      "resize: extrapolated, micronas-c's emulated constants (no MLPerf Tiny "
                      "network resizes); benchmarks/resize_latency.py")
        files["optimized"].write_text(set_grounding(t, "extrapolated"))
        scaled = {k: v * ratio for k, v in coefs.items()}
        t = set_table(files["tflm-cmsis-nn"].read_text(), scaled,
                      f"resize: extrapolated (TFLM's reference ResizeBilinearInteger, no "
                      f"CMSIS-NN kernel): the optimized runtime's resize x {ratio:.3f}, as "
                      "relu and concat; benchmarks/resize_latency.py")
        files["tflm-cmsis-nn"].write_text(set_grounding(t, "extrapolated"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
