"""Deployment: int8 quantisation, TFLite export and TFLM checks, C code generation, emulation."""

from __future__ import annotations

import importlib
from types import ModuleType

from micronas.errors import MicronasError


def require(what: str, hint: str, *modules: str) -> list[ModuleType]:
    """Import optional ``modules`` or raise one line naming ``what`` and the install command."""
    try:
        return [importlib.import_module(m) for m in modules]
    except ImportError:
        raise MicronasError(f"{what} is not installed; install it with '{hint}'") from None
