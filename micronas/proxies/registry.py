"""Indicator registry: training-free indicators registered by name with metadata."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from micronas.errors import MicronasError
from micronas.infra.registry import Registry


@dataclass(frozen=True)
class ProxySettings:
    """How indicators are computed. Hashed into every cache key and saved with results.

    One object for every command: ``micronas score``, ``search`` and ``bench correlate``
    default to these values (the search's CPU-sized ones: an NTK batch of 16 on 16x16
    inputs, one repeat, one batch of smooth linear-region patches), so they report the
    same value for the same architecture. TE-NAS's own sizes are ``ntk_batch=32,
    repeats=3, lr_batches=3, lr_input=None`` (``--ntk-batch 32 --repeats 3 --lr-batches 3
    --lr-input gaussian``).

    The task (input shape, classes) is not a setting: it comes with the
    :class:`~micronas.spaces.Candidate` and is part of the cache key on its own.

    network: ``"tenas"`` (the space's ``small`` variant; on NB201 TE-NAS's network: C=3
    stem, one cell per stage, widths 3/6/12) or ``"full"`` (NB201's C=16, N=5) for the NTK;
    the zero-cost baselines always run on the full network, as NASLib's published scores
    do. ``input``: ``"gaussian"`` (N(0, 1) images for the NTK; the default) — real images
    are not shipped with micronas. ``zc_init`` / ``zc_input``: initialisation and inputs of
    the zero-cost baselines (see :mod:`micronas.proxies.zero_cost`).
    """

    network: str = "tenas"
    ntk_batch: int = 16
    lr_samples: int = 1000
    lr_batches: int = 1
    repeats: int = 1
    zc_batch: int = 64
    input: str = "gaussian"
    ntk_resolution: int | None = 16  # NTK input side cap (see docs/indicators.md); None = the task's
    lr_input: str | None = "smooth"  # None/"gaussian": N(0,1) patches; "smooth": see tenas.py
    zc_init: str = "torch"       # zero-cost networks: PyTorch's default init (as NASLib) or "kaiming"
    zc_input: str = "natural"    # zero-cost inputs: 1/f "natural" noise images or "gaussian"

    def key(self) -> str:
        """A short stable hash of the settings."""
        d = {k: v for k, v in asdict(self).items() if v is not None}  # None = default
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise a one-line error on a bad setting (run when the settings are made)."""
        if self.network not in ("tenas", "full"):
            raise MicronasError(f"unknown proxy network {self.network!r}; use tenas or full")
        for name in ("ntk_batch", "lr_samples", "lr_batches", "repeats", "zc_batch"):
            if getattr(self, name) < 1:
                raise MicronasError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr_input not in (None, "gaussian", "smooth"):
            raise MicronasError(f"unknown lr_input {self.lr_input!r}; use gaussian or smooth")
        if self.zc_input not in ("gaussian", "natural"):
            raise MicronasError(f"unknown zc_input {self.zc_input!r}; use gaussian or natural")
        if self.zc_init not in ("kaiming", "torch"):
            raise MicronasError(f"unknown zc_init {self.zc_init!r}; use kaiming or torch")
        if self.input != "gaussian":
            raise MicronasError(f"unknown proxy input {self.input!r}; only 'gaussian' is built in")


@dataclass(frozen=True)
class IndicatorValue:
    """One indicator's value for one architecture. ``flags`` name anything degenerate."""

    value: float
    flags: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


IndicatorFn = Callable[..., IndicatorValue]


@dataclass(frozen=True)
class Indicator:
    """A registered indicator and what it is."""

    name: str
    fn: IndicatorFn | None
    higher_is_better: bool
    deterministic: bool
    needs_data: bool
    paper: str
    description: str
    population: bool = False  # defined only over a set of architectures (a rank combination)
    parts: tuple[str, ...] = ()  # population: the per-network indicators it combines
    combine: str = ""            # population: how (a name in COMBINATIONS)
    shares: str = ""  # indicators with the same name here come from one computation


#: Every registered indicator, per-network and population ones.
INDICATORS: Registry[Indicator] = Registry("indicator")


def register(name: str, *, higher_is_better: bool, deterministic: bool, needs_data: bool,
             paper: str, description: str, population: bool = False,
             shares: str = "") -> Callable[[IndicatorFn], IndicatorFn]:
    """Decorator: register ``fn(candidate, settings, seed) -> IndicatorValue`` under ``name``
    (``candidate``: a :class:`~micronas.spaces.Candidate`, which builds the modules and the
    network the indicator reads). ``shares``: a name common to indicators read from one
    computation (naswot and jacov from one pass): they are computed together, never split
    between threads."""

    def deco(fn: IndicatorFn) -> IndicatorFn:
        INDICATORS.register(name, Indicator(name, fn, higher_is_better, deterministic,
                                            needs_data, paper, description, population,
                                            shares=shares), description, paper)
        return fn

    return deco


#: Rank combinations of population indicators (see :func:`register_population`).
COMBINATIONS = {
    "rank_sum": "sum of average ranks (higher is better), TE-NAS's combination",
    "log_rank": "sum of log(rank / N), AZ-NAS's non-linear aggregation",
}


def register_population(name: str, *, paper: str, description: str,
                        parts: tuple[str, ...] = ("ntk_cond", "linear_regions"),
                        combine: str = "rank_sum") -> None:
    """Register a rank combination of the per-network indicators ``parts`` over the scored
    set (``combine``: a name in :data:`COMBINATIONS`); higher is better. Defaults: TE-NAS's."""
    if combine not in COMBINATIONS:
        raise MicronasError(f"unknown combination {combine!r}; use {', '.join(COMBINATIONS)}")
    INDICATORS.register(name, Indicator(name, None, True, False, False, paper, description,
                                        True, tuple(parts), combine), description, paper)


def list_indicators() -> list[str]:
    return sorted(INDICATORS.names())


def get_indicator(name: str) -> Indicator:
    return INDICATORS[name]


def parse_indicators(text: str | list[str] | None, default: list[str]) -> list[str]:
    """A comma-separated list (or list) of indicator names, validated."""
    if text is None:
        return list(default)
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise MicronasError("no indicators given; e.g. --indicators ntk_cond,linear_regions")
    return [get_indicator(n).name for n in names]  # validated, in their registered spelling
