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


def _placement_is_safe(net, arena, bufs):
    """Every two buffers live at once are disjoint, or an output over the input it consumes
    last with the input at least the kernel's lead above it."""
    from micronas.hardware.planner import fuse_pads, overlap_lead

    fused = fuse_pads(net)
    prod = {lay.output: i for i, lay in enumerate(fused.layers)}
    for b in bufs:
        assert 0 <= b.offset and b.offset + b.size_bytes <= arena
    for i, p in enumerate(bufs):
        for q in bufs[i + 1:]:
            if p.last < q.first or q.last < p.first:
                continue
            if p.offset + p.size_bytes <= q.offset or q.offset + q.size_bytes <= p.offset:
                continue
            out, inp = (p, q) if p.first > q.first else (q, p)
            layer = fused.layers[prod[out.tensor]]
            assert inp.tensor in layer.inputs and inp.last == prod[out.tensor]
            lead = overlap_lead(fused, prod[out.tensor])
            assert lead is not None and inp.offset - out.offset >= min(lead, out.size_bytes)


def test_depthwise_lead_is_one_row_and_two_pixels():
    from micronas.hardware.planner import overlap_lead

    g = GraphBuilder("dw", (16, 8, 10))
    a = g.conv("input", 16, 1, name="a")
    b = g.conv(a, 16, 3, 1, 1, groups=16, name="b")
    net = g.build([g.conv(b, 8, 1, name="c")])
    assert overlap_lead(net, 1) == (10 + 2) * 16  # the row above and the pixel before


def test_standalone_plan_writes_in_place_and_folds_pads():
    from micronas.api import build_ir
    from micronas.hardware.planner import fuse_pads, plan_standalone
    from micronas.ir import lower_for_tflm

    for name in ("mlperf:kws", "mlperf:vww", "mlperf:ic"):
        net = lower_for_tflm(build_ir(name))
        arena, bufs = plan_standalone(net)
        assert arena <= plan(net)[0]
        _placement_is_safe(net, arena, bufs)
    kws = lower_for_tflm(build_ir("mlperf:kws"))
    assert plan_standalone(kws)[0] < 0.7 * plan(kws)[0]  # in-place depthwise
    vww = lower_for_tflm(build_ir("mlperf:vww"))
    fused = fuse_pads(vww)
    assert not any(lay.op == "pad" for lay in fused.layers)
    assert any(lay.op == "pad" for lay in vww.layers)
    assert plan_standalone(vww)[0] < plan(vww)[0]  # no padded copy of a wide map


def test_micronas_c_charges_the_standalone_plan():
    from micronas.api import build_ir
    from micronas.hardware import estimate, load_device
    from micronas.hardware.planner import im2col_bytes, plan_standalone
    from micronas.ir import lower_for_tflm

    net = build_ir("mlperf:kws")
    r = estimate(net, load_device("stm32l4r5", "micronas-c"))
    low = lower_for_tflm(net)
    assert r.arena_bytes == plan_standalone(low)[0]
    assert r.scratch_bytes == im2col_bytes(low) > 0
    assert r.persistent_bytes == 0
    assert estimate(net, load_device("stm32l4r5", "tflm-cmsis-nn")).arena_bytes == plan(low)[0]
