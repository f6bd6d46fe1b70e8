"""NAS-Bench-Macro (Su et al., CVPR 2021): architecture values, isomorphism classes, network
IR and torch modules. Nothing outside this folder (and the benchmark's table in
``micronas/bench/``) names these types."""

from micronas.spaces.nbmacro.arch import NUM_ARCHS, NUM_CLASSES, NBMacroArch
from micronas.spaces.nbmacro.network import nbmacro_counts, nbmacro_network
from micronas.spaces.nbmacro.space import NBMacroSpace

__all__ = ["NUM_ARCHS", "NUM_CLASSES", "NBMacroArch", "NBMacroSpace", "nbmacro_counts",
           "nbmacro_network"]
