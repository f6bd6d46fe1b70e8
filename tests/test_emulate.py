"""Generated C on emulated Cortex-M cores, per-layer measurement, calibration."""

import shutil

import numpy as np
import pytest

from micronas.errors import DataError, MicronasError
from micronas.hardware import estimate, load_device
from micronas.measure.emulate import APT_HINT, classify
from micronas.spaces.nb201 import NB201Arch, nb201_network

pytestmark = pytest.mark.integration

needs_toolchain = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                     reason=f"no arm-none-eabi-gcc; install with: {APT_HINT}")
pytest.importorskip("unicorn", reason="pip install unicorn capstone")


def tiny(index: int = 6111):
    return nb201_network(NB201Arch.from_index(index), C=4, N=1)


def test_classify_thumb_instructions():
    assert classify("smlad", "r3, r5, r4, r3") == ("simd_mac", 0)
    assert classify("ldrsb.w", "r0, [lr], #1") == ("load", 0)
    assert classify("bne.n", "#0x196") == ("branch", 0)
    assert classify("bic", "r0, r1") == ("alu", 0)
    assert classify("push", "{r4, r5, r6, lr}") == ("store_multiple", 4)
    assert classify("pop", "{r4, pc}") == ("branch_pop", 2)
    assert classify("sxtab16", "r4, r7, r4, ror #8") == ("simd", 0)


@needs_toolchain
@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m0plus", "cortex-m33", "cortex-m7"])
def test_whole_network_bit_exact_on_every_core(core):
    from micronas.measure.layers import measure_network

    m = measure_network(tiny(), core, "whole")
    assert m.bit_exact
    assert m.instructions > 0 and all(lay.cycles > 0 for lay in m.layers)


@needs_toolchain
def test_mlperf_kws_depthwise_bit_exact():
    from micronas.api import build_ir
    from micronas.measure.layers import measure_network

    assert measure_network(build_ir("mlperf:kws"), "cortex-m4", "whole").bit_exact


@needs_toolchain
def test_per_layer_sum_matches_whole_run():
    from micronas.measure.layers import LayerCache, measure_network

    net = tiny(100)
    whole = measure_network(net, "cortex-m4", "whole")
    layers = measure_network(net, "cortex-m4", "layers", cache=LayerCache("cortex-m4", disk=False))
    assert abs(layers.cycles / whole.cycles - 1) < 0.01
    # the SIMD kernels need fewer instructions than plain C for the same network
    m0 = measure_network(net, "cortex-m0plus", "layers", cache=LayerCache("cortex-m0plus", disk=False))
    assert m0.instructions > layers.instructions


def test_codegen_names_unsupported_layer():
    from micronas.deploy.codegen import generate
    from micronas.deploy.quantize import QNetwork
    from micronas.ir import GraphBuilder

    g = GraphBuilder("t", (4, 8, 8))
    net = g.build([g.pool(g.input_name, 2, 2, name="mp", kind="max")])
    net.layers[0] = net.layers[0].__class__(**{**net.layers[0].__dict__, "op": "zeros"})
    with pytest.raises(MicronasError, match="layer mp: "):
        generate(QNetwork(net, {}, {}))


