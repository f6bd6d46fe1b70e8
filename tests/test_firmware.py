"""The bundle's firmware: the preprocessing C bit for bit against the Python path, the CMake
project built with arm-none-eabi-gcc and run in the emulator (its class = TFLM's), the
Arduino library compiled with an Arduino core's flags, the emulator's semihosting."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from micronas.deploy.quantize import TensorQuant
from micronas.errors import MicronasError
from micronas.measure.toolchain import APT_HINT
from micronas.ship.firmware import Preprocessing, choose_sample, render_preprocess
from micronas.tasks.data import normalise

HERE = Path(__file__).resolve().parent
CHECKPOINT = HERE / "fixtures" / "bundle" / "checkpoint.pt"
CORES = ("cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33")
CMAKE_HINT = "apt-get install --no-install-recommends cmake make"

needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason=f"no arm-none-eabi-gcc; install with: {APT_HINT}")
needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("make") is None,
                                 reason=f"no cmake / make; install with: {CMAKE_HINT}")
needs_host_cc = pytest.mark.skipif(shutil.which("gcc") is None,
                                   reason="no host C compiler; install with: apt-get install "
                                          "--no-install-recommends gcc libc6-dev")

# --- mn_preprocess.c compiled for the host, against the Python path ---------------------------

_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "mn_preprocess.h"
/* argv: kind (u8|i16|f32), count of samples; stdin: raw samples; stdout: int8 inputs */
int main(int argc, char **argv) {
  int kind = argv[1][0], n = atoi(argv[2]), i;
  size_t width = kind == 'u' ? 1 : (kind == 'i' ? 2 : 4);
  void *raw = malloc(width * MN_PRE_SIZE);
  int8_t out[MN_PRE_SIZE];
  (void)argc;
  for (i = 0; i < n; ++i) {
    int rc;
    if (fread(raw, width, MN_PRE_SIZE, stdin) != MN_PRE_SIZE) return 3;
    if (kind == 'u') rc = mn_preprocess_u8(raw, MN_PRE_WIDTH, MN_PRE_HEIGHT, out);
    else if (kind == 'i') rc = mn_preprocess_i16(raw, MN_PRE_SIZE, out);
    else rc = mn_preprocess_f32(raw, MN_PRE_SIZE, out);
    if (rc != 0) return 4;
    fwrite(out, 1, MN_PRE_SIZE, stdout);
  }
  return mn_preprocess_u8(raw, MN_PRE_WIDTH + 1, MN_PRE_HEIGHT, out) == -1 ? 0 : 5;
}
"""


def _host_preprocess(tmp: Path, pre: Preprocessing, raw_hwc: np.ndarray, kind: str,
                     opt: str = "-O2") -> np.ndarray:
    """Compile mn_preprocess.c (+ a harness) for the host and run it on ``raw_hwc``."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name, text in render_preprocess(pre).items():
        (tmp / Path(name).name).write_text(text)
    (tmp / "harness.c").write_text(_HARNESS)
    exe = tmp / "pre"
    subprocess.run(["gcc", opt, "-std=c99", "-Wall", "-Werror", "-I", str(tmp),
                    str(tmp / "harness.c"), str(tmp / "mn_preprocess.c"), "-o", str(exe)],
                   check=True, capture_output=True)
    dtype = {"u8": np.uint8, "i16": np.int16, "f32": np.float32}[kind]
    data = np.ascontiguousarray(raw_hwc, dtype=dtype)
    r = subprocess.run([str(exe), kind, str(len(data))], input=data.tobytes(),
                       capture_output=True, check=True)
    return np.frombuffer(r.stdout, dtype=np.int8).reshape(raw_hwc.shape)


@pytest.mark.unit
@needs_host_cc
@pytest.mark.parametrize("seed,kind,divisor,channels", [(0, "u8", 255.0, 3), (1, "u8", 16.0, 1),
                                                         (2, "i16", 1.0, 1), (3, "f32", 1.0, 2)])
def test_preprocess_c_equals_python_on_random_inputs(tmp_path, seed, kind, divisor, channels):
    """Random raw inputs over the whole range of their type and random normalisations and
    quantisations: the C equals the product's Python path on every value."""
    rng = np.random.default_rng(seed)
    h, w = 7, 5
    for trial in range(3):
        mean = tuple(float(v) for v in rng.uniform(-0.5, 0.8, channels) * (300 if kind == "i16" else 1))
        std = tuple(float(v) for v in rng.uniform(0.05, 2.0, channels) * (900 if kind == "i16" else 1))
        n = 64
        if kind == "u8":
            raw = rng.integers(0, 256, (n, h, w, channels)).astype(np.uint8)
        elif kind == "i16":
            raw = rng.integers(-32768, 32768, (n, h, w, channels)).astype(np.int16)
        else:
            raw = rng.normal(0, 3, (n, h, w, channels)).astype(np.float32)
        x = normalise(np.moveaxis(raw, -1, 1), divisor, mean, std)
        lo, hi = float(x.min()), float(x.max())
        # a scale that leaves 20 % of the range outside int8 at either end (clamping)
        scale = float(np.float32((hi - lo) / 255.0 / rng.uniform(1.4, 1.6)))
        zp = int(np.clip(np.round(-(lo + hi) / 2 / scale), -128, 127))
        pre = Preprocessing((channels, h, w), divisor, mean, std, TensorQuant(scale, zp))
        if kind == "f32":
            raw[0] = np.inf
            raw[1] = -np.inf
        got = _host_preprocess(tmp_path / f"t{trial}", pre, raw, kind)
        want = pre.reference(raw)
        assert np.array_equal(got, want), f"trial {trial}: {np.sum(got != want)} values differ"
        # the values span the int8 range, clamping included
        assert want.min() == -128 and want.max() == 127
        assert len(np.unique(want)) > 100


