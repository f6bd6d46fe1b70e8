import json
import subprocess
import sys

import numpy as np
import pytest

from micronas.errors import BudgetError
from micronas.hardware import load_device
from micronas.search import Budgets, CostModel, SearchConfig, Weights, run_search
from micronas.search.costs import BudgetFilter, lower_bound
from micronas.search.evaluate import Evaluation
from micronas.search.objective import ranks
from micronas.search.strategies import Prune, Refine, drive
from micronas.spaces import get_space
from micronas.spaces.nb201 import PRUNE_OPS, NB201Arch, NB201Space
from micronas.tasks import get_task

pytestmark = pytest.mark.integration

TINY = dict(ntk_batch=4, lr_samples=32, lr_batches=1, repeats=1, workers=1)
NB201 = get_space("nb201")
CIFAR10 = get_task("cifar10")


def cost_model(device: str, disk_cache: bool = True, runtime: str | None = None) -> CostModel:
    return CostModel(NB201, CIFAR10, load_device(device, runtime), disk_cache)


class StandIn:
    """An evaluator whose indicator values come from ``fn(candidate)``: strategies tested
    without torch."""

    def __init__(self, costs, fn):
        self.costs, self.fn, self.evaluations = costs, fn, 0

    def evaluate(self, cands, progress=None):
        self.evaluations += len(cands)
        return [Evaluation(c, self.fn(c), self.costs.supernet(c.arch) if c.supernet
                           else self.costs.arch(c.arch)) for c in cands]


def run_prune(ev, w, budgets, fill=0.0, device_limits=None):
    filt = BudgetFilter(ev.costs, budgets, device_limits or Budgets())
    strategy = Prune(NB201, CIFAR10, filt, w, np.random.default_rng(0), fill=fill)
    return drive(strategy, ev)




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
    lb = lower_bound(NB201, CIFAR10, dev)
    cm = cost_model("stm32f746", disk_cache=False)
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
    cfg = SearchConfig.of(device="stm32l4r5", strategy=strategy, max_latency_ms=600.0,
                       max_sram_kb=200, evaluations=8, seed=1, **TINY)
    res = run_search(cfg)
    b = Budgets.with_device(dev, 600.0, 200 * 1024)
    cm = cost_model("stm32l4r5", disk_cache=False)
    c = cm.arch(NB201Arch.from_string(res.arch))
    assert b.ok(c) and res.latency_ms <= 600.0 and res.fits
    assert res.seed == 1 and res.config["strategy"]["name"] == strategy


@pytest.mark.slow
def test_same_seed_same_arch_in_two_processes():
    code = ("import json; from micronas.search import SearchConfig, run_search; "
            "r = run_search(SearchConfig.of(seed=7, ntk_batch=4, lr_samples=32, lr_batches=1, "
            "max_latency_ms=250, workers=0)); print(json.dumps([r.arch, r.indicators]))")
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
    assert json.loads((out / "config.json").read_text())["strategy"]["name"] == "random"


def test_latency_target_mode_sets_a_ceiling():
    from micronas.search.run import latency_target

    dev = load_device("stm32f746")
    cm = CostModel(NB201, CIFAR10, dev)
    lo = latency_target(SearchConfig.of(latency_weight=0.9, latency_mode="target"), cm)
    hi = latency_target(SearchConfig.of(latency_weight=0.1, latency_mode="target"), cm)
    assert lo < hi
    assert latency_target(SearchConfig.of(latency_weight=0.0, latency_mode="target"), cm) is None
    res = run_search(SearchConfig.of(latency_weight=0.5, latency_mode="target", seed=2, **TINY))
    mid = latency_target(SearchConfig.of(latency_weight=0.5, latency_mode="target"), cm)
    assert res.latency_ms <= mid


def test_unknown_latency_mode(cli):
    code, _, err = cli("search", "--latency-mode", "magic", "--no-cache")
    assert code == 2 and "unknown latency mode" in err


