"""Real data, resumable training, real weights through int8 / TFLM, the bundle."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from micronas.errors import DataError
from micronas.tasks.data import load_dataset

pytestmark = pytest.mark.system

TINY = "w0.2_h512|k3e3|k3e3|k3e3|k3e3|k3e3|k3e3"


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "micronas", *args], capture_output=True,
                          text=True, timeout=timeout)


def _npz(path: Path, **over) -> Path:
    rng = np.random.default_rng(0)
    d = {"x_train": rng.normal(size=(40, 1, 6, 5)).astype(np.float32),
         "y_train": np.arange(40) % 4, "x_test": rng.normal(size=(8, 1, 6, 5)).astype(np.float32),
         "y_test": np.arange(8) % 4}
    d.update(over)
    np.savez(path, **d)
    return path


def test_npz_loads_and_normalises(tmp_path):
    ds = load_dataset(str(_npz(tmp_path / "d.npz")), seed=0)
    assert ds.input_shape == (1, 6, 5) and ds.classes == 4
    assert abs(float(ds.x_train.mean())) < 1e-5


@pytest.mark.parametrize("over, needle", [
    ({"x_train": np.full((40, 1, 6, 5), np.nan, np.float32)}, "nan"),
    ({"y_train": np.zeros(40, int), "y_test": np.zeros(8, int)}, "class"),
    ({"y_test": np.arange(8) % 4 + 5}, "range"),
    ({"x_test": np.zeros((8, 1, 7, 5), np.float32)}, "must match"),
    ({"y_train": np.arange(39) % 4}, ""),
])
def test_bad_npz_one_line_exit_2_no_output(tmp_path, over, needle):
    data = _npz(tmp_path / "bad.npz", **over)
    out = tmp_path / "out"
    r = cli("train", TINY, "--data", str(data), "--epochs", "1", "--out", str(out))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr and "bad.npz" in lines[0]
    assert needle in lines[0].lower()
    assert not out.exists()


def _folder(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (12, 10), dtype=np.uint8)).save(
                root / c / f"{i}.png")
    return root


def test_image_folder_split_is_seeded(tmp_path):
    root = _folder(tmp_path / "imgs")
    a, b = load_dataset(str(root), seed=1), load_dataset(str(root), seed=1)
    assert a.class_names == ("cat", "dog") and len(a.y_train) + len(a.y_test) == 12
    assert np.array_equal(a.x_test, b.x_test)


@pytest.mark.parametrize("damage, needle", [("empty", "dog"), ("unreadable", "3.png")])
def test_bad_image_folder(tmp_path, damage, needle):
    root = _folder(tmp_path / "imgs")
    if damage == "empty":
        for f in (root / "dog").iterdir():
            f.unlink()
    else:
        (root / "dog" / "3.png").write_bytes(b"not an image")
    with pytest.raises(DataError) as e:
        load_dataset(str(root), seed=0)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_weights_from_torch_folds_batchnorm():
    from micronas.deploy.reference import run_float
    from micronas.deploy.weights import weights_from_torch
    from micronas.spaces import get_space
    from micronas.tasks import Task

    sp = get_space("mcu")
    task = Task.custom((1, 28, 28), 10)
    sp = sp.for_task(task) if hasattr(sp, "for_task") else sp
    a = sp.parse(TINY)
    m = sp.to_module(a, task)
    g = torch.Generator().manual_seed(0)
    for mod in m.modules():  # non-trivial BatchNorm statistics to fold
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    m.eval()
    net, w = weights_from_torch(m, (1, 28, 28), "t")
    x = torch.randn(3, 1, 28, 28, generator=g)
    ref = m(x).detach().double().numpy()
    got = run_float(net, w, x.double().numpy())[net.outputs[0]]
    assert np.abs(np.asarray(got).reshape(ref.shape) - ref).max() < 1e-4


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_same_weights(tmp_path):
    args = ("train", TINY, "--task", "digits", "--epochs", "4", "--quiet")
    ref = tmp_path / "ref"
    r = cli(*args, "--out", str(ref))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, "-m", "micronas", *args, "--out", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = out / "checkpoint.pt"
    t0 = time.time()
    while not ck.exists() and time.time() - t0 < 300 and p.poll() is None:
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    epoch = torch.load(ck, map_location="cpu", weights_only=True)["epoch"]
    assert epoch < 4, "the run finished before it could be killed"
    r = cli(*args, "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr


    assert json.loads(r.stdout)["resumed_from_epoch"] == epoch
    a, b = _weights(ref / "checkpoint.pt"), _weights(ck)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_of_another_run_is_refused(tmp_path):
    out = tmp_path / "o"
    assert cli("train", TINY, "--task", "digits", "--epochs", "1", "--quiet",
               "--out", str(out)).returncode == 0
    r = cli("train", TINY, "--task", "digits", "--epochs", "2", "--quiet", "--out", str(out))
    assert r.returncode == 2 and "another run" in r.stderr


def test_short_digits_build_export_and_bundle(tmp_path):
    out = tmp_path / "b"
    compile_args = [] if shutil.which("arm-none-eabi-gcc") else ["--no-compile"]
    r = cli("build", "--task", "digits", "--device", "stm32f746", "--epochs", "1", "--batch-size", "16",
            "--evaluations", "6", "--no-cache", "--quiet", "--json", "--out", str(out),
            *compile_args)
    assert r.returncode == 0, r.stderr
    b = json.loads((out / "bundle" / "bundle.json").read_text())
    assert b["int8_tflm_test_accuracy"] > 0.2  # chance is 0.1 (one epoch of 90 steps)
    assert b["int8_tflm_test_samples"] == 359
    assert b["fits_with_reserve"]
    for f in ("model.tflite", "model_data.c", "model_data.h", "model_config.h", "main.cc",
              "standalone/model.c"):
        assert (out / "bundle" / f).is_file(), f
    if not compile_args:
        assert b["compiled"]["standalone_flash_bytes"] > 0
        assert b["emulator"]["standalone_equals_tflm"]
    assert "int8 test accuracy" in (out / "report.md").read_text()
    tfl = tmp_path / "m.tflite"
    r = cli("export", "--weights", str(out / "train"), "--out", str(tfl))
    assert r.returncode == 0, r.stderr
    assert "trained" in r.stdout.lower() and tfl.read_bytes() == (
        out / "bundle" / "model.tflite").read_bytes()
    # build hands its data, module and checkpoint on in memory: the bundle it wrote is the
    # one deploy writes from the checkpoint file, byte for byte
    again = tmp_path / "again"
    r = cli("deploy", str(out / "train"), "--device", "stm32f746", "--out", str(again),
            "--verify-samples", "0", "--quiet", *compile_args)
    assert r.returncode == 0, r.stderr
    for f in ("model.tflite", "model_data.c", "model_data.h", "model_config.h", "main.cc",
              "standalone/model.c", "standalone/mn_model.h"):
        assert (again / f).read_bytes() == (out / "bundle" / f).read_bytes(), f
    b2 = json.loads((again / "bundle.json").read_text())
    for k in ("float_test_accuracy", "int8_tflm_test_accuracy", "latency_ms", "peak_sram_bytes",
              "flash_bytes"):
        assert b2[k] == b[k], k
    assert 0 < b["stages"]["quantise_seconds"]


def test_default_length_is_about_20000_steps():
    from micronas.ship.train import Recipe, auto_epochs

    assert auto_epochs(60_000, 128) == 43      # fashion-mnist
    assert auto_epochs(1_437, 128) == 200      # digits: capped
    assert auto_epochs(1_000_000, 128) == 15   # at least 15
    assert Recipe().resolved(60_000).epochs == 43
    assert Recipe(epochs=3).resolved(60_000).epochs == 3
