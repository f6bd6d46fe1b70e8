"""Files written atomically (a temporary file in the same directory, then rename), so a
failure never leaves a half-written output."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from micronas.errors import MicronasError


def check_out_dir(out: str | Path) -> Path:
    """Create ``out`` if needed and make sure it is writable (before searching)."""
    p = Path(out)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p, prefix=".probe")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise MicronasError(f"--out {p} is not a writable directory ({e.strerror}); "
                            "choose another") from None
    return p


def output_file(path: str | Path, force: bool = False, flag: str = "--out") -> Path:
    """Check a user's output file before any work: a new path, or (with ``force``) an
    existing regular file. A symlink is followed (the file it points to is written, the link
    stays). Devices, FIFOs and directories are refused; so is an existing file without
    ``force``."""
    p = Path(path)
    real = Path(os.path.realpath(p))
    if real.exists() and not real.is_file():
        raise MicronasError(f"{flag} {p} is not a regular file (a directory, device or FIFO); "
                            "give the path of a file")
    if real.exists() and not force:
        raise MicronasError(f"{flag} {p} exists; pass --force to overwrite it or choose another path")
    if not real.parent.is_dir():
        raise MicronasError(f"{flag} {p}: directory {p.parent} does not exist; create it first")
    if not os.access(real.parent, os.W_OK):
        raise MicronasError(f"{flag} {p}: directory {p.parent} is not writable; choose another path")
    return p


def existing_outputs(out: str | Path) -> list[str]:
    """Names of the visible files already in an output directory (a rerun replaces them)."""
    p = Path(out)
    if not p.is_dir():
        return []
    return sorted(q.name for q in p.iterdir() if not q.name.startswith("."))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    """Write ``path`` through ``write(file)``; on any failure nothing is left behind. The
    file gets the permissions a plain ``open`` would give it (0666 less the umask).

    Only a new path or a regular file is replaced: a symlink is followed (its target is
    written, the link stays), anything else (a device such as /dev/full, a FIFO, a
    directory) is refused with :class:`MicronasError`."""
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        raise MicronasError(f"{path} is not a regular file (a directory, device or FIFO); "
                            "refusing to replace it: give the path of a file")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
