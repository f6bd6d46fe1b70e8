"""The tflm-cmsis-nn constants against the committed emulated CMSIS-NN layer table."""

import csv
import os
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

from micronas.hardware.tomlcheck import COEFFICIENTS, OP_CLASSES

REPO = Path(__file__).resolve().parent.parent
TABLE = REPO / "benchmarks" / "results" / "cmsis_nn_layers.csv"
SIZES = REPO / "benchmarks" / "results" / "cmsis_nn_code_size.csv"
CONSTANTS = REPO / "micronas" / "hardware" / "runtimes" / "tflm-cmsis-nn"
CORES = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m0plus")
#: the acceptance bound on each grounded class's fit, and the slack for rounding the
#: coefficients to 6 significant digits in the TOML
MAX_MAPE = 0.05
SLACK = 0.002


def rows(core: str | None = None) -> list[dict]:
    with open(TABLE, newline="") as f:
        return [r for r in csv.DictReader(f) if core is None or r["core"] == core]


def constants(core: str) -> dict:
    return tomllib.loads((CONSTANTS / f"{core}.toml").read_text())


def class_mape(core: str) -> dict[str, float]:
    lat = constants(core)["latency"]
    errs: dict[str, list[float]] = defaultdict(list)
    for r in rows(core):
        coefs = lat[r["op_class"]]
        pred = sum(coefs.get(k, 0.0) * float(r[k]) for k in COEFFICIENTS)
        y = float(r["cycles"])
        errs[r["op_class"]].append(abs(pred - y) / y)
    return {c: sum(e) / len(e) for c, e in errs.items()}


@pytest.mark.unit
@pytest.mark.parametrize("core", CORES)
def test_constants_reproduce_the_measured_table(core):
    """Per grounded op class, the committed coefficients predict the committed kernel cycles
    within the fit MAPE the file states, and that MAPE is within the 5 % bound."""
    c = constants(core)
    assert c["runtime"] == "tflm-cmsis-nn" and c["core"] == core
    stated = c["fit_mape"]
    got = class_mape(core)
    assert got, f"no rows for {core} in {TABLE.name}"
    for cls, mape in got.items():
        assert cls in stated, f"{core}: {cls} measured but no fit MAPE stated"
        assert mape <= stated[cls] + SLACK, f"{core} {cls}: MAPE {mape:.4f} > stated {stated[cls]}"
        assert mape <= MAX_MAPE + SLACK, f"{core} {cls}: MAPE {mape:.4f} above 5 %"


@pytest.mark.unit
@pytest.mark.parametrize("core", CORES)
def test_constants_schema_and_grounding(core):
    """The [latency] table has the core files' schema; every class is either emulated (it has
    rows) or marked extrapolated, and every class of the core file is present."""
    c = constants(core)
    core_lat = tomllib.loads((REPO / "micronas" / "hardware" / "runtimes" / "optimized"
                              / f"{core}.toml").read_text())["latency"]
    lat = c["latency"]
    assert lat["overhead_cycles"] > 0
    measured = {r["op_class"] for r in rows(core)}
    assert c["grounding"] == "emulated" and len(c["source"]) <= 300
    grounding = c.get("class_grounding", {})
    for cls in core_lat:
        if cls == "overhead_cycles":
            continue
        assert cls in lat, f"{core}: [latency.{cls}] missing"
        assert set(lat[cls]) <= set(COEFFICIENTS)
        kind = grounding.get(cls, "emulated")
        assert kind == ("emulated" if cls in measured else "extrapolated"), (core, cls, kind)
    assert set(lat) - {"overhead_cycles"} <= set(OP_CLASSES)


@pytest.mark.unit
def test_table_features_are_the_cost_models():
    """The table's feature columns are what layer_features gives today for the designed set
    (seed 0), so a change of the cost model's features shows here."""
    from micronas.hardware.cost import layer_features, op_class
    from micronas.measure import cmsis_nn
    from micronas.measure.calibration import designed_layers

    design = [(n, lay) for n, lay in designed_layers(0) if cmsis_nn.kernel_op(lay)]
    table = rows("cortex-m4")
    assert len(table) == len(design)
    for r, (net, lay) in zip(table, design, strict=True):
        assert r["op_class"] == op_class(lay)
        f = layer_features(net, lay)
        for k in COEFFICIENTS:
            assert float(r[k]) == pytest.approx(f.get(k, 0.0)), (r["op_class"], k)
        assert r["bit_exact"] == "True"


@pytest.mark.unit
def test_code_size_table():
    with open(SIZES, newline="") as f:
        sizes = list(csv.DictReader(f))
    assert {r["core"] for r in sizes} == set(CORES)
    assert all(int(r["text_bytes"]) > 0 for r in sizes)


@pytest.mark.system
@pytest.mark.slow
def test_measurement_matches_the_table():
    """With a CMSIS-NN checkout: three layers re-measured on cortex-m4 give the table's
    cycles, bit-exact."""
    root = os.environ.get("MICRONAS_CMSIS_NN")
    if not root:
        pytest.skip("set MICRONAS_CMSIS_NN to a CMSIS-NN checkout")
    import tempfile

    from micronas.measure import cmsis_nn
    from micronas.measure.calibration import designed_layers

    design = [(n, lay) for n, lay in designed_layers(0) if cmsis_nn.kernel_op(lay)]
    table = rows("cortex-m4")
    with tempfile.TemporaryDirectory() as tmp:
        kern = cmsis_nn.build(root, "cortex-m4", tmp)
        picks = {}
        for i, r in enumerate(table):
            if r["op_class"] in ("conv", "depthwise", "add") and r["op_class"] not in picks \
                    and float(r["cycles"]) < 2e6:
                picks[r["op_class"]] = i
        for cls, i in picks.items():
            net, lay = design[i]
            m = cmsis_nn.measure(kern, net, lay, seed=0)
            assert m.bit_exact, cls
            assert m.cycles == pytest.approx(float(table[i]["cycles"]), rel=1e-6), cls
