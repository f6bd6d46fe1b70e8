"""The search-space protocol (the first door) and the space registry.

Architectures are immutable, hashable values. A space parses and formats them, draws and
mutates them from an explicit generator, and builds them for a :class:`~micronas.tasks.Task`:
``to_network`` gives the torch-free network IR every cost reads, ``to_module`` the torch
module indicators run on (``variant``: ``"full"``, or a reduced network an indicator asks
for; a space that has no reduced form returns the full one). Nothing outside a space's own
folder names its architecture type: everything else holds an architecture as an opaque
value, or a :class:`Candidate` (an architecture of a space, for a task).

Optional capabilities are runtime-checkable protocols (``offers(space, Enumerable)``),
each with its own checks in the conformance suite (:mod:`micronas.spaces.testing`):
:class:`Enumerable` (finite spaces), :class:`Indexed` (an integer id), :class:`HasCanonical`
(the representative indicators are computed on, so isomorphic architectures share values),
:class:`CostKeyed` (architectures with equal keys deploy to the same network),
:class:`HasFloor` (an architecture whose network holds only the layers every network of the
space has: the cost lower bound), :class:`HasInfo` (a dict for ``micronas arch``),
:class:`HasSupernet` (a :class:`Supernet` for pruning), :class:`VariantInput` (input shape a
variant's module reads), :class:`TaskBindable` (the space bound to a task, e.g. drawing the
input resolutions the task allows: a search binds its space first with :func:`bind`),
:class:`Shrinkable` (a cheaper neighbour, for searches that start over budget) and
:class:`HasTrainedNetwork` (the IR of the module as trained, where the deployed network
drops dead computation).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, TypeVar, runtime_checkable

import numpy as np

from micronas.errors import MicronasError
from micronas.infra.registry import Registry, summary_of
from micronas.ir import Network
from micronas.tasks import Task

if TYPE_CHECKING:
    from torch import nn

A = TypeVar("A", bound=Hashable)

#: Reduced networks indicators may ask ``to_module`` for (a space may map them to "full").
VARIANTS = ("full", "small", "thin")

#: A supernet state: for each decision (an NB201 edge), the choices still open.
State = tuple[frozenset[str], ...]


@runtime_checkable
class SearchSpace(Protocol[A]):
    """A space of architectures. Architectures are immutable, hashable values."""

    name: str

    def parse(self, text: str) -> A:
        """Parse the canonical string (or an index where the space has one); raise
        ArchError naming what is wrong."""
        ...

    def format(self, arch: A) -> str:
        """The canonical string: ``parse(format(a)) == a``."""
        ...

    def sample(self, rng: np.random.Generator) -> A:
        """One architecture drawn with ``rng``."""
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

    def to_network(self, arch: A, task: Task) -> Network:
        """The deployed network IR of ``arch`` for ``task`` (no torch)."""
        ...

    def to_module(self, arch: A, task: Task, variant: str = "full") -> nn.Module:
        """A torch module of ``arch`` for ``task`` (weights uninitialised: callers
        initialise them from their own generator)."""
        ...


#: A space whose architecture type the holder does not know: everything outside a space's
#: own folder holds its architectures as opaque hashable values.
AnySpace = SearchSpace[Any]


@runtime_checkable
class Supernet(Protocol):
    """Pruning's capability: a network holding several choices per decision."""

    def full(self) -> State:
        """The starting supernet: every prunable choice open on every decision."""
        ...

    def arch(self, state: State) -> Hashable:
        """The architecture of a state with one choice per decision."""
        ...

    def completions(self, state: State) -> Iterable[Hashable]:
        """Architectures choosing one open choice per decision, cheapest-looking first."""
        ...

    def capacity_archs(self, state: State) -> Iterable[Hashable]:
        """A subset of the completions holding, for every parameter count reachable, the
        cheapest one (what budget filling needs to scan)."""
        ...

    def format(self, state: State) -> str:
        ...

    def to_network(self, state: State, task: Task) -> Network:
        ...

    def to_module(self, state: State, task: Task, variant: str = "full") -> nn.Module:
        ...


@runtime_checkable
class Enumerable(Protocol):
    """A finite space: every architecture once (one per isomorphism class is not required)."""

    def enumerate(self) -> Iterator[Any]: ...


@runtime_checkable
class HasSize(Protocol):
    """The number of architectures of a finite space, without enumerating them."""

    def size(self) -> int: ...


@runtime_checkable
class Indexed(Protocol):
    """An integer id per architecture; ``parse`` accepts it."""

    def index(self, arch: Any) -> int: ...


@runtime_checkable
class HasCanonical(Protocol):
    """The representative of an architecture's isomorphism class."""

    def canonical(self, arch: Any) -> Any: ...


@runtime_checkable
class CostKeyed(Protocol):
    """A key shared by architectures that deploy to the same network."""

    def cost_key(self, arch: Any) -> str: ...


@runtime_checkable
class HasFloor(Protocol):
    """An architecture holding only the layers every network of the space has."""

    def floor(self) -> Any: ...


@runtime_checkable
class HasInfo(Protocol):
    """What ``micronas arch`` shows about an architecture."""

    def info(self, arch: Any, task: Task) -> dict[str, Any]: ...


@runtime_checkable
class HasSupernet(Protocol):
    """Pruning's capability: the space's :class:`Supernet`."""

    def supernet(self) -> Supernet: ...


