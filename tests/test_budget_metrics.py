"""Ranking inside a budget (micronas.bench.budget) and NAS-Bench-Macro's table through
bench correlate."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from micronas.bench import budget
from micronas.spaces import get_space
from micronas.spaces.nbmacro import NBMacroArch
from micronas.tasks import get_task


def _synthetic(n=400, seed=0):
    rng = np.random.default_rng(seed)
    lat = rng.uniform(10, 100, n)
    acc = 50 + 0.3 * lat + rng.normal(0, 3, n)  # grows with cost, noisy at equal cost
    return lat, acc


@pytest.mark.unit
def test_in_slice_correlation_ignores_cost():
    """An indicator that is the latency itself ranks the whole set well but knows little
    inside a slice; one that is the accuracy ranks every slice perfectly."""
    lat, acc = _synthetic()
    rep = budget.in_slices({"latency": lat, "oracle": acc, "anti": -acc}, acc, lat)
    ind = rep["indicators"]
    assert ind["oracle"]["kendall"] == pytest.approx(1.0)
    assert ind["anti"]["kendall"] == pytest.approx(-1.0)
    assert abs(ind["latency"]["kendall"]) < 0.35
    assert len(rep["slices"]) == 9 and all(s["n"] >= budget.MIN_SLICE for s in rep["slices"])
    # slices are +-10 % around the percentiles
    s = budget.slices(lat)[4]
    assert np.all(np.abs(lat[s["idx"]] - s["latency_ms"]) <= 0.1 * s["latency_ms"])


@pytest.mark.unit
def test_run_to_run_ceiling():
    lat, acc = _synthetic()
    rng = np.random.default_rng(1)
    same = np.stack([acc, acc, acc], axis=1)
    noisy = acc[:, None] + rng.normal(0, 3, (len(acc), 3))
    assert budget.in_slices({}, acc, lat, same)["ceiling"]["kendall"] == pytest.approx(1.0)
    c = budget.in_slices({}, acc, lat, noisy)["ceiling"]["kendall"]
    assert 0.0 < c < 0.9


@pytest.mark.unit
def test_pick_metric():
    lat, acc = _synthetic()
    fits = np.ones_like(lat, dtype=bool)
    fits[::7] = False
    rep = budget.picks({"oracle": acc, "anti": -acc, "flat": np.zeros_like(acc)}, acc, lat, fits,
                       draws=5, seed=3)
    assert len(rep["budgets"]) == 8 and sum(b["drawn"] for b in rep["budgets"]) == 5
    assert [b["percentile"] for b in rep["budgets"][:3]] == [25, 50, 75]
    o, a, f = (rep["indicators"][k] for k in ("oracle", "anti", "flat"))
    assert o["mean_percentile"] == 100 and o["mean_gap"] == 0 and o["drawn_mean_gap"] == 0
    assert a["mean_percentile"] < 2 and a["mean_gap"] > 5
    # a constant indicator ties every feasible network: its pick is their mean
    b = rep["budgets"][1]
    feas = fits & (lat <= b["latency_ms"])
    assert f["gap"][1] == pytest.approx(acc[feas].max() - acc[feas].mean())
    assert b["oracle"] == pytest.approx(acc[feas].max())
    assert b["latency_ms"] == pytest.approx(np.percentile(lat[fits], 50))


@pytest.mark.unit
def test_costs_on_nbmacro():
    sp, t = get_space("nbmacro"), get_task("cifar10")
    archs = [NBMacroArch((0,) * 8), NBMacroArch((2,) * 8), NBMacroArch((0,) * 8)]
    lat, fits = budget.costs(sp, archs, t, "stm32l4r5")
    assert lat[0] < lat[1] and lat[0] == lat[2] and fits[0]


@pytest.fixture()
def fake_nbmacro(tmp_path):
    """A table in NAS-Bench-Macro's format whose accuracy is a known function of the arch,
    equal on isomorphic architectures (as the benchmark's)."""
    sp = get_space("nbmacro")
    data = {}
    for a in sp.enumerate():
        c = a.canonical()
        acc = 60 + 2 * sum(c.ops) + 0.001 * c.code
        data[str(a)] = {"test_acc": [acc - 0.1, acc, acc + 0.1], "mean_acc": acc, "std": 0.08,
                        "params": 1, "flops": 1}
    p = tmp_path / "nbm.json"
    p.write_text(json.dumps(data))
    return p


@pytest.mark.integration
def test_correlate_nbmacro(cli, fake_nbmacro, tmp_path):
    """bench correlate --space nbmacro: classes, runs in the rows, the in-budget report,
    a partial table resumed."""
    path = tmp_path / "t.json.gz"
    argv = ["bench", "correlate", "--space", "nbmacro", "--benchmark", str(fake_nbmacro),
            "--indicators", "params,flops", "--no-cache", "--quiet", "--table", str(path),
            "--device", "stm32l4r5", "--budget-draws", "3"]
    code, out, err = cli(*argv, "--sample", "60", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["space"] == "nbmacro" and res["n"] == res["classes"] == 60
    assert res["indicators"]["params"]["spearman"] > 0.5
    b = res["budget"]
    assert b["device"] == "stm32l4r5" and "ceiling" in b["in_slice"] and "ceiling" in b["pick"]
    d = json.loads(gzip.decompress(path.read_bytes()))
    r = d["rows"][0]
    assert len(r["runs"]) == 3 and r["members"] >= 1 and r["acc"] == pytest.approx(r["runs"][1])
    assert get_space("nbmacro").parse(r["arch"]).canonical() == get_space("nbmacro").parse(r["arch"])
    code, out, err = cli(*argv, "--sample", "80", "--resume")
    assert code == 0, err
    assert "nbmacro: 80 architectures" in out and "run-to-run" in out
    assert json.loads(gzip.decompress(path.read_bytes()))["resumed_classes"] > 0


@pytest.mark.integration
def test_nbmacro_table_errors(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("MICRONAS_NBMACRO", raising=False)
    code, _, err = cli("bench", "correlate", "--space", "nbmacro", "--indicators", "params")
    assert code == 2 and "MICRONAS_NBMACRO" in err and err.count("\n") == 1
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"0000000": {"test_acc": [1, 2, 3]}}))
    code, _, err = cli("bench", "correlate", "--space", "nbmacro", "--benchmark", str(p),
                       "--indicators", "params", "--no-cache")
    assert code == 2 and "architecture '0000000'" in err and err.count("\n") == 1
    code, _, err = cli("bench", "correlate", "--space", "nbmacro", "--benchmark", str(p),
                       "--task", "cifar100", "--indicators", "params", "--no-cache")
    assert code == 2 and "cifar10 only" in err


@pytest.mark.unit
def test_real_nbmacro_table(shared_data):
    from micronas.bench.nbmacro_table import load_table

    path = shared_data / "nbmacro" / "nas-bench-macro_cifar10.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    t = load_table(path)
    assert len(t) == 3969 and sum(t.members.values()) == 6561
    best = max(t.accuracy, key=t.accuracy.get)
    assert best == "22212220" and t.accuracy[best] == pytest.approx(93.13, abs=0.005)
    assert np.mean(list(t.std.values())) == pytest.approx(0.15, abs=0.02)
