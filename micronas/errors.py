"""Errors: the user's mistakes and ours.

Every mistake a user can make (bad architecture string, unknown device, impossible budget,
missing data file, ...) raises :class:`MicronasError`. The CLI prints its message as one line
on stderr and exits with code 2; the API lets it propagate.

A broken invariant of micronas itself (generated C that does not compile, an emulator that
disagrees with TFLM, a state the code should never reach) raises :class:`MicronasBug`. It is
not the user's fault: the CLI saves the traceback to a file, prints where it is and asks
for a report, and exits with code 1.
"""

from __future__ import annotations


class MicronasError(ValueError):
    """A user error with a one-line message saying what is wrong and how to fix it."""


class ArchError(MicronasError):
    """A malformed or out-of-range architecture."""


class DeviceError(MicronasError):
    """An unknown device or a malformed device profile."""


class DataError(MicronasError):
    """A missing or malformed data file (benchmark table, cache, measurement CSV)."""


class BudgetError(MicronasError):
    """Budgets that no architecture can meet, or invalid search settings."""


class MicronasBug(RuntimeError):
    """An internal invariant failed: a bug in micronas, not a mistake of the user's."""
