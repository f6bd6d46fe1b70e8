"""Search spaces behind one door (:class:`SearchSpace`), found by name with :func:`get_space`."""

from micronas.spaces.base import (
    Candidate,
    SearchSpace,
    Supernet,
    bind,
    canonical,
    cost_key,
    get_space,
    has,
    index_of,
    list_spaces,
    register_space,
)
from micronas.spaces.mcu.space import McuSpace
from micronas.spaces.nb201.space import NB201Space

register_space("nb201", NB201Space)
register_space("mcu", McuSpace)

__all__ = ["Candidate", "SearchSpace", "Supernet", "bind", "canonical", "cost_key", "get_space", "has",
           "index_of", "list_spaces", "register_space"]
