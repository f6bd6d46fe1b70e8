import json
import subprocess
import sys

import numpy as np
import pytest

from micronas.errors import BudgetError
from micronas.hardware import load_device
from micronas.search import Budgets, CostModel, SearchConfig, Weights, run_search
from micronas.search.costs import lower_bound
from micronas.search.objective import ranks
from micronas.spaces import NB201Space

TINY = dict(ntk_batch=4, lr_samples=32, lr_batches=1, repeats=1, workers=1)




def test_weights_validation():
    Weights(0.5, 0.5)
    for lat, fl in ((-0.1, 0), (1.1, 0), (0.6, 0.5), (float("nan"), 0)):
        with pytest.raises(BudgetError):
            Weights(lat, fl)


def test_ranks_modes():
    v = np.array([3.0, 1.0, 1.0, 2.0])
    assert list(ranks(v, "dense")) == [2, 0, 0, 1]
    p = ranks(v, "percentile")
    assert p.min() >= 0 and p.max() == 1 and p[1] == p[2]


def test_lower_bound_is_below_every_arch():
    dev = load_device("stm32f746")
    lb = lower_bound(dev, "cifar10")
    cm = CostModel(dev, disk_cache=False)
    rng = np.random.default_rng(0)
    for _ in range(60):
        c = cm.arch(NB201Space().sample(rng))
        assert lb.latency_ms <= c.latency_ms and lb.flash_bytes <= c.flash_bytes
        assert lb.peak_sram_bytes <= c.peak_sram_bytes


def test_impossible_budget_refused_before_search(cli, tmp_path):
    out = tmp_path / "o"
    code, _, err = cli("search", "--max-latency-ms", "0.5", "--out", str(out),
                       "--no-cache")
    assert code == 2 and "no NB201 architecture can meet" in err and err.count("\n") == 1
    assert not any(p.is_file() for p in out.glob("*"))


@pytest.mark.parametrize("argv, fragment", [
    (["search", "--strategy", "annealing"], "unknown strategy"),
    (["search", "--latency-weight", "1.5"], "must be in [0, 1]"),
    (["search", "--latency-weight", "0.7", "--flops-weight", "0.4"], "must be <= 1"),
    (["search", "--max-sram-kb", "-3"], "positive"),
    (["search", "--device", "esp32"], "unknown device"),
    (["search", "--fill", "1.5"], "--fill must be in [0, 1)"),
    (["search", "--workers", "-1"], "--workers must be >= 0"),
])
def test_search_bad_input(cli, argv, fragment):
    code, _, err = cli(*argv, "--no-cache")
    assert code == 2 and fragment in err and err.count("\n") == 1