@runtime_checkable
class VariantInput(Protocol):
    """The input shape (C, H, W) a variant's module reads (an architecture may fix its own
    input resolution)."""

    def variant_input(self, variant: str, task: Task, arch: Any = None) -> tuple[int, int, int]: ...


@runtime_checkable
class TaskBindable(Protocol):
    """The space bound to a task (e.g. the input resolutions the task allows)."""

    def for_task(self, task: Task) -> SearchSpace: ...


@runtime_checkable
class Shrinkable(Protocol):
    """A cheaper neighbour of an architecture (None: none is cheaper)."""

    def shrink(self, arch: Any, rng: np.random.Generator) -> Any | None: ...


@runtime_checkable
class HasTrainedNetwork(Protocol):
    """The IR of the module as it computes (where ``to_network`` drops dead computation)."""

    def trained_network(self, arch: Any, task: Task) -> Network: ...


#: Every optional capability of a space, by the method name that defines it.
CAPABILITIES: dict[str, type] = {
    "enumerate": Enumerable, "size": HasSize, "index": Indexed, "canonical": HasCanonical,
    "cost_key": CostKeyed, "floor": HasFloor, "info": HasInfo, "supernet": HasSupernet,
    "variant_input": VariantInput, "for_task": TaskBindable, "shrink": Shrinkable,
    "trained_network": HasTrainedNetwork}


P = TypeVar("P")


@functools.cache
def _members(protocol: type) -> tuple[str, ...]:
    return tuple(k for k, v in vars(protocol).items() if callable(v) and not k.startswith("_"))


def offers(space: object, capability: type[P]) -> TypeGuard[P]:
    """Whether ``space`` offers a capability protocol: each of its methods is a callable
    attribute of ``space`` (looked up as calls look it up, so a space that forwards through
    ``__getattr__`` keeps its capabilities)."""
    return all(callable(getattr(space, m, None)) for m in _members(capability))


def capabilities(space: object) -> list[str]:
    """The optional capabilities ``space`` offers (names of :data:`CAPABILITIES`)."""
    return [name for name, proto in CAPABILITIES.items() if offers(space, proto)]


def bind(space: SearchSpace, task: Task) -> SearchSpace:
    """``space`` bound to ``task`` where it has ``for_task`` (itself otherwise)."""
    return space.for_task(task) if offers(space, TaskBindable) else space


def canonical(space: SearchSpace, arch: Any) -> Any:
    """The representative of ``arch``'s isomorphism class (``arch`` itself by default)."""
    return space.canonical(arch) if offers(space, HasCanonical) else arch


def index_of(space: SearchSpace, arch: Any) -> int | None:
    return space.index(arch) if offers(space, Indexed) else None


def cost_key(space: SearchSpace, arch: Any) -> str:
    return space.cost_key(arch) if offers(space, CostKeyed) else space.format(arch)


@dataclass(frozen=True, eq=False)
class Candidate:
    """What indicators and costs are given: an architecture (or a supernet state) of a space,
    for a task. It builds its own modules and network, so indicators never see the
    architecture's type. Picklable (worker processes) when the space's class is importable."""

    space: SearchSpace
    arch: Any
    task: Task
    supernet: bool = False

    def _builder(self) -> Any:
        if self.supernet:
            assert offers(self.space, HasSupernet)
            return self.space.supernet()
        return self.space

    def module(self, variant: str = "full") -> nn.Module:
        return self._builder().to_module(self.arch, self.task, variant)

    def network(self) -> Network:
        return self._builder().to_network(self.arch, self.task)

    def variant_input(self, variant: str) -> tuple[int, int, int]:
        """Input shape (C, H, W) the module of ``variant`` reads."""
        if offers(self.space, VariantInput):
            return self.space.variant_input(variant, self.task, self.arch)
        return self.task.input_shape

    def label(self) -> str:
        return ("supernet " if self.supernet else "") + self._builder().format(self.arch)

    def _id(self) -> tuple:
        return (self.space.name, self.arch, self.task, self.supernet)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Candidate) and self._id() == other._id()

    def __hash__(self) -> int:
        return hash(self._id())

    def __str__(self) -> str:
        return self.label()


#: Every registered space (name -> factory); ``get_space`` keeps one instance per process.
SPACES: Registry[Callable[[], SearchSpace]] = Registry("search space")
_INSTANCES: dict[str, SearchSpace] = {}


def register_space(name: str, factory: Callable[[], SearchSpace], summary: str = "") -> None:
    """Make ``get_space(name)`` return ``factory()`` (one instance per process)."""
    SPACES.register(name, factory, summary or summary_of(factory.__doc__))
    _INSTANCES.pop(name.strip().lower(), None)


def list_spaces() -> list[str]:
    return sorted(SPACES.names())


def get_space(name: str | SearchSpace) -> SearchSpace:
    """A registered space by name (or the space itself); a one-line error otherwise."""
    if not isinstance(name, str):
        return name
    key = SPACES.key(name)
    if key not in _INSTANCES:
        _INSTANCES[key] = SPACES[key]()
    return _INSTANCES[key]


def enumerate_space(space: SearchSpace) -> Iterator[Any]:
    if not offers(space, Enumerable):
        raise MicronasError(f"space {space.name!r} cannot be enumerated")
    return space.enumerate()