@pytest.mark.unit
@needs_host_cc
def test_preprocess_c_rounds_ties_to_even_like_numpy(tmp_path):
    """x / scale exactly halfway between two integers: numpy's np.round goes to the even one,
    and so does the C (with -O0 and -O2)."""
    pre = Preprocessing((1, 1, 8), 1.0, (0.0,), (1.0,), TensorQuant(0.5, 0))
    raw = np.array([[[[0.25], [0.75], [-0.25], [-0.75], [1.25], [-1.25], [63.25], [-64.25]]]],
                   dtype=np.float32)
    want = pre.reference(raw)
    assert want.reshape(-1).tolist() == [0, 2, 0, -2, 2, -2, 126, -128]
    for opt in ("-O0", "-O2"):
        assert np.array_equal(_host_preprocess(tmp_path / opt, pre, raw, "f32", opt), want)


@pytest.mark.integration
@needs_host_cc
@pytest.mark.parametrize("name", ["digits", pytest.param("fashion-mnist", marks=pytest.mark.slow)])
def test_preprocess_c_equals_the_training_data_on_real_test_sets(tmp_path, name):
    """Every raw test sample of a real dataset, through the C, equals the int8 input the
    Python path gives the model: the dataset's own normalised x_test, quantised."""
    from micronas.errors import DataError
    from micronas.tasks.data import load_dataset

    try:
        ds = load_dataset(name)
    except DataError as e:
        pytest.skip(str(e))
    c, h, w = ds.input_shape
    # an input quantisation like a calibrated one: the test set's range
    lo, hi = float(ds.x_test.min()), float(ds.x_test.max())
    scale = float(np.float32((hi - lo) / 255.0))
    quant = TensorQuant(scale, int(np.clip(np.round(-128 - lo / scale), -128, 127)))
    pre = Preprocessing((c, h, w), ds.raw_divisor, ds.mean, ds.std, quant)
    raw = np.moveaxis(ds.raw_test, 1, -1)
    got = _host_preprocess(tmp_path, pre, raw, "u8")
    want = np.moveaxis(quant.quantize(ds.x_test.astype(np.float64)), 1, -1)
    assert np.array_equal(got, want)
    assert np.array_equal(pre.reference(raw), want)


@pytest.mark.unit
def test_choose_sample_picks_the_narrowest_exact_type():
    q = np.zeros((1, 2, 2), dtype=np.int8)
    assert choose_sample(np.full((1, 2, 2), 200, np.uint8), q, 0, 1, "t").kind == "u8"
    assert choose_sample(np.full((1, 2, 2), -300, np.int32), q, 0, 1, "t").kind == "i16"
    assert choose_sample(np.full((1, 2, 2), 0.1, np.float32), q, 0, 1, "t").kind == "f32"
    assert choose_sample(np.full((1, 2, 2), 0.1, np.float64), q, 0, 1, "t").kind == "q"
    assert choose_sample(None, q, 0, 1, "t").kind == "q"


# --- the emulator's semihosting ------------------------------------------------------------------

