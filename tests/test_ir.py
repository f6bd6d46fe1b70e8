import csv
import subprocess
import sys

import numpy as np
import pytest

from micronas.errors import MicronasError
from micronas.ir import GraphBuilder
from micronas.spaces.nb201 import EDGES, NB201Arch, NB201Space, nb201_counts, nb201_network
from micronas.tasks import get_task

pytestmark = pytest.mark.unit

DS = {"cifar10": "cifar10", "cifar100": "cifar100", "ImageNet16-120": "imagenet16-120"}


def edge_params_and_macs(op: str) -> tuple[int, int]:
    """Hand count of one cell edge's deployed conv (weights + folded-BN bias) over 15 cells."""
    k = {"nor_conv_3x3": 9, "nor_conv_1x1": 1}.get(op, 0)
    if not k:
        return 0, 0
    params = macs = 0
    for c, hw in ((16, 32 * 32), (32, 16 * 16), (64, 8 * 8)):
        params += 5 * (c * c * k + c)
        macs += 5 * c * c * k * hw
    return params, macs


def test_hand_counted_index_0():
    # |avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|
    flops, params = nb201_counts(NB201Arch.from_index(0))
    assert round(params * 1e6) == 129306  # NB201 params_m = 0.129306


@pytest.mark.slow
@pytest.mark.data
def test_nb201_params_match_published_for_all(shared_data):
    """Our count equals params_m exactly, except rows where params_m mixes records.

    204 rows of params_m are averages over 2-3 training seeds whose records belong to
    networks with one more or fewer conv edge: their difference from our count is j/n of a
    conv edge's params (n in {2, 3}). Each such row must be explained that way.
    """
    with open(shared_data / "nb201" / "nb201_accuracy.csv") as f:
        rows = list(csv.DictReader(f))
    p1, _ = edge_params_and_macs("nor_conv_1x1")
    p3, _ = edge_params_and_macs("nor_conv_3x3")
    # conv edges in NB201 count BN gamma+beta (2C), not a bias (C): adjust
    p1 += 5 * (16 + 32 + 64)
    p3 += 5 * (16 + 32 + 64)
    exact = anomalous = 0
    for r in rows:
        _, ours = nb201_counts(NB201Arch.from_string(r["arch"]))
        pub = float(r["params_m"])
        if abs(ours - pub) / pub <= 1e-3:
            exact += 1
            assert abs(ours - pub) < 1e-6
            continue
        anomalous += 1
        diff6 = round((ours - pub) * 1e6 * 6)  # six = lcm(2, 3)
        assert any(abs(diff6 - (a * p1 + b * p3)) <= 6
                   for a in range(-6, 7) for b in range(-6, 7)), r["index"]
    assert exact >= 15625 - 204 and anomalous <= 204


@pytest.mark.data
def test_nb201_flops_match_published(shared_data):
    with open(shared_data / "nb201" / "nb201_accuracy.csv") as f:
        params_m = {int(r["index"]): float(r["params_m"]) for r in csv.DictReader(f)}
    with open(shared_data / "nb201" / "nb201_zero_cost_subset.csv") as f:
        rows = list(csv.DictReader(f))
    checked = 0
    skipped = 0
    for r in rows:
        flops, params = nb201_counts(NB201Arch.from_string(r["arch_str"]), get_task(DS[r["dataset"]]))
        ref = params_m[int(r["index"])] if r["dataset"] == "cifar10" else params
        if abs(float(r["params"]) - ref) / ref > 1e-3:
            skipped += 1  # NASLib decoding slip: the row describes another architecture
            continue
        assert abs(flops - float(r["flops"])) / float(r["flops"]) < 0.01, r["index"]
        checked += 1
    assert skipped <= 40 and checked >= 2100


def test_dead_edges_reduce_counts_by_their_share():
    rng = np.random.default_rng(0)
    space = NB201Space()
    seen = 0
    while seen < 30:
        a = space.sample(rng)
        live = a.live_edges()
        if all(live):
            continue
        seen += 1
        full = nb201_network(a, keep_dead=True)
        dep = nb201_network(a)
        dead_p = dead_m = 0
        for op, lv in zip(a.ops, live, strict=True):
            if not lv:
                p, m = edge_params_and_macs(op)
                dead_p += p
                dead_m += m
        assert full.macs - dep.macs == dead_m
        assert full.params - dep.params == dead_p


def test_bn_folded_and_identity_is_reuse():
    a = NB201Arch(("skip_connect", "none", "none", "none", "none", "skip_connect"))
    # node1 = x, node2 = 0 (dead), node3 = node2 ... all dead except skip chain? node 3 only
    # reads node 2 which is zero: the cell outputs zeros
    net = nb201_network(a)
    assert sum(layer.op == "zeros" for layer in net.layers) == 15
    b = NB201Arch(("skip_connect", "none", "skip_connect", "none", "none", "skip_connect"))
    net_b = nb201_network(b)  # identity cells: no layers at all
    assert not any(layer.tag.startswith("s1.c") for layer in net_b.layers)
    assert all(layer.op != "relu" or True for layer in net_b.layers)
    stem = net_b.layers[0]
    assert stem.bias_params == 16 and stem.source_params == 3 * 16 * 9 + 32


def test_relu_fused_and_shared():
    # node 0 feeds conv(0->1), conv(0->2) and skip(0->3): it is needed raw and rectified, so
    # one ReLU layer is shared by both convs in every cell
    a = NB201Arch(("nor_conv_3x3", "nor_conv_3x3", "skip_connect", "skip_connect", "none",
                   "nor_conv_1x1"))
    net = nb201_network(a)
    cons = net.consumers()
    cell_relus = [la for la in net.layers if la.op == "relu" and ".c" in la.inputs[0] + "s1.c"]
    in_cells = [la for la in net.layers if la.op == "relu"
                and sum(net.layers[i].tag.endswith("nor_conv_3x3") for i in cons[la.output]) == 2]
    assert len(in_cells) == 15
    assert cell_relus
    # all-conv cells: every ReLU is fused into the layer that produces its input, except the
    # two stage outputs, which the reduction block also reads raw (its pooled shortcut)
    b = NB201Arch(("nor_conv_3x3",) * 6)
    net_b = nb201_network(b)
    assert [la.inputs[0] for la in net_b.layers if la.op == "relu"] == [
        "s1.c4.n3.add1", "s2.c4.n3.add1"]
    conv_a = next(la for la in net_b.layers if la.name == "s1.reduce.conv_a")
    assert conv_a.fused_relu  # its only reader is conv_b's ReLU


def test_ir_does_not_import_torch():
    code = ("import sys; from micronas.api import cost; cost(6111, 'stm32f746'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_builder_errors_are_clear():
    g = GraphBuilder("t", (3, 8, 8))
    a = g.conv("input", 4, 3, 1, 1, name="a")
    b = g.conv("input", 5, 3, 1, 1, name="b")
    with pytest.raises(MicronasError, match="cannot add shapes"):
        g.add(a, b, name="c")


def test_edges_constant():
    assert EDGES[3] == (0, 3)