def test_refine_climbs_to_a_feasible_local_optimum():
    """Hill-climbing on a stand-in evaluator: regions = number of 3x3 convs (kappa flat), so
    the climb adds 3x3 convs one edge per step while the latency budget allows it."""
    model = cost_model("stm32f746")
    ev = StandIn(model, lambda c: {"ntk_cond": 10.0,
                                   "linear_regions": float(c.arch.ops.count("nor_conv_3x3"))})
    start = NB201Arch.from_string("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|"
                                  "skip_connect~0|skip_connect~1|skip_connect~2|")
    budget = Budgets(max_latency_ms=model.arch(start).latency_ms * 8)
    filt = BudgetFilter(model, budget, Budgets())
    res = drive(Refine(NB201, CIFAR10, filt, Weights(0.0, 0.0), np.random.default_rng(0),
                       start=start, steps=10), ev)
    end, trail = res.arch, res.history[0]["refine"]
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
    from micronas.search.objective import parse_mix

    model = cost_model("stm32h7a3")

    def fn(c):
        edge_ops = c.arch
        return {mix: sum("nor_conv_3x3" in s for s in edge_ops)
                + 0.1 * sum(len(s) for s in edge_ops)}

    w = Weights(0.0, 0.0, parse_mix(mix))
    res = run_prune(StandIn(model, fn), w, Budgets.with_device(load_device("stm32h7a3")))
    assert res.arch.ops.count("nor_conv_3x3") == expect_3x3
    assert res.evaluations == 24 + 18 + 12  # the removals only: no round evaluates its own supernet


def test_search_bad_indicators(cli):
    for arg, fragment in (("bogus", "unknown indicator"), ("tenas", "rank combination"),
                          ("synflow:-1", "must be > 0")):
        code, _, err = cli("search", "--indicators", arg, "--no-cache")
        assert code == 2 and fragment in err and err.count("\n") == 1


def test_capacity_is_the_largest_feasible_completion():
    """Brute force over every completion (pools included) of a small supernet."""
    import itertools

    model = cost_model("stm32f746", disk_cache=False)
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
    dev = load_device("stm32f746", "optimized")  # the runtime the 343.2 ms budget was set for
    model = cost_model("stm32f746", runtime="optimized")

    def fn(c):
        edge_ops = c.arch
        n = sum(len(s & {"nor_conv_1x1", "nor_conv_3x3"}) for s in edge_ops)
        return {"synflow": float(n) + 0.01 * len(edge_ops[0])}

    b = Budgets.with_device(dev, max_latency_ms=343.2)
    w = Weights(0.0, 0.0, (("synflow", 1.0),))
    cap = model.capacity(tuple(frozenset(PRUNE_OPS) for _ in range(6)), b)
    own = Budgets.with_device(dev)
    small = run_prune(StandIn(model, fn), w, b, 0.0, own).arch
    full = run_prune(StandIn(model, fn), w, b, 0.9, own).arch
    assert b.ok(model.arch(small)) and b.ok(model.arch(full))
    assert model.arch(small).params < 0.9 * cap <= model.arch(full).params
    # the device's own memory is a limit, not a target: an indicator preferring small cells
    # still gets one without a budget of the user's
    w_small = Weights(0.0, 0.0, (("ntk_cond", 1.0),))
    tiny = run_prune(StandIn(model, lambda c: {"ntk_cond": fn(c)["synflow"]}), w_small, own,
                     0.9, own).arch
    assert tiny.ops.count("nor_conv_3x3") == tiny.ops.count("nor_conv_1x1") == 0


def _supernet_cands():
    full = tuple(frozenset(PRUNE_OPS) for _ in range(6))
    cells = [full, (frozenset({"skip_connect"}),) + full[1:], full[:5] + (frozenset(
        {"nor_conv_1x1", "nor_conv_3x3"}),)]
    from micronas.spaces import Candidate

    return [Candidate(NB201, c, CIFAR10, supernet=True) for c in cells]


@pytest.mark.slow
def test_supernet_values_do_not_depend_on_workers():
    from micronas.proxies.registry import ProxySettings
    from micronas.search.evaluate import Evaluator

    model = cost_model("stm32f746")
    settings = ProxySettings(ntk_batch=4, lr_samples=32)
    cands = _supernet_cands()
    names = ("ntk_cond", "linear_regions", "synflow")
    one = Evaluator(model, settings, 3, indicators=names).evaluate(cands)
    par = Evaluator(model, settings, 3, indicators=names, executor="process:2")
    try:
        two = par.evaluate(cands)
    finally:
        par.close()
    # float32 NTK: the thread count changes the summation order (~1e-7 relative)
    for a, b in zip(one, two, strict=True):
        assert a.values == pytest.approx(b.values, rel=1e-5)


