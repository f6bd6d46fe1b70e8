"""Tasks resolved once at the edge, custom tasks through cost and search, one settings
object, reports and plots, and the defects a new user found in them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from micronas import api
from micronas.errors import MicronasError
from micronas.tasks import Task, get_task, parse_input, resolve_task

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_tasks_resolve_once_with_clear_errors():
    assert get_task("CIFAR_10".replace("_", "")) == get_task("cifar10")
    assert get_task("imagenet16").input_shape == (3, 16, 16)
    assert parse_input("49x10x1") == (1, 49, 10) and parse_input("96x96x1") == (1, 96, 96)
    # two numbers are a time series, LxC (docs/spaces.md): 128 steps of 3 channels
    assert parse_input("128x3") == (3, 128, 1) and parse_input("128x1x3") == (3, 128, 1)
    t = resolve_task(None, "96x96x1", 2)
    assert (t.input_shape, t.classes, t.height != t.width) == ((1, 96, 96), 2, False)
    for bad, fragment in (("96x", "neither HxWxC"), ("９6x96x1", "neither HxWxC"),
                          ("0x4x1", "1..4096"), ("96x96", "channels 1..64"), ("1x3", "2..65536")):
        with pytest.raises(MicronasError, match=fragment):
            parse_input(bad)
    with pytest.raises(MicronasError, match="go together"):
        resolve_task(None, "32x32x3", None)
    with pytest.raises(MicronasError, match="not both"):
        resolve_task("cifar10", "32x32x3", 10)
    with pytest.raises(MicronasError, match="at least 2 classes"):
        Task.custom((1, 8, 8), 1)


def test_cost_on_a_custom_task(cli):
    code, out, err = cli("cost", "6111", "--input", "64x64x1", "--classes", "2", "--device",
                         "nrf52840", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["task"] == "custom-64x64x1 (64x64x1, 2 classes)"
    first = d["layers"][0]
    assert first["output_shape"] == [16, 64, 64] and d["layers"][-1]["output_shape"] == [2]
    code, _, err = cli("cost", "6111", "--input", "49x10x1", "--classes", "12")
    assert code == 2 and "multiples of 4" in err and err.count("\n") == 1


def test_cost_of_a_reference_network_names_its_own_input(cli):
    code, out, _ = cli("cost", "mlperf:kws", "--device", "stm32l4r5")
    assert code == 0 and "its own input 49x10x1" in out and "cifar10" not in out


def test_search_on_a_custom_task_builds_the_cells_for_it():
    from micronas.search import SearchConfig, run_search

    r = run_search(SearchConfig.of(input="32x32x3", classes=10, strategy="evolution",
                                evaluations=4, ntk_batch=4, lr_samples=32, workers=1))
    assert r.task == "custom-32x32x3" and r.input_shape == (3, 32, 32) and r.classes == 10
    r2 = run_search(SearchConfig.of(input="64x48x1", classes=2, strategy="evolution",
                                 evaluations=4, indicators="params", workers=1))
    assert r2.input_shape == (1, 64, 48) and r2.fits


def test_score_and_search_read_one_settings_object():
    """Defect: `score 10400` gave NTK 3164, `search` 955.9 for the same architecture."""
    from micronas.proxies import ProxySettings
    from micronas.search import SearchConfig

    assert SearchConfig.of().proxy == ProxySettings()
    want = json.loads((FIXTURES / "search_nb201.json").read_text())["default/0"]
    got = api.score(want["index"], ["ntk_cond", "linear_regions", "synflow"])
    for name, v in want["indicators"].items():
        assert got.scores[name].value == pytest.approx(v, rel=1e-6), name


def test_refine_uses_the_search_settings():
    """Defect: --refine built its evaluator with default settings, not the search's."""
    from micronas.proxies import ProxySettings
    from micronas.search import SearchConfig, run_search

    cfg = SearchConfig.of(strategy="random", evaluations=3, refine=1, ntk_batch=4, lr_samples=32,
                       workers=1, seed=3, indicators="ntk_cond,linear_regions")
    r = run_search(cfg)
    trail = r.history[-1]["refine"]
    s = cfg.proxy
    assert s != ProxySettings()
    for step in trail:
        got = api.score(step["arch"], ["ntk_cond", "linear_regions"], seed=cfg.seed, settings=s)
        for name in ("ntk_cond", "linear_regions"):
            assert step[name] == pytest.approx(got.scores[name].value, rel=1e-6)