_SEMIHOST_PROGRAM = r"""
#include <stdint.h>
extern uint32_t _estack;
static int sh(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
void reset(void) {
  char c = 'A';
  uint32_t block[2] = {0x20026u, (uint32_t)EXIT_CODE};
  sh(0x03, &c);
  sh(0x04, "bc\n");
  sh(OP, block);
  for (;;) {}
}
__attribute__((section(".isr_vector"), used)) static void *const vectors[2] = {(void *)&_estack,
                                                                                (void *)reset};
"""
_SEMIHOST_LD = """MEMORY { FLASH (rx) : ORIGIN = 0x08000000, LENGTH = 64K
         RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 16K }
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS { .isr_vector : { KEEP(*(.isr_vector)) } > FLASH
           .text : { *(.text*) *(.rodata*) } > FLASH
           .bss : { *(.bss*) } > RAM }
"""


def _semihost_elf(tmp: Path, op: int, code: int, core: str = "cortex-m0plus") -> Path:
    (tmp / "p.c").write_text(_SEMIHOST_PROGRAM)
    (tmp / "p.ld").write_text(_SEMIHOST_LD)
    elf = tmp / f"p{op}_{code}.elf"
    subprocess.run(["arm-none-eabi-gcc", f"-mcpu={core}", "-mthumb", "-O2", "-nostdlib",
                    f"-DOP={op}", f"-DEXIT_CODE={code}", "-T", str(tmp / "p.ld"),
                    str(tmp / "p.c"), "-o", str(elf)], check=True, capture_output=True)
    return elf


@pytest.mark.integration
@needs_arm
def test_emulator_semihosting_output_and_exit_code(tmp_path):
    from micronas.measure.semihost import main, run_elf

    r = run_elf(_semihost_elf(tmp_path, 0x20, 7), "cortex-m0plus")
    assert (r.output, r.exit_code) == ("Abc\n", 7)
    r = run_elf(_semihost_elf(tmp_path, 0x20, 0, "cortex-m4"), "cortex-m4")
    assert (r.output, r.exit_code) == ("Abc\n", 0)
    with pytest.raises(MicronasError, match="semihosting operation 0x1 .*not supported"):
        run_elf(_semihost_elf(tmp_path, 0x01, 0), "cortex-m0plus")
    (tmp_path / "not.elf").write_text("hello")
    with pytest.raises(MicronasError, match="not a 32-bit little-endian ELF"):
        run_elf(tmp_path / "not.elf", "cortex-m4")
    assert main([str(tmp_path / "not.elf"), "--core", "cortex-m4"]) == 2


# --- the bundle: CMake project and Arduino library --------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The bundle of the recorded digits checkpoint (nrf52840, Cortex-M4F), its int8 model and
    TFLM's class for the bundled sample."""
    from micronas.api import deploy
    from micronas.deploy.tflite import run_tflm
    from micronas.ship.int8 import quantize_checkpoint

    m = quantize_checkpoint(str(CHECKPOINT))
    out = tmp_path_factory.mktemp("bundle")
    res = deploy(m, "nrf52840", out, tflm_samples=8, verify_samples=0, compile_c=False)
    xq = m.qnet.input_quant.quantize(m.x_test[:1].double().numpy())
    tflm_class = int(run_tflm(m.tflite, xq)[0].argmax())
    return out, res, tflm_class, int(m.y_test[0])


@pytest.mark.integration
def test_bundle_json_lists_every_file(bundle):
    out, res, tflm_class, label = bundle
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    info = json.loads((out / "bundle.json").read_text())
    assert info["files"] == on_disk == res.files
    for f in ("firmware/CMakeLists.txt", "firmware/arm-none-eabi.cmake", "firmware/main.c",
              "standalone/mn_preprocess.c", "arduino/MicronasModel/library.properties",
              "arduino/MicronasModel/examples/Classify/Classify.ino"):
        assert f in on_disk
    fw = info["firmware"]
    assert (fw["sample_kind"], fw["sample_label"], fw["sample_tflm_class"]) == ("u8", label,
                                                                               tflm_class)
    assert 'set(MN_CORE "cortex-m4"' in (out / "firmware/arm-none-eabi.cmake").read_text()


def _cmake_build(src: Path, build: Path, core: str) -> Path:
    subprocess.run(["cmake", "-S", str(src), "-B", str(build), f"-DMN_CORE={core}"],
                   check=True, capture_output=True, text=True)
    r = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return build / "micronas_model.elf"


def _check_firmware(bundle, core: str, tmp: Path) -> None:
    from micronas.measure.semihost import run_elf

    out, _, tflm_class, label = bundle
    elf = _cmake_build(out / "firmware", tmp / f"build-{core}", core)
    r = run_elf(elf, core)
    assert r.exit_code == 0
    assert r.output == f"micronas: class={tflm_class} name={tflm_class} label={label}\n"


@pytest.mark.integration
@needs_arm
@needs_cmake
def test_firmware_builds_with_cmake_and_reports_tflms_class(bundle, tmp_path):
    """The device's core (Cortex-M4F, hard float): cmake + arm-none-eabi-gcc with -Wall
    -Werror, the ELF run from reset in the emulator prints TFLM's class for the sample."""
    _check_firmware(bundle, "cortex-m4", tmp_path)


