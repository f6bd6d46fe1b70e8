"""Executors: where batches of independent computations run.

:func:`make_executor` turns a spec or an existing :class:`concurrent.futures.Executor` into
an executor:

- ``"serial"``: in this process;
- ``"thread:N"``: N threads of this process (:class:`ThreadExecutor`; what a search uses by
  default on 2 or more cores);
- ``"process:N"``: N spawned worker processes on this machine (no fork of a torch
  process), sharing the cores: each runs ``cores // N`` torch threads;
- ``"local:N"``: a ``dask.distributed`` ``LocalCluster`` of N single-threaded worker
  processes (a worker that dies has its tasks retried on another);
- ``"dask://HOST:PORT"``: the workers of a running ``dask.distributed`` scheduler (any
  number of machines; see the README's "Several machines").

Workers compute and return; the caller (the driver) alone writes caches. Process workers
exit when their parent dies (kill -9 included): each watches its parent's pid.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from typing import Any

from micronas.errors import MicronasError
from micronas.infra.registry import Registry


class SerialExecutor(Executor):
    """Runs each call at submission, in this process (exceptions land in the future)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        f: Future = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - delivered through the future
            f.set_exception(e)
        return f


def _set_threads(threads: int) -> None:
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # a worker that never runs torch code
        pass


def watch_parent(parent: int, interval: float = 0.5) -> None:
    """Exit this process (at once, without cleanup) when ``parent`` is no longer its parent:
    a worker whose driver was killed stops computing instead of living on forever."""

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="micronas-parent-watch", daemon=True).start()


def torch_threads(sharers: int) -> int:
    """Torch threads for each of ``sharers`` processes or threads sharing this machine's cores."""
    return max(1, (os.cpu_count() or 1) // sharers)


def _init_worker(threads: int, parent: int | None = None) -> None:
    _set_threads(threads)
    if parent is not None:
        watch_parent(parent)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes sharing the cores (torch threads = cores // workers)."""
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                               initializer=_init_worker,
                               initargs=(torch_threads(workers), os.getpid()))


#: While a :class:`ThreadExecutor` maps, a thread that waits for the GIL gets it after at
#: most this many seconds (Python's default is 5 ms): torch releases the GIL for every
#: kernel, and a short interval lets the other thread's Python run in those gaps.
SWITCH_INTERVAL = 0.0005


class ThreadExecutor(ThreadPoolExecutor):
    """``threads`` threads of this process, each running torch with ``cores // threads``
    threads of its own. Python holds the GIL only between torch's kernels, so two threads
    overlap one call's kernels with the other's Python: on 2 cores the default search is
    about 1.5x faster than one thread with two torch threads (9.4 s against 14.0 s,
    docs/search.md), at the memory of the networks in flight only (no second torch
    process). Calls must be thread-safe (the indicators are: each builds its own networks
    from its own seeded generators)."""

    def __init__(self, threads: int):
        self.threads = max(1, int(threads))
        super().__init__(self.threads, thread_name_prefix="micronas-indicators",
                         initializer=_set_threads, initargs=(torch_threads(self.threads),))

    def map(self, fn: Callable[..., Any], *iterables: Any, timeout: float | None = None,
            chunksize: int = 1) -> Iterator[Any]:
        return self._mapped(super().map(fn, *iterables, timeout=timeout))

    @staticmethod
    def _mapped(results: Iterator[Any]) -> Iterator[Any]:
        before = sys.getswitchinterval()
        sys.setswitchinterval(min(before, SWITCH_INTERVAL))
        try:
            yield from results
        finally:  # an abandoned iteration cancels the calls not yet started (map's own rule)
            sys.setswitchinterval(before)
            close = getattr(results, "close", None)
            if close is not None:
                close()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=wait, cancel_futures=True)


def default_threads() -> int:
    """The threads a search computes indicators on by default: 2 on 2 or more cores (the
    GIL leaves little to gain from a third), else 1."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _warm(modules: tuple[str, ...]) -> None:
    """A worker's first job: import ``modules``, so the first real job does not pay for it."""
    import importlib

    for name in modules:
        importlib.import_module(name)


