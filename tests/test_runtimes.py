"""Runtimes: every cost is a cost for a runtime, named on every output, with clear errors."""

from __future__ import annotations

import json

import pytest

from micronas import api
from micronas.errors import DataError, DeviceError
from micronas.hardware import estimate, load_device
from micronas.hardware.runtime import RUNTIMES, Runtime
from micronas.infra import defaults

CORES = ["cortex-m0plus", "cortex-m33", "cortex-m4", "cortex-m7"]


@pytest.mark.unit
def test_four_runtimes_cover_every_core():
    assert sorted(RUNTIMES) == ["micronas-c", "optimized", "tflm-cmsis-nn", "tflm-reference"]
    for name in RUNTIMES:
        rt = RUNTIMES[name]
        assert rt.cores() == CORES, name
        for core in CORES:
            tables, overhead, grounding, source = rt.core_constants(core)
            assert tables and overhead >= 0 and grounding and source, (name, core)


@pytest.mark.unit
def test_default_runtime_is_what_the_bundle_runs():
    d = load_device("stm32f746")
    assert d.runtime.name == defaults.RUNTIME
    assert api.cost("6111").report.runtime == defaults.RUNTIME


@pytest.mark.unit
def test_runtime_changes_latency_and_is_named_everywhere():
    net = api.build_ir("mlperf:vww")
    lat = {}
    for name in RUNTIMES:
        r = estimate(net, load_device("stm32f746", name))
        assert r.runtime == name and r.runtime_source
        lat[name] = r.latency_ms
    # TFLM with reference kernels is slower than with CMSIS-NN
    assert lat["tflm-reference"] > lat["tflm-cmsis-nn"]
    d = api.cost("mlperf:vww", runtime="tflm-reference").to_dict()
    assert d["runtime"] == "tflm-reference" and d["runtime_grounding"] == "extrapolated"


@pytest.mark.unit
def test_derived_runtime_scales_its_base():
    base = load_device("nrf52840", "tflm-cmsis-nn")
    ref = load_device("nrf52840", "tflm-reference")
    scale = RUNTIMES["tflm-reference"].derived[1]
    assert ref.overhead_cycles == pytest.approx(base.overhead_cycles * scale)
    assert ref.latency["conv"]["cycles_per_mac"] == pytest.approx(
        base.latency["conv"]["cycles_per_mac"] * scale)
    assert ref.runtime.label() == "tflm-reference, extrapolated"


@pytest.mark.unit
def test_unknown_runtime_is_one_line_with_the_closest():
    with pytest.raises(DeviceError, match="did you mean 'tflm-cmsis-nn'"):
        load_device("stm32f746", "tflm-cmsis")


@pytest.mark.unit
def test_runtime_without_constants_for_the_core(tmp_path):
    (tmp_path / "runtime.toml").write_text('name = "x"\n')
    rt = Runtime("x", "x", "", {}, {}, tmp_path, {})  # a runtime with no core files
    with pytest.raises(DeviceError, match="no latency constants for cortex-m4; runtimes with "
                                          "constants for cortex-m4: .*tflm-cmsis-nn"):
        rt.core_constants("cortex-m4")


@pytest.mark.unit
def test_measurements_for_another_runtime_are_refused(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("arch,latency_ms,runtime\n6111,800,optimized\n100,20,optimized\n")
    with pytest.raises(DataError, match="measurements are for runtime optimized.*--runtime "
                                        "optimized"):
        api.calibrate("stm32f746", str(csv), runtime="tflm-cmsis-nn")
    cal = api.calibrate("stm32f746", str(csv))  # the CSV's runtime, when none is given
    assert cal.runtime_name() == "optimized"
    csv.write_text("arch,latency_ms,runtime\n6111,800,tflm-cmsis\n")
    with pytest.raises(DataError, match="unknown runtime 'tflm-cmsis'"):
        api.calibrate("stm32f746", str(csv))
    csv.write_text("arch,latency_ms,runtime\n6111,800,optimized\n100,20,micronas-c\n")
    with pytest.raises(DataError, match="one runtime at a time"):
        api.calibrate("stm32f746", str(csv))


@pytest.mark.integration
def test_cli_names_the_runtime(capsys):
    from micronas.cli import main

    assert main(["cost", "6111", "--runtime", "micronas-c"]) == 0
    out = capsys.readouterr().out
    assert "runtime    micronas-c" in out and "ms on micronas-c" in out
    assert main(["cost", "6111", "--runtime", "tflm-referenc"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'tflm-reference'" in err and len(err.strip().splitlines()) == 1
    assert main(["devices", "--json"]) == 0
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "latency constants of each runtime on each core" in out
    assert main(["list", "runtimes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(RUNTIMES)


@pytest.mark.unit
def test_code_size_per_operator_hand_case():
    """base + each op's marginal code + the largest share an op has with the others."""
    from micronas.hardware.runtime import RuntimeProfile

    rt = RuntimeProfile(code_flash_bytes=1000,
                        code_per_op=(("CONV_2D", 900, 600), ("ADD", 300, 250), ("PAD", 50, 50)))
    assert rt.code_bytes(set()) == 1000
    assert rt.code_bytes({"CONV_2D"}) == 1000 + 600 + 300
    assert rt.code_bytes({"CONV_2D", "ADD"}) == 1000 + 850 + 300
    assert rt.code_bytes({"ADD", "PAD", "SOFTMAX"}) == 1000 + 300 + 50  # unknown ops: none
    assert RuntimeProfile(code_flash_bytes=7).code_bytes({"CONV_2D"}) == 7  # no table: constant