@pytest.mark.integration
@pytest.mark.slow
@needs_arm
@needs_cmake
@pytest.mark.parametrize("core", [c for c in CORES if c != "cortex-m4"])
def test_firmware_builds_for_every_core(bundle, tmp_path, core):
    _check_firmware(bundle, core, tmp_path)


#: The Arduino core whose flags the library is compiled with: Arduino Mbed OS Nano Boards
#: (arduino:mbed_nano, Nano 33 BLE: nRF52840), its cflags/cxxflags for the Cortex-M4F.
ARDUINO_NRF52_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
                       "-Os", "-ffunction-sections", "-fdata-sections"]
_ARDUINO_H = r"""
#pragma once
#include <stdint.h>
extern "C" void mn_semihost_write0(const char *text);
struct StubSerial {
  void begin(long) {}
  explicit operator bool() const { return true; }
  void print(const char *s) { mn_semihost_write0(s); }
  void print(long v) { char b[24]; int n = 0; unsigned long u = v < 0 ? 0ul - (unsigned long)v
    : (unsigned long)v; char t[24]; if (v < 0) b[n++] = '-'; int k = 0;
    do { t[k++] = (char)('0' + u % 10); u /= 10; } while (u); while (k) b[n++] = t[--k];
    b[n] = 0; print((const char *)b); }
  void print(int v) { print((long)v); }
  void print(unsigned long v) { print((long)v); }
  template <typename T> void println(T v) { print(v); print("\n"); }
};
extern StubSerial Serial;
unsigned long micros();
"""
_ARDUINO_MAIN = r"""
#include "Arduino.h"
StubSerial Serial;
unsigned long micros() { return 0; }
void setup();
int main() { setup(); return 0; }
"""


@pytest.mark.integration
@needs_arm
def test_arduino_library_compiles_with_an_arduino_cores_flags_and_runs(bundle, tmp_path):
    """src/*.c with the nRF52 Mbed core's flags (-Wall -Werror), the example sketch as C++
    against a stub Arduino.h (Serial writes through semihosting), linked with the firmware's
    start-up: the sketch prints TFLM's class."""
    from micronas.measure.semihost import run_elf

    out, _, tflm_class, label = bundle
    lib = out / "arduino" / "MicronasModel"
    props = dict(line.split("=", 1) for line in
                 (lib / "library.properties").read_text().splitlines() if "=" in line)
    assert props["name"] == "MicronasModel" and props["includes"] == "MicronasModel.h"
    (tmp_path / "Arduino.h").write_text(_ARDUINO_H)
    (tmp_path / "stub_main.cpp").write_text(_ARDUINO_MAIN)
    objs = []
    for src in sorted((lib / "src").glob("*.c")) + [out / "firmware" / "startup.c"]:
        obj = tmp_path / (src.stem + ".o")
        subprocess.run(["arm-none-eabi-gcc", *ARDUINO_NRF52_FLAGS, "-std=gnu11", "-Wall",
                        "-Werror", "-I", str(lib / "src"), "-I", str(out / "firmware"), "-c",
                        str(src), "-o", str(obj)], check=True, capture_output=True)
        objs.append(obj)
    sketch = lib / "examples" / "Classify"
    for src, lang in ((sketch / "Classify.ino", ["-x", "c++", "-include", "Arduino.h"]),
                      (tmp_path / "stub_main.cpp", [])):
        obj = tmp_path / (src.stem + ".o")
        r = subprocess.run(["arm-none-eabi-g++", *ARDUINO_NRF52_FLAGS, "-std=gnu++17",
                            "-fno-exceptions", "-fno-rtti", "-Wall", "-Werror", "-I",
                            str(tmp_path), "-I", str(lib / "src"), "-I", str(sketch), *lang,
                            "-c", str(src), "-o", str(obj)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        objs.append(obj)
    elf = tmp_path / "sketch.elf"
    subprocess.run(["arm-none-eabi-gcc", *ARDUINO_NRF52_FLAGS, "-nostartfiles",
                    "--specs=nano.specs", "--specs=nosys.specs", "-T",
                    str(out / "firmware" / "link.ld"), "-Wl,--gc-sections", *map(str, objs),
                    "-o", str(elf)], check=True, capture_output=True)
    r = run_elf(elf, "cortex-m4")
    assert r.exit_code == 0
    assert r.output.splitlines()[0] == f"micronas: class={tflm_class} name={tflm_class} " \
                                       f"label={label}"
