"""The settings of a search: one frozen config per concern, each validated once, when it is
made (``__post_init__``), so a :class:`SearchConfig` that exists is a valid one.

- :class:`TaskSpec`: a built-in task, or a custom input and classes (and the resolutions a
  search may draw), or a :class:`~micronas.tasks.Task` given as is;
- :class:`BudgetSpec`: hard budgets and the application's reserve;
- :class:`ObjectiveSpec`: the indicator mix, the latency and FLOPs weights, how ranks mix;
- :class:`StrategySpec`: which strategy and its options (each strategy takes what it needs);
- :class:`~micronas.proxies.ProxySettings`: how indicators are computed;
- :class:`ExecutionSpec`: where indicator batches run.

``SearchConfig.of(max_latency_ms=100, workers=0, ...)`` builds one from flat names (the
command line's), each going to the spec that owns it (``input`` is the task's input; the
indicators' input kind is ``ProxySettings.input``, set through ``proxy=``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from micronas.errors import BudgetError, MicronasError
from micronas.hardware import Device
from micronas.infra import defaults
from micronas.proxies.registry import ProxySettings
from micronas.search.costs import Budgets
from micronas.search.objective import DEFAULT_MIX, Weights, parse_mix
from micronas.search.strategies import STRATEGIES
from micronas.spaces import HasSupernet, get_space, offers
from micronas.tasks import Task, resolve_task

KB = 1024


@dataclass(frozen=True)
class TaskSpec:
    """The task: ``name`` (built-in), or ``input`` = ``"HxWxC"`` with ``classes`` (and the
    other square ``resolutions`` to draw, ``"64,80"``), or ``task`` itself."""

    name: str = defaults.BENCHMARK_TASK
    input: str | None = None
    classes: int | None = None
    resolutions: str | None = None
    task: Task | None = None
    #: keep the input's resolution even where the budgets cannot be met at it (by default a
    #: square custom input is then searched at lower sides, the network resizing its input)
    fixed_resolution: bool = False
    resolved: Task = field(init=False, repr=False, compare=False)  # the task, checked

    def __post_init__(self) -> None:
        if self.fixed_resolution and self.resolutions is not None:
            raise MicronasError("--fixed-resolution keeps the input's resolution; it cannot go "
                                "with --resolutions")
        if self.task is not None:
            if self.input is not None or self.classes is not None or self.resolutions is not None:
                raise MicronasError("give a task, or --input HxWxC --classes K [--resolutions], "
                                    "not both")
            object.__setattr__(self, "name", self.task.name)
            object.__setattr__(self, "resolved", self.task)
        else:
            object.__setattr__(self, "resolved", resolve_task(
                None if self.input is not None else self.name, self.input, self.classes,
                resolutions=self.resolutions))

    def resolve(self) -> Task:
        return self.resolved


@dataclass(frozen=True)
class BudgetSpec:
    """Hard budgets (None: the device's) and the share of the device kept for the
    application (None: :data:`~micronas.infra.defaults.RESERVE_SHARE` of it)."""

    max_latency_ms: float | None = None
    max_sram_kb: float | None = None
    max_flash_kb: float | None = None
    reserve_sram_kb: float | None = None
    reserve_flash_kb: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_latency_ms", "max_sram_kb", "max_flash_kb"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise BudgetError(f"--{name.replace('_', '-')} must be a positive number, got {v}")
        for name in ("reserve_sram_kb", "reserve_flash_kb"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise BudgetError(f"--{name.replace('_', '-')} must be a number >= 0, got {v}")

    def reserves(self, device: Device) -> tuple[int, int]:
        """Bytes of SRAM and flash left to the application on ``device``."""
        sram = (round(defaults.RESERVE_SHARE * device.sram_bytes) if self.reserve_sram_kb is None
                else round(self.reserve_sram_kb * KB))
        flash = (round(defaults.RESERVE_SHARE * device.flash_bytes)
                 if self.reserve_flash_kb is None else round(self.reserve_flash_kb * KB))
        for what, r, total in (("SRAM", sram, device.sram_bytes),
                               ("flash", flash, device.flash_bytes)):
            if r >= total:
                raise BudgetError(f"--reserve-{what.lower()}-kb {r / KB:g} leaves no {what} of "
                                  f"{device.name}'s {total / KB:g} KB for the network")
        return sram, flash

    def for_device(self, device: Device, reserve: tuple[int, int] | None = None) -> Budgets:
        """The budgets within the device's memory less the application's reserve
        (``reserve``: :meth:`reserves` of the device, when the caller has it)."""
        return Budgets.with_device(
            device, self.max_latency_ms,
            None if self.max_sram_kb is None else int(self.max_sram_kb * KB),
            None if self.max_flash_kb is None else int(self.max_flash_kb * KB),
            *(reserve or self.reserves(device)))


@dataclass(frozen=True)
class ObjectiveSpec:
    """The indicator part (``"name[:share],..."``), the latency and FLOPs weights, how ranks
    are mixed and how the latency weight acts (``rank``: the published rank mix; ``target``:
    a latency ceiling)."""

    indicators: str = DEFAULT_MIX
    latency_weight: float = defaults.LATENCY_WEIGHT
    flops_weight: float = defaults.FLOPS_WEIGHT
    rank_mode: str = defaults.RANK_MODE
    latency_mode: str = defaults.LATENCY_MODE
    #: among the networks scored within the objective's noise of the best, take the one with
    #: the fewest parameters (measured noise: :func:`micronas.search.run.fewer_params`)
    prefer_fewer_params: bool = True

    def __post_init__(self) -> None:
        self.weights()
        if self.latency_mode not in ("rank", "target"):
            raise MicronasError(f"unknown latency mode {self.latency_mode!r}; use rank or target")
        if self.rank_mode not in ("percentile", "dense"):
            raise MicronasError(f"unknown rank mode {self.rank_mode!r}; use percentile or dense")

    def weights(self, latency: float | None = None) -> Weights:
        """The objective's weights (``latency`` overrides the latency weight)."""
        return Weights(self.latency_weight if latency is None else latency, self.flops_weight,
                       parse_mix(self.indicators))


@dataclass(frozen=True)
class StrategySpec:
    """``name``: a registered strategy, or ``auto`` (pruning where the space has a supernet,
    else evolution). Each strategy takes the options it uses (:meth:`Strategy.options`)."""

    name: str = defaults.STRATEGY
    evaluations: int = defaults.EVALUATIONS   # evolution and random
    fill: float = defaults.FILL               # prune: share of a binding budget to use
    refine: int = defaults.REFINE             # hill-climbing steps afterwards (0: none)

    def __post_init__(self) -> None:
        if self.name != "auto":
            if self.name not in STRATEGIES:
                raise MicronasError(f"unknown strategy {self.name!r}; choose from "
                                    f"{', '.join(STRATEGIES)} (default: prune where the space "
                                    "has a supernet, else evolution)")
            object.__setattr__(self, "name", STRATEGIES.entry(self.name).name)
        if not (isinstance(self.evaluations, int) and self.evaluations >= 1):
            raise MicronasError(f"evaluations must be >= 1, got {self.evaluations}")
        if not (isinstance(self.fill, int | float) and 0 <= self.fill < 1):
            raise MicronasError(f"--fill must be in [0, 1), got {self.fill}")
        if not (isinstance(self.refine, int) and self.refine >= 0):
            raise MicronasError(f"--refine must be >= 0, got {self.refine}")

    def resolved(self, space: str) -> str:
        """The strategy's name (``auto`` resolved for ``space``)."""
        if self.name != "auto":
            return self.name
        return "prune" if offers(get_space(space), HasSupernet) else "evolution"

    def options(self, space: str) -> dict[str, Any]:
        """The options the resolved strategy takes from this spec."""
        return STRATEGIES[self.resolved(space)].options(self.evaluations, self.fill)

    def expected_evaluations(self, space: str) -> int | None:
        """Indicator evaluations the search will make, the final architecture's included
        (an upper bound with ``refine``; None where unknown in advance)."""
        n = STRATEGIES[self.resolved(space)].expected_evaluations(self.evaluations)
        return None if n is None else n + 1 + 24 * self.refine


@dataclass(frozen=True)
class ExecutionSpec:
    """Where indicator batches run: ``workers`` processes (0 or 1: this one, on two threads
    where there are two cores; N >= 2: N - 1 spawned beside it, which re-import ``__main__``,
    so a script using them needs an ``if __name__`` guard), or an ``executor`` spec
    (serial, thread:N, process:N, local:N, dask://HOST:PORT)."""

    workers: int = defaults.WORKERS
    executor: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.workers, int) and self.workers >= 0):
            raise MicronasError(f"--workers must be >= 0, got {self.workers}")
        if self.executor:
            from micronas.infra.execution import parse_executor

            parse_executor(self.executor)