def test_calibrate_from_board_csv(tmp_path):
    from micronas.measure.calibration import calibrate_measured, write_profile

    dev = load_device("stm32l4r5")
    rows = ["arch,latency_ms"]
    for a in ("6111", "100", "9000", "mlperf:kws"):
        from micronas.api import build_ir

        rows.append(f"{a},{2.0 * estimate(build_ir(a), dev).latency_ms:.6f}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    cal = calibrate_measured(dev, tmp_path / "m.csv", build_ir)
    assert cal.per_class["all"]["scale"] == pytest.approx(2.0, rel=1e-4)
    prof = load_device(write_profile(cal, tmp_path / "l4-board.toml"))
    from micronas.api import build_ir

    ratio = estimate(build_ir("6111"), prof).latency_ms / estimate(build_ir("6111"), dev).latency_ms
    assert ratio == pytest.approx(2.0, rel=1e-3)
    # board measurements: the same runtime, its memory unchanged, its latency now calibrated
    assert prof.runtime.name == dev.runtime.name
    assert prof.runtime.code_flash_bytes == dev.runtime.code_flash_bytes
    assert prof.runtime.latency_grounding == "calibrated"


def test_emulated_calibration_names_its_runtime(tmp_path):
    """Emulation fits micronas's own C kernels: the profile says so."""
    from micronas.measure.calibration import Calibration, write_profile

    dev = load_device("stm32f746", runtime="micronas-c")
    cal = Calibration(dev, "emulation (cortex-m7, seed 0)", dict(dev.latency), 0.0, 10, 0.1,
                      runtime="micronas-c")
    assert "runtime 'micronas-c'" in cal.summary()
    prof = load_device(write_profile(cal, tmp_path / "emu.toml"))
    assert prof.runtime.name == "micronas-c"  # the profile's own runtime is its default
    assert prof.runtime.code_flash_bytes == dev.runtime.code_flash_bytes
    assert prof.runtime.latency_grounding == "calibrated"
    # another runtime on the same profile: that runtime's constants, not the calibrated ones
    other = load_device(tmp_path / "emu.toml", runtime="tflm-cmsis-nn")
    assert other.runtime.name == "tflm-cmsis-nn" and other.runtime.latency_grounding != "calibrated"


def test_emulated_calibration_refuses_another_runtime():
    from micronas.measure.calibration import calibrate_emulated

    with pytest.raises(MicronasError, match="micronas-c"):
        calibrate_emulated(load_device("stm32f746", runtime="tflm-cmsis-nn"))


def test_old_profiles_runtime_names_still_load(tmp_path):
    """Profiles written before runtimes had short names load as the runtime they meant."""
    base = ('name = "x"\ncore = "cortex-m4"\nclock_mhz = 64\nsram_bytes = 262144\n'
            'flash_bytes = 1048576\n')
    for old, new in (("tflite-micro + cmsis-nn", "tflm-cmsis-nn"),
                     ("micronas standalone C (emulated cortex-m4)", "micronas-c")):
        p = tmp_path / "old.toml"
        p.write_text(base + f'[latency.conv]\ncycles_per_mac = 9.0\n[runtime]\nname = "{old}"\n')
        d = load_device(p)
        assert d.runtime.name == new and d.latency["conv"]["cycles_per_mac"] == 9.0


@pytest.mark.parametrize("text,match", [
    ("arch,ms\n6111,3\n", "line 1: the header"),
    ("arch,latency_ms\n6111,abc\n", "line 2: latency_ms 'abc'"),
    ("arch,latency_ms\n6111,3\n6111,-1\n", "line 3: latency_ms must be a positive"),
    ("arch,layer,latency_ms\n6111,nope,3\n", "line 2: no layer 'nope'"),
    ("arch,latency_ms\n99999,3\n", "line 2:"),
])
def test_measurement_csv_errors(tmp_path, text, match):
    from micronas.api import build_ir
    from micronas.measure.calibration import calibrate_measured

    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(DataError, match=match):
        calibrate_measured(load_device("stm32f746"), tmp_path / "m.csv", build_ir)


def test_cli_calibrate_and_measure_errors(cli, tmp_path):
    (tmp_path / "bad.csv").write_text("arch,latency_ms\n6111,x\n")
    code, _, err = cli("calibrate", "--device", "stm32f746", "--measurements", str(tmp_path / "bad.csv"),
                       "--out", str(tmp_path / "p.toml"))
    assert code == 2 and "line 2" in err and err.count("\n") == 1
    assert not (tmp_path / "p.toml").exists()
    code, _, err = cli("measure", "6111", "--device", "nosuch")
    assert code == 2 and "unknown device" in err
    code, _, err = cli("measure", "6111", "--method", "guess")
    assert code == 2


@needs_toolchain
def test_cli_measure_json(cli, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code, out, err = cli("measure", "mlperf:ad", "--device", "stm32l4r5", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert {"latency_ms", "cycles", "instructions", "layers"} <= set(d)
    assert d["latency_ms"] == pytest.approx(d["cycles"] / 120e3)
    assert np.isclose(sum(lay["cycles"] for lay in d["layers"]), d["cycles"])


def test_missing_toolchain_gives_install_command(monkeypatch, cli):
    from micronas.measure import toolchain

    monkeypatch.setattr(toolchain.shutil, "which", lambda _name: None)
    with pytest.raises(MicronasError, match="apt-get install --no-install-recommends gcc-arm-none-eabi"):
        toolchain.toolchain()
    code, _, err = cli("measure", "mlperf:ad", "--device", "stm32l4r5", "--method", "whole")
    assert code == 2 and "gcc-arm-none-eabi" in err and err.count("\n") == 1


def test_fit_recovers_known_coefficients():
    """The calibration fit on the designed layers, with cycles from known coefficients."""
    from micronas.hardware.cost import layer_features, op_class
    from micronas.measure.calibration import designed_layers, fit

    truth = {"cycles_per_mac": 1.7, "cycles_per_output": 30.0, "cycles_per_layer": 200.0}
    samples = []
    for net, layer in designed_layers(seed=1):
        f = layer_features(net, layer)
        samples.append((net, layer, sum(truth.get(k, 0.0) * v for k, v in f.items())))
    tables, stats = fit(samples)
    conv = tables["conv"]
    assert conv["cycles_per_mac"] == pytest.approx(1.7, rel=1e-3)
    assert conv["cycles_per_output"] == pytest.approx(30.0, rel=1e-2)
    assert all(s["mape"] < 1e-3 for s in stats.values())
    assert {op_class(layer) for _, layer in designed_layers(seed=1)} >= {
        "conv", "conv1x1", "depthwise", "fully_connected", "pool", "global_pool", "add", "relu",
        "affine", "pad"}


@needs_toolchain
def test_firmware_bss_is_the_standalone_plan(tmp_path):
    """The compiled model's .bss is the planner's arena plus the im2col scratch, which is
    what the micronas-c runtime charges (its activation part)."""
    from micronas.api import build_ir
    from micronas.deploy.export import prepare
    from micronas.hardware.planner import im2col_bytes, plan_standalone
    from micronas.measure import emulate
    from micronas.measure.toolchain import check_run, section_sizes, toolchain

    q = prepare(build_ir("mlperf:kws"), 0)
    fw = emulate.build(q, "cortex-m4", tmp_path)
    size = check_run([toolchain().replace("gcc", "size"), "-A", str(tmp_path / "model.elf")],
                     "size")
    arena = plan_standalone(q.net)[0]
    assert fw.model.arena_bytes == arena and fw.model.scratch_bytes == im2col_bytes(q.net) > 0
    assert section_sizes(size)[2] == arena + im2col_bytes(q.net)
