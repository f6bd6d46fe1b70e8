"""The NAS-Bench-Macro space: conformance, isomorphism classes, and its IR against the
benchmark's published parameter and FLOP counts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from micronas.errors import ArchError
from micronas.spaces import get_space
from micronas.spaces.nbmacro import NUM_ARCHS, NUM_CLASSES, NBMacroArch, nbmacro_counts
from micronas.spaces.testing import SpaceConformance
from micronas.tasks import Task, get_task

pytestmark = pytest.mark.unit


class TestNBMacro(SpaceConformance):
    space = get_space("nbmacro")
    tasks = (Task("cifar-like", (3, 32, 32), 10), Task("wide-gray", (1, 49, 10), 12),
             Task("tiny-gray", (1, 28, 28), 2))


def test_isomorphism_classes():
    sp = get_space("nbmacro")
    keys = {sp.iso_key(a) for a in sp.enumerate()}
    assert sum(1 for _ in sp.enumerate()) == NUM_ARCHS == 6561
    assert len(keys) == NUM_CLASSES == 3969 == len(sp.classes())
    # identities inside a stage move; the reducing first layer of a stage does not
    assert sp.iso_key(sp.parse("10102001")) == sp.iso_key(sp.parse("10120010")) == "10120010"
    assert sp.iso_key(sp.parse("01100000")) != sp.iso_key(sp.parse("10100000"))
    # isomorphic architectures deploy to the same network
    t = get_task("cifar10")
    a, b = (sp.to_network(sp.parse(s), t) for s in ("10102001", "10120010"))
    assert [la.name for la in a.layers] == [la.name for la in b.layers]


def test_parse_refuses_bad_strings():
    sp = get_space("nbmacro")
    for bad in ("1234", "2221222", "222122203", "0000000x"):
        with pytest.raises(ArchError, match="NAS-Bench-Macro"):
            sp.parse(bad)
    assert NBMacroArch.from_code(NBMacroArch.from_string("22212220").code) == sp.parse("22212220")


def test_known_counts():
    """The benchmark's two extremes (from its table): all identity and all MB6_K5."""
    t = get_task("cifar10")
    assert nbmacro_counts(NBMacroArch((0,) * 8), t) == (7_713_280, 387_882)
    assert nbmacro_counts(NBMacroArch((2,) * 8), t) == (105_660_928, 2_932_586)


def test_module_is_the_benchmark_network():
    """ReLU (not ReLU6); a shortcut exactly where the stride is 1 and the channels match."""
    from torch import nn

    m = get_space("nbmacro").to_module(NBMacroArch((1, 2, 2, 0, 1, 2, 2, 0)), get_task("cifar10"))
    acts = {type(x) for x in m.modules() if isinstance(x, nn.ReLU | nn.ReLU6)}
    assert acts == {nn.ReLU}
    assert [la.residual for la in m.layers] == [False, True, False, True, False, True]


@pytest.mark.parametrize("seed", [0])
def test_small_variants_are_smaller(seed):
    sp = get_space("nbmacro")
    a = sp.sample(np.random.default_rng(seed))
    t = get_task("cifar10")
    n = [sum(p.numel() for p in sp.to_module(a, t, v).parameters())
         for v in ("full", "small", "thin")]
    assert n[0] > n[1] > n[2]


def test_counts_match_the_benchmark_table(shared_data):
    """Every one of the 6,561 rows: the IR's MACs are the benchmark's ``flops`` and its float
    parameters (BN included) its ``params``, exactly."""
    path = shared_data / "nbmacro" / "nas-bench-macro_cifar10.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    table = json.loads(path.read_text())
    assert len(table) == NUM_ARCHS
    sp, t = get_space("nbmacro"), get_task("cifar10")
    for key, row in table.items():
        assert nbmacro_counts(sp.parse(key), t) == (row["flops"], row["params"]), key
