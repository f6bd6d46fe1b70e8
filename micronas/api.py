"""The typed API behind the CLI: each command is one call here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from micronas.datasets import get_dataset
from micronas.errors import ArchError
from micronas.hardware import CostReport, Device, estimate, load_device
from micronas.ir import Network
from micronas.spaces.nb201 import NB201Arch, NB201Space
from micronas.spaces.nb201_ir import nb201_counts, nb201_network


def parse_arch(text: str | int | NB201Arch) -> NB201Arch:
    """An NB201 architecture from an index, a canonical string, or itself."""
    if isinstance(text, NB201Arch):
        return text
    return NB201Space().parse(text)


def arch_info(text: str | int | NB201Arch) -> dict[str, Any]:
    """Both forms of an architecture, its op counts, live edges and isomorphism key."""
    a = parse_arch(text)
    return {"arch": str(a), "index": a.index, "op_counts": a.op_counts(),
            "live_edges": list(a.live_edges()), "iso_key": a.iso_key()}


def _is_reference(arch: object) -> bool:
    return isinstance(arch, str) and arch.strip().lower().startswith("mlperf:")


def build_ir(arch: str | int | NB201Arch, dataset: str = "cifar10") -> Network:
    """The deployed network IR of an architecture (NB201 index/string, or ``mlperf:NAME``)."""
    if _is_reference(arch):
        from micronas.reference import reference_network

        return reference_network(arch.strip()[7:])
    return nb201_network(parse_arch(arch), get_dataset(dataset).name)


@dataclass(frozen=True)
class CostResult:
    """Cost of one architecture on one device, plus NB201's reference counts."""

    arch: str
    index: int | None
    dataset: str
    report: CostReport
    nb201_flops: float | None
    nb201_params: float | None

    def to_dict(self) -> dict[str, Any]:
        r = self.report
        return {
            "arch": self.arch, "index": self.index, "dataset": self.dataset,
            "device": r.device, "macs": r.macs, "params": r.params,
            "flash_bytes": r.flash_bytes, "peak_sram_bytes": r.peak_sram_bytes,
            "latency_ms": r.latency_ms, "fits": r.fits,
            "sram_limit_bytes": r.sram_limit_bytes, "flash_limit_bytes": r.flash_limit_bytes,
            "memory": {"arena_bytes": r.arena_bytes, "scratch_bytes": r.scratch_bytes,
                       "persistent_bytes": r.persistent_bytes,
                       "reserved_bytes": r.reserved_bytes},
            "cycles": r.cycles,
            "nb201_flops": self.nb201_flops, "nb201_params": self.nb201_params,
            "layers": [
                {"name": lc.name, "op": lc.op, "output_shape": list(lc.output_shape),
                 "macs": lc.macs, "params": lc.params, "flash_bytes": lc.flash_bytes,
                 "scratch_bytes": lc.scratch_bytes, "cycles": lc.cycles,
                 "latency_ms": lc.latency_ms}
                for lc in r.layers
            ],
        }


def cost(arch: str | int | NB201Arch, device: str | Device = "stm32f746",
         dataset: str = "cifar10") -> CostResult:
    """Cost of ``arch`` on ``device`` (name, path or Device) for ``dataset``."""
    dev = device if isinstance(device, Device) else load_device(device)
    ds = get_dataset(dataset).name
    net = build_ir(arch, ds)
    if _is_reference(arch):
        return CostResult(arch.strip(), None, ds, estimate(net, dev), None, None)
    a = parse_arch(arch)
    flops, params = nb201_counts(a, ds)
    return CostResult(str(a), a.index, ds, estimate(net, dev), flops, params)


def load_calibration(path: str, net: Network):
    """A float calibration batch from a .npy file shaped ``(B, *input shape)``."""
    import numpy as np

    from micronas.errors import DataError

    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        raise DataError(f"cannot read calibration file {path} (not a plain .npy array); give one "
                        "shaped (batch, *input shape)") from None
    shape = net.tensors[net.inputs[0]].shape
    if arr.ndim != len(shape) + 1 or tuple(arr.shape[1:]) != tuple(shape):
        raise DataError(f"calibration file {path} has shape {arr.shape}; expected "
                        f"(batch, {', '.join(map(str, shape))})")
    if not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all():
        raise DataError(f"calibration file {path} must hold finite float values")
    return arr.astype(np.float64)


def export(arch: str | int | NB201Arch, fmt: str, out: str, dataset: str = "cifar10",
           seed: int = 0, calibration: str | None = None, check: bool = True):
    """Write ``arch`` as int8 .tflite (checked in TFLM) or float ONNX (checked with
    onnxruntime); weights are seeded stand-ins (see :mod:`micronas.deploy.quantize`)."""
    from micronas.deploy.export import export as _export

    net = build_ir(arch, dataset)
    calib = load_calibration(calibration, net) if calibration else None
    return _export(net, fmt, out, seed=seed, calibration=calib, check=check)


@dataclass(frozen=True)
class MeasureResult:
    """Emulated latency of one architecture on one device's core."""

    arch: str
    device: str
    core: str
    clock_mhz: float
    method: str
    measurement: Any          # micronas.deploy.emulate.Measurement
    predicted_ms: float       # the cost model's latency for the same network and device

    @property
    def latency_ms(self) -> float:
        return self.measurement.cycles / (self.clock_mhz * 1e3)

    def to_dict(self) -> dict[str, Any]:
        m = self.measurement
        khz = self.clock_mhz * 1e3
        return {"arch": self.arch, "device": self.device, "core": self.core,
                "clock_mhz": self.clock_mhz, "method": m.method, "latency_ms": self.latency_ms,
                "cycles": m.cycles, "instructions": m.instructions, "bit_exact": m.bit_exact,
                "predicted_latency_ms": self.predicted_ms,
                "layers": [{"name": lay.name, "instructions": lay.instructions,
                            "cycles": lay.cycles, "latency_ms": lay.cycles / khz,
                            "classes": lay.classes} for lay in m.layers]}


def measure(arch: str | int | NB201Arch, device: str | Device = "stm32f746",
            dataset: str = "cifar10", method: str = "layers", seed: int = 0) -> MeasureResult:
    """Emulated latency of ``arch`` on ``device``'s core: our int8 kernels, cross-compiled and
    run in the unicorn emulator, instructions counted per class and converted to cycles."""
    from micronas.deploy.measure import measure_network

    dev = device if isinstance(device, Device) else load_device(device)
    net = build_ir(arch, dataset)
    m = measure_network(net, dev.core, method, seed)
    name = arch.strip() if _is_reference(arch) else str(parse_arch(arch))
    return MeasureResult(name, dev.name, dev.core, dev.clock_mhz, method, m,
                         estimate(net, dev).latency_ms)


def calibrate(device: str | Device = "stm32f746", measurements: str | None = None,
              dataset: str = "cifar10", seed: int = 0, progress=None):
    """Fit the device's latency constants to emulated layers (default) or to a CSV of board
    measurements; returns a :class:`micronas.hardware.calibrate.Calibration`."""
    from micronas.hardware.calibrate import calibrate_emulated, calibrate_measured

    dev = device if isinstance(device, Device) else load_device(device)
    if measurements:
        return calibrate_measured(dev, measurements, dataset)
    return calibrate_emulated(dev, seed, progress)


__all__ = ["ArchError", "CostResult", "MeasureResult", "arch_info", "build_ir", "calibrate",
           "cost", "export", "load_calibration", "measure", "parse_arch"]
