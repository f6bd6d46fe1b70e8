"""The audio front end: WAV folders -> CMSIS-DSP q15 MFCCs -> int8 input, its C for the board
(checked bit for bit on the host and in the emulated Cortex-M), its cost in the budgets, bad
input, and a keyword-spotting build from espeak-ng speech."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from micronas.errors import BudgetError
from micronas.tasks.frontend import FeatureScaling, FrontEnd

sys.path.insert(0, str(Path(__file__).parent))
from kws_audio import make_kws_folder, missing_tools  # noqa: E402

pytest.importorskip("cmsisdsp", reason="pip install 'cmsisdsp>=1.10.3'")
SDIST = os.environ.get("MICRONAS_CMSIS_DSP")
NO_SDIST = ("needs CMSIS-DSP's sources: set MICRONAS_CMSIS_DSP (pip download cmsisdsp==1.10.3 "
            "--no-binary cmsisdsp --no-deps --no-build-isolation; tar xzf it)")


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def tone_folder(root: Path, rate: int = 16000, per_class: int = 6) -> Path:
    """Two classes of noisy tones (300 Hz and 1200 Hz), seeded."""
    rng = np.random.default_rng(0)
    t = np.arange(int(0.8 * rate)) / rate
    for name, f in (("low", 300.0), ("high", 1200.0)):
        for i in range(per_class):
            x = 8000 * np.sin(2 * np.pi * f * (1 + 0.02 * i) * t) + 500 * rng.standard_normal(len(t))
            write_wav(root / name / f"{i}.wav", x, rate)
    return root


def clips_of(fe: FrontEnd, n: int = 3) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(fe.clip_samples) / fe.sample_rate_hz
    out = [np.clip(3000 * np.sin(2 * np.pi * (200 + 300 * k) * t) + 800 * rng.standard_normal(len(t)),
                   -32768, 32767) for k in range(n)]
    out[0][: fe.clip_samples // 3] = 0  # silence: a frame whose maximum is 0
    return np.asarray(out, dtype=np.int16)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.run([sys.executable, "-m", "micronas", *args], capture_output=True,
                          text=True, env=env, cwd=cwd)


@pytest.mark.unit
def test_frontend_shape_and_validation():
    fe = FrontEnd()
    assert fe.feature_shape == (1, 49, 10) and fe.fft_length == 256
    assert FrontEnd.from_dict(fe.to_dict()) == fe
    with pytest.raises(Exception, match="FFT length"):
        FrontEnd(frame_samples=300)
    with pytest.raises(Exception, match="only q15"):
        FrontEnd(dtype="f32")
    with pytest.raises(Exception, match="mel range"):
        FrontEnd(fmax_hz=9000.0)


@pytest.mark.unit
def test_feature_scaling_integer_rounding():
    s = FeatureScaling((10, -5), (1 << 15, 3 << 14), 16)  # x 0.5 and x 0.75
    v = np.array([[10, -5], [11, -3], [13, 100], [-10000, 10000]], dtype=np.int16)
    # (1 * 0.5) = 0.5 rounds half up to 1; (2 * .75) = 1.5 -> 2; 3 * .5 = 1.5 -> 2; saturation
    assert s.apply(v).tolist() == [[0, 0], [1, 2], [2, 79], [-128, 127]]
    f = np.random.default_rng(0).normal([100, -50], [20, 200], size=(500, 7, 2)).astype(np.int16)
    fit = FeatureScaling.fit(f)
    q = fit.apply(f).astype(float) / 32
    assert np.allclose(q.reshape(-1, 2).mean(0), 0, atol=0.05)
    assert np.allclose(q.reshape(-1, 2).std(0), 1, atol=0.05)


@pytest.mark.unit
def test_frontend_cost_counts_every_frame_and_buffer():
    from micronas.hardware import load_device
    from micronas.hardware.frontend import frontend_cost

    dev = load_device("stm32l4r5")
    fe = FrontEnd()
    c = frontend_cost(fe, dev)
    assert c.frames == 49 and not c.extrapolated
    assert c.latency_ms == pytest.approx(c.cycles_per_frame * 49 / 120e3)
    assert c.sram_bytes >= 2 * fe.clip_samples + 10 * fe.fft_length
    assert c.table_bytes == fe.tables().flash_bytes() + 8 * fe.coefficients
    half = frontend_cost(FrontEnd(clip_samples=4000), dev)
    assert half.latency_ms < c.latency_ms / 1.9 and half.sram_bytes < c.sram_bytes
    assert frontend_cost(fe, load_device("stm32g0b1")).latency_ms > 4 * c.latency_ms  # M0+ @ 64 MHz
    assert frontend_cost(FrontEnd(frame_samples=512, sample_rate_hz=16000, clip_samples=16000,
                                  hop_samples=320), dev).extrapolated


@pytest.mark.unit
def test_budgets_leave_the_network_what_the_front_end_does_not_take():
    from micronas.hardware import load_device
    from micronas.hardware.frontend import frontend_cost
    from micronas.search.costs import Budgets
    from micronas.search.run import network_budgets

    dev = load_device("stm32l4r5")
    fe = frontend_cost(FrontEnd(), dev)
    b = network_budgets(Budgets(50.0, 500_000, 1_000_000), fe, dev)
    assert b.max_latency_ms == pytest.approx(50.0 - fe.latency_ms)
    assert b.max_sram_bytes == 500_000 - fe.sram_bytes
    assert b.max_flash_bytes == 1_000_000 - fe.flash_bytes
    with pytest.raises(BudgetError, match="front end alone"):
        network_budgets(Budgets(fe.latency_ms * 0.9, None, None), fe, dev)


@pytest.mark.integration
def test_wav_folder_resampled_into_mfcc_features(tmp_path):
    from micronas.tasks.data import load_dataset

    ds = load_dataset(tone_folder(tmp_path / "w", rate=16000), seed=0)
    assert ds.input_shape == (1, 49, 10) and ds.class_names == ("high", "low")
    assert ds.meta["kind"] == "audio" and ds.meta["wav_sample_rate_hz"] == 16000
    assert ds.mean == (0.0,) and ds.std == (1.0,)
    # the inputs are the front end's int8 values / 32, exactly
    assert np.array_equal(ds.x_train * 32, np.round(ds.x_train * 32))
    assert ds.task().frontend == ds.frontend and ds.frontend.scaling is not None
    again = load_dataset(tmp_path / "w", seed=0, frontend=ds.frontend)
    assert np.array_equal(again.x_test, ds.x_test)


@pytest.mark.system
@pytest.mark.parametrize("case", ["mixed-rates", "corrupt", "empty-class"])
def test_bad_wav_folders_one_line_exit_2_nothing_written(tmp_path, case):
    root = tone_folder(tmp_path / "w")
    if case == "mixed-rates":
        write_wav(root / "low" / "zz_8k.wav", np.zeros(8000), 8000)
        name = "zz_8k.wav"
    elif case == "corrupt":
        (root / "high" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
        name = "broken.wav"
    else:
        (root / "silent").mkdir()
        name = "silent"
    out = tmp_path / "out"
    r = cli("build", "--data", str(root), "--device", "stm32l4r5", "--epochs", "1",
            "--no-cache", "--out", str(out))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], r.stderr
    assert not out.exists()


@pytest.mark.integration
@pytest.mark.skipif(SDIST is None, reason=NO_SDIST)
@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_generated_c_on_the_host_equals_python_features():
    from micronas.deploy.frontend import host_features

    base = FrontEnd()
    clips = clips_of(base)
    fe = FrontEnd(scaling=FeatureScaling.fit(base.mfcc(clips)))
    py = fe.features(clips)
    assert np.array_equal(host_features(fe, clips), py)
    assert len(np.unique(py)) > 50  # not a constant map


@pytest.mark.integration
@pytest.mark.skipif(SDIST is None, reason=NO_SDIST)
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="apt-get install --no-install-recommends gcc-arm-none-eabi "
                           "libnewlib-arm-none-eabi")
def test_generated_c_on_emulated_cortex_m4_equals_python_features():
    from micronas.measure.frontend import run_frontend

    base = FrontEnd()
    clips = clips_of(base, 1)
    fe = FrontEnd(scaling=FeatureScaling.fit(base.mfcc(clips)))
    r = run_frontend(fe, "cortex-m4", clips[0], portable=True)
    assert np.array_equal(r.features, fe.features(clips)[0])
    assert 20_000 < r.cycles_per_frame < 1_000_000 and r.flash_bytes > r.table_bytes


@pytest.mark.system
@pytest.mark.slow
@pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))
def test_keyword_spotting_build_from_espeak_speech(tmp_path):
    data = make_kws_folder(tmp_path / "kws")
    out = tmp_path / "b"
    r = cli("build", "--data", str(data), "--device", "stm32l4r5", "--max-latency-ms", "50",
            "--epochs", "40", "--evaluations", "6", "--no-cache", "--out", str(out))
    assert r.returncode == 0, r.stderr
    b = json.loads((out / "bundle" / "bundle.json").read_text())
    fe = b["frontend"]
    assert fe["cost"]["latency_ms"] > 0
    assert fe["total_latency_ms"] == pytest.approx(b["latency_ms"] + fe["cost"]["latency_ms"])
    assert fe["total_latency_ms"] <= 50 and b["fits_with_reserve"]
    assert b["int8_tflm_test_accuracy"] > 0.5  # 5 classes: chance is 0.2
    res = json.loads((out / "search" / "result.json").read_text())
    assert res["frontend"]["total_latency_ms"] <= 50
    c = (out / "bundle" / "mn_frontend.c").read_text()
    assert "arm_mfcc_init_256_q15" in c and "arm_mfcc_q15(" in c
    assert "front end" in r.stdout.lower() or "front end" in (out / "report.md").read_text()
