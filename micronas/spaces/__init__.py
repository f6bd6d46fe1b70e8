"""Search spaces: plain-data architectures, no torch."""

from micronas.spaces.base import SearchSpace
from micronas.spaces.nb201 import EDGES, OPS, NB201Arch, NB201Space

__all__ = ["EDGES", "OPS", "NB201Arch", "NB201Space", "SearchSpace"]
