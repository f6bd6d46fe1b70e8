"""Torch modules built from architectures (imports torch)."""

from micronas.nn.nb201 import CellNetwork, build_network, init_weights

__all__ = ["CellNetwork", "build_network", "init_weights"]
