"""NAS-Bench-201: architecture values, index, isomorphism, network IR, torch modules and the
pruning supernet. Nothing outside this folder (and the NB201 ground-truth table in
``micronas/bench/``) names these types."""

from micronas.spaces.nb201.arch import EDGES, NUM_ARCHS, OPS, NB201Arch
from micronas.spaces.nb201.network import EdgeOps, as_edge_ops, nb201_counts, nb201_network
from micronas.spaces.nb201.space import PRUNE_OPS, NB201Space, NB201Supernet

__all__ = ["EDGES", "NUM_ARCHS", "OPS", "PRUNE_OPS", "EdgeOps", "NB201Arch", "NB201Space",
           "NB201Supernet", "as_edge_ops", "nb201_counts", "nb201_network"]
