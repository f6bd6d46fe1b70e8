"""Caches, under one directory rule.

- The results store (:class:`ResultStore`, SQLite): indicator values keyed by (space, iso
  key, indicator, settings hash, task, seed, version). Repeated or interrupted runs resume
  where they stopped. Safe with several processes writing at once (WAL journal, one short
  transaction per write, busy timeout); in a search only the driver writes. A corrupted file
  is reported with how to reset it; it is never overwritten silently.
- JSON memos (:class:`Memo`): the cost model's per-device costs and the emulator's
  per-core layer measurements. Written atomically; an unreadable memo is ignored (it is
  only a cache).

Directory rule (:func:`cache_dir`): the folder of ``--cache PATH`` when given, else of
``$MICRONAS_CACHE``, else ``$XDG_CACHE_HOME/micronas`` (``~/.cache/micronas``). The results
database is ``results.sqlite`` there unless ``--cache`` / ``$MICRONAS_CACHE`` name the file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from micronas import __version__
from micronas.errors import DataError, MicronasError
from micronas.infra.fileio import atomic_write

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    space TEXT NOT NULL,
    task TEXT NOT NULL,
    iso_key TEXT NOT NULL,
    indicator TEXT NOT NULL,
    settings TEXT NOT NULL,
    seed INTEGER NOT NULL,
    version TEXT NOT NULL,
    value REAL NOT NULL,
    flags TEXT NOT NULL,
    seconds REAL NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (space, task, iso_key, indicator, settings, seed, version)
)
"""


def default_cache_path() -> Path:
    """``$MICRONAS_CACHE``, else ``$XDG_CACHE_HOME/micronas/results.sqlite``
    (``~/.cache/micronas/results.sqlite``)."""
    env = os.environ.get("MICRONAS_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "micronas" / "results.sqlite"


def cache_dir(results: str | Path | None = None) -> Path:
    """The cache directory: the folder of the results database ``results`` (``--cache``),
    else of :func:`default_cache_path`."""
    return Path(results).parent if results is not None else default_cache_path().parent


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


class Memo:
    """A JSON dict memo in the cache directory, read leniently and written atomically."""

    def __init__(self, name: str, directory: str | Path | None = None, enabled: bool = True):
        self.path = (Path(directory) if directory is not None else cache_dir()) / name
        self.enabled = enabled
        self.data: dict[str, Any] = {}
        if enabled:
            try:
                raw = json.loads(self.path.read_text()) if self.path.is_file() else {}
                self.data = raw if isinstance(raw, dict) else {}
            except (OSError, ValueError):
                self.data = {}  # unreadable: recompute (it is only a cache)
        self._dirty = False

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        self._dirty = True

    def save(self) -> None:
        if not (self.enabled and self._dirty):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, lambda f: json.dump(self.data, f))
            self._dirty = False
        except (OSError, MicronasError):
            pass  # a cache that cannot be written only costs time


#: SQLite application id of a micronas results cache ("mnas"): a database without it that
#: holds other tables belongs to another application and is refused, never modified.
APPLICATION_ID = 0x6D6E6173


class ResultStore:
    """A SQLite results cache at ``path``."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        hint = f"delete {self.path} or pass another --cache PATH"
        if self.path.is_dir():
            raise DataError(f"cache {self.path} is a directory, not a file; pass --cache "
                            f"{self.path / 'results.sqlite'} or another file path")
        if self.path.exists() and not self.path.is_file():
            raise DataError(f"cache {self.path} is not a regular file; pass another --cache PATH")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"cannot create cache directory {self.path.parent}: "
                            f"{e.strerror}; pass a writable --cache PATH") from None
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise DataError(f"cache file {self.path} is not writable; pass a writable --cache PATH")
        if not os.access(self.path.parent, os.W_OK):
            raise DataError(f"cache directory {self.path.parent} is not writable; "
                            "pass a writable --cache PATH")
        try:
            self._con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            row = self._con.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(row[0] if row else "quick_check failed")
            self._claim()
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise DataError(f"cache file {self.path} is corrupted ({_one_line(e)}); {hint}") from None

    def _claim(self) -> None:
        """Mark a new database as ours; refuse one that belongs to another application."""
        app = self._con.execute("PRAGMA application_id").fetchone()[0]
        if app == APPLICATION_ID:
            return
        tables = {r[0] for r in self._con.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        if app != 0 or not tables <= {"results"}:
            self._con.close()
            raise DataError(f"{self.path} is not a micronas cache (an SQLite database of another "
                            "application); it was not modified: pass another --cache PATH")
        self._con.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def get(self, space: str, task: str, iso_key: str, indicator: str, settings: str, seed: int
            ) -> tuple[float, tuple[str, ...], float] | None:
        """(value, flags, seconds) or None."""
        try:
            row = self._con.execute(
                "SELECT value, flags, seconds FROM results WHERE space=? AND task=? AND iso_key=? "
                "AND indicator=? AND settings=? AND seed=? AND version=?",
                (space, task, iso_key, indicator, settings, seed, __version__)).fetchone()
        except sqlite3.DatabaseError as e:
            raise DataError(f"cannot read cache {self.path} ({_one_line(e)}); delete it or pass "
                            "another --cache PATH") from None
        if row is None:
            return None
        return float(row[0]), tuple(json.loads(row[1])), float(row[2])

    def put(self, space: str, task: str, iso_key: str, indicator: str, settings: str, seed: int,
            value: float, flags: tuple[str, ...], seconds: float) -> None:
        try:
            self._con.execute(
                "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (space, task, iso_key, indicator, settings, seed, __version__, value,
                 json.dumps(list(flags)),
                 seconds, time.time()))
        except sqlite3.DatabaseError as e:
            raise DataError(f"cannot write cache {self.path}: {_one_line(e)}; pass a writable "
                            "--cache PATH or --no-cache") from None

    def close(self) -> None:
        self._con.close()
