"""Conformance checks every search space must pass (style.md: one shared test over spaces)."""

import itertools

import numpy as np
import pytest

from micronas.spaces import NB201Space, SearchSpace

SPACES = [NB201Space()]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_space_protocol(space):
    assert isinstance(space, SearchSpace)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(20)]
    again = [space.sample(np.random.default_rng(0)) for _ in range(1)]
    assert again[0] == archs[0]  # seeded
    for a in archs:
        assert space.parse(str(a)) == a  # canonical string round-trips
        assert hash(a) == hash(space.parse(str(a)))
        m = space.mutate(a, rng)
        assert m != a and m in space.neighbours(a)
        assert space.iso_key(a) == space.iso_key(space.parse(str(a)))
    n = space.size()
    if n is not None:
        first = list(itertools.islice(space.enumerate(), 100))
        assert len(set(first)) == len(first)
        assert sum(1 for _ in space.enumerate()) == n
