"""The typed API behind the CLI: each command is one call here.

Spaces and tasks are resolved here, once (a name, or the object itself), and passed down.
An architecture is given as text (the space's string or index), or as the space's own value.
``mlperf:kws|vww|ad|ic`` names an MLPerf Tiny reference network (costed, exported and
measured at its own input shape).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from micronas.errors import MicronasError
from micronas.hardware import CostReport, Device, estimate, load_device
from micronas.hardware.runtime import RUNTIMES
from micronas.infra import defaults
from micronas.ir import Network
from micronas.spaces import AnySpace, HasInfo, get_space, index_of, offers
from micronas.tasks import Task, resolve_task

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from micronas.deploy.export import ExportResult
    from micronas.measure.calibration import Calibration
    from micronas.measure.emulate import Measurement
    from micronas.proxies import ProxySettings
    from micronas.proxies.scoring import Score
    from micronas.search.config import SearchConfig
    from micronas.search.run import GroundTruth, SearchResult
    from micronas.ship.build import BuildResult
    from micronas.ship.bundle import DeployResult, StageProgress
    from micronas.ship.train import Recipe, TrainPlan, TrainProgress, TrainResult
    from micronas.tasks.data import Dataset

SpaceLike = str | AnySpace
TaskLike = Task | str | None
#: An architecture: the space's string or index, or the space's own (hashable) value.
ArchLike = Hashable
#: A JSON-like value of a result dict.
Info = dict[str, object]


def _resolve(space: SpaceLike, task: TaskLike) -> tuple[AnySpace, Task]:
    return get_space(space), resolve_task(task)


def _device(device: str | Device, runtime: str | None = None) -> Device:
    """``device`` costed for ``runtime`` (None: the profile's, else the default runtime); a
    Device given as such keeps its runtime unless another one is named."""
    if isinstance(device, Device):
        if runtime is None or RUNTIMES.entry(runtime).name == device.runtime.name:
            return device
        return load_device(device.path or device.name, runtime)
    return load_device(device, runtime)


def default_space(task: TaskLike = None, arch: ArchLike | None = None) -> str:
    """The space a command uses when none is named: the one whose strings ``arch`` is
    written in (an NB201 index or cell, an mcu block string), else NB201 for NB201's own
    tasks and ``mcu`` for any other task (yours)."""
    from micronas.errors import MicronasError as _Error
    from micronas.spaces import list_spaces

    if isinstance(arch, str | int) and not isinstance(arch, bool) and not (
            isinstance(arch, str) and _is_reference(arch)):
        accepted = []
        for name in list_spaces():
            try:
                get_space(name).parse(str(arch))
                accepted.append(name)
            except _Error:
                continue
        if len(accepted) == 1:
            return accepted[0]
    t = resolve_task(task)
    return (defaults.BENCHMARK_SPACE if t.name in defaults.BENCHMARK_TASKS
            else defaults.DATA_SPACE)


def parse_arch(text: ArchLike, space: SpaceLike = defaults.BENCHMARK_SPACE) -> Hashable:
    """An architecture of ``space`` from its string or index (or the value itself)."""
    sp = get_space(space)
    if isinstance(text, str | int) and not isinstance(text, bool):
        arch: Hashable = sp.parse(str(text) if isinstance(text, int) else text)
    else:
        arch = sp.parse(sp.format(text))  # validates a value of the space
    return arch


def arch_info(text: ArchLike, space: SpaceLike = defaults.BENCHMARK_SPACE, task: TaskLike = None) -> Info:
    """The architecture's canonical string, index, isomorphism key and whatever the space
    reports about it (NB201: op counts, live edges, NB201's own FLOPs and params)."""
    sp, t = _resolve(space, task)
    a = parse_arch(text, sp)
    info: Info = {"space": sp.name, "arch": sp.format(a), "index": index_of(sp, a),
                            "iso_key": sp.iso_key(a)}
    if offers(sp, HasInfo):
        info.update(sp.info(a, t))
    return info


def _is_reference(arch: object) -> bool:
    return isinstance(arch, str) and arch.strip().lower().startswith("mlperf:")


def build_ir(arch: ArchLike, space: SpaceLike = defaults.BENCHMARK_SPACE, task: TaskLike = None) -> Network:
    """The deployed network IR of an architecture for ``task`` (or of ``mlperf:NAME``)."""
    if isinstance(arch, str) and _is_reference(arch):
        from micronas.hardware.reference import reference_network

        return reference_network(arch.strip()[7:])
    sp, t = _resolve(space, task)
    return sp.to_network(parse_arch(arch, sp), t)


def _input_text(net: Network) -> str:
    c, *hw = net.tensors[net.inputs[0]].shape
    return "x".join(map(str, [*hw, c]))


@dataclass(frozen=True)
class CostResult:
    """Cost of one network on one device, plus what its space reports about it."""

    arch: str
    index: int | None
    space: str | None
    task: str               # the task, or the reference network's own input
    report: CostReport
    info: Info = field(default_factory=dict)

    def to_dict(self) -> Info:
        r = self.report
        return {
            "arch": self.arch, "index": self.index, "space": self.space, "task": self.task,
            "device": r.device, "device_origin": r.device_origin, "runtime": r.runtime,
            "runtime_grounding": r.runtime_grounding, "runtime_source": r.runtime_source,
            "runtime_code_bytes": r.runtime_code_bytes,
            "runtime_code_source": r.runtime_code_source,
            "macs": r.macs, "params": r.params,
            "flash_bytes": r.flash_bytes, "peak_sram_bytes": r.peak_sram_bytes,
            "latency_ms": r.latency_ms, "fits": r.fits,
            "sram_limit_bytes": r.sram_limit_bytes, "flash_limit_bytes": r.flash_limit_bytes,
            "memory": {"arena_bytes": r.arena_bytes, "scratch_bytes": r.scratch_bytes,
                       "persistent_bytes": r.persistent_bytes,
                       "reserved_bytes": r.reserved_bytes},
            "cycles": r.cycles, **self.info,
            "layers": [
                {"name": lc.name, "op": lc.op, "output_shape": list(lc.output_shape),
                 "macs": lc.macs, "params": lc.params, "flash_bytes": lc.flash_bytes,
                 "scratch_bytes": lc.scratch_bytes, "cycles": lc.cycles,
                 "latency_ms": lc.latency_ms}
                for lc in r.layers
            ],
        }


def cost(arch: ArchLike | nn.Module, device: str | Device = defaults.DEVICE,
         space: SpaceLike = defaults.BENCHMARK_SPACE, task: TaskLike = None,
         input_shape: tuple[int, ...] | None = None, runtime: str | None = None) -> CostResult:
    """Cost of ``arch`` on ``device`` (name, path or Device) for ``task``, with ``runtime``
    running it (default: the device profile's, else ``tflm-cmsis-nn``). ``arch`` may also
    be a torch module of your own, traced for one input of ``input_shape`` (channels first,
    no batch; default: the task's input)."""
    dev = _device(device, runtime)
    if isinstance(arch, str) and _is_reference(arch):
        net = build_ir(arch)
        return CostResult(arch.strip(), None, None, f"its own input {_input_text(net)}",
                          estimate(net, dev))
    if not isinstance(arch, str | int):
        from torch import nn

        if isinstance(arch, nn.Module):
            from micronas.deploy.trace import trace

            shape = input_shape or resolve_task(task).input_shape
            net = trace(arch, shape)
            return CostResult(type(arch).__name__, None, None, f"its input {_input_text(net)}",
                              estimate(net, dev))
    sp, t = _resolve(space, task)
    a = parse_arch(arch, sp)
    extra: Info = {k: v for k, v in (sp.info(a, t) if offers(sp, HasInfo) else {}).items()
                   if k.startswith(sp.name + "_")}
    return CostResult(sp.format(a), index_of(sp, a), sp.name, t.describe(),
                      estimate(sp.to_network(a, t), dev), extra)


def load_module(spec: str) -> nn.Module:
    """``FILE.py:Class``: an instance of ``Class`` (made with no arguments) from your file.
    The file's code runs: give only files you trust."""
    import importlib.util

    from torch import nn

    path, sep, name = str(spec).rpartition(":")
    if not sep or not path.endswith(".py") or not name.isidentifier():
        raise MicronasError(f"--torch {spec!r}: give FILE.py:Class, e.g. my_model.py:Net")
    if not Path(path).is_file():
        raise MicronasError(f"--torch: {path} is not a file")
    mod_spec = importlib.util.spec_from_file_location(f"micronas_user_{Path(path).stem}", path)
    if mod_spec is None or mod_spec.loader is None:
        raise MicronasError(f"--torch: cannot load {path} as Python")
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - the user's own code: report its error in one line
        raise MicronasError(f"--torch: running {path} failed: {type(e).__name__}: "
                            f"{' '.join(str(e).split())[:200]}") from None
    cls = getattr(module, name, None)
    if cls is None:
        raise MicronasError(f"--torch: {path} has no {name}")
    try:
        model = cls()
    except Exception as e:  # noqa: BLE001 - the user's own code
        raise MicronasError(f"--torch: {name}() failed: {type(e).__name__}: "
                            f"{' '.join(str(e).split())[:200]}") from None
    if not isinstance(model, nn.Module):
        raise MicronasError(f"--torch: {name}() is a {type(model).__name__}, not a torch "
                            "nn.Module")
    return model


@dataclass(frozen=True)
class ScoreResult:
    """Indicator values of one architecture, with the settings and seed they came from."""

    arch: str
    index: int | None
    space: str
    task: str
    seed: int
    settings: Info
    scores: dict[str, Score | None]   # population indicators of one network: None

    def to_dict(self) -> Info:
        return {"arch": self.arch, "index": self.index, "space": self.space, "task": self.task,
                "seed": self.seed, "settings": self.settings, "indicators": {
                    n: (None if sc is None else {"value": sc.value, "flags": list(sc.flags),
                                                  "seconds": sc.seconds, "cached": sc.cached})
                    for n, sc in self.scores.items()}}


def score(arch: ArchLike, indicators: Sequence[str] | str | None = None,
          space: SpaceLike = defaults.BENCHMARK_SPACE, task: TaskLike = None, seed: int = defaults.SEED,
          settings: ProxySettings | None = None, cache_path: str | None = None,
          executor: str = "serial") -> ScoreResult:
    """Training-free indicators of one architecture (``settings``: a ProxySettings; the
    default is the one ``micronas search`` uses, so both report the same values)."""
    from micronas.proxies import DEFAULT_INDICATORS, ProxySettings, parse_indicators, score_many

    sp, t = _resolve(space, task)
    a = parse_arch(arch, sp)
    names = parse_indicators(indicators if isinstance(indicators, str | None) else
                             list(indicators), DEFAULT_INDICATORS)
    s = settings or ProxySettings()
    res = score_many(sp, [a], t, names, seed, s, cache_path, executor)[0]
    return ScoreResult(sp.format(a), index_of(sp, a), sp.name, t.name, seed, dict(s.__dict__),
                       {n: res.get(n) for n in names})


def search(cfg: SearchConfig, table: GroundTruth | None = None, cache_path: str | None = None,
           progress: Callable[[int], None] | None = None,
           executor: Executor | None = None) -> SearchResult:
    """Run a search (``cfg``: a :class:`micronas.search.SearchConfig`); a SearchResult.
    ``executor``: an Executor of the caller's for the indicators (it stays open), instead of
    the one ``cfg.execution`` names."""
    from micronas.search.run import run_search

    return run_search(cfg, table, cache_path, progress, executor)


#: The spaces whose benchmark table ``correlate`` reads (space -> loader module).
BENCHMARKS = {"nb201": "micronas.bench.table", "nbmacro": "micronas.bench.nbmacro_table"}


def _benchmark_module(space: str) -> Any:
    import importlib

    name = get_space(space).name
    if name not in BENCHMARKS:
        raise MicronasError(f"no benchmark table for space {name!r}; bench correlate reads "
                            f"{', '.join(BENCHMARKS)}")
    return importlib.import_module(BENCHMARKS[name])


def load_benchmark(space: str = "nb201", path: str | None = None) -> Any:
    """The ground-truth table of ``space`` (NB201's CSV, NAS-Bench-Macro's JSON) from
    ``path`` or the space's environment variable."""
    return _benchmark_module(space).load_table(path)


def correlate(indicators: Sequence[str] | str | None = None, task: TaskLike = None,
              benchmark: str | None = None, sample: int | None = defaults.SAMPLE, seed: int = defaults.SEED,
              workers: int = 1, cache_path: str | None = None,
              settings: ProxySettings | None = None,
              progress: Callable[[int], None] | None = None,
              executor: str | None = None, table: str | None = None,
              space: str = "nb201", resume: bool = False,
              checkpoint_seconds: float = 900.0, device: str | None = None,
              runtime: str | None = None, draws: int = 20) -> Info:
    """Rank correlation of indicators with a benchmark's ground truth (``space``: ``nb201``
    or ``nbmacro``; ``sample=None``: every architecture, 15,625 for NB201, the 3,969
    isomorphism classes for NAS-Bench-Macro). ``executor``: ``process:N``, ``local:N`` or
    ``dask://HOST:PORT`` (default ``process:workers``; see :mod:`micronas.infra.execution`).
    ``table``: also write the result with every architecture's row (accuracy, values, flags)
    to this JSON file (gzip when it ends in ``.gz``), atomically, and every
    ``checkpoint_seconds`` while scoring; ``resume``: continue the table already there
    (score only what it lacks). ``device``: also rank inside budgets on it (``budget``:
    mean Kendall / Spearman inside +-10 % latency slices, and the pick metric: the
    percentile among the feasible networks of the best-scored one, over the 25th / 50th /
    75th percentile latency budgets and ``draws`` seeded ones; see
    :mod:`micronas.bench.budget`). The returned dict has no rows."""
    from micronas.bench.correlate import correlate as _correlate
    from micronas.proxies import parse_indicators

    names = parse_indicators(indicators if isinstance(indicators, str | None) else
                             list(indicators), ["ntk_cond", "linear_regions", "tenas", "naswot",
                                          "synflow", "snip", "grad_norm", "jacov", "params",
                                          "flops"])
    t = resolve_task(task)
    _benchmark_module(space).check_task(t)
    if sample is not None and sample < 1:
        raise MicronasError(f"--sample must be a positive number of architectures, got {sample}")
    if device is not None:
        load_device(device, runtime)  # an unknown device fails before any scoring
    truth = load_benchmark(space, benchmark)  # a missing or bad table fails before any scoring
    archs = truth.archs(sample, seed)
    if executor is not None:
        from micronas.infra.execution import parse_executor

        parse_executor(executor)  # a bad spec fails before any scoring
    res = _correlate(truth, names, t, sample, seed, workers, cache_path,
                     progress, archs, settings, executor=executor, table_path=table,
                     resume=resume, checkpoint_seconds=checkpoint_seconds, device=device,
                     runtime=runtime, draws=draws)
    res.pop("rows", None)
    return res


def load_calibration(path: str, net: Network) -> np.ndarray:
    """A float calibration batch from a .npy file shaped ``(B, *input shape)``."""
    import numpy as np

    from micronas.errors import DataError

    if not Path(path).is_file():
        raise DataError(f"calibration file {path} is not a regular file (missing, a directory or "
                        "a FIFO); give a .npy file")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        raise DataError(f"cannot read calibration file {path} (not a plain .npy array); give one "
                        "shaped (batch, *input shape)") from None
    shape = net.tensors[net.inputs[0]].shape
    if arr.ndim != len(shape) + 1 or tuple(arr.shape[1:]) != tuple(shape) or arr.shape[0] == 0:
        raise DataError(f"calibration file {path} has shape {arr.shape}; expected "
                        f"(batch, {', '.join(map(str, shape))})")
    if not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all():
        raise DataError(f"calibration file {path} must hold finite float values")
    out: np.ndarray = arr.astype(np.float64)
    return out


def export(arch: ArchLike, fmt: str, out: str, space: SpaceLike = defaults.BENCHMARK_SPACE,
           task: TaskLike = None, seed: int = defaults.SEED, calibration: str | None = None,
           check: bool = True, weights: str | None = None, force: bool = False) -> ExportResult:
    """Write ``arch`` as int8 .tflite (checked in TFLM) or float ONNX (checked with
    onnxruntime). ``weights``: a checkpoint of ``micronas train`` (its trained weights,
    BatchNorm folded, int8 calibrated on training samples); without it the weights are
    seeded stand-ins (see :mod:`micronas.deploy.quantize`) and the result says so. An
    existing ``out`` is replaced only with ``force``."""
    from micronas.deploy.export import export as _export
    from micronas.infra.fileio import output_file

    output_file(out, force)
    if weights is not None:
        from micronas.ship.int8 import export_checkpoint

        return export_checkpoint(weights, fmt, out, None if arch is None else str(arch),
                                 check=check)
    net = build_ir(arch, space, task)
    calib = load_calibration(calibration, net) if calibration else None
    return _export(net, fmt, out, seed=seed, calibration=calib, check=check)


def dataset(data: str, seed: int = defaults.SEED) -> Dataset:
    """A task's train / test data: ``digits``, ``fashion-mnist``, an image folder or an .npz
    (:mod:`micronas.tasks.data`)."""
    from micronas.tasks.data import load_dataset

    return load_dataset(data, seed)


def train(arch: ArchLike, data: str | Dataset, out: str, space: SpaceLike = defaults.DATA_SPACE,
          epochs: int | None = None, seed: int = defaults.SEED, recipe: Recipe | None = None,
          progress: TrainProgress | None = None, max_minutes: float | None = None,
          on_plan: Callable[[TrainPlan], None] | None = None) -> TrainResult:
    """Train ``arch`` on ``data`` (a name/path or a :class:`micronas.tasks.data.Dataset`),
    checkpointing to ``out`` every epoch and resuming from it; a
    :class:`micronas.ship.train.TrainResult`. ``on_plan`` receives the plan (the time per
    step measured here, the estimated time) before training; ``max_minutes`` cuts the
    epochs to what fits that time."""
    from dataclasses import replace

    from micronas.ship.train import Recipe
    from micronas.ship.train import train as _train

    r = recipe or Recipe()
    if epochs is not None:
        r = replace(r, epochs=epochs)
    ds = dataset(data, seed) if isinstance(data, str) else data
    return _train(arch, get_space(space), ds, out, r, seed, progress, max_minutes, on_plan)


def deploy(checkpoint: str, device: str | Device, out: str, tflm_samples: int | None = None,
           verify_samples: int = 2, compile_c: bool = True,
           progress: StageProgress | None = None, runtime: str | None = None) -> DeployResult:
    """Bundle a trained checkpoint for ``device`` (:func:`micronas.ship.bundle.deploy`); its
    figures are for ``runtime`` (default: the device profile's, else ``tflm-cmsis-nn``)."""
    from micronas.ship.bundle import deploy as _deploy

    return _deploy(checkpoint, _device(device, runtime), out, tflm_samples, verify_samples, compile_c,
                   progress=progress)


def build(data: str | Dataset, out: str, search_cfg: SearchConfig | None = None,
          epochs: int | None = None, recipe: Recipe | None = None,
          tflm_samples: int | None = None, verify_samples: int = 2, compile_c: bool = True,
          cache_path: str | None = None, progress: StageProgress | None = None,
          max_train_minutes: float | None = None,
          on_plan: Callable[[TrainPlan], None] | None = None) -> BuildResult:
    """Search, train, int8, TFLM, deploy in one call (:func:`micronas.ship.build.build`);
    ``max_train_minutes`` bounds the training time on this machine (a quicker network of the
    search's front, then fewer epochs)."""
    from dataclasses import replace

    from micronas.search.config import SearchConfig
    from micronas.ship.build import build as _build
    from micronas.ship.train import Recipe

    r = recipe or Recipe()
    if epochs is not None:
        r = replace(r, epochs=epochs)
    cfg = search_cfg or SearchConfig(space=defaults.DATA_SPACE)
    return _build(data, out, cfg, r, tflm_samples, verify_samples, compile_c, cache_path,
                  progress, max_train_minutes, on_plan)


@dataclass(frozen=True)
class MeasureResult:
    """Emulated latency of one architecture on one device's core."""

    arch: str
    device: str
    core: str
    clock_mhz: float
    method: str
    measurement: Measurement
    predicted_ms: float       # the cost model's latency for the same network and device

    @property
    def latency_ms(self) -> float:
        return float(self.measurement.cycles) / (self.clock_mhz * 1e3)

    def to_dict(self) -> Info:
        m = self.measurement
        khz = self.clock_mhz * 1e3
        return {"arch": self.arch, "device": self.device, "core": self.core,
                "clock_mhz": self.clock_mhz, "method": m.method, "latency_ms": self.latency_ms,
                "cycles": m.cycles, "instructions": m.instructions, "bit_exact": m.bit_exact,
                "predicted_latency_ms": self.predicted_ms,
                "layers": [{"name": lay.name, "instructions": lay.instructions,
                            "cycles": lay.cycles, "latency_ms": lay.cycles / khz,
                            "classes": lay.classes} for lay in m.layers]}


def measure(arch: ArchLike, device: str | Device = defaults.DEVICE, space: SpaceLike = defaults.BENCHMARK_SPACE,
            task: TaskLike = None, method: str = "layers", seed: int = defaults.SEED,
            progress: Callable[[int, int], None] | None = None) -> MeasureResult:
    """Emulated latency of ``arch`` on ``device``'s core: our int8 kernels, cross-compiled and
    run in the unicorn emulator, instructions counted per class and converted to cycles."""
    from micronas.measure.layers import measure_network

    dev = _device(device, "micronas-c")  # the C the emulator runs: its cost model to compare
    net = build_ir(arch, space, task)
    m = measure_network(net, dev.core, method, seed, progress=progress)
    name = (arch.strip() if isinstance(arch, str) and _is_reference(arch)
            else get_space(space).format(parse_arch(arch, space)))
    return MeasureResult(name, dev.name, dev.core, dev.clock_mhz, method, m,
                         estimate(net, dev).latency_ms)


def calibrate(device: str | Device = defaults.DEVICE, measurements: str | None = None,
              space: SpaceLike = defaults.BENCHMARK_SPACE, task: TaskLike = None, seed: int = defaults.SEED,
              progress: Callable[[int, int], None] | None = None,
              runtime: str | None = None) -> Calibration:
    """Fit the latency constants of ``runtime`` on the device to emulated layers (default:
    runtime ``micronas-c``, the C the emulator runs) or to a CSV of board measurements
    (``arch`` rows read in ``space`` for ``task``; the runtime: ``runtime``, else the CSV's
    ``runtime`` column, else the device's); returns a
    :class:`micronas.measure.calibration.Calibration`."""
    from micronas.measure.calibration import (
        calibrate_emulated,
        calibrate_measured,
        measurement_runtime,
        read_measurements,
    )

    if measurements:
        named = measurement_runtime(read_measurements(measurements), measurements)
        dev = _device(device, runtime or named)
        sp, t = _resolve(space, task)
        return calibrate_measured(dev, measurements, lambda a: build_ir(a, sp, t))
    return calibrate_emulated(_device(device, runtime or "micronas-c"), seed, progress)


def add_device(name: str, core: str, clock_mhz: float, sram_kb: float, flash_kb: float,
               description: str | None = None, fpu: bool = False, force: bool = False) -> Device:
    """Write a profile of your own board (:func:`micronas.hardware.device.add_device`); it is
    then a device name like the built-in ones."""
    from micronas.hardware.device import add_device as _add

    return _add(name, core, clock_mhz, sram_kb, flash_kb, description, fpu, force)


#: What ``micronas list`` lists: one registry type behind each.
LISTABLE = ("spaces", "indicators", "strategies", "devices", "runtimes", "tasks", "datasets",
            "references", "executors")

Row = dict[str, str | int | float]


@dataclass(frozen=True)
class Listing:
    """The named things of one kind: one row each (``name``, ``summary``, ``source`` and the
    kind's own columns; devices: core, clock, memories)."""

    kind: str
    rows: list[Row]


def runtimes_of(device: Device) -> str:
    """The runtimes with latency constants for ``device``'s core, each with how its constants
    were obtained (``tflm-cmsis-nn (emulated), ...``); the device's own runtime first, and
    a calibrated profile's runtime marked ``calibrated``."""
    out = [f"{device.runtime.name} ({device.runtime.latency_grounding})"]
    for name in RUNTIMES:
        rt = RUNTIMES[name]
        if name != device.runtime.name and device.core in rt.cores():
            out.append(f"{name} ({rt.core_constants(device.core)[2]})")
    return ", ".join(out)


def list_named(kind: str) -> Listing:
    """Every registered thing of ``kind`` (one of :data:`LISTABLE`)."""
    from micronas.hardware.device import DEVICES
    from micronas.hardware.reference import REFERENCES
    from micronas.infra.execution import EXECUTORS
    from micronas.infra.registry import Entry
    from micronas.proxies.registry import INDICATORS
    from micronas.search.strategies import STRATEGIES
    from micronas.spaces.base import SPACES
    from micronas.tasks import TASKS
    from micronas.tasks.data import DATASETS

    k = str(kind).strip().lower()
    if k not in LISTABLE:
        raise MicronasError(f"cannot list {kind!r}; choose from {', '.join(LISTABLE)}")

    def base(e: Entry[object]) -> Row:
        return {"name": e.name, "summary": e.summary, "source": e.source}

    rows: list[Row] = []
    if k == "devices":
        for e in DEVICES.entries():
            d = load_device(e.name)
            rows.append({**base(e), "core": d.core, "runtime": d.runtime.name, "clock_mhz": d.clock_mhz,
                         "sram_bytes": d.sram_bytes, "flash_bytes": d.flash_bytes,
                         "dsp": "yes" if d.dsp else "no", "summary": d.description,
                         "runtimes": runtimes_of(d)})
    elif k == "runtimes":
        for r_entry in RUNTIMES.entries():
            rt = r_entry.value
            grounding = {c: rt.core_constants(c)[2] for c in rt.cores()}
            rows.append({**base(r_entry), "ships": rt.ships,
                         "cores": ", ".join(f"{c} ({g})" for c, g in grounding.items())})
    elif k == "tasks":
        for t_entry in TASKS.entries():
            c, h, w = t_entry.value.input_shape
            rows.append({**base(t_entry), "input": f"{h}x{w}x{c}",
                         "classes": t_entry.value.classes})
    elif k == "indicators":
        rows = [{**base(e), "higher_is_better": "yes" if e.value.higher_is_better else "no"}
                for e in INDICATORS.entries()]
    elif k == "references":
        rows = [{**base(e), "name": f"mlperf:{e.name}"} for e in REFERENCES.entries()]
    else:
        simple: dict[str, list[Entry[object]]] = {
            "spaces": list(SPACES.entries()), "strategies": list(STRATEGIES.entries()),
            "datasets": list(DATASETS.entries()),
            "executors": list(EXECUTORS.entries())}
        rows = [base(e) for e in simple[k]]
    return Listing(k, rows)


__all__ = ["LISTABLE", "add_device", "arch_info", "ArchLike", "build", "build_ir", "calibrate",
           "correlate", "cost", "CostResult", "dataset", "default_space", "deploy", "export",
           "list_named", "Listing", "load_calibration", "load_module", "measure", "MeasureResult",
           "MicronasError", "parse_arch", "score", "ScoreResult", "search", "SpaceLike",
           "TaskLike", "train"]
