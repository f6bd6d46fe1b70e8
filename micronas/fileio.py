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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    """Write ``path`` through ``write(file)``; on any failure nothing is left behind. The
    file gets the permissions a plain ``open`` would give it (0666 less the umask)."""
    path = Path(path)
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
