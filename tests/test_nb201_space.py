import csv

import numpy as np
import pytest

from micronas.errors import ArchError
from micronas.spaces.nb201 import EDGES, OPS, NB201Arch, NB201Space

pytestmark = pytest.mark.unit

S6111 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_index_6111_roundtrip():
    a = NB201Arch.from_index(6111)
    assert str(a) == S6111
    assert NB201Arch.from_string(S6111).index == 6111


def test_index_is_nb201_seeded_shuffle_and_bijective():
    space = NB201Space()
    archs = list(space.enumerate())
    assert len(archs) == 15625 == len(set(archs))
    assert [a.index for a in archs[:50]] == list(range(50))
    # NB201's own asserts on its shuffled order (generate_meta_info)
    assert str(archs[0]) == ("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|"
                             "skip_connect~1|skip_connect~2|")
    assert str(archs[9]) == "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    assert str(archs[123]) == ("|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|"
                               "avg_pool_3x3~1|nor_conv_3x3~2|")


@pytest.mark.data
def test_all_indices_match_benchmark_table(shared_data):
    with open(shared_data / "nb201" / "nb201_accuracy.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15625
    for r in rows:
        a = NB201Arch.from_index(int(r["index"]))
        assert str(a) == r["arch"], r["index"]
        assert NB201Arch.from_string(r["arch"]).index == int(r["index"])


def test_iso_keys_give_6466_unique():
    keys = {a.iso_key() for a in NB201Space().enumerate()}
    assert len(keys) == 6466


def test_iso_key_merges_equivalent_cells():
    # dead edge into node 2 when node 2 does not reach node 3
    a = NB201Arch(("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "none", "none"))
    b = NB201Arch(("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "none", "none"))
    assert a.iso_key() == b.iso_key()
    assert a.live_edges() == (False, False, False, True, False, False)
    c = NB201Arch(("nor_conv_3x3", "none", "none", "skip_connect", "nor_conv_3x3", "none"))
    assert c.iso_key() != a.iso_key()


def test_live_edges_hand_cases():
    all_conv = NB201Arch(("nor_conv_3x3",) * 6)
    assert all_conv.live_edges() == (True,) * 6
    # node 1 receives nothing (edges out of it are dead); node 2 never reaches node 3
    a = NB201Arch(("none", "skip_connect", "nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3", "none"))
    assert a.live_edges() == (False, False, False, True, False, False)
    b = NB201Arch(("none", "skip_connect", "nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3",
                   "avg_pool_3x3"))
    assert b.live_edges() == (False, True, False, True, False, True)
    assert NB201Arch(("none",) * 6).live_edges() == (False,) * 6


@pytest.mark.parametrize("text, fragment", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "3 node groups"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv'"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must read from node 0"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "must have 2 input"),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "expected 'op~source'"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "start and end with '|'"),
    ("15625", "out of range"),
    ("-1", "out of range"),
    ("resnet", "give an NB201 index"),
])
def test_parse_errors(text, fragment):
    with pytest.raises(ArchError, match=fragment):
        NB201Space().parse(text)


def test_sampling_mutation_neighbours_are_seeded():
    space = NB201Space()
    a1 = [space.sample(np.random.default_rng(3)) for _ in range(1)]
    a2 = [space.sample(np.random.default_rng(3)) for _ in range(1)]
    assert a1 == a2
    rng = np.random.default_rng(7)
    arch = space.sample(rng)
    for _ in range(20):
        m = space.mutate(arch, rng)
        assert sum(x != y for x, y in zip(m.ops, arch.ops, strict=True)) == 1
    nb = space.neighbours(arch)
    assert len(nb) == len(EDGES) * (len(OPS) - 1) == len(set(nb))
    assert arch not in nb


def test_arch_is_hashable_value():
    a = NB201Arch.from_index(10)
    assert {a: 1}[NB201Arch.from_string(str(a))] == 1
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        a.ops = ()  # frozen
