"""Executors: where batches of independent computations run.

:func:`make_executor` turns ``"serial"``, ``"process:N"`` or an existing
:class:`concurrent.futures.Executor` into an executor. Workers compute and return; the
caller (the driver) alone writes caches. Process workers are spawned (no fork of a torch
process) and share the cores: each runs ``cores // N`` torch threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from micronas.errors import MicronasError


class SerialExecutor(Executor):
    """Runs each call at submission, in this process (exceptions land in the future)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        f: Future = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - delivered through the future
            f.set_exception(e)
        return f


def _init_worker(threads: int) -> None:
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # a worker that never runs torch code
        pass


def process_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes sharing the cores (torch threads = cores // workers)."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                               initializer=_init_worker, initargs=(threads,))


def parse_executor(spec: str) -> tuple[str, int]:
    """``"serial"`` -> ("serial", 1); ``"process:N"`` -> ("process", N)."""
    s = str(spec).strip().lower()
    if s == "serial":
        return "serial", 1
    kind, _, n = s.partition(":")
    if kind == "process" and n.isascii() and n.isdigit() and int(n) >= 1:
        return "process", int(n)
    raise MicronasError(f"unknown executor {spec!r}; use serial or process:N (N >= 1)")


def make_executor(spec: str | Executor = "serial") -> Executor:
    """An executor from a spec string or an executor (returned as is)."""
    if isinstance(spec, Executor):
        return spec
    kind, n = parse_executor(spec)
    if kind == "serial" or n == 1:
        return SerialExecutor()
    return process_pool(n)


__all__ = ["SerialExecutor", "make_executor", "parse_executor", "process_pool"]
