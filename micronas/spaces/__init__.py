"""Search spaces behind one door (:class:`SearchSpace`), found by name with :func:`get_space`;
optional capabilities are runtime-checkable protocols (:data:`CAPABILITIES`)."""

from micronas.spaces.base import (
    CAPABILITIES,
    SPACES,
    AnySpace,
    Candidate,
    CostKeyed,
    Enumerable,
    HasCanonical,
    HasFloor,
    HasInfo,
    HasSize,
    HasSupernet,
    HasTrainedNetwork,
    Indexed,
    SearchSpace,
    Shrinkable,
    Supernet,
    TaskBindable,
    VariantInput,
    bind,
    canonical,
    capabilities,
    cost_key,
    get_space,
    index_of,
    list_spaces,
    offers,
    register_space,
)
from micronas.spaces.mcu.space import McuSpace
from micronas.spaces.nb201.space import NB201Space
from micronas.spaces.nbmacro.space import NBMacroSpace

register_space("nb201", NB201Space)
register_space("mcu", McuSpace)
register_space("nbmacro", NBMacroSpace)

__all__ = ["CAPABILITIES", "SPACES", "AnySpace", "Candidate", "CostKeyed", "Enumerable",
           "HasCanonical", "HasFloor", "HasInfo", "HasSize", "HasSupernet", "HasTrainedNetwork",
           "Indexed", "SearchSpace", "Shrinkable", "Supernet", "TaskBindable", "VariantInput", "bind",
           "canonical", "capabilities", "cost_key", "get_space", "index_of", "list_spaces", "offers",
           "register_space"]
