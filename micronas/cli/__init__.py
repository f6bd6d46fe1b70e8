"""The ``micronas`` command line: a thin layer over :mod:`micronas.api`.

``parser`` builds the argument parser, ``commands`` maps each command to one API call, and
``render`` prints results. User errors print one line on stderr and exit with code 2; a bug
of micronas (:class:`~micronas.errors.MicronasBug`, or any other unexpected exception) saves
its traceback to a file in the cache directory, says so in one line and exits with code 1.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
import traceback
from argparse import Namespace
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool

from micronas.errors import MicronasBug, MicronasError


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: with-blocks unwind (temporary directories are removed,
    worker pools shut down) and the command exits 143."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    from micronas.cli.parser import build_parser

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        return _run(build_parser().parse_args(argv))
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def report_bug(e: BaseException) -> str:
    """Save the traceback of ``e`` (a bug of ours) to a file in the cache directory; the
    one line to print. Where no file can be written, the traceback goes to stderr."""
    text = "".join(traceback.format_exception(e))
    where = "below"
    try:
        from micronas.infra.cache import cache_dir

        d = cache_dir() / "bugs"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"bug-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
        path.write_text(f"micronas {' '.join(sys.argv[1:])}\n\n{text}")
        where = str(path)
    except OSError:
        sys.stderr.write(text)
    msg = " ".join(str(e).split()) or type(e).__name__
    saved = f"the traceback is {'in ' + where if where != 'below' else 'above'}"
    if isinstance(e, MicronasBug):
        return (f"micronas: internal error (a bug in micronas, not in your input): {msg}; "
                f"{saved}: please report it with that file\n")
    if isinstance(e, OSError | MemoryError | BrokenProcessPool):
        return (f"micronas: error: the system failed: {type(e).__name__}: {msg} (disk, memory, "
                f"permissions or a killed worker, not your input); {saved}\n")
    return (f"micronas: unexpected error (most likely a bug in micronas, not in your input): "
            f"{type(e).__name__}: {msg}; {saved}: please report it with that file\n")


def _new_folders(args: Namespace) -> list[str]:
    """The ``--out`` folder (and its parents) this command would create: absent now."""
    out = getattr(args, "out", None)
    if not out:  # an --out file is never a folder: rmdir leaves it (and stops there)
        return []
    from pathlib import Path

    made, p = [], Path(out)
    while not p.exists() and p != p.parent:
        made.append(str(p))
        p = p.parent
    return made


def _remove_if_empty(folders: list[str]) -> None:
    """A failed run leaves no empty folder it made (innermost first; never one with files)."""
    for f in folders:
        try:
            os.rmdir(f)
        except OSError:  # not empty, already gone, or not ours to remove: leave it
            break


def _run(args: Namespace) -> int:
    made = _new_folders(args)
    code = _dispatch(args)
    if code != 0:
        _remove_if_empty(made)
    return code


def _dispatch(args: Namespace) -> int:
    try:
        return int(args.func(args))
    except MicronasError as e:
        sys.stderr.write(f"micronas: error: {e}\n")
        return 2
    except Terminated:
        sys.stderr.write("micronas: terminated\n")
        return 143
    except KeyboardInterrupt:
        sys.stderr.write("micronas: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - not the user's input: ours, or the system's
        sys.stderr.write(report_bug(e))
        return 1


def run() -> None:
    """The ``micronas`` console script: :func:`main`, then the exit handlers (``atexit``:
    worker pools, temporary directories) and an exit without the interpreter's teardown,
    which with torch loaded costs about 0.5 s on every command (measured on 2 cores). Under
    a profiler or a tracer (cProfile, coverage) it exits normally."""
    code = main()
    if sys.getprofile() is not None or sys.gettrace() is not None:  # a profiler or coverage
        raise SystemExit(code)  # tool writes its data after this returns: a normal exit
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a closed pipe or stream: nothing to flush to
            pass
    atexit._run_exitfuncs()  # CPython's own exit handlers, as a normal exit runs them
    os._exit(code)


__all__ = ["main", "report_bug", "run"]
