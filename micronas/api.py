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
    except (OSError, ValueError) as e:
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


__all__ = ["ArchError", "CostResult", "arch_info", "build_ir", "cost", "export",
           "load_calibration", "parse_arch"]
