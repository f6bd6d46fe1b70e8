"""Every space passes the shipped conformance suite (micronas.spaces.testing): NB201, and a
deliberately tiny second space added in this file alone plus one registry line."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest

from micronas.errors import ArchError
from micronas.ir import GraphBuilder, Network
from micronas.spaces import get_space, register_space
from micronas.spaces.testing import SpaceConformance
from micronas.tasks import Task

pytestmark = pytest.mark.unit

KERNELS = (1, 3, 5)
WIDTHS = (4, 8, 16)


@dataclass(frozen=True)
class Chain:
    """Three conv layers: (kernel, width) each."""

    layers: tuple[tuple[int, int], ...]


class Chain3Space:
    """A chain of 3 Conv-BN-ReLU layers (kernel 1/3/5, width 4/8/16), global pool, FC."""

    name = "chain3"
    _RE = re.compile(r"^k(\d)w(\d+)$")

    def parse(self, text: str) -> Chain:
        parts = str(text).split("-")
        if len(parts) != 3:
            raise ArchError(f"chain3: expected 3 layers like k3w8-k1w4-k5w16, got {text!r}")
        out = []
        for i, p in enumerate(parts):
            m = self._RE.match(p)
            if not m or int(m.group(1)) not in KERNELS or int(m.group(2)) not in WIDTHS:
                raise ArchError(f"chain3: layer {i} {p!r}: use k{{1,3,5}}w{{4,8,16}}")
            out.append((int(m.group(1)), int(m.group(2))))
        return Chain(tuple(out))

    def format(self, a: Chain) -> str:
        return "-".join(f"k{k}w{w}" for k, w in a.layers)

    def sample(self, rng: np.random.Generator) -> Chain:
        return Chain(tuple((KERNELS[rng.integers(3)], WIDTHS[rng.integers(3)]) for _ in range(3)))

    def _choices(self, a: Chain) -> list[Chain]:
        out = []
        for i, (k, w) in enumerate(a.layers):
            for k2 in KERNELS:
                for w2 in WIDTHS:
                    if (k2 == k) != (w2 == w):  # exactly one of the two changes
                        new = list(a.layers)
                        new[i] = (k2, w2)
                        out.append(Chain(tuple(new)))
        return out

    def neighbours(self, a: Chain) -> list[Chain]:
        return self._choices(a)

    def mutate(self, a: Chain, rng: np.random.Generator) -> Chain:
        n = self._choices(a)
        return n[int(rng.integers(len(n)))]

    def iso_key(self, a: Chain) -> str:
        return self.format(a)

    def to_network(self, a: Chain, task: Task) -> Network:
        g = GraphBuilder(self.format(a), task.input_shape)
        x = g.input_name
        for i, (k, w) in enumerate(a.layers):
            x = g.relu(g.conv(x, w, k, 1, k // 2, name=f"conv{i}"))
        return g.build([g.fc(g.global_avgpool(x, name="gap"), task.classes, name="fc")])

    def to_module(self, a: Chain, task: Task, variant: str = "full"):
        from torch import nn

        layers, c = [], task.channels
        for k, w in a.layers:
            layers += [nn.Conv2d(c, w, k, padding=k // 2, bias=False), nn.BatchNorm2d(w),
                       nn.ReLU()]
            c = w
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(c, task.classes))


register_space("chain3", Chain3Space)


class TestNB201(SpaceConformance):
    space = get_space("nb201")
    tasks = (Task("cifar-like", (3, 32, 32), 10), Task("gray-wide", (1, 64, 48), 2),
             Task("small", (3, 16, 16), 120))


def test_nb201_refuses_an_input_it_cannot_reduce():
    with pytest.raises(ArchError, match="multiples of 4"):
        get_space("nb201").to_network(get_space("nb201").parse("6111"),
                                      Task("kws", (1, 49, 10), 12))


class TestChain3(SpaceConformance):
    space = get_space("chain3")


def test_chain3_searches_through_the_same_door():
    """The tiny space runs through the whole search (evolution, real indicators, costs)."""
    from micronas.search import SearchConfig, run_search

    r = run_search(SearchConfig.of(space="chain3", strategy="evolution", evaluations=6,
                                input="20x12x1", classes=3, indicators="synflow,params",
                                device="nrf52840", workers=1))
    assert r.space == "chain3" and r.index is None and r.input_shape == (1, 20, 12)
    assert get_space("chain3").parse(r.arch)
    with pytest.raises(Exception, match="prune needs a supernet"):
        run_search(SearchConfig.of(space="chain3", strategy="prune", input="20x12x1", classes=3,
                                workers=1))
    # without a supernet the default strategy is evolution
    assert SearchConfig.of(space="chain3").resolved_strategy() == "evolution"
    assert SearchConfig.of().resolved_strategy() == "prune"
