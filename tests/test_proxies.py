import math
import multiprocessing as mp
import sqlite3

import numpy as np
import pytest
import torch
from torch import nn

from micronas.errors import DataError, MicronasError
from micronas.infra.cache import ResultStore
from micronas.proxies import (
    ProxySettings,
    get_indicator,
    list_indicators,
    parse_indicators,
    score_many,
)
from micronas.proxies.common import batch_stats_only
from micronas.proxies.tenas import (
    condition_number,
    count_regions,
    jacobian_loop,
    jacobian_vectorised,
)
from micronas.spaces import Candidate, canonical, get_space
from micronas.spaces.nb201 import NB201Arch
from micronas.spaces.nb201.modules import build_network
from micronas.tasks import get_task

pytestmark = pytest.mark.unit

FAST = ProxySettings(ntk_batch=6, lr_samples=64, lr_batches=1, repeats=1, zc_batch=4)
NB201 = get_space("nb201")
CIFAR10 = get_task("cifar10")


def score_arch(arch, names, seed, settings, cache=None):
    return score_many(NB201, [arch], CIFAR10, names, seed, settings,
                      None if cache is None else str(cache))[0]


@pytest.mark.parametrize("index", [6111, 0, 1835])
def test_vectorised_ntk_equals_per_sample_loop(index):
    torch.manual_seed(0)  # only for this test's own input; the library never uses global RNG
    model = batch_stats_only(build_network(NB201Arch.from_index(index), CIFAR10, 3, 1,
                                           seed=1).double().train())
    x = torch.randn(6, 3, 32, 32, dtype=torch.float64)
    a = jacobian_vectorised(model, x)
    b = jacobian_loop(model, x)
    assert a.shape == b.shape
    assert torch.allclose(a, b, rtol=1e-6, atol=1e-10 * b.abs().max().item())
    chunked = jacobian_vectorised(model, x, chunk_size=4)  # rows 0-3, then 4-5
    assert torch.allclose(chunked, b, rtol=1e-6, atol=1e-10 * b.abs().max().item())
    # the batch statistics couple samples: a per-sample (batch of one) gradient differs
    single = jacobian_loop(model, x[:1].repeat(2, 1, 1, 1))[0]
    assert not torch.allclose(single, b[0])


@pytest.mark.parametrize("internals", ["present", "other signature"])
def test_batched_vjp_equals_the_public_batched_gradient(monkeypatch, internals):
    import torch.autograd.graph

    from micronas.proxies.tenas import batched_vjp

    if internals == "other signature":
        def changed(*args, **kwargs):
            raise TypeError("unexpected keyword argument 'accumulate_grad'")

        monkeypatch.setattr(torch.autograd.graph, "_engine_run_backward", changed)
    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                        nn.Flatten(), nn.Linear(3 * 5 * 5, 4))
    x = torch.randn(5, 2, 5, 5, generator=gen)
    ws = [p for n, p in net.named_parameters() if "weight" in n]
    rows = torch.eye(5)[:3]
    out = net(x).sum(dim=1)
    want = torch.autograd.grad(out, ws, rows, retain_graph=True, is_grads_batched=True)
    got = batched_vjp(out, ws, rows, retain_graph=False)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)


def test_condition_number_degenerate_cases():
    assert condition_number(torch.eye(4)) == (1.0, ())
    k, flags = condition_number(torch.zeros(3, 3))
    assert flags == ("singular",) and math.isfinite(k)
    k, flags = condition_number(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    assert flags == ("nonfinite",) and math.isfinite(k)
    k, flags = condition_number(torch.diag(torch.tensor([4.0, 1.0], dtype=torch.float64)))
    assert k == pytest.approx(4.0) and flags == ()


def test_count_regions_hand_case():
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        net[0].bias.zero_()
    x = torch.tensor([[-2.0], [-1.0], [1.0], [3.0]])
    assert count_regions(net, x) == 2  # patterns (0,1) and (1,0)
    with torch.no_grad():
        net[0].bias.fill_(10.0)
    assert count_regions(net, x) == 1


def test_count_regions_equals_distinct_rows_of_the_relu_codes():
    gen = torch.Generator().manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU())
    x = torch.randn(300, 3, generator=gen)
    x[150:] = x[:150]  # repeated inputs share a pattern
    with torch.no_grad():
        h = net[1](net[0](x))
        codes = torch.cat([h > 0, net[3](net[2](h)) > 0], dim=1).numpy()
    assert count_regions(net, x) == np.unique(codes, axis=0).shape[0] <= 150


