import numpy as np
import pytest
import torch
from torch import nn

from micronas.deploy.trace import trace
from micronas.errors import MicronasError
from micronas.spaces.nb201 import NB201Space, nb201_counts, nb201_network
from micronas.spaces.nb201.modules import Cell, ReLUConvBN, build_network
from micronas.tasks import get_task

pytestmark = pytest.mark.unit


def test_param_count_equals_nb201_count():
    rng = np.random.default_rng(1)
    space = NB201Space()
    for _ in range(40):
        a = space.sample(rng)
        for ds in ("cifar10", "imagenet16-120"):
            net = build_network(a, get_task(ds))
            n = sum(p.numel() for p in net.parameters())
            assert n == round(nb201_counts(a, get_task(ds))[1] * 1e6)


def test_forward_shapes_and_seed():
    a = NB201Space().parse("6111")
    x = torch.randn(2, 3, 16, 16)
    t = get_task("imagenet16-120")
    n1, n2 = build_network(a, t, seed=3), build_network(a, t, seed=3)
    assert torch.equal(n1(x), n2(x))
    assert n1(x).shape == (2, 120)


def test_trace_matches_ir_builder():
    rng = np.random.default_rng(2)
    space = NB201Space()
    done = 0
    while done < 6:
        a = space.sample(rng)
        if "none" in a.ops:  # torch computes `none` as x*0; the deployed IR drops it
            continue
        done += 1
        t = trace(build_network(a), (3, 32, 32))
        n = nb201_network(a)
        assert (t.macs, t.params, len(t.layers)) == (n.macs, n.params, len(n.layers))
        assert [la.op for la in t.layers] == [la.op for la in n.layers]


def test_trace_user_model_and_unsupported_layer():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    net = trace(m, (3, 16, 16))
    ops = [la.op for la in net.layers]
    assert ops == ["conv2d", "depthwise_conv2d", "global_avgpool", "fully_connected"]
    assert net.layers[0].fused_relu and net.layers[0].bias_params == 8
    assert net.macs == 16 * 16 * (8 * 27 + 8 * 9) + 16
    with pytest.raises(MicronasError, match="GELU"):
        trace(nn.Sequential(nn.Conv2d(3, 4, 1), nn.GELU()), (3, 8, 8))


def _supernet_values(cands):
    from micronas.proxies.registry import ProxySettings
    from micronas.proxies.scoring import compute

    s = ProxySettings()
    return [[compute(n, c, s, 0).value for n in ("synflow", "ntk_cond", "linear_regions",
                                                 "zico")] for c in cands]


@pytest.mark.slow
def test_supernet_op_pool_gives_the_values_of_fresh_builds(monkeypatch):
    """Supernets reuse the convolution ops of dead networks (OpPool): after synflow (float64,
    abs weights, eval), the NTK (BatchNorm without running statistics) and zico (gradients),
    the next supernets' values equal those of networks built from scratch."""
    import micronas.spaces.nb201.space as sp_mod
    from micronas.search.strategies import Prune
    from micronas.spaces import Candidate

    space = NB201Space()
    full = space.supernet().full()
    states = [full, *(Prune._remove(full, e, op) for e, op in ((0, "nor_conv_3x3"),
                                                             (5, "skip_connect"),
                                                             (2, "nor_conv_1x1")))]
    task = get_task("cifar10")
    pooled = _supernet_values([Candidate(space, s, task, True) for s in states])
    fresh_module = sp_mod._module
    monkeypatch.setattr(sp_mod, "_module",
                        lambda cell, task, variant, pooled=False, fused=None:
                        fresh_module(cell, task, variant, fused=pooled))
    # new Candidate objects: the bundles' lru_caches must not answer
    fresh = _supernet_values([Candidate(space, s, task, True) for s in states])
    assert pooled == fresh


def test_live_supernets_never_share_an_op():
    space = NB201Space()
    task = get_task("cifar10")
    state = space.supernet().full()
    a = space.supernet().to_module(state, task)
    # the cells' convolution ops (15 cells x 6 edges x 2), kept alive: their ids stay unique
    ops_a = [m for cell in a.cells if isinstance(cell, Cell) for edge in cell.edges for m in edge
             if isinstance(m, ReLUConvBN)]
    assert len(ops_a) == 180
    ids_a = {id(m) for m in ops_a}
    b = space.supernet().to_module(state, task)
    assert ids_a.isdisjoint(id(m) for m in b.modules())
    a.double()
    del a  # a's ops go back to the pool; the next build takes them, not b's
    c = space.supernet().to_module(state, task)
    ids_c = {id(m) for m in c.modules()}
    assert ids_c.isdisjoint(id(m) for m in b.modules())
    assert len(ids_c & ids_a) == len(ops_a)
    # a reused op is as a new one is: float32, training mode, fresh BatchNorm statistics
    for m in c.modules():
        assert m.training
        if isinstance(m, nn.BatchNorm2d):
            assert m.track_running_stats and float(m.running_var.sum()) == m.num_features
        for p in m.parameters(recurse=False):
            assert p.dtype == torch.float32 and p.requires_grad and p.grad is None


def test_a_reused_op_with_replaced_parameters_is_reset_too():
    """An op whose parameter objects were replaced while it was lent (a user's
    ``conv.weight = nn.Parameter(...)``) is reset through its new parameters."""
    space = NB201Space()
    task = get_task("cifar10")
    state = space.supernet().full()
    for _ in range(2):  # the second round reuses ops already reset once
        net = space.supernet().to_module(state, task)
        for m in net.modules():
            if isinstance(m, ReLUConvBN):
                conv = m.op[1]
                conv.weight = nn.Parameter(conv.weight.detach().double().contiguous(
                    memory_format=torch.channels_last), requires_grad=False)
                conv.weight.grad = torch.ones_like(conv.weight)
        del net
    net = space.supernet().to_module(state, task)
    for m in net.modules():
        for p in m.parameters(recurse=False):
            assert p.dtype == torch.float32 and p.is_contiguous()
            assert p.requires_grad and p.grad is None


