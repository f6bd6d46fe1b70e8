"""NAS-Bench-Macro ground-truth table (CIFAR-10): loading, validation, lookup.

The benchmark (Su et al., CVPR 2021) trained each of its 6,561 networks three times. Its
file maps each 8-digit architecture to ``{"test_acc": [a, b, c], "mean_acc", "std",
"params", "flops"}``. Isomorphic architectures (identities inside a stage moved) are one
function, and the file gives every member of a class the same three runs: the table is read
per class, 3,969 rows (a class's values are its members' mean, which is each member's).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from micronas.errors import DataError, MicronasError
from micronas.spaces.nbmacro import NUM_ARCHS, NBMacroArch
from micronas.spaces.nbmacro.space import class_representatives
from micronas.tasks import Task

HOW = ("NAS-Bench-Macro's nas-bench-macro_cifar10.json ({arch: {test_acc: [a, b, c], mean_acc, "
       "std, params, flops}} for all 6,561 architectures)")
ENV = "MICRONAS_NBMACRO"
#: the benchmark's file is ~1.2 MB
MAX_TABLE_BYTES = 64 << 20
RUNS = 3


def resolve_benchmark(path: str | Path | None) -> Path:
    p = path or os.environ.get(ENV)
    if not p:
        raise DataError(f"no NAS-Bench-Macro table: pass --benchmark PATH or set {ENV} to {HOW}")
    p = Path(p)
    if not p.is_file():
        raise DataError(f"benchmark table {p} does not exist; give {HOW}")
    return p


def check_task(task: Task) -> None:
    from micronas.tasks import TASKS

    if task.name != "cifar10" or TASKS["cifar10"] != task:
        raise DataError(f"the NAS-Bench-Macro table has ground truth for cifar10 only, not "
                        f"{task.describe()}")


@dataclass(frozen=True)
class NBMacroTable:
    """Per isomorphism class (canonical architecture string): the mean test accuracy (%)
    over its members' three runs, each run's accuracy (mean over members), the members'
    mean three-run std, and how many architectures the class holds."""

    path: str
    accuracy: dict[str, float]
    runs_of: dict[str, tuple[float, ...]]
    std: dict[str, float]
    members: dict[str, int]
    space: str = "nbmacro"

    def check_task(self, task: Task) -> None:
        check_task(task)

    def acc(self, arch: NBMacroArch, task: Task) -> float:
        check_task(task)
        return self.accuracy[str(arch.canonical())]

    def runs(self, arch: NBMacroArch, task: Task) -> tuple[float, ...]:
        check_task(task)
        return self.runs_of[str(arch.canonical())]

    def archs(self, sample: int | None, seed: int) -> list[NBMacroArch]:
        """Every class's canonical architecture (3,969), or ``sample`` of them drawn with
        ``seed``."""
        reps = list(class_representatives())
        if sample is None:
            return reps
        if sample < 1:
            raise MicronasError(f"--sample must be a positive number of architectures, got "
                                f"{sample}")
        idx = np.random.default_rng(seed).choice(len(reps), size=min(sample, len(reps)),
                                                 replace=False)
        return [reps[int(i)] for i in idx]

    def row(self, arch: NBMacroArch, task: Task) -> dict[str, object]:
        """What a scored table's row records besides the accuracy."""
        key = str(arch.canonical())
        return {"arch": key, "runs": list(self.runs_of[key]), "members": self.members[key]}

    def __len__(self) -> int:
        return len(self.accuracy)


@cache
def _load(path: str, mtime: float) -> NBMacroTable:
    size = os.path.getsize(path)
    if size > MAX_TABLE_BYTES:
        raise DataError(f"benchmark table {path} is {size / 2**20:,.0f} MB; NAS-Bench-Macro's is "
                        f"about 1 MB: give {HOW}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(f"benchmark table {path} is not JSON; give {HOW}") from None
    except OSError as e:
        raise DataError(f"cannot read benchmark table {path}: {e.strerror}") from None
    if not isinstance(data, dict):
        raise DataError(f"benchmark table {path} is not a JSON object; give {HOW}")
    runs: dict[str, list[list[float]]] = {}
    std: dict[str, list[float]] = {}
    for key, row in data.items():
        try:
            arch = NBMacroArch.from_string(key)
            acc = [float(v) for v in row["test_acc"]]
            if len(acc) != RUNS:
                raise ValueError(f"{len(acc)} runs, expected {RUNS}")
            if not all(math.isfinite(v) and 0.0 <= v <= 100.0 for v in acc):
                raise ValueError(f"test_acc {row['test_acc']!r} is not accuracies in 0..100 %")
            c = str(arch.canonical())
            runs.setdefault(c, []).append(acc)
            std.setdefault(c, []).append(float(row.get("std", float(np.std(acc)))))
        except (MicronasError, ValueError, TypeError, KeyError) as e:
            raise DataError(f"{path}, architecture {key!r}: {e}") from None
    n = sum(len(v) for v in runs.values())
    if n != NUM_ARCHS:
        raise DataError(f"benchmark table {path} has {n:,} of {NUM_ARCHS:,} architectures; give "
                        "the complete table")
    mean_runs = {c: tuple(float(x) for x in np.mean(v, axis=0)) for c, v in runs.items()}
    return NBMacroTable(path, {c: float(np.mean(v)) for c, v in mean_runs.items()}, mean_runs,
                        {c: float(np.mean(v)) for c, v in std.items()},
                        {c: len(v) for c, v in runs.items()})


def load_table(path: str | Path | None = None) -> NBMacroTable:
    """Load (and cache) the NAS-Bench-Macro table from ``path`` or ``$MICRONAS_NBMACRO``."""
    p = resolve_benchmark(path)
    return _load(str(p), p.stat().st_mtime)
