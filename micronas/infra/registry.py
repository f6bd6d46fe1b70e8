"""One registry type behind every named thing (spaces, indicators, strategies, tasks,
datasets, reference networks, devices, runtimes, executors).

A :class:`Registry` maps a name to a value with a one-line summary and where it came from.
Names are looked up case-insensitively (and through aliases); an unknown name is a one-line
:class:`~micronas.errors.MicronasError` (or the registry's own error class) listing the
choices and the closest one. A registry may fill itself lazily (``loader``: device files on
disk). It reads like a mapping, so ``name in reg``, ``reg[name]`` and ``list(reg)`` work.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from micronas.errors import MicronasError

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


def summary_of(doc: str | None) -> str:
    """The first sentence of a docstring, on one line, without reST markup."""
    text = " ".join((doc or "").strip().split("\n\n")[0].split())
    text = text.replace("``", "").replace(":mod:", "").replace(":class:", "").replace("`", "")
    m = re.search(r"(?<!\bal)(?<!e\.g)(?<!i\.e)\. ", text)
    return text if m is None else text[:m.start() + 1]


@dataclass(frozen=True)
class Entry(Generic[T_co]):
    """One registered name."""

    name: str
    value: T_co
    summary: str = ""
    source: str = "built-in"


class Registry(Mapping[str, T]):
    """Named values of one kind (``kind``: "search space", "indicator", ...)."""

    def __init__(self, kind: str, *, hint: str = "", aliases: Mapping[str, str] | None = None,
                 error: type[MicronasError] = MicronasError,
                 loader: Callable[[Registry[T]], None] | None = None) -> None:
        self.kind = kind
        self.hint = hint            # appended to the unknown-name error ("or give a path")
        self.aliases = {self._norm(k): self._norm(v) for k, v in (aliases or {}).items()}
        self.error = error
        self._loader = loader
        self._loaded = loader is None
        self._entries: dict[str, Entry[T]] = {}

    @staticmethod
    def _norm(name: str) -> str:
        return str(name).strip().lower()

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            assert self._loader is not None
            self._loader(self)

    def register(self, name: str, value: T, summary: str = "", source: str = "built-in") -> T:
        """Add (or replace) ``name``; returns ``value`` (usable as a decorator's result)."""
        self._entries[self._norm(name)] = Entry(str(name).strip(), value, summary, source)
        return value

    def reload(self) -> None:
        """Forget every entry and fill the registry again from its loader on next use
        (a registry without a loader is only emptied)."""
        self._entries.clear()
        self._loaded = self._loader is None

    def key(self, name: str) -> str:
        """The (case-folded) key of the entry ``name`` refers to, or the one-line error."""
        self._load()
        k = self._norm(name)
        k = self.aliases.get(k, k)
        if k not in self._entries:
            names = [e.name for e in self._entries.values()]
            close = self.closest(k)
            guess = f" (did you mean {close!r}?)" if close else ""
            hint = f" {self.hint}" if self.hint else ""
            raise self.error(f"unknown {self.kind} {name!r}{guess}; choose from "
                             f"{', '.join(names)}{hint}")
        return k

    def closest(self, name: str) -> str | None:
        """The registered name closest to ``name`` (None when nothing is close)."""
        self._load()
        close = difflib.get_close_matches(self._norm(name), list(self._entries), n=1, cutoff=0.6)
        return self._entries[close[0]].name if close else None

    def entry(self, name: str) -> Entry[T]:
        return self._entries[self.key(name)]

    def get_value(self, name: str) -> T:
        """The value registered as ``name`` (aliases and case folded), or the error."""
        return self._entries[self.key(name)].value

    def entries(self) -> list[Entry[T]]:
        self._load()
        return list(self._entries.values())

    def names(self) -> list[str]:
        """The registered names, as registered, in registration order."""
        self._load()
        return [e.name for e in self._entries.values()]

    def __getitem__(self, name: str) -> T:
        return self.get_value(name)

    def __contains__(self, name: object) -> bool:
        self._load()
        if not isinstance(name, str):
            return False
        k = self._norm(name)
        return self.aliases.get(k, k) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


__all__ = ["Entry", "Registry", "summary_of"]
