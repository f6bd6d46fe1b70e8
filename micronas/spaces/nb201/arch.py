"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020).

A cell is a DAG on 4 nodes with 6 edges, each holding one of 5 ops. Architectures are
immutable values with NB201's canonical string and its official index 0..15624.

The official index order is NB201's own: all 5^6 cells enumerated (first edge most
significant, ops in the order of :data:`OPS`), then shuffled with ``random.seed(88)`` as in
NB201's ``generate_meta_info``. We reproduce that with a private ``random.Random(88)``, so no
benchmark file is needed to know an index.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cache

from micronas.errors import ArchError

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The five NB201 ops, in NB201's search-space order."""

EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""Edges (source, target) in the order of the canonical string."""

NUM_ARCHS = len(OPS) ** len(EDGES)  # 15,625
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_NODE_RE = re.compile(r"^\|(.*)\|$")


@cache
def _index_tables() -> tuple[tuple[int, ...], dict[int, int]]:
    """(index -> lexicographic code, code -> index), NB201's shuffled order."""
    codes = list(range(NUM_ARCHS))
    random.Random(88).shuffle(codes)
    return tuple(codes), {code: idx for idx, code in enumerate(codes)}


@dataclass(frozen=True, order=True)
class NB201Arch:
    """One NB201 cell: ``ops[k]`` is the op on edge ``EDGES[k]``."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != len(EDGES):
            raise ArchError(f"an NB201 cell has {len(EDGES)} edges, got {len(self.ops)} ops")
        for op in self.ops:
            if op not in _OP_INDEX:
                raise ArchError(f"unknown NB201 op {op!r}; choose from {', '.join(OPS)}")

    # --- conversions -----------------------------------------------------------------
    @classmethod
    def from_string(cls, text: str) -> NB201Arch:
        """Parse NB201's canonical string, e.g. ``|nor_conv_3x3~0|+|...|+|...|``."""
        text = text.strip()
        nodes = text.split("+")
        if len(nodes) != 3:
            raise ArchError(
                f"malformed NB201 string {text!r}: expected 3 node groups joined by '+', "
                f"got {len(nodes)}; example: |nor_conv_3x3~0|+|skip_connect~0|none~1|+|...|"
            )
        ops: list[str] = []
        for target, group in enumerate(nodes, start=1):
            m = _NODE_RE.match(group)
            if not m:
                raise ArchError(
                    f"malformed node group {group!r} in {text!r}: each group must start and "
                    "end with '|'"
                )
            items = m.group(1).split("|")
            if len(items) != target:
                raise ArchError(
                    f"node {target} of {text!r} must have {target} input(s), got {len(items)}"
                )
            for source, item in enumerate(items):
                op, sep, src = item.partition("~")
                if not sep or not src.isdigit():
                    raise ArchError(f"malformed edge {item!r} in {text!r}: expected 'op~source'")
                if int(src) != source:
                    raise ArchError(
                        f"edge {item!r} of node {target} in {text!r} must read from node "
                        f"{source} (inputs are listed in order 0..{target - 1})"
                    )
                if op not in _OP_INDEX:
                    raise ArchError(
                        f"unknown op {op!r} in {text!r}; choose from {', '.join(OPS)}"
                    )
                ops.append(op)
        return cls(tuple(ops))

    @classmethod
    def from_index(cls, index: int) -> NB201Arch:
        """The architecture with NB201's official ``index`` (0..15624)."""
        if not 0 <= index < NUM_ARCHS:
            raise ArchError(f"NB201 index {index} out of range; valid indices are 0..{NUM_ARCHS - 1}")
        code = _index_tables()[0][index]
        return cls._from_code(code)

    @classmethod
    def _from_code(cls, code: int) -> NB201Arch:
        ops = []
        for _ in EDGES:
            code, d = divmod(code, len(OPS))
            ops.append(OPS[d])
        return cls(tuple(reversed(ops)))

    @property
    def code(self) -> int:
        """Lexicographic code (first edge most significant)."""
        c = 0
        for op in self.ops:
            c = c * len(OPS) + _OP_INDEX[op]
        return c

    @property
    def index(self) -> int:
        """NB201's official index."""
        return _index_tables()[1][self.code]

    def __str__(self) -> str:
        groups, k = [], 0
        for target in (1, 2, 3):
            items = []
            for source in range(target):
                items.append(f"{self.ops[k]}~{source}")
                k += 1
            groups.append("|" + "|".join(items) + "|")
        return "+".join(groups)

    # --- structure ---------------------------------------------------------------------
    def op_counts(self) -> dict[str, int]:
        """How many edges hold each op."""
        return {op: self.ops.count(op) for op in OPS}

    def live_edges(self) -> tuple[bool, ...]:
        """For each edge, whether it affects the cell output.

        An edge is dead when its op is ``none``, when its source node receives no live input
        (the node is constantly zero), or when its target cannot reach node 3.
        """
        nonzero = {0}
        for (s, t), op in zip(EDGES, self.ops, strict=True):
            if op != "none" and s in nonzero:
                nonzero.add(t)
        reaches = {3}
        for (s, t), op in sorted(zip(EDGES, self.ops, strict=True), key=lambda e: -e[0][1]):
            if op != "none" and t in reaches and s in nonzero:
                reaches.add(s)
        return tuple(
            op != "none" and s in nonzero and t in reaches
            for (s, t), op in zip(EDGES, self.ops, strict=True)
        )

    def iso_key(self) -> str:
        """A key shared by cells that compute the same function (NB201's convention).

        Node expressions are built in order: ``skip_connect`` passes its source's expression
        through, another op wraps it as ``(src)@op``, and a term is ``#`` (zero) when its op
        is ``none`` or its source is exactly ``#``; a node joins its sorted terms with ``+``.
        This is NB201's ``CellStructure.to_unique_str(consider_zero=True)``: it gives the
        published 6,466 unique cells. It is conservative: it never merges two cells that
        differ, but it keeps a few equivalent ones apart (``#+#`` is not folded to ``#``).
        """
        expr: dict[int, str] = {0: "0"}
        for t in (1, 2, 3):
            terms = []
            for (s, tt), op in zip(EDGES, self.ops, strict=True):
                if tt != t:
                    continue
                if op == "none" or expr[s] == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(expr[s])
                else:
                    terms.append(f"({expr[s]})@{op}")
            expr[t] = "+".join(sorted(terms))
        return expr[3]
