"""Seed handling: every random choice goes through an explicit generator."""

from __future__ import annotations

import numpy as np

SeedLike = int | np.random.Generator | None


def as_rng(seed: SeedLike) -> np.random.Generator:
    """Return a numpy Generator for ``seed`` (an int, a Generator, or None for seed 0).

    ``None`` maps to seed 0, not to OS entropy: results are reproducible unless the caller
    passes a generator of their own.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(0 if seed is None else int(seed))


def child_seed(rng: np.random.Generator) -> int:
    """Draw a 31-bit seed from ``rng`` for a sub-computation (e.g. torch weight init)."""
    return int(rng.integers(0, 2**31 - 1))