def test_unwritable_out(cli, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = cli("search", "--out", str(f / "sub"), "--no-cache")
    assert code == 2 and "--out" in err


@pytest.mark.parametrize("strategy", ["prune", "evolution", "random"])
def test_strategies_respect_budgets(strategy):
    dev = load_device("stm32l4r5")
    cfg = SearchConfig(device="stm32l4r5", strategy=strategy, max_latency_ms=400.0,
                       max_sram_kb=200, evaluations=8, seed=1, **TINY)
    res = run_search(cfg)
    b = Budgets.with_device(dev, 400.0, 200 * 1024)
    cm = CostModel(dev, disk_cache=False)
    from micronas.spaces import NB201Arch

    c = cm.arch(NB201Arch.from_string(res.arch))
    assert b.ok(c) and res.latency_ms <= 400.0 and res.fits
    assert res.seed == 1 and res.config["strategy"] == strategy


def test_same_seed_same_arch_in_two_processes():
    code = ("import json; from micronas.search import SearchConfig, run_search; "
            "r = run_search(SearchConfig(seed=7, ntk_batch=4, lr_samples=32, lr_batches=1, "
            "max_latency_ms=150, workers=0)); print(json.dumps([r.arch, r.indicators]))")
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert outs[0] == outs[1]


def test_search_out_writes_artifacts(cli, tmp_path):
    out = tmp_path / "res"
    code, stdout, err = cli("search", "--strategy", "random", "--evaluations", "6",
                            "--out", str(out), "--json", "--no-cache")
    assert code == 0, err
    d = json.loads(stdout)
    keys = {"arch", "index", "latency_ms", "peak_sram_bytes", "flash_bytes", "macs", "params",
            "fits", "search_seconds", "seed"}
    assert keys <= set(d)
    for name in ("result.json", "report.md", "pareto.png", "config.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    assert not list(out.glob(".*tmp"))
    assert json.loads((out / "config.json").read_text())["strategy"] == "random"


def test_latency_target_mode_sets_a_ceiling():
    from micronas.search.run import latency_target

    dev = load_device("stm32f746")
    lo = latency_target(SearchConfig(latency_weight=0.9, latency_mode="target"), dev)
    hi = latency_target(SearchConfig(latency_weight=0.1, latency_mode="target"), dev)
    assert lo < hi
    assert latency_target(SearchConfig(latency_weight=0.0, latency_mode="target"), dev) is None
    res = run_search(SearchConfig(latency_weight=0.5, latency_mode="target", seed=2, **TINY))
    mid = latency_target(SearchConfig(latency_weight=0.5, latency_mode="target"), dev)
    assert res.latency_ms <= mid


def test_unknown_latency_mode(cli):
    code, _, err = cli("search", "--latency-mode", "magic", "--no-cache")
    assert code == 2 and "unknown latency mode" in err


def test_refine_climbs_to_a_feasible_local_optimum():
    """Hill-climbing on a stand-in evaluator: regions = number of 3x3 convs (kappa flat), so
    the climb adds 3x3 convs one edge per step while the latency budget allows it."""
    from types import SimpleNamespace

    from micronas.search.evaluate import Evaluation
    from micronas.search.strategies import refine
    from micronas.spaces import NB201Arch

    model = CostModel(load_device("stm32f746"))

    def arch_eval(a):
        return Evaluation({"ntk_cond": 10.0, "linear_regions": float(a.ops.count("nor_conv_3x3"))},
                          model.arch(a))

    ev = SimpleNamespace(costs=model, arch=arch_eval)
    start = NB201Arch.from_string("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|"
                                  "skip_connect~0|skip_connect~1|skip_connect~2|")
    budget = Budgets(max_latency_ms=model.arch(start).latency_ms * 8)
    end, trail = refine(ev, Weights(0.0, 0.0), budget, start, steps=10)
    assert [t["step"] for t in trail] == list(range(len(trail)))
    assert end.ops.count("nor_conv_3x3") == len(trail) - 1 > 0
    assert budget.ok(model.arch(end))
    # a local optimum: no feasible neighbour has more 3x3 convs
    better = [n for n in NB201Space().neighbours(end)
              if budget.ok(model.arch(n)) and n.ops.count("nor_conv_3x3") > end.ops.count("nor_conv_3x3")]
    assert not better


def test_indicator_mix_parsing():
    from micronas.errors import MicronasError
    from micronas.search.objective import DEFAULT_MIX, TENAS_MIX, parse_mix

    assert parse_mix(TENAS_MIX) == (("ntk_cond", 0.5), ("linear_regions", 0.5))
    assert dict(parse_mix(DEFAULT_MIX)) == {"ntk_cond": 0.25, "linear_regions": 0.25,
                                            "synflow": 0.5}
    for bad, fragment in (("bogus", "unknown indicator"), ("tenas", "rank combination"),
                          ("synflow:0", "must be > 0"), ("synflow:x", "must be a number"),
                          ("naswot,naswot", "named twice"), (" , ", "empty")):
        with pytest.raises(MicronasError, match=fragment):
            parse_mix(bad)


@pytest.mark.parametrize("mix, expect_3x3", [("synflow", 6), ("ntk_cond", 0)])
def test_prune_follows_each_indicator_direction(mix, expect_3x3):
    """A stand-in evaluator scores every network by its number of conv3x3 ops: pruning keeps
    them all when the indicator is higher-is-better (synflow) and drops them all when it is
    lower-is-better (ntk_cond): the orientation comes from the registry."""
    from types import SimpleNamespace

    from micronas.search.evaluate import Evaluation
    from micronas.search.objective import parse_mix
    from micronas.search.strategies import prune

    model = CostModel(load_device("stm32h7a3"))
    name = mix

    def supernet(edge_ops):
        n = sum("nor_conv_3x3" in s for s in edge_ops) + 0.1 * sum(len(s) for s in edge_ops)
        return Evaluation({name: float(n)}, model.supernet(edge_ops))

    ev = SimpleNamespace(costs=model, supernets=lambda cells, progress=None: list(
        map(supernet, cells)), evaluations=0)
    w = Weights(0.0, 0.0, parse_mix(mix))
    res = prune(ev, w, Budgets.with_device(load_device("stm32h7a3")), np.random.default_rng(0))
    assert res.arch.ops.count("nor_conv_3x3") == expect_3x3


def test_search_bad_indicators(cli):
    for arg, fragment in (("bogus", "unknown indicator"), ("tenas", "rank combination"),
                          ("synflow:-1", "must be > 0")):
        code, _, err = cli("search", "--indicators", arg, "--no-cache")
        assert code == 2 and fragment in err and err.count("\n") == 1


def test_capacity_is_the_largest_feasible_completion():
    """Brute force over every completion (pools included) of a small supernet."""
    import itertools

    from micronas.spaces import NB201Arch

    model = CostModel(load_device("stm32f746"), disk_cache=False)
    mixed = frozenset({"skip_connect", "avg_pool_3x3", "nor_conv_3x3"})
    edge_ops = (mixed, frozenset({"nor_conv_1x1"}), mixed, frozenset({"skip_connect"}),
                mixed, frozenset({"nor_conv_1x1"}))
    archs = [NB201Arch(c) for c in itertools.product(*map(sorted, edge_ops))]
    lats = sorted(model.arch(a).latency_ms for a in archs)
    for limit in (lats[0] - 1, lats[0], lats[len(lats) // 2], lats[-1]):
        b = Budgets(max_latency_ms=limit)
        brute = max((model.arch(a).params for a in archs if b.ok(model.arch(a))), default=0)
        assert model.capacity(edge_ops, b) == brute


def test_prune_fills_a_binding_budget():
    """A stand-in evaluator that, like the real indicators, prefers convs: under a latency
    budget, published pruning (fill 0) drops every skip first and ends on a small all-1x1 cell;
    with fill 0.9 it keeps a completion with >= 90 % of the budget's capacity."""
    from types import SimpleNamespace

    from micronas.search.evaluate import Evaluation
    from micronas.search.strategies import PRUNE_OPS, prune

    dev = load_device("stm32f746")
    model = CostModel(dev)

    def supernet(edge_ops):
        n = sum(len(s & {"nor_conv_1x1", "nor_conv_3x3"}) for s in edge_ops)
        return Evaluation({"synflow": float(n) + 0.01 * len(edge_ops[0])},
                          model.supernet(edge_ops))

    ev = SimpleNamespace(costs=model, supernets=lambda cells, progress=None: list(
        map(supernet, cells)), evaluations=0)
    b = Budgets.with_device(dev, max_latency_ms=343.2)
    w = Weights(0.0, 0.0, (("synflow", 1.0),))
    cap = model.capacity(tuple(frozenset(PRUNE_OPS) for _ in range(6)), b)
    own = Budgets.with_device(dev)
    small = prune(ev, w, b, np.random.default_rng(0), fill=0.0, device=own).arch
    full = prune(ev, w, b, np.random.default_rng(0), fill=0.9, device=own).arch
    assert b.ok(model.arch(small)) and b.ok(model.arch(full))
    assert model.arch(small).params < 0.9 * cap <= model.arch(full).params
    # the device's own memory is a limit, not a target: an indicator preferring small cells
    # still gets one without a budget of the user's
    w_small = Weights(0.0, 0.0, (("ntk_cond", 1.0),))
    ev_small = SimpleNamespace(costs=model, evaluations=0, supernets=lambda cells, progress=None:
                               [Evaluation({"ntk_cond": x.values["synflow"]}, x.costs)
                                for x in map(supernet, cells)])
    tiny = prune(ev_small, w_small, own, np.random.default_rng(0), fill=0.9, device=own).arch
    assert tiny.ops.count("nor_conv_3x3") == tiny.ops.count("nor_conv_1x1") == 0


def test_supernet_values_do_not_depend_on_workers():
    from micronas.proxies.registry import ProxySettings
    from micronas.search.evaluate import Evaluator
    from micronas.search.strategies import PRUNE_OPS

    model = CostModel(load_device("stm32f746"))
    settings = ProxySettings(ntk_batch=4, lr_samples=32)
    full = tuple(frozenset(PRUNE_OPS) for _ in range(6))
    cells = [full, (frozenset({"skip_connect"}),) + full[1:], full[:5] + (frozenset(
        {"nor_conv_1x1", "nor_conv_3x3"}),)]
    names = ("ntk_cond", "linear_regions", "synflow")
    one = Evaluator(model, settings, 3, indicators=names).supernets(cells)
    par = Evaluator(model, settings, 3, indicators=names, workers=2)
    try:
        two = par.supernets(cells)
    finally:
        par.close()
    # float32 NTK: the thread count changes the summation order (~1e-7 relative)
    for a, b in zip(one, two, strict=True):
        assert a.values == pytest.approx(b.values, rel=1e-5)


def test_supernets_fall_back_to_serial_without_processes(monkeypatch):
    from micronas.proxies.registry import ProxySettings
    from micronas.search import evaluate
    from micronas.search.strategies import PRUNE_OPS

    def no_processes(*args, **kwargs):
        raise OSError("sem_open: function not implemented")

    monkeypatch.setattr(evaluate, "worker_pool", no_processes)
    model = CostModel(load_device("stm32f746"))
    full = tuple(frozenset(PRUNE_OPS) for _ in range(6))
    cells = [full, (frozenset({"skip_connect"}),) + full[1:]]
    ev = evaluate.Evaluator(model, ProxySettings(ntk_batch=4, lr_samples=32), 0,
                            indicators=("synflow",), workers=2)
    got = ev.supernets(cells)
    want = evaluate.Evaluator(model, ProxySettings(ntk_batch=4, lr_samples=32), 0,
                              indicators=("synflow",)).supernets(cells)
    assert ev.workers == 1 and [x.values for x in got] == [x.values for x in want]