def _fused_pair(state, C=4, N=1, seed=0, task="cifar10"):
    """The same supernet built unfused and fused, with equal weights and buffers."""
    a = build_network(state, get_task(task), C, N, seed=seed)
    b = build_network(state, get_task(task), C, N, seed=None, fused=True)
    b.load_state_dict(a.state_dict())
    return a, b


def _states():
    from micronas.search.strategies import Prune

    full = NB201Space().supernet().full()
    rng = np.random.default_rng(3)
    out = [full, Prune._remove(full, 0, "nor_conv_3x3"), Prune._remove(full, 5, "skip_connect")]
    for _ in range(6):
        out.append(tuple(tuple(sorted(rng.choice(sorted(e), rng.integers(1, len(e) + 1),
                                                 replace=False).tolist())) for e in full))
    return out


@pytest.mark.parametrize("train", [True, False])
def test_fused_cells_compute_the_unfused_function_and_gradients(train):
    """Supernet cells that run each node's ops together (Cell(fused=True)) give the unfused
    outputs, parameter gradients and BatchNorm running statistics, to float tolerance."""
    x = torch.randn(6, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    for state in _states():
        a, b = _fused_pair(state)
        a.train(train), b.train(train)
        ya, yb = a(x), b(x)
        torch.testing.assert_close(yb, ya, rtol=1e-5, atol=1e-6)
        ya.square().sum().backward()
        yb.square().sum().backward()
        for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
            torch.testing.assert_close(pb.grad, pa.grad, rtol=1e-4, atol=1e-6, msg=n)
        for (n, ba), (_, bb) in zip(a.named_buffers(), b.named_buffers(), strict=True):
            torch.testing.assert_close(bb, ba, rtol=1e-5, atol=1e-6, msg=n)


def test_fused_cells_fire_every_module_hook_with_its_own_output():
    """Forward hooks on a fused cell's ReLU, conv, BatchNorm and pooling modules fire once
    per module with what that module alone outputs; a hook's returned (or in-place) change
    is used downstream; a pre-hook makes the cell run unfused."""
    x = torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    full = NB201Space().supernet().full()
    a, b = _fused_pair(full)
    seen: dict[str, list] = {"a": [], "b": []}

    def recorder(key):
        def hook(m, _inp, out):
            seen[key].append((type(m).__name__, out.detach().clone()))
            if isinstance(m, nn.Conv2d):
                return out * 1.5  # a replacing hook
            if isinstance(m, nn.BatchNorm2d):
                out.add_(0.25)  # an in-place one
        return hook

    for key, net in (("a", a), ("b", b)):
        mods = [m for m in net.cells.modules()
                if isinstance(m, nn.ReLU | nn.Conv2d | nn.BatchNorm2d | nn.AvgPool2d | nn.Identity)]
        for m in mods:
            m.register_forward_hook(recorder(key))
    ya, yb = a(x), b(x)
    torch.testing.assert_close(yb, ya, rtol=1e-5, atol=1e-5)
    assert sorted(n for n, _ in seen["a"]) == sorted(n for n, _ in seen["b"])
    by_type = {}
    for key in ("a", "b"):
        for n, t in seen[key]:
            by_type.setdefault((key, n), []).append(t)
    for (key, n), ts in by_type.items():
        if key == "a":  # same multiset of outputs per module type (order within a node may differ)
            sa = sorted(float(t.sum()) for t in ts)
            sb = sorted(float(t.sum()) for t in by_type["b", n])
            np.testing.assert_allclose(sb, sa, rtol=1e-4, atol=1e-4)
    # a pre-hook that changes the input is honoured (the cell then runs unfused)
    c, d = _fused_pair(full)
    for net in (c, d):
        net.cells[0].edges[0][1].register_forward_pre_hook(lambda _m, inp: (inp[0] * 0.0,))
    torch.testing.assert_close(d(x), c(x), rtol=1e-5, atol=1e-6)


def test_fused_supernet_indicators_equal_unfused(monkeypatch):
    """The search's indicators on fused supernets: synflow (float64) and linear regions equal
    the unfused values; the NTK condition number within 1e-6 relative."""
    import micronas.spaces.nb201.space as sp_mod
    from micronas.proxies.registry import ProxySettings
    from micronas.proxies.scoring import compute
    from micronas.spaces import Candidate

    space, task, s = NB201Space(), get_task("cifar10"), ProxySettings()
    states = _states()[:4]
    names = ("synflow", "ntk_cond", "linear_regions")
    fused = [[compute(n, Candidate(space, st, task, True), s, 0).value for n in names]
             for st in states]
    orig = sp_mod._module
    monkeypatch.setattr(sp_mod, "_module", lambda cell, task, variant, pooled=False, fused=None:
                        orig(cell, task, variant, pooled, fused=False))
    plain = [[compute(n, Candidate(space, st, task, True), s, 0).value for n in names]
             for st in states]
    for f, p in zip(fused, plain, strict=True):
        assert f[0] == pytest.approx(p[0], rel=1e-12)
        assert f[1] == pytest.approx(p[1], rel=1e-6)
        assert f[2] == p[2]
