"""Ranks without importing ``scipy.stats`` (0.6 s of a search's start-up on 2 cores).

:func:`rankdata` gives ``scipy.stats.rankdata``'s values for the two methods the search and
the indicator combinations use (tests/test_stats.py compares them on random data with ties).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rankdata(values: Sequence[float] | np.ndarray, method: str = "average") -> np.ndarray:
    """Ranks 1..n of ``values`` (ascending). Ties get their average rank (``average``) or
    share one rank with no gap after it (``dense``). NaN is not allowed."""
    a = np.asarray(values, dtype=np.float64).ravel()
    if np.isnan(a).any():
        raise ValueError("rankdata: NaN in the values")
    n = len(a)
    if n == 0:
        return np.zeros(0)
    order = np.argsort(a, kind="mergesort")
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.arange(n)
    s = a[order]
    first = np.concatenate(([True], s[1:] != s[:-1]))  # first of each run of equal values
    dense = np.cumsum(first)[inverse]  # 1..k
    if method == "dense":
        return dense.astype(np.float64)
    if method == "average":
        starts = np.concatenate((np.flatnonzero(first), [n]))  # run boundaries, 0-based
        return 0.5 * (starts[dense - 1] + 1 + starts[dense])
    raise ValueError(f"rankdata: unknown method {method!r}")
