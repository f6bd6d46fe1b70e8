import numpy as np
import pytest

from micronas.hardware.planner import live_bytes, plan
from micronas.ir import GraphBuilder
from micronas.spaces.nb201 import NB201Space, nb201_network

pytestmark = pytest.mark.unit


def test_chain_reuses_memory():
    # input 16x8x8 (1024 B) -> a (1024) -> b (1024) -> c (1024): two buffers suffice
    g = GraphBuilder("chain", (16, 8, 8))
    a = g.conv("input", 16, 3, 1, 1, name="a")
    b = g.conv(a, 16, 3, 1, 1, name="b")
    c = g.conv(b, 16, 3, 1, 1, name="c")
    arena, bufs = plan(g.build([c]))
    assert arena == 2048
    assert {b_.tensor: b_.offset for b_ in bufs}["b"] != {b_.tensor: b_.offset for b_ in bufs}["a"]


def test_residual_keeps_input_live():
    # x (1024) -> a -> b; add(x, b) -> y. During b, x, a, b live: 3 KB; at add x, b, y: 3 KB
    g = GraphBuilder("res", (16, 8, 8))
    a = g.conv("input", 16, 3, 1, 1, name="a")
    b = g.conv(a, 16, 3, 1, 1, name="b")
    y = g.add("input", b, name="y")
    arena, _ = plan(g.build([y]))
    assert arena == 3072


def test_branch_that_must_stay_live():
    # x -> big (64x8x8 = 4 KB) ; x -> small1 -> small2 ; add(big_reduced, small2)
    g = GraphBuilder("branch", (16, 8, 8))
    big = g.conv("input", 16, 1, name="big")          # must live until the add
    s1 = g.conv("input", 16, 3, 1, 1, name="s1")
    s2 = g.conv(s1, 16, 3, 1, 1, name="s2")
    y = g.add(big, s2, name="y")
    net = g.build([y])
    arena, bufs = plan(net)
    # during s2: big, s1, s2 live (input dead after s1) = 3 KB
    assert arena == 3072
    assert max(live_bytes(net)) == 3072


def test_alignment_rounds_up():
    g = GraphBuilder("odd", (3, 3, 3))  # 27 B -> 32
    a = g.conv("input", 1, 1, name="a")  # 9 B -> 16
    arena, _ = plan(g.build([a]), alignment=16)
    assert arena == 48


def test_bounds_on_nb201():
    rng = np.random.default_rng(0)
    space = NB201Space()
    for _ in range(60):
        net = nb201_network(space.sample(rng))
        arena, bufs = plan(net)
        biggest_layer = max(
            sum(-(-net.tensors[t].nbytes // 16) * 16 for t in {*la.inputs, la.output})
            for la in net.layers)
        naive = sum(b.size_bytes for b in bufs)
        assert max(live_bytes(net)) <= arena <= naive
        assert arena >= biggest_layer
        # no two buffers alive at once overlap in memory
        for i, p in enumerate(bufs):
            for q in bufs[i + 1:]:
                if not (p.last < q.first or q.last < p.first):
                    assert p.offset + p.size_bytes <= q.offset or q.offset + q.size_bytes <= p.offset