class HybridExecutor(Executor):
    """``map`` runs its calls on ``workers`` spawned processes *and* in this process: the
    workers take calls from the front, this process from the back, until they meet (each
    process with ``cores // (workers + 1)`` torch threads). The workers start at
    construction and import ``preload`` at once, so their start-up (importing torch) overlaps
    the caller's own. Results come in order, each as soon as it and all before it are done.
    ``submit`` goes to the workers.

    What the search's ``--workers N`` uses (N - 1 workers beside the caller): on 2 cores it
    is about as fast as the default two threads (:class:`ThreadExecutor`), at the memory of
    a second torch process."""

    def __init__(self, workers: int, preload: tuple[str, ...] = ("torch",)):
        self.workers = max(1, int(workers))
        self._threads = torch_threads(self.workers + 1)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                         initializer=_init_worker,
                                         initargs=(self._threads, os.getpid()))
        for _ in range(self.workers):
            self._pool.submit(_warm, tuple(preload))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return self._pool.submit(fn, *args, **kwargs)

    def map(self, fn: Callable[..., Any], *iterables: Any, timeout: float | None = None,
            chunksize: int = 1) -> Any:
        calls = list(zip(*iterables, strict=False))
        return self._results(fn, calls)

    def _results(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> Any:
        from concurrent.futures import FIRST_COMPLETED, wait

        n = len(calls)
        results: list[Any] = [None] * n
        ready = [False] * n
        pending: dict[Future, int] = {}
        front, back, nxt = 0, n - 1, 0
        try:
            while nxt < n:
                for f in [f for f in pending if f.done()]:
                    i = pending.pop(f)
                    results[i], ready[i] = f.result(), True
                while len(pending) < 2 * self.workers and front <= back:  # keep workers busy
                    pending[self._pool.submit(fn, *calls[front])] = front
                    front += 1
                if ready[nxt]:
                    yield results[nxt]
                    results[nxt] = None
                    nxt += 1
                elif front <= back:  # compute one here, from the back
                    results[back], ready[back] = self._here(fn, calls[back]), True
                    back -= 1
                else:
                    wait(list(pending), return_when=FIRST_COMPLETED)
        finally:
            for f in pending:
                f.cancel()

    def _here(self, fn: Callable[..., Any], call: tuple[Any, ...]) -> Any:
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a dependency
            return fn(*call)
        before = torch.get_num_threads()
        torch.set_num_threads(self._threads)
        try:
            return fn(*call)
        finally:
            torch.set_num_threads(before)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers. They hold no state (the caller writes every result), so they are
        terminated rather than left to tear down torch (about 0.5 s)."""
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        for p in procs:  # the pool's own thread sees them go and reaps them
            p.terminate()
        self._pool.shutdown(wait=wait, cancel_futures=True)


#: Where indicator batches can run (the spec's scheme -> what it is).
EXECUTORS: Registry[str] = Registry("executor")
for _spec, _what in [
        ("serial", "in this process, one after another"),
        ("thread:N", "N threads of this process (torch's cores shared between them)"),
        ("process:N", "N worker processes on this machine"),
        ("local:N", "a dask.distributed LocalCluster of N workers on this machine"),
        ("dask://HOST:PORT", "the workers of a running dask.distributed scheduler")]:
    EXECUTORS.register(_spec, _spec, _what)
_HOW = f"use {', '.join(EXECUTORS.names()[:-1])} (N >= 1) or {EXECUTORS.names()[-1]}"
MAX_WORKERS = 1024


def workers_beside(workers: int, spec: str = "") -> HybridExecutor | None:
    """What a search's ``--workers N`` asks for when no ``--executor`` spec is given: N - 1
    workers beside the caller (None for N <= 1 or a spec). Its workers preload the
    indicators (named, not imported: this layer does not depend on them)."""
    if spec or not isinstance(workers, int) or not 1 < workers <= MAX_WORKERS:
        return None
    return HybridExecutor(workers - 1, ("micronas.proxies",))


def parse_executor(spec: str) -> tuple[str, int | str]:
    """``"serial"`` -> ("serial", 1); ``"thread:N"`` -> ("thread", N); ``"process:N"`` ->
    ("process", N); ``"local:N"`` -> ("local", N); ``"dask://HOST:PORT"`` -> ("dask",
    "tcp://HOST:PORT")."""
    s = str(spec).strip()
    if s.lower() == "serial":
        return "serial", 1
    if s.lower().startswith("dask://"):
        addr = s[len("dask://"):]
        host, _, port = addr.rpartition(":")
        if not host or not (port.isascii() and port.isdigit() and 0 < int(port) < 65536) \
                or any(c in host for c in "/ @"):
            raise MicronasError(f"executor {spec!r}: give the scheduler as dask://HOST:PORT, "
                                "e.g. dask://10.0.0.5:8786")
        return "dask", f"tcp://{addr}"
    kind, _, n = s.lower().partition(":")
    if kind in ("thread", "process", "local") and n.isascii() and n.isdigit() and 1 <= int(n) <= MAX_WORKERS:
        return kind, int(n)
    raise MicronasError(f"unknown executor {spec!r}; {_HOW}")


class DaskExecutor(Executor):
    """A ``dask.distributed`` client as a :class:`concurrent.futures.Executor`; closing it
    closes the client (and the ``LocalCluster`` it started, if any). Each task runs with
    ``threads`` torch threads in its worker."""

    def __init__(self, client: Any, cluster: Any = None, threads: int = 1):
        self._client, self._cluster, self._threads = client, cluster, threads
        self._ex = client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return self._ex.submit(_in_worker, self._threads, fn, *args, **kwargs)

    def map(self, fn: Callable[..., Any], *iterables: Any, timeout: float | None = None,
            chunksize: int = 1) -> Any:
        lists = [list(it) for it in iterables]
        n = len(lists[0]) if lists else 0
        return self._ex.map(_in_worker, [self._threads] * n, [fn] * n, *lists, timeout=timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        try:
            self._ex.shutdown(wait=wait)
        finally:
            self._client.close()
            if self._cluster is not None:
                self._cluster.close()


def _in_worker(threads: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` in a Dask worker with ``threads`` torch threads."""
    _set_threads(threads)
    return fn(*args, **kwargs)


def dask_executor(kind: str, arg: int | str) -> DaskExecutor:
    """A :class:`DaskExecutor` on a new ``LocalCluster`` of ``arg`` workers (``kind`` local)
    or on the scheduler at address ``arg`` (``kind`` dask)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MicronasError("the dask executors need dask.distributed: pip install "
                            "'distributed>=2024.1'") from None
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)
    if kind == "local":
        n = int(arg)
        threads = torch_threads(n)
        # death_timeout: a worker that loses its scheduler (the driver died) exits
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR,
                               death_timeout=5)
        return DaskExecutor(Client(cluster), cluster, threads)
    try:
        client = Client(str(arg), timeout=10)
    except (OSError, TimeoutError) as e:
        raise MicronasError(f"cannot reach the dask scheduler at {arg} ({type(e).__name__}); "
                            "start one with 'dask scheduler' and workers with 'dask worker "
                            f"{arg}'") from None
    return DaskExecutor(client, None, 1)


def make_executor(spec: str | Executor = "serial") -> Executor:
    """An executor from a spec string or an executor (returned as is)."""
    if isinstance(spec, Executor):
        return spec
    kind, n = parse_executor(spec)
    if kind in ("local", "dask"):
        return dask_executor(kind, n)
    if kind == "serial" or n == 1:
        return SerialExecutor()
    if kind == "thread":
        return ThreadExecutor(int(n))
    return process_pool(int(n))


__all__ = ["DaskExecutor", "HybridExecutor", "SerialExecutor", "ThreadExecutor", "dask_executor",
           "default_threads", "make_executor", "parse_executor", "process_pool", "torch_threads",
           "watch_parent", "workers_beside"]
