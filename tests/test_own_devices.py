"""Boards of your own: ``micronas devices add`` writes a validated profile into your config
folder, and every command then knows the name."""

from __future__ import annotations

import json

import pytest

from micronas.hardware.device import DEVICES

pytestmark = pytest.mark.system


@pytest.fixture()
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("MICRONAS_CONFIG", str(tmp_path / "cfg"))
    DEVICES.reload()
    yield tmp_path / "cfg"
    DEVICES.reload()


ADD = ["devices", "add", "stm32h743", "--core", "cortex-m7", "--clock-mhz", "480",
       "--sram-kb", "1024", "--flash-kb", "2048", "--fpu"]


def test_add_then_use_everywhere(cli, config):
    code, out, err = cli(*ADD)
    assert code == 0, err
    path = config / "devices" / "stm32h743.toml"
    assert path.is_file() and str(path) in out
    code, out, _ = cli("devices", "--json")
    mine = [d for d in json.loads(out) if d["name"] == "stm32h743"]
    assert mine and mine[0]["clock_mhz"] == 480 and mine[0]["sram_bytes"] == 1024 * 1024
    assert mine[0]["source"].startswith("yours")
    assert mine[0]["runtime"] == "tflm-cmsis-nn"  # the default: what main.cc runs
    assert mine[0]["runtimes"]["tflm-cmsis-nn"] == "emulated"
    assert mine[0]["runtimes"]["tflm-reference"] == "extrapolated"
    code, out, err = cli("cost", "mlperf:kws", "--device", "stm32h743", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["device"] == "stm32h743" and d["sram_limit_bytes"] == 1024 * 1024
    # the same network on the built-in Cortex-M7 at 216 MHz: the same cycles, 480/216 the speed
    code, out2, _ = cli("cost", "mlperf:kws", "--device", "stm32f746", "--json")
    ref = json.loads(out2)
    assert d["cycles"] == pytest.approx(ref["cycles"])
    assert d["latency_ms"] == pytest.approx(ref["latency_ms"] * 216 / 480)


@pytest.mark.parametrize("argv, fragment", [
    (["--core", "cortex-m5"], "did you mean 'cortex-m7'"),
    (["--clock-mhz", "-1"], "--clock-mhz must be a positive number"),
    (["--sram-kb", "0"], "--sram-kb must be a positive number"),
])
def test_bad_input_is_one_line_and_writes_nothing(cli, config, argv, fragment):
    args = list(ADD)
    i = args.index(argv[0])
    args[i + 1] = argv[1]
    code, _, err = cli(*args)
    assert code == 2 and err.count("\n") == 1 and fragment in err
    assert not (config / "devices" / "stm32h743.toml").exists()


def test_built_in_names_and_existing_profiles_are_kept(cli, config):
    code, _, err = cli("devices", "add", "nrf52840", "--core", "cortex-m4", "--clock-mhz", "64",
                       "--sram-kb", "256", "--flash-kb", "1024")
    assert code == 2 and "built-in" in err
    assert cli(*ADD)[0] == 0
    code, _, err = cli(*ADD)
    assert code == 2 and "--force" in err
    assert cli(*ADD, "--force")[0] == 0


def test_a_typo_names_the_closest_device(cli, config):
    cli(*ADD)
    code, _, err = cli("cost", "1", "--device", "stm32h74")
    assert code == 2 and "did you mean 'stm32h743'" in err