def test_indicators_on_degenerate_arch_are_defined():
    all_none = NB201Arch(("none",) * 6)
    for name in ("ntk_cond", "linear_regions", "naswot", "synflow", "snip", "grad_norm", "jacov"):
        v = get_indicator(name).fn(Candidate(NB201, all_none, CIFAR10), FAST, 0)
        assert math.isfinite(v.value), name


def test_registry_metadata_and_errors():
    names = list_indicators()
    for n in ("ntk_cond", "linear_regions", "tenas", "naswot", "synflow", "snip", "grad_norm",
              "jacov", "params", "flops"):
        assert n in names
    assert not get_indicator("ntk_cond").higher_is_better
    assert get_indicator("linear_regions").higher_is_better
    assert get_indicator("tenas").population
    with pytest.raises(MicronasError, match="unknown indicator 'foo'"):
        parse_indicators("ntk_cond,foo", [])


def test_isomorphic_archs_share_values_and_seed_reproduces(tmp_path):
    a = NB201Arch(("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "none", "none"))
    b = NB201Arch(("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "none", "none"))
    assert canonical(NB201, a) == canonical(NB201, b)
    sa = score_arch(a, ["ntk_cond", "params"], 3, FAST)
    sb = score_arch(b, ["ntk_cond", "params"], 3, FAST)
    assert sa["ntk_cond"].value == sb["ntk_cond"].value
    again = score_arch(a, ["ntk_cond"], 3, FAST)
    assert again["ntk_cond"].value == sa["ntk_cond"].value
    other = score_arch(a, ["ntk_cond"], 4, FAST)
    assert other["ntk_cond"].value != sa["ntk_cond"].value


def test_cache_roundtrip_and_tenas(tmp_path):
    path = tmp_path / "c.sqlite"
    archs = [NB201Arch.from_index(i) for i in (1, 2, 3)]
    first = score_many(NB201, archs, CIFAR10, ["tenas", "params"], 0, FAST, str(path))
    second = score_many(NB201, archs, CIFAR10, ["tenas", "params"], 0, FAST, str(path))
    assert all(s["ntk_cond"].cached for s in second)
    assert [s["tenas"].value for s in first] == [s["tenas"].value for s in second]
    assert sorted(s["tenas"].value for s in first)[-1] <= 6


def test_corrupted_and_unwritable_cache(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataError, match="corrupted.*delete"):
        ResultStore(bad)
    assert bad.read_bytes().startswith(b"this is not")  # never overwritten
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not __import__("os").access(ro, __import__("os").W_OK):
            with pytest.raises(DataError, match="not writable"):
                ResultStore(ro / "c.sqlite")
    finally:
        ro.chmod(0o700)


def _writer(path: str, start: int) -> None:
    store = ResultStore(path)
    for i in range(start, start + 50):
        store.put("nb201", "t", f"k{i}", "params", "s", 0, float(i), (), 0.0)


def test_two_processes_write_at_once(tmp_path):
    path = str(tmp_path / "c.sqlite")
    ResultStore(path).close()
    ctx = mp.get_context("spawn")
    ps = [ctx.Process(target=_writer, args=(path, k * 50)) for k in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(60)
        assert p.exitcode == 0
    n = sqlite3.connect(path).execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert n == 100


def test_zero_cost_proxies_rank_sizes_sensibly():
    small = NB201Arch(("skip_connect", "none", "skip_connect", "none", "none", "skip_connect"))
    big = NB201Arch(("nor_conv_3x3",) * 6)
    small, big = Candidate(NB201, small, CIFAR10), Candidate(NB201, big, CIFAR10)
    for name in ("synflow", "params", "flops"):
        f = get_indicator(name).fn
        assert f(big, FAST, 0).value > f(small, FAST, 0).value, name
    assert np.isfinite(get_indicator("naswot").fn(big, FAST, 0).value)


@pytest.mark.parametrize("arch, supernet", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|",
     False),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", False),  # no live path: sum 0
    (None, True),
])
def test_synflow_forward_pass_equals_the_backward_sum(arch, supernet):
    """On NB201's networks (relu_linear) synflow runs one forward pass carrying each
    activation's derivative along the weights; it equals the backward pass's sum."""
    from micronas.proxies import zero_cost as z
    from micronas.proxies.common import full_network, generator
    from micronas.proxies.registry import ProxySettings

    sp = get_space("nb201")
    state = sp.supernet().full() if supernet else sp.parse(arch)
    cand = Candidate(sp, state, get_task("cifar10"), supernet)
    model = full_network(cand, ProxySettings(), generator(0, "synflow", "init")).double().eval()
    assert model.relu_linear
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
            p.add_(0.01)  # BatchNorm betas and biases non-zero too: the shifts must cancel
    ones = torch.ones((1, 3, 32, 32), dtype=torch.float64)
    back = z._synflow_backward(model, ones)
    fwd = z._synflow_forward(model, ones)
    assert fwd == pytest.approx(back, rel=1e-12, abs=0.0)


@pytest.mark.parametrize("scale_log2", [None, -60, 200])  # ours; overflow; underflow
@pytest.mark.parametrize("supernet", [False, True])
def test_synflow_in_scaled_float32_agrees_with_float64(monkeypatch, scale_log2, supernet):
    """NB201's synflow runs in float32 with the input, biases and BatchNorm shifts scaled by
    a power of two (exact for an affine ReLU network); a sum out of float32's range gives
    None and leaves the network's values as they were, for the float64 pass."""
    import copy

    from micronas.proxies import zero_cost as z
    from micronas.proxies.common import full_network, generator

    if scale_log2 is not None:
        monkeypatch.setattr(z, "SCALE_LOG2", scale_log2)
    sp = get_space("nb201")
    state = sp.supernet().full() if supernet else sp.parse(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    cand = Candidate(sp, state, CIFAR10, supernet)
    model = full_network(cand, ProxySettings(), generator(0, "synflow", "init")).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
            p.add_(0.01)  # BatchNorm betas and biases non-zero: they must scale too
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.fill_(0.02)
    before = copy.deepcopy(model)
    ref = z._synflow_forward(copy.deepcopy(model).double(),
                             torch.ones((1, 3, 32, 32), dtype=torch.float64))
    fast = z._synflow_float32(model, list(model.modules()), (3, 32, 32))
    if scale_log2 is None:
        assert fast == pytest.approx(ref, rel=1e-5)
    else:
        assert fast is None
        for (n, a), b in zip(model.state_dict().items(), before.state_dict().values(), strict=True):
            assert torch.equal(a, b), n


def test_synflow_indicator_falls_back_to_float64_out_of_float32_range(monkeypatch):
    from micronas.proxies import zero_cost as z

    cand = Candidate(NB201, NB201Arch(("nor_conv_3x3",) * 6), CIFAR10)
    v32 = get_indicator("synflow").fn(cand, FAST, 0)
    monkeypatch.setattr(z, "SCALE_LOG2", -60)  # the scaled sums overflow float32
    v64 = get_indicator("synflow").fn(cand, FAST, 0)
    assert v64.value == pytest.approx(v32.value, abs=1e-5) and v64.flags == ()


def test_synflow_of_a_network_that_is_not_relu_linear_uses_the_backward_pass(monkeypatch):
    from micronas.proxies import zero_cost as z

    called = []
    monkeypatch.setattr(z, "_synflow_forward", lambda *a: called.append(1) or 1.0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU6(), nn.Flatten(),
                        nn.Linear(4 * 8 * 8, 2))
    v = z._synflow(net, (3, 8, 8))
    assert not called and math.isfinite(v.value)
