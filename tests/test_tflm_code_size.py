"""benchmarks/results/tflm_code_size.csv (TFLM + CMSIS-NN code size per core and op): the
committed table is well-formed and consistent with its sidecar; with the sources at hand
(MICRONAS_TFLM, MICRONAS_CMSIS_NN, MICRONAS_FLATBUFFERS, MICRONAS_GEMMLOWP, MICRONAS_RUY) the
BASE of one core is rebuilt and compared (MICRONAS_TFLM_BUILD_DIR: an object cache to reuse)."""
import csv
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CSV = REPO / "benchmarks" / "results" / "tflm_code_size.csv"
META = CSV.with_suffix(".json")


def _bench():
    spec = importlib.util.spec_from_file_location("tflm_code_size",
                                                  REPO / "benchmarks" / "tflm_code_size.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench():
    return _bench()


@pytest.fixture(scope="module")
def rows():
    with CSV.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def meta():
    return json.loads(META.read_text())


@pytest.mark.unit
def test_columns_and_rows(rows, bench):
    assert list(rows[0]) == ["core", "op", "text_bytes", "data_bytes", "bss_bytes", "kernel_source",
                             "marginal_text_bytes"]
    cores = {r["core"] for r in rows}
    assert cores == set(bench.CORES)
    for core in cores:
        ops = [r["op"] for r in rows if r["core"] == core]
        assert sorted(ops) == sorted(["BASE", *bench.OPS]), core
        assert len(ops) == len(set(ops)), core


@pytest.mark.unit
def test_sizes(rows, bench):
    for r in rows:
        text, data, bss = (int(r[k]) for k in ("text_bytes", "data_bytes", "bss_bytes"))
        assert text > 0, r
        if r["op"] == "BASE":
            assert data >= 0 and bss >= 0, r
            assert 8 * 1024 < text < 256 * 1024, r
            assert r["kernel_source"] == "" and r["marginal_text_bytes"] == ""
        else:
            assert text < 64 * 1024, r
            assert r["kernel_source"] in ("cmsis_nn", "reference"), r
            # an op's own code (next to all the others) is part of what it adds alone
            assert 0 <= int(r["marginal_text_bytes"]) <= text, r
    by = {(r["core"], r["op"]): r for r in rows}
    # the ops CMSIS-NN accelerates come from it
    for core in bench.CORES:
        for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"):
            assert by[core, op]["kernel_source"] == "cmsis_nn"


@pytest.mark.unit
def test_sidecar_and_combined_check(rows, meta, bench):
    for key in ("tflm", "cmsis_nn", "compiler", "common_flags", "ldflags", "cores"):
        assert meta[key] and meta[key] != "unknown", key
    assert "arm-none-eabi-gcc" in meta["compiler"]
    by = {(r["core"], r["op"]): int(r["text_bytes"]) for r in rows}
    marg = {(r["core"], r["op"]): int(r["marginal_text_bytes"] or 0) for r in rows}
    bounds = meta["combined_max_error"]
    assert set(meta["combined_check"]) == set(bench.CORES)
    for core, chk in meta["combined_check"].items():
        assert chk["ops"] == bench.COMBINED
        real = chk["combined_text_bytes"]
        assert real > by[core, "BASE"]
        pred = by[core, "BASE"] + sum(by[core, op] for op in chk["ops"])
        assert pred == chk["predicted_text_bytes"], core
        err = (pred - real) / real
        assert err == pytest.approx(chk["error"], abs=1e-4)
        # the increments alone count shared helpers once per op: an overestimate, bounded
        assert 0 <= err <= bounds["sum_of_increments"], (core, err)
        pred2 = bench.predict_text(by[core, "BASE"],
                                   {op: (by[core, op], marg[core, op]) for op in chk["ops"]})
        assert pred2 == chk["predicted_shared_text_bytes"]
        err2 = (pred2 - real) / real
        assert err2 == pytest.approx(chk["shared_error"], abs=1e-4)
        assert abs(err2) <= bounds["shared_estimate"], (core, err2)


@pytest.mark.integration
@pytest.mark.slow
def test_rebuild_base_matches(tmp_path, rows, meta, bench):
    env = {k: os.environ.get(f"MICRONAS_{k.upper()}")
           for k in ("tflm", "cmsis_nn", "flatbuffers", "gemmlowp", "ruy")}
    missing = [f"MICRONAS_{k.upper()}" for k, v in env.items() if not v or not Path(v).is_dir()]
    if missing:
        pytest.skip(f"TFLM sources not given: set {', '.join(missing)} to checkouts")
    if not shutil.which("arm-none-eabi-g++"):
        pytest.skip("arm-none-eabi-g++ not installed")
    args = type("Args", (), {})()
    for k, v in env.items():
        setattr(args, k, Path(v).resolve())
    bench.ensure_flatbuffers_patch(args.flatbuffers, args.tflm)
    # MICRONAS_TFLM_BUILD_DIR: an object cache of the benchmark's (--build-dir) to reuse
    args.build_dir = Path(os.environ.get("MICRONAS_TFLM_BUILD_DIR") or tmp_path).resolve()
    args.jobs = os.cpu_count() or 1
    core = "cortex-m0plus"
    got = bench.measure_core(core, args, [], base_only=True)["BASE"]
    want = next(r for r in rows if r["core"] == core and r["op"] == "BASE")
    same = (bench.git_version(args.tflm) == meta["tflm"]
            and bench.git_version(args.cmsis_nn) == meta["cmsis_nn"]
            and bench.compiler_version() == meta["compiler"])
    # the same sources and compiler give the same bytes; other versions stay close
    tol = 0.0 if same else 0.15
    assert got["text_bytes"] == pytest.approx(int(want["text_bytes"]), rel=tol)
