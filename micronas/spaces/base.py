"""The search-space protocol: plain data, no torch."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

A = TypeVar("A", bound=Hashable)


@runtime_checkable
class SearchSpace(Protocol[A]):
    """A space of architectures. Architectures are immutable, hashable values."""

    name: str

    def parse(self, text: str) -> A:
        """Parse a string or index into an architecture; raise ArchError when malformed."""
        ...

    def size(self) -> int | None:
        """Number of architectures, or None if infinite."""
        ...

    def enumerate(self) -> Iterator[A]:
        """All architectures in the space's canonical order."""
        ...

    def sample(self, rng: np.random.Generator) -> A:
        """One architecture drawn uniformly with ``rng``."""
        ...

    def mutate(self, arch: A, rng: np.random.Generator) -> A:
        """A random neighbour of ``arch`` (differs in exactly one choice)."""
        ...

    def neighbours(self, arch: A) -> list[A]:
        """All architectures that differ from ``arch`` in exactly one choice."""
        ...

    def iso_key(self, arch: A) -> str:
        """A key shared exactly by architectures that compute the same function."""
        ...
