"""micronas-c's latency constants (micronas/hardware/runtimes/micronas-c/<core>.toml).

The constants were fitted on the emulated designed layer set and checked on seeded ``mcu``
networks by ``benchmarks/micronas_c_latency.py``; the committed result
(``benchmarks/results/micronas_c_latency.json``) holds each network's predicted latency. A
change to the cost model or to the constants that moves those predictions fails here.
"""

import json
import shutil
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from micronas.hardware import load_device
from micronas.hardware.cost import latency_ms
from micronas.hardware.tomlcheck import COEFFICIENTS, OP_CLASSES
from micronas.hardware.tomlcheck import latency_tables as _latency_tables
from micronas.measure.toolchain import APT_HINT
from micronas.spaces import get_space
from micronas.tasks import Task, parse_input

REPO = Path(__file__).resolve().parent.parent
CONSTANTS = REPO / "micronas" / "hardware" / "runtimes" / "micronas-c"
RESULT = REPO / "benchmarks" / "results" / "micronas_c_latency.json"
CORES = ("cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33")


def constants(core: str) -> tuple[dict, dict[str, dict[str, float]], float]:
    raw = tomllib.loads((CONSTANTS / f"{core}.toml").read_text())
    tables, overhead = _latency_tables(raw["latency"], f"micronas-c {core}")
    return raw, tables, overhead or 0.0


def device_for(core: str, name: str):
    _, tables, overhead = constants(core)
    dev = load_device(name, "micronas-c")  # the package's runtime reads these very constants
    assert dev.latency == tables and dev.overhead_cycles == overhead
    return dev


def network(row: dict):
    space = get_space("mcu")
    return space.to_network(space.parse(row["arch"]),
                            Task.custom(parse_input(row["input"]), row["classes"]))


@pytest.mark.unit
@pytest.mark.parametrize("core", CORES)
def test_constants_file_has_the_core_schema(core):
    raw, tables, _ = constants(core)
    assert raw["runtime"] == "micronas-c" and raw["core"] == core
    assert raw["grounding"] == "emulated" and "\n" not in raw["source"]
    assert set(raw) == {"runtime", "core", "grounding", "source", "class_grounding", "latency"}
    assert raw["class_grounding"] == {"zeros": "extrapolated", "hard_swish": "extrapolated",
                                      "logistic": "extrapolated", "mul": "extrapolated"}
    assert "overhead_cycles" in raw["latency"]
    assert set(tables) <= set(OP_CLASSES)
    assert all(set(c) <= set(COEFFICIENTS) for c in tables.values())
    assert set(tables) == set(OP_CLASSES)  # every op class
    assert "python benchmarks/micronas_c_latency.py" in (CONSTANTS / f"{core}.toml").read_text()


@pytest.mark.integration
@pytest.mark.parametrize("core", CORES)
def test_committed_constants_reproduce_the_validation(core):
    result = json.loads(RESULT.read_text())
    if core not in result["cores"]:
        pytest.skip(f"{core} is not in the committed validation")
    res = result["cores"][core]
    dev = device_for(core, res["device"])
    assert dev.clock_mhz == res["clock_mhz"]
    rows = res["rows"]
    assert rows
    pred = np.array([latency_ms(network(r), dev) for r in rows])
    want = np.array([r["predicted_ms"] for r in rows])
    np.testing.assert_allclose(pred, want, rtol=1e-9)
    emu = np.array([r["emulated_ms"] for r in rows])
    assert np.mean(np.abs(pred - emu) / emu) == pytest.approx(res["mape"], rel=1e-6)
    assert res["mape"] <= 0.05


@pytest.mark.system
@pytest.mark.slow
def test_small_mcu_networks_emulated_within_ten_percent():
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip(f"no arm-none-eabi-gcc; install with: {APT_HINT}")
    pytest.importorskip("unicorn", reason="pip install unicorn capstone")
    pytest.importorskip("capstone", reason="pip install unicorn capstone")
    from micronas.measure.layers import measure_network

    core = "cortex-m4"
    dev = device_for(core, "stm32l4r5")
    space = get_space("mcu")
    rng = np.random.default_rng(7)
    for shape, classes in (((3, 32, 32), 10), ((1, 49, 10), 12), ((3, 32, 32), 10)):
        arch = replace(space.sample(rng), width=20)
        net = space.to_network(arch, Task.custom(shape, classes))
        m = measure_network(net, core, "whole")
        assert m.bit_exact
        emulated = m.cycles / (dev.clock_mhz * 1e3)
        predicted = latency_ms(net, dev)
        assert abs(predicted / emulated - 1) < 0.10, (str(arch), predicted, emulated)