@dataclass(frozen=True)
class SearchConfig:
    """Every setting of a search, validated when made; saved beside its results."""

    space: str = defaults.BENCHMARK_SPACE
    device: str = defaults.DEVICE
    #: what runs the network on the board (None: the device profile's, else defaults.RUNTIME)
    runtime: str | None = None
    seed: int = defaults.SEED
    task: TaskSpec = field(default_factory=TaskSpec)
    budgets: BudgetSpec = field(default_factory=BudgetSpec)
    objective: ObjectiveSpec = field(default_factory=ObjectiveSpec)
    strategy: StrategySpec = field(default_factory=StrategySpec)
    proxy: ProxySettings = field(default_factory=ProxySettings)
    execution: ExecutionSpec = field(default_factory=ExecutionSpec)

    def __post_init__(self) -> None:
        get_space(self.space)
        if self.runtime is not None:
            from micronas.hardware.runtime import RUNTIMES

            object.__setattr__(self, "runtime", RUNTIMES.entry(self.runtime).name)
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**32):
            raise MicronasError(f"--seed must be an integer 0..{2**32 - 1}, got {self.seed}")

    #: Which spec owns each flat name of :meth:`of` (the command line's names).
    _PARTS = {"task": TaskSpec, "budgets": BudgetSpec, "objective": ObjectiveSpec,
              "strategy": StrategySpec, "proxy": ProxySettings, "execution": ExecutionSpec}
    _RENAMED = {"task": ("task", "name"), "strategy": ("strategy", "name")}

    @classmethod
    def of(cls, **flat: Any) -> SearchConfig:
        """A config from flat names: ``space``, ``device``, ``runtime``, ``seed``, and every field of the
        specs (``task``, ``input``, ``classes``, ``resolutions``, ``max_latency_ms``, ...,
        ``strategy``, ``evaluations``, ``fill``, ``refine``, ``indicators``, the weights and
        modes, the proxy settings, ``workers``, ``executor``)."""
        top = {k: flat.pop(k) for k in ("space", "device", "runtime", "seed") if k in flat}
        parts: dict[str, dict[str, Any]] = {p: {} for p in cls._PARTS}
        for k, v in flat.items():
            if k in cls._RENAMED:
                part, name = cls._RENAMED[k]
            else:
                part = next((p for p, spec in cls._PARTS.items()
                             if k in {f.name for f in fields(spec)} and k != "name"), "")
                name = k
                if not part:
                    raise TypeError(f"SearchConfig.of() got an unknown setting {k!r}")
            if isinstance(v, Task) and part == "task":
                name = "task"
            parts[part][name] = v
        return cls(**top, **{p: spec(**parts[p]) for p, spec in cls._PARTS.items()})

    def resolve_task(self) -> Task:
        return self.task.resolve()

    def resolved_strategy(self) -> str:
        return self.strategy.resolved(self.space)

    def reserves(self, device: Device) -> tuple[int, int]:
        """Bytes of SRAM and flash left to the application on ``device``."""
        return self.budgets.reserves(device)

    def weights(self, latency: float | None = None) -> Weights:
        return self.objective.weights(latency)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain values (saved in ``result.json``)."""
        d = asdict(self)
        t = self.task.resolve()
        d["task"]["resolved"] = {"name": t.name, "input_shape": list(t.input_shape),
                                 "classes": t.classes, "resolutions": t.resolutions}
        return d


__all__ = ["BudgetSpec", "ExecutionSpec", "ObjectiveSpec", "SearchConfig", "StrategySpec",
           "TaskSpec"]