@pytest.mark.slow
def test_hybrid_executor_shares_the_work_and_keeps_the_order(monkeypatch):
    """--workers N: N - 1 spawned workers beside the caller; map's results come in order,
    both sides compute, an exception reaches the caller, and the values of a batch of
    supernets equal this process's own."""
    from micronas.infra.execution import HybridExecutor
    from micronas.proxies.registry import ProxySettings
    from micronas.search.evaluate import Evaluator

    here = []
    original = HybridExecutor._here

    def counting(self, fn, call):
        here.append(call)
        return original(self, fn, call)

    monkeypatch.setattr(HybridExecutor, "_here", counting)
    ex = HybridExecutor(1)
    try:
        calls = list(range(40))
        assert list(ex.map(divmod, calls, [7] * 40)) == [divmod(c, 7) for c in calls]
        assert 1 <= len(here) < 40  # the worker took some
        with pytest.raises(ZeroDivisionError):
            list(ex.map(divmod, [1, 2, 3, 4], [1, 0, 1, 1]))
        model = cost_model("stm32f746")
        settings = ProxySettings(ntk_batch=4, lr_samples=32)
        names = ("ntk_cond", "linear_regions", "synflow")
        cands = _supernet_cands()
        one = Evaluator(model, settings, 3, indicators=names).evaluate(cands)
        two = Evaluator(model, settings, 3, indicators=names, executor=ex).evaluate(cands)
        procs = list(ex._pool._processes.values())
    finally:
        ex.shutdown()
    for a, b in zip(one, two, strict=True):
        assert a.values == pytest.approx(b.values, rel=1e-5)
    assert procs and not any(p.is_alive() for p in procs)  # shutdown stops the workers