@pytest.mark.slow
def test_prune_infeasible_names_the_strategy_that_can(cli):
    """Defect: prune said no NB201 architecture meets 100 ms on imagenet16-120, while
    evolution finds one at 79.7 ms (index 6257, nrf52840)."""
    code, _, err = cli("search", "--task", "imagenet16-120", "--max-latency-ms", "100",
                       "--device", "nrf52840", "--no-cache", "--quiet")
    assert code == 2 and err.count("\n") == 1
    assert "pruning supernet" in err and "--strategy evolution" in err


def test_report_and_plot_of_a_prune_search(tmp_path):
    """Defects: report.md printed "SRAM None KB"; the PNG plotted pruning's supernets as
    architectures."""
    from micronas.search.report import _markdown, evaluated_archs, plot_points, write_outputs
    from micronas.search.run import SearchConfig, SearchResult

    cfg = SearchConfig.of(max_latency_ms=300.0)
    hist = [{"round": 1, "ntk_cond": 1.0, "latency_ms": 900.0, "macs": 1,
             "candidates": [{"edge": 0, "op": "skip_connect", "ntk_cond": 2.0,
                             "latency_ms": 800.0, "macs": 1}]}]
    r = SearchResult(arch="x", index=7, indicators={"ntk_cond": 3.0, "linear_regions": 10.0,
                                                    "synflow": 5.0},
                     latency_ms=250.0, peak_sram_bytes=1, flash_bytes=1, macs=1, params=1,
                     fits=True, search_seconds=1.0, seed=0, evaluations=57,
                     config=cfg.to_dict(), history=hist)
    md = _markdown(r)
    assert "SRAM none" in md and "None" not in md and "latency 300 ms" in md
    assert [x["arch"] for x in evaluated_archs(r.history, r.arch, r.indicators,
                                               r.latency_ms)] == ["x"]
    pts, _, _, note = plot_points(r, None, None)
    assert pts == [] and "supernets" in note
    write_outputs(r, tmp_path, pts, "y", 1.0, note)
    assert (tmp_path / "pareto.png").stat().st_size > 1000


def test_pareto_front_and_ticks(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from micronas.search.report import pareto_front

    pts = [(1.0, 1.0), (2.0, 0.5), (3.0, 2.0), (10.0, 1.5), (30.0, 3.0)]
    assert pareto_front(pts) == [(1.0, 1.0), (3.0, 2.0), (30.0, 3.0)]


def test_calibrate_says_when_it_fits_one_scale(tmp_path):
    """Defect: "fitted 11 op classes to 3 measurements" when it fitted one scale."""
    from micronas.hardware import estimate, load_device

    dev = load_device("stm32f746")
    rows = ["arch,latency_ms"] + [f"{a},{1.5 * estimate(api.build_ir(a), dev).latency_ms:.6f}"
                                  for a in ("6111", "100", "9000")]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    cal = api.calibrate(dev, str(tmp_path / "m.csv"))
    assert "one latency scale" in cal.summary() and "3 measurements" in cal.summary()


def test_outputs_respect_the_umask(tmp_path):
    """Defect: output files were created mode 0600."""
    from micronas.infra.fileio import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.txt", lambda f: f.write("x"))
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_unicode_and_huge_numbers_are_refused(cli):
    code, _, err = cli("arch", "１２３")
    assert code == 2 and err.count("\n") == 1
    code, _, err = cli("search", "--seed", "-1")
    assert code == 2 and "seed" in err


def test_the_space_follows_the_architecture_or_the_task(cli):
    """NB201 stays the default for its own tasks; a task of yours searches ``mcu``; an
    architecture string says its own space."""
    assert api.default_space() == "nb201"
    assert api.default_space(api.resolve_task(None, "32x32x3", 10)) == "mcu"
    assert api.default_space("digits") == "mcu"
    assert api.default_space(None, 6111) == "nb201"
    assert api.default_space(api.resolve_task(None, "64x64x1", 2), "6111") == "nb201"
    assert api.default_space(None, "w0.2_h512|k3e3|k3e3|k3e3|k3e3|k3e3|k3e3") == "mcu"
    code, out, err = cli("search", "--input", "24x24x1", "--classes", "3", "--evaluations",
                         "4", "--indicators", "params", "--no-cache", "--quiet", "--json")
    assert code == 0, err
    assert json.loads(out)["space"] == "mcu"
    code, out, err = cli("cost", "6111", "--input", "64x64x1", "--classes", "2", "--json")
    assert code == 0 and json.loads(out)["space"] == "nb201", err
