import pytest

from micronas.errors import DeviceError
from micronas.hardware import builtin_devices, estimate, load_device
from micronas.hardware.cost import op_class
from micronas.ir import GraphBuilder
from micronas.spaces.nb201 import NB201Arch, nb201_network

pytestmark = pytest.mark.unit

DATASHEET = {  # name: (core, MHz, SRAM KiB, flash KiB)
    "stm32f746": ("cortex-m7", 216, 320, 1024),
    "stm32h7a3": ("cortex-m7", 280, 1312, 2048),
    "stm32l4r5": ("cortex-m4", 120, 640, 2048),
    "stm32u575": ("cortex-m33", 160, 786, 2048),
    "stm32g0b1": ("cortex-m0plus", 64, 144, 512),
    "nrf52840": ("cortex-m4", 64, 256, 1024),
    "nrf5340": ("cortex-m33", 128, 512, 1024),
    "rp2040": ("cortex-m0plus", 133, 264, 2048),
}


def test_builtin_profiles_match_datasheets():
    assert set(DATASHEET) <= set(builtin_devices())
    for name, (core, mhz, sram, flash) in DATASHEET.items():
        d = load_device(name)
        assert (d.core, d.clock_mhz, d.sram_bytes, d.flash_bytes) == (core, mhz, sram * 1024,
                                                                     flash * 1024)
        assert d.sources and d.dsp == (core != "cortex-m0plus")
        for cls in ("conv", "conv1x1", "add", "pool"):
            assert d.coefficients(cls), (name, cls)


def write(tmp_path, text):
    p = tmp_path / "dev.toml"
    p.write_text(text)
    return p


GOOD = 'name = "x"\ncore = "cortex-m4"\nclock_mhz = 100\nsram_bytes = 1000\nflash_bytes = 2000\n'


@pytest.mark.parametrize("text, fragment", [
    ("name = \n", "not valid TOML"),
    (GOOD.replace('core = "cortex-m4"\n', ""), "missing required key 'core'"),
    (GOOD.replace("clock_mhz = 100", "clock_mhz = 'fast'"), "'clock_mhz' must be a number"),
    (GOOD.replace("sram_bytes = 1000", "sram_bytes = -1"), "'sram_bytes' must be > 0"),
    (GOOD.replace("cortex-m4", "cortex-a53"), "unknown core 'cortex-a53'"),
    (GOOD + "[latency.gelu]\ncycles_per_mac = 1\n", "unknown op class"),
    (GOOD + "[latency.conv]\ncycles_per_flop = 1\n", "unknown coefficient"),
    (GOOD + "[runtime]\nstack = 1\n", "unknown key 'stack'"),
])
def test_malformed_device_files(tmp_path, text, fragment):
    with pytest.raises(DeviceError, match=fragment):
        load_device(write(tmp_path, text))


def test_user_file_and_override(tmp_path):
    d = load_device(write(tmp_path, GOOD + "[latency.conv]\ncycles_per_mac = 9.5\n"))
    base = load_device("stm32l4r5")
    assert d.coefficients("conv")["cycles_per_mac"] == 9.5
    assert d.coefficients("conv")["cycles_per_output"] == base.coefficients("conv")[
        "cycles_per_output"]


def test_unknown_device_and_missing_file():
    with pytest.raises(DeviceError, match="unknown device 'esp32'"):
        load_device("esp32")
    with pytest.raises(DeviceError, match="does not exist"):
        load_device("nowhere/dev.toml")


def test_latency_formula_hand_case():
    d = load_device("stm32f746", "optimized")  # its conv class uses these three features only
    assert set(d.coefficients("conv")) == {"cycles_per_mac", "cycles_per_output",
                                           "cycles_per_input"}
    g = GraphBuilder("one", (8, 4, 4))
    y = g.conv("input", 8, 3, 1, 1, name="c")
    net = g.build([y])
    r = estimate(net, d)
    c = d.coefficients("conv")
    macs = 8 * 8 * 9 * 16
    expect = (d.overhead_cycles + c["cycles_per_mac"] * macs + c["cycles_per_output"] * 128
              + c["cycles_per_input"] * 128)
    assert r.macs == macs
    assert r.cycles == pytest.approx(expect)
    assert r.latency_ms == pytest.approx(expect / 216e3)
    assert op_class(net.layers[0]) == "conv"


def test_flash_and_sram_composition():
    d = load_device("stm32f746")
    net = nb201_network(NB201Arch.from_index(6111))
    r = estimate(net, d)
    weights = sum(la.weight_params for la in net.layers)
    biases = sum(la.bias_params for la in net.layers)
    assert r.flash_bytes > weights + 4 * biases + d.runtime.code_flash_bytes
    assert r.peak_sram_bytes == r.arena_bytes + r.scratch_bytes + r.persistent_bytes + \
        r.reserved_bytes
    assert r.fits == (r.peak_sram_bytes <= d.sram_bytes and r.flash_bytes <= d.flash_bytes)
    assert not r.fits  # 1.07 M int8 params + biases do not fit 1 MB with the runtime


def test_latency_monotone_in_work():
    d = load_device("stm32l4r5")
    small = estimate(nb201_network(NB201Arch.from_string(
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|")), d)
    big = estimate(nb201_network(NB201Arch(("nor_conv_3x3",) * 6)), d)
    assert big.latency_ms > 5 * small.latency_ms
    assert big.flash_bytes > small.flash_bytes


@pytest.mark.parametrize("align", [0.5, 3, 0, 24.0])
def test_arena_alignment_must_be_a_whole_power_of_two(align):
    """A fractional alignment used to truncate to 0 and divide by zero in the planner."""
    from micronas.hardware.device import device_from_dict

    raw = {"name": "b", "core": "cortex-m7", "clock_mhz": 216, "sram_bytes": 327680,
           "flash_bytes": 1048576, "runtime": {"arena_alignment_bytes": align}}
    with pytest.raises(DeviceError, match="whole power of two|must be > 0"):
        device_from_dict(raw, "b.toml")
