"""NB201 ground-truth table: loading, validation, lookup."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from micronas.errors import DataError
from micronas.spaces.nb201 import NUM_ARCHS, NB201Arch
from micronas.tasks import Task

REQUIRED = ("index", "arch", "cifar10_test", "cifar100_test", "imagenet16_120_test")
HOW = ("a CSV with the columns of shared/data/nb201/nb201_accuracy.csv (index, arch, "
       "cifar10_test, cifar100_test, imagenet16_120_test, ...)")


def resolve_benchmark(path: str | Path | None) -> Path:
    """The benchmark table's path: ``path``, else ``$MICRONAS_NB201``; a clear error if neither."""
    p = path or os.environ.get("MICRONAS_NB201")
    if not p:
        raise DataError(f"no NB201 benchmark table: pass --benchmark PATH or set MICRONAS_NB201 "
                        f"to {HOW}")
    p = Path(p)
    if not p.is_file():
        raise DataError(f"benchmark table {p} does not exist; give {HOW}")
    return p


#: Task name -> column of nb201_accuracy.csv holding its test accuracy (%).
COLUMNS = {"cifar10": "cifar10_test", "cifar100": "cifar100_test",
           "imagenet16-120": "imagenet16_120_test"}


def check_task(task: Task) -> None:
    """NB201's table has ground truth for its three datasets at their own input shape."""
    from micronas.tasks import TASKS

    if task.name not in COLUMNS or TASKS[task.name] != task:
        raise DataError(f"the NB201 table has no ground truth for task {task.describe()}; "
                        f"use one of {', '.join(COLUMNS)}")


@dataclass(frozen=True)
class NB201Table:
    """Test accuracies (%) per architecture index for the three datasets."""

    path: str
    accuracy: dict[str, dict[int, float]]  # task name -> index -> accuracy
    space: str = "nb201"

    def acc(self, arch: NB201Arch, task: Task) -> float:
        check_task(task)
        return self.accuracy[task.name][arch.index]

    def check_task(self, task: Task) -> None:
        check_task(task)

    def runs(self, arch: NB201Arch, task: Task) -> None:
        """NB201's table holds one accuracy per network (no repeated runs)."""
        return None

    def archs(self, sample: int | None, seed: int) -> list[NB201Arch]:
        """All 15,625 architectures in index order, or ``sample`` drawn with ``seed``."""
        from micronas.bench.correlate import sample_archs

        return sample_archs(sample, seed)

    def row(self, arch: NB201Arch, task: Task) -> dict[str, object]:
        return {"index": arch.index}

    def __len__(self) -> int:
        return len(self.accuracy["cifar10"])


#: the NB201 table is ~2 MB; anything far larger is not one (refused before it is read)
MAX_TABLE_BYTES = 64 << 20


@cache
def _load(path: str, mtime: float) -> NB201Table:
    cols = COLUMNS
    acc: dict[str, dict[int, float]] = {k: {} for k in cols}
    size = os.path.getsize(path)
    if size > MAX_TABLE_BYTES:
        raise DataError(f"benchmark table {path} is {size / 2**20:,.0f} MB; NB201's is about 2 MB "
                        f"(at most {MAX_TABLE_BYTES >> 20} MB): give {HOW}")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"benchmark table {path} lacks column(s) {', '.join(missing)}; "
                                f"give {HOW}")
            for line, row in enumerate(reader, start=2):
                try:
                    if any(row.get(c) is None for c in REQUIRED):
                        raise ValueError("the row has fewer columns than the header")
                    idx = int(row["index"])
                    if not 0 <= idx < NUM_ARCHS:
                        raise ValueError(f"index {idx} out of range")
                    if NB201Arch.from_index(idx) != NB201Arch.from_string(row["arch"]):
                        raise ValueError(f"arch does not match NB201 index {idx}")
                    if idx in acc["cifar10"]:
                        raise ValueError(f"index {idx} appears twice")
                    for ds, c in cols.items():
                        v = float(row[c])
                        if not (math.isfinite(v) and 0.0 <= v <= 100.0):
                            raise ValueError(f"{c} {row[c]!r} is not an accuracy in 0..100 %")
                        acc[ds][idx] = v
                except (ValueError, TypeError, KeyError) as e:
                    raise DataError(f"{path}, line {line}: {e}") from None
    except csv.Error as e:
        raise DataError(f"benchmark table {path} is not a readable CSV ({e}); give {HOW}") from None
    except UnicodeDecodeError:
        raise DataError(f"benchmark table {path} is not a text CSV; give {HOW}") from None
    except OSError as e:
        raise DataError(f"cannot read benchmark table {path}: {e.strerror}") from None
    if not acc["cifar10"]:
        raise DataError(f"benchmark table {path} has no rows; give {HOW}")
    if len(acc["cifar10"]) != NUM_ARCHS:
        first = next(i for i in range(NUM_ARCHS) if i not in acc["cifar10"])
        raise DataError(f"benchmark table {path} has {len(acc['cifar10']):,} of {NUM_ARCHS:,} "
                        f"architectures (index {first} is missing); give the complete table")
    return NB201Table(path, acc)


def load_table(path: str | Path | None = None) -> NB201Table:
    """Load (and cache) the NB201 table from ``path`` or ``$MICRONAS_NB201``."""
    p = resolve_benchmark(path)
    return _load(str(p), p.stat().st_mtime)
