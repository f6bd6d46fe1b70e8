"""The conformance suite every search space must pass (after Optuna's
``optuna/testing/pytest_samplers.py``): subclass :class:`SpaceConformance` in a test file and
set ``space`` (and optionally ``tasks``); pytest collects the checks.

>>> class TestMySpace(SpaceConformance):
...     space = MySpace()

Checks: the protocol; parse/format round trip; seeded determinism of ``sample`` and
``mutate``; ``mutate`` differs in exactly one choice and is a neighbour; neighbours are valid
and distinct; ``iso_key`` stable (and shared by ``canonical``); enumeration (finite spaces);
``to_network`` and ``to_module`` agree on output shape, MACs and parameters for sampled
architectures under several tasks (square, non-square, one channel, many classes); every
module variant runs on its declared input; and each optional capability the space offers
(:data:`~micronas.spaces.base.CAPABILITIES`) keeps its contract: an index round-trips through
``parse``, ``canonical`` keeps the iso key and is idempotent, equal ``cost_key`` means an
equal network, ``trained_network`` agrees with ``to_network`` on the output and does no less
work, ``floor`` costs no more than any sample, ``info`` is a dict, a supernet yields
valid architectures, ``variant_input`` is the shape the module reads, ``for_task`` gives a
space of the same name, ``shrink`` gives a valid neighbour that costs no more.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np

from micronas.spaces.base import (
    CAPABILITIES,
    VARIANTS,
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
    canonical,
    capabilities,
    offers,
)
from micronas.tasks import Task

DEFAULT_TASKS = (
    Task("cifar-like", (3, 32, 32), 10),
    Task("wide-gray", (1, 49, 10), 12),
    Task("tiny-gray", (1, 28, 28), 2),
)


def module_counts(module: Any, shape: tuple[int, int, int]) -> tuple[tuple[int, ...], int, int]:
    """(output shape, MACs, parameters) of a torch module on a batch of one ``shape`` input,
    counted independently of the IR: MACs of Conv2d / Linear layers by forward hooks, every
    parameter of the module (BatchNorm's gamma and beta included, as the IR's
    ``source_params`` counts them)."""
    import torch
    from torch import nn

    macs = 0

    def hook(m: nn.Module, _i: Any, out: torch.Tensor) -> None:
        nonlocal macs
        macs += m.weight.numel() * (out[0].numel() // out.shape[1])

    mods = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    handles = [m.register_forward_hook(hook) for m in mods]
    module.eval()
    with torch.no_grad():
        y = module(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return tuple(y.shape[1:]), macs, sum(p.numel() for p in module.parameters())


class SpaceConformance:
    """Subclass with ``space = ...``; each ``test_*`` method is one conformance check."""

    space: ClassVar[SearchSpace]
    tasks: ClassVar[tuple[Task, ...]] = DEFAULT_TASKS
    samples: ClassVar[int] = 20
    module_samples: ClassVar[int] = 4

    def _archs(self, seed: int = 0, n: int | None = None) -> list[Any]:
        rng = np.random.default_rng(seed)
        return [self.space.sample(rng) for _ in range(n or self.samples)]

    def test_protocol(self) -> None:
        assert isinstance(self.space, SearchSpace)
        assert isinstance(self.space.name, str) and self.space.name

    def test_parse_format_round_trip(self) -> None:
        for a in self._archs():
            text = self.space.format(a)
            assert isinstance(text, str)
            b = self.space.parse(text)
            assert b == a and hash(b) == hash(a)
            assert self.space.format(b) == text

    def test_sample_and_mutate_are_seeded(self) -> None:
        assert self._archs(3) == self._archs(3)
        r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
        for a in self._archs():
            assert self.space.mutate(a, r1) == self.space.mutate(a, r2)

    def test_mutate_changes_exactly_one_choice(self) -> None:
        rng = np.random.default_rng(1)
        for a in self._archs():
            m = self.space.mutate(a, rng)
            assert m != a
            assert m in self.space.neighbours(a)

    def test_neighbours_are_valid(self) -> None:
        for a in self._archs(n=5):
            nbrs = self.space.neighbours(a)
            assert nbrs and a not in nbrs
            assert len(set(nbrs)) == len(nbrs)
            for n in nbrs:
                assert self.space.parse(self.space.format(n)) == n
                assert a in self.space.neighbours(n)  # one choice apart, both ways

    def test_iso_key_is_stable(self) -> None:
        for a in self._archs():
            k = self.space.iso_key(a)
            assert isinstance(k, str)
            assert k == self.space.iso_key(self.space.parse(self.space.format(a)))
            assert self.space.iso_key(canonical(self.space, a)) == k

    def test_enumeration(self) -> None:
        if not offers(self.space, Enumerable):
            return
        first = list(itertools.islice(self.space.enumerate(), 200))
        assert len(set(first)) == len(first)
        n = self.space.size() if offers(self.space, HasSize) else None
        if n is not None and n <= 100_000:
            assert sum(1 for _ in self.space.enumerate()) == n

    def test_network_and_module_agree(self) -> None:
        """Output shape, MACs and parameters: the torch-free IR against the torch module.

        Parameters are the float model's (``source_params``: a convolution with its
        BatchNorm's gamma and beta). A space whose deployed network drops computation the
        trained module still does (NB201's dead edges) provides ``trained_network``, the IR
        of the module as it computes; the module is checked against it, and the deployed
        ``to_network`` must then agree on the output and do no more work."""
        for task in self.tasks:
            for a in self._archs(7, self.module_samples):
                net = self.space.to_network(a, task)
                net.validate()
                ref = (self.space.trained_network(a, task) if offers(self.space, HasTrainedNetwork)
                       else net)
                # the input the module reads: the task's, or the architecture's resolution
                inp = Candidate(self.space, a, task).variant_input("full")
                assert net.tensors[net.inputs[0]].shape == inp
                assert inp[0] == task.channels
                shape, macs, params = module_counts(self.space.to_module(a, task, "full"), inp)
                out = net.tensors[net.outputs[0]].shape
                what = (self.space.format(a), task.key())
                assert shape == out == (task.classes,), what
                assert macs == ref.macs, (*what, macs, ref.macs)
                assert params == sum(la.source_params for la in ref.layers), (*what, params)
                assert net.macs <= ref.macs, what

    def test_variants_run(self) -> None:
        import torch

        task = self.tasks[0]
        for variant in VARIANTS:
            for a in self._archs(9, 2):
                c = Candidate(self.space, a, task)
                m = c.module(variant)
                with torch.no_grad():
                    y = m.eval()(torch.zeros(2, *c.variant_input(variant)))
                assert y.shape == (2, task.classes)

    def test_supernet(self) -> None:
        if not offers(self.space, HasSupernet):
            return
        sn = self.space.supernet()
        assert isinstance(sn, Supernet)
        full = sn.full()
        first = next(iter(sn.completions(full)))
        assert self.space.parse(self.space.format(first)) == first
        for a in itertools.islice(sn.capacity_archs(full), 5):
            assert self.space.parse(self.space.format(a)) == a
        assert sn.to_network(full, self.tasks[0]).macs >= self.space.to_network(
            first, self.tasks[0]).macs

    # --- optional capabilities, one check each ---------------------------------------

    def test_capabilities_are_known(self) -> None:
        """Every capability the space offers is a protocol the suite checks."""
        for name in capabilities(self.space):
            assert name in CAPABILITIES

    def test_index(self) -> None:
        if not offers(self.space, Indexed):
            return
        for a in self._archs():
            i = self.space.index(a)
            assert isinstance(i, int) and self.space.parse(str(i)) == a

    def test_canonical(self) -> None:
        if not offers(self.space, HasCanonical):
            return
        for a in self._archs():
            c = self.space.canonical(a)
            assert self.space.iso_key(c) == self.space.iso_key(a)
            assert self.space.canonical(c) == c

    def test_cost_key(self) -> None:
        """Architectures with one cost key deploy to the same network (same MACs, params and
        tensor shapes), over samples and their neighbours."""
        if not offers(self.space, CostKeyed):
            return
        task = self.tasks[0]
        groups: dict[str, list[Any]] = {}
        for a in self._archs(n=4):
            for b in [a, canonical(self.space, a), *self.space.neighbours(a)]:
                groups.setdefault(self.space.cost_key(b), []).append(b)
        for key, members in groups.items():
            assert isinstance(key, str)
            nets = [self.space.to_network(b, task) for b in members[:4]]
            sig = {(n.macs, n.params, tuple(n.tensors[n.outputs[0]].shape)) for n in nets}
            assert len(sig) == 1, (key, [self.space.format(b) for b in members[:4]])

    def test_trained_network(self) -> None:
        if not offers(self.space, HasTrainedNetwork):
            return
        task = self.tasks[0]
        for a in self._archs(n=3):
            ref, net = self.space.trained_network(a, task), self.space.to_network(a, task)
            ref.validate()
            assert ref.tensors[ref.outputs[0]].shape == net.tensors[net.outputs[0]].shape
            assert net.macs <= ref.macs

    def test_floor(self) -> None:
        if not offers(self.space, HasFloor):
            return
        task = self.tasks[0]
        f = self.space.floor()
        floor_macs = self.space.to_network(f, task).macs
        for a in self._archs(n=5):
            assert floor_macs <= self.space.to_network(a, task).macs

    def test_info(self) -> None:
        if not offers(self.space, HasInfo):
            return
        for a in self._archs(n=3):
            assert isinstance(self.space.info(a, self.tasks[0]), dict)

    def test_variant_input(self) -> None:
        if not offers(self.space, VariantInput):
            return
        for task in self.tasks:
            for a in self._archs(n=3):
                shape = self.space.variant_input("full", task, a)
                assert len(shape) == 3 and shape[0] == task.channels
                net = self.space.to_network(a, task)
                assert net.tensors[net.inputs[0]].shape == tuple(shape)

    def test_for_task(self) -> None:
        if not offers(self.space, TaskBindable):
            return
        for task in self.tasks:
            bound = self.space.for_task(task)
            assert isinstance(bound, SearchSpace) and bound.name == self.space.name
            a = bound.sample(np.random.default_rng(0))
            assert bound.parse(bound.format(a)) == a

    def test_shrink(self) -> None:
        if not offers(self.space, Shrinkable):
            return
        task = self.tasks[0]
        rng = np.random.default_rng(2)
        for a in self._archs(n=5):
            b = self.space.shrink(a, rng)
            if b is None:
                continue
            assert self.space.parse(self.space.format(b)) == b
            assert self.space.to_network(b, task).macs <= self.space.to_network(a, task).macs