def test_thread_executor_keeps_the_order_and_the_values():
    """The default search's executor: two threads of this process, each with its own torch
    thread count; results in order, exceptions reach the caller, the interpreter's switch
    interval is restored, and the indicators of supernets computed concurrently equal the
    serial ones (each candidate builds its own networks from its own generators)."""
    import os
    import sys
    import threading

    import torch

    from micronas.infra.execution import ThreadExecutor, make_executor, parse_executor
    from micronas.proxies.registry import ProxySettings
    from micronas.search.evaluate import Evaluator

    assert parse_executor("thread:2") == ("thread", 2)
    ex = make_executor("thread:2")
    assert isinstance(ex, ThreadExecutor) and ex.threads == 2
    before = sys.getswitchinterval()
    try:
        seen = []

        def who(i):
            seen.append((threading.current_thread().name, torch.get_num_threads()))
            return i * i

        assert list(ex.map(who, range(30))) == [i * i for i in range(30)]
        assert all(name.startswith("micronas-indicators") for name, _ in seen)
        assert {n for _, n in seen} == {max(1, (os.cpu_count() or 1) // 2)}
        assert sys.getswitchinterval() == before
        with pytest.raises(ZeroDivisionError):
            list(ex.map(divmod, [1, 2, 3, 4], [1, 0, 1, 1]))
        assert sys.getswitchinterval() == before
        model = cost_model("stm32f746")
        settings = ProxySettings(ntk_batch=4, lr_samples=32)
        names = ("ntk_cond", "linear_regions", "synflow")
        cands = _supernet_cands() * 2
        one = Evaluator(model, settings, 3, indicators=names).evaluate(cands)
        two = Evaluator(model, settings, 3, indicators=names, executor=ex).evaluate(cands)
    finally:
        ex.shutdown()
    for a, b in zip(one, two, strict=True):
        assert a.values == pytest.approx(b.values, rel=1e-5)


def test_score_batch_runs_the_callers_work_meanwhile_once():
    """The evaluator costs a batch while the executor computes its indicators; a lone
    candidate on threads has its indicators computed side by side. Values as serial."""
    from micronas.infra.execution import ThreadExecutor
    from micronas.proxies.registry import ProxySettings
    from micronas.proxies.scoring import score_batch

    s = ProxySettings(ntk_batch=4, lr_samples=32)
    names = ("ntk_cond", "linear_regions", "synflow")
    ex = ThreadExecutor(2)
    try:
        for cands in (_supernet_cands(), _supernet_cands()[:1]):
            runs = []
            for executor in (ex, None):
                calls = []
                got = score_batch(cands, names, 1, s, None, executor,
                                  meanwhile=lambda calls=calls: calls.append(1))
                assert calls == [1]
                assert [list(g) for g in got] == [list(names)] * len(cands)
                runs.append([{n: g[n].value for n in names} for g in got])
            for a, b in zip(*runs, strict=True):
                assert a == pytest.approx(b, rel=1e-5)
    finally:
        ex.shutdown()


def test_thread_calls_keep_indicators_of_one_computation_together():
    from micronas.proxies.scoring import _groups

    assert _groups(("naswot", "ntk_cond", "jacov", "synflow")) == [
        ("naswot", "jacov"), ("ntk_cond",), ("synflow",)]
    assert _groups(("az_expressivity", "snip", "az_progressivity", "grad_norm")) == [
        ("az_expressivity", "az_progressivity"), ("snip", "grad_norm")]


def test_supernets_fall_back_to_serial_without_processes():
    from concurrent.futures import Executor
    from concurrent.futures.process import BrokenProcessPool

    from micronas.proxies.registry import ProxySettings
    from micronas.search.evaluate import Evaluator

    class Broken(Executor):
        def map(self, *args, **kwargs):
            raise BrokenProcessPool("workers died")

    model = cost_model("stm32f746")
    s = ProxySettings(ntk_batch=4, lr_samples=32)
    cands = _supernet_cands()[:2]
    got = Evaluator(model, s, 0, indicators=("synflow",), executor=Broken()).evaluate(cands)
    want = Evaluator(model, s, 0, indicators=("synflow",)).evaluate(cands)
    assert [x.values for x in got] == [x.values for x in want]


@pytest.mark.parametrize("name", ["evolution", "prune"])
def test_strategy_resumes_from_saved_state(name):
    """ask/tell with state_dict: stop after a few batches, save the state as JSON, restore it
    into a fresh strategy, and finish with the same architecture and history."""
    from micronas.search.strategies import make_strategy

    model = cost_model("stm32f746")

    def fn(c):
        ops = c.arch if c.supernet else tuple(frozenset([o]) for o in c.arch.ops)
        return {"synflow": float(sum(len(s & {"nor_conv_3x3"}) for s in ops))
                + 0.01 * sum(len(s) for s in ops)}

    def make():
        filt = BudgetFilter(model, Budgets.with_device(load_device("stm32f746"), 400.0),
                            Budgets.with_device(load_device("stm32f746")))
        opts = {"n": 24} if name == "evolution" else {"fill": 0.9}
        return make_strategy(name, NB201, CIFAR10, filt, Weights(0.0, 0.0, (("synflow", 1.0),)),
                             np.random.default_rng(4), **opts)

    full = drive(make(), StandIn(model, fn))
    first, ev = make(), StandIn(model, fn)
    for _ in range(2):
        first.tell(ev.evaluate(first.ask()))
    saved = json.loads(json.dumps(first.state_dict()))
    second = make()
    second.load_state_dict(saved)
    rest = drive(second, ev)
    assert rest.arch == full.arch and rest.history == full.history


def test_fewer_params_within_the_measured_noise():
    """The search re-scores its best candidates with the next indicator seed; the network it
    returns is the fewest-params one among those scored within that noise of the best-scored,
    and --no-prefer-fewer-params returns the best-scored itself."""
    base = dict(space="mcu", task="digits", device="stm32l4r5", max_latency_ms=50, seed=0,
                workers=0, evaluations=12)
    r = run_search(SearchConfig.of(**base))
    p = r.parsimony
    assert p is not None and p["rescored"] == len(p["compared"]) >= 3
    assert p["noise"] > 0
    best = max(p["compared"], key=lambda c: c["score"])
    assert best["arch"] == p["best_scored"]
    within = [c for c in p["compared"] if c["score"] >= best["score"] - p["noise"]]
    assert [c["within_noise"] for c in p["compared"]] == [c in within for c in p["compared"]]
    assert r.params == min(c["params"] for c in within) == p["chosen_params"]
    assert r.params <= p["best_scored_params"]
    assert ("note" in p) == (r.arch != p["best_scored"])
    plain = run_search(SearchConfig.of(**base, prefer_fewer_params=False))
    assert plain.parsimony is None and plain.arch == p["best_scored"]
    assert plain.evaluations + p["rescored"] == r.evaluations
