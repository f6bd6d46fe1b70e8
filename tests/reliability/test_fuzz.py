"""Hypothesis fuzzing of every parser, through the API: whatever the input, only the
project's error classes (:class:`~micronas.errors.MicronasError` and its subclasses; for the
CLI's number parsing argparse's ``ArgumentTypeError``) may escape.

Example counts add up to >= 10,000 per run (``MICRONAS_FUZZ_SCALE`` multiplies them); the
runs are derandomised, so CI replays the same inputs every time.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from micronas.errors import MicronasError

pytestmark = pytest.mark.system

#: Share of each test's examples to run: a quarter by default (the default command stays
#: fast); CI runs the whole set with MICRONAS_FUZZ_SCALE=1.
SCALE = float(os.environ.get("MICRONAS_FUZZ_SCALE", "0.25"))


def fuzz(n: int):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck), database=None)


VALID = {
    "nb201": "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|",
    "mcu": "w0.75_h1024|k3e6,k3e6,k3e3|k3e3|k7e4|k7e6,k5e4,k5e6|k7e3,k5e6,k5e4,k5e6|k3e6,k7e4,k7e3,k3e3",
}


@st.composite
def mutated(draw, base: str) -> str:
    """A valid string with a few characters replaced, inserted or deleted."""
    s = list(base)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(s)))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        ch = draw(st.characters())
        if op == "insert" or not s:
            s.insert(i, ch)
        elif i < len(s):
            s[i] = ch if op == "replace" else ""
    return "".join(s)


def _arch_inputs(space: str):
    return st.one_of(st.text(max_size=120), mutated(VALID[space]),
                     st.integers(-2**70, 2**70).map(str), st.integers(-10, 20000),
                     st.sampled_from(["²", "１２３", "1_000", " 12 ", "-0", "", "|", "||+||"]))


@pytest.mark.parametrize("space", sorted(VALID))
def test_architecture_strings(space):
    from micronas import api

    @fuzz(2000)
    @given(_arch_inputs(space))
    def run(text):
        try:
            info = api.arch_info(text, space)
        except MicronasError:
            return
        assert info  # a parsed architecture formats back and parses again
        assert api.parse_arch(api.parse_arch(text, space), space) == api.parse_arch(text, space)

    run()


@fuzz(1000)
@given(st.one_of(st.text(max_size=40), st.integers().map(str),
                 st.sampled_from(["-1", "1180591620717411303424", "１２３", "²", "4294967296"])))
def test_cli_integers_and_seeds(text):
    from micronas.cli.parser import _int, _seed

    for f in (_int, _seed):
        try:
            v = f(text)
        except argparse.ArgumentTypeError:
            continue
        assert isinstance(v, int)
    try:
        assert 0 <= _seed(text) < 2**32
    except argparse.ArgumentTypeError:
        pass


_scalar = st.one_of(st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.text(max_size=80))
_value = st.one_of(_scalar, st.lists(_scalar, max_size=3))
_BASE = {"name": "fuzz", "core": "cortex-m7", "clock_mhz": 216, "sram_bytes": 327680,
         "flash_bytes": 1048576, "dsp": True, "fpu": True, "sources": ["x"]}
_KEYS = [*_BASE, "description", "latency", "runtime", "extra"]


@st.composite
def profiles(draw) -> dict:
    d = dict(_BASE)
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(_KEYS))
        if key == "latency":
            d[key] = {draw(st.sampled_from(["conv", "pool", "add", "bogus", "overhead_cycles"])):
                      draw(st.one_of(_scalar, st.dictionaries(
                          st.sampled_from(["cycles_per_mac", "cycles_per_output", "nope"]),
                          _scalar, max_size=2)))}
        elif key == "runtime":
            d[key] = draw(st.dictionaries(st.sampled_from(
                ["name", "arena_alignment_bytes", "code_flash_bytes", "ram_reserved_bytes", "x"]),
                _scalar, max_size=3))
        elif draw(st.booleans()):
            d.pop(key, None)
        else:
            d[key] = draw(_value)
    return d


@functools.cache
def _net():
    from micronas import api

    return api.build_ir(1)


def _cost_is_sane(device) -> None:
    from micronas.hardware import estimate

    r = estimate(_net(), device)
    assert math.isfinite(r.latency_ms) and r.latency_ms > 0
    assert r.peak_sram_bytes > 0 and r.flash_bytes > 0


@fuzz(1500)
@given(profiles())
def test_device_profiles(raw):
    from micronas.hardware.device import device_from_dict

    try:
        text = tomli_w.dumps(raw)
    except (TypeError, ValueError):  # not representable in TOML (NaN keys, ...)
        return
    try:
        dev = device_from_dict(tomllib.loads(text), "fuzz.toml")
    except MicronasError:
        return
    _cost_is_sane(dev)


def _file(tmp: str, name: str, blob: bytes) -> Path:
    p = Path(tmp) / name
    p.write_bytes(blob)
    return p


_bytes = st.one_of(st.binary(max_size=400),
                   st.text(max_size=300).map(lambda s: s.encode("utf-8")),
                   st.text(max_size=100).map(lambda s: s.encode("utf-16")))


@fuzz(1000)
@given(_bytes)
def test_device_files(blob):
    from micronas.hardware.device import load_device

    with tempfile.TemporaryDirectory() as tmp:
        try:
            dev = load_device(_file(tmp, "d.toml", blob))
        except MicronasError:
            return
        _cost_is_sane(dev)


_cell = st.one_of(st.text(max_size=12), st.sampled_from(["1", "6111", "nan", "inf", "1e308", "-5",
                                                         "0", "50", VALID["nb201"]]))


@fuzz(1500)
@given(st.one_of(_bytes, st.lists(st.lists(_cell, min_size=1, max_size=4), max_size=6).map(
    lambda rows: ("arch,latency_ms\n" + "\n".join(",".join(r) for r in rows)).encode())))
def test_measurement_csvs(blob):
    from micronas.measure.calibration import read_measurements

    with tempfile.TemporaryDirectory() as tmp:
        try:
            rows = read_measurements(_file(tmp, "m.csv", blob))
        except MicronasError:
            return
        assert rows and all(0 < float(r["latency_ms"]) < math.inf for r in rows)


@fuzz(500)
@given(_bytes)
def test_benchmark_tables(blob):
    from micronas.bench.table import load_table

    with tempfile.TemporaryDirectory() as tmp:
        with pytest.raises(MicronasError):  # no short file is a complete NB201 table
            load_table(_file(tmp, "t.csv", b"index,arch,cifar10_test,cifar100_test,"
                             b"imagenet16_120_test\n" + blob))


@fuzz(500)
@given(_bytes)
def test_result_caches(blob):
    from micronas.infra.cache import ResultStore

    with tempfile.TemporaryDirectory() as tmp:
        try:
            store = ResultStore(_file(tmp, "r.sqlite", blob))
        except MicronasError:
            return
        store.put("s", "t", "k", "i", "h", 0, 1.0, (), 0.1)
        assert store.get("s", "t", "k", "i", "h", 0) == (1.0, (), 0.1)
        store.close()


_arrays = st.tuples(
    st.lists(st.integers(0, 5), min_size=1, max_size=4),
    st.sampled_from(["float32", "float64", "int64", "uint8", "bool", "complex64"]),
    st.sampled_from([None, "nan", "inf"]))


def _array(spec, rng: np.random.Generator) -> np.ndarray:
    shape, dtype, bad = spec
    a = (rng.standard_normal(shape) * 3).astype(dtype)
    if bad and a.size and a.dtype.kind == "f":
        a.flat[0] = float(bad)
    return a


@fuzz(500)
@given(st.dictionaries(st.sampled_from(["x_train", "y_train", "x_test", "y_test", "extra"]),
                       _arrays, max_size=5), st.integers(0, 2**32 - 1))
def test_npz_datasets(arrays, seed):
    from micronas.tasks.data import load_dataset

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "d.npz"
        np.savez(p, **{k: _array(v, rng) for k, v in arrays.items()})
        try:
            ds = load_dataset(p)
        except MicronasError:
            return
        assert np.isfinite(ds.x_train).all() and ds.classes >= 2


@fuzz(300)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), _bytes), max_size=6))
def test_image_folders(files):
    from micronas.tasks.data import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        root.mkdir()
        for i, (cls, blob) in enumerate(files):
            (root / cls).mkdir(exist_ok=True)
            (root / cls / f"{i}.png").write_bytes(blob)
        try:
            load_dataset(root)
        except MicronasError:
            return
