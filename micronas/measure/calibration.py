"""Fit a device's latency coefficients to measurements and write them into a profile.

Two sources of measurements:

- **Emulation** (:func:`calibrate_emulated`): a designed, seeded set of single layers spanning
  every op class (channels, resolution, kernel, stride) is compiled with our int8 kernels and
  run on the emulated core (:mod:`micronas.measure.layers`); per op class, the coefficients
  (per MAC, per output, per input, per window element, per layer) are a non-negative least
  squares fit of the measured cycles, with rows weighted by 1 / measured (relative error).
- **Your board** (:func:`calibrate_measured`): a CSV of measured latencies, per model
  (``arch,latency_ms``) or per layer (``arch,layer,latency_ms``; layer names as printed by
  ``micronas cost ARCH --layers``). ``arch`` is anything ``micronas cost`` accepts. With at
  least two rows per op class involved, each op class's coefficients get their own scale;
  otherwise one scale for all (non-negative least squares on relative error).

Either way the result is a device profile (TOML) with a ``[latency]`` table that overrides the
core's constants; use it with ``--device PATH``.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from micronas import __version__
from micronas.errors import DataError, MicronasError
from micronas.hardware.cost import layer_cycles, layer_features, op_class
from micronas.hardware.device import Device
from micronas.hardware.runtime import MEMORY_FIELDS
from micronas.hardware.tomlcheck import COEFFICIENTS
from micronas.infra.fileio import atomic_write
from micronas.ir import GraphBuilder, Layer, Network, lower_for_tflm


@dataclass
class Calibration:
    device: Device
    source: str                                   # "emulation" or the CSV path
    tables: dict[str, dict[str, float]]           # op class -> coefficients
    overhead_cycles: float
    rows: int
    fit_mape: float                               # on the rows it was fitted to
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)  # class -> rows, mape
    #: the runtime the fitted latency is for: emulation fits micronas's own C kernels
    #: (``micronas-c``); board measurements, the runtime they were measured with
    runtime: str = ""

    def runtime_name(self) -> str:
        return self.runtime or self.device.runtime.name

    def summary(self) -> str:
        """What was fitted to what, in one line (``micronas calibrate`` prints it)."""
        if "all" in self.per_class:
            what = ("one latency scale for every op class (too few rows for a scale per op "
                    "class: that needs two rows per class)")
        elif self.source.startswith("emulation"):
            what = f"the coefficients of {len(self.per_class)} op classes"
        else:
            what = f"a latency scale for each of {len(self.per_class)} op classes"
        return (f"fitted {what} to {self.rows} measurements from {self.source}; fit MAPE "
                f"{100 * self.fit_mape:.1f} %; latency is now for runtime "
                f"'{self.runtime_name()}'")

    def profile(self, name: str) -> dict:
        """The calibrated device profile as a TOML-ready dict (loads back with
        :func:`~micronas.hardware.device.device_from_dict`)."""
        d = self.device
        latency: dict = {"overhead_cycles": float(self.overhead_cycles)}
        for cls in sorted(self.tables):
            latency[cls] = {k: float(v) for k, v in self.tables[cls].items()}
        rt: dict = {k: getattr(d.runtime, k) for k in MEMORY_FIELDS}
        rt["name"] = self.runtime_name()
        description = f"{d.description} (calibrated: {self.source})"
        return {"name": name, "description": " ".join(description.split())[:300], "core": d.core,
                "clock_mhz": d.clock_mhz, "sram_bytes": d.sram_bytes, "flash_bytes": d.flash_bytes,
                "dsp": d.dsp, "fpu": d.fpu, "sources": list(d.sources), "latency": latency,
                "runtime": rt}

    def profile_toml(self, name: str) -> str:
        """:meth:`profile` as TOML text (written by a serialiser, with a comment header)."""
        import tomli_w

        today = datetime.date.today().isoformat()
        src = json.dumps(self.source)  # one line, whatever the path holds
        head = (f"# {name}: {self.device.name} with latency constants fitted by `micronas "
                f"calibrate` (micronas {__version__}, {today})\n"
                f"# from {src}: {self.rows} measurements, fit MAPE {100 * self.fit_mape:.1f} %.\n")
        return head + tomli_w.dumps(self.profile(name))


def write_profile(cal: Calibration, path: str | Path, name: str | None = None,
                  force: bool = False) -> Path:
    """Write the calibrated profile to ``path`` (an existing file only with ``force``)."""
    from micronas.infra.fileio import output_file

    p = output_file(path, force)
    from micronas.hardware.tomlcheck import NAME_RE

    name = name or p.stem
    if not NAME_RE.fullmatch(name):
        name = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
        name = ("d" + name if not name[:1].isalnum() else name)[:64]
    text = cal.profile_toml(name)
    try:
        atomic_write(p, lambda f: f.write(text))
    except OSError as e:
        raise MicronasError(f"cannot write {p} ({e.strerror}); choose another path") from None
    return p


# --- the designed layer set -------------------------------------------------------------

def designed_layers(seed: int = 0, max_macs: int = 3_000_000) -> list[tuple[Network, Layer]]:
    """Seeded single-layer networks covering every op class (layer = the one to measure)."""
    rng = np.random.default_rng(seed)
    out: list[tuple[Network, Layer]] = []

    def pick(options: list[tuple], n: int) -> list[tuple]:
        idx = rng.permutation(len(options))[:n]
        return [options[i] for i in sorted(idx)]

    def one(shape: tuple[int, ...], make) -> None:
        g = GraphBuilder("design", shape)
        y = make(g, g.input_name)
        net = lower_for_tflm(g.build([y]))
        layer = net.layers[-1]
        if layer.macs <= max_macs:
            out.append((net, layer))

    chans, sizes = [8, 16, 24, 32, 48, 64], [4, 8, 12, 16, 24, 32]
    convs = [(ci, co, s, st) for ci in [3, *chans] for co in chans for s in sizes for st in (1, 2)]
    for ci, co, s, st in pick(convs, 40):
        one((ci, s, s), lambda g, x, co=co, st=st: g.relu(g.conv(x, co, 3, st, 1, name="c")))
    for ci, co, s, st in pick(convs, 30):
        one((ci, s, s), lambda g, x, co=co, st=st: g.conv(x, co, 1, st, 0, name="c"))
    for c, _, s, st in pick(convs, 20):
        one((c, s, s), lambda g, x, c=c, st=st: g.relu(g.conv(x, c, 3, st, 1, groups=c, name="d")))
    # the mcu space's layers: depthwise 3/5/7 at stride 1 and 2 on expanded widths, ReLU6
    # fused into expansions and depthwise convs, the one-channel stem, non-square maps
    hidden = [24, 48, 72, 96, 144, 192, 288]
    dws = [(c, s, k, st) for c in hidden for s in sizes for k in (3, 5, 7) for st in (1, 2)]
    for c, s, k, st in pick(dws, 36):
        one((c, s, s), lambda g, x, c=c, k=k, st=st: g.relu6(
            g.conv(x, c, k, st, k // 2, groups=c, name="d")))
    expands = [(ci, e, s) for ci in chans for e in (3, 4, 6) for s in sizes]
    for ci, e, s in pick(expands, 20):
        one((ci, s, s), lambda g, x, co=ci * e: g.relu6(g.conv(x, co, 1, name="c")))
    for co, s in pick([(co, s) for co in (8, 16, 24) for s in (32, 48, 64, 96)], 6):
        one((1, s, s), lambda g, x, co=co: g.relu6(g.conv(x, co, 3, 2, 1, name="c")))
    flat = [(c, h, w, k) for c in hidden[:5] for h, w in ((49, 10), (25, 5), (13, 3), (7, 2))
            for k in (3, 5, 7)]
    for c, h, w, k in pick(flat, 12):
        one((c, h, w), lambda g, x, c=c, k=k, w=w: g.relu6(g.conv(
            x, c, k, (2, 2 if w >= 3 else 1), k // 2, groups=c, name="d")))
    for c, s in pick([(c, s) for c in chans for s in sizes], 6):
        one((c, s, s), lambda g, x: g.relu6(g.add(x, x, name="a"), name="r"))
    fcs = [(n, m) for n in (16, 32, 64, 128, 256, 640) for m in (2, 10, 12, 64, 128)]
    for n, m in pick(fcs, 12):
        one((n,), lambda g, x, m=m: g.fc(x, m, name="f"))
    maps = [(c, s) for c in chans + [96, 128] for s in sizes]
    for c, s in pick(maps, 10):
        one((c, s, s), lambda g, x: g.pool(x, 3, 1, 1, name="p"))
    for c, s in pick(maps, 8):
        one((c, s, s), lambda g, x: g.pool(x, 2, 2, 0, name="p"))
    for c, s in pick(maps, 10):
        one((c, s, s), lambda g, x: g.global_avgpool(x, name="gap"))
    for c, s in pick(maps, 12):
        one((c, s, s), lambda g, x: g.add(g.relu(x, name="r"), x, name="a"))
    for c, s in pick(maps, 10):
        one((c, s, s), lambda g, x: g.relu(g.pool(x, 3, 1, 1, name="p"), name="r"))
    for c, s in pick(maps, 10):
        one((c, s, s), lambda g, x: g.relu(g.affine(x, name="b")))
    for c, s in pick([(c, s) for c, s in maps if s % 2 == 0], 10):
        def pad_then_conv(g, x):
            return g.conv(x, 8, 3, 2, 1, name="c")
        g = GraphBuilder("design", (c, s, s))
        net = lower_for_tflm(g.build([pad_then_conv(g, g.input_name)]))
        out.append((net, next(lay for lay in net.layers if lay.op == "pad")))
    for c, s in pick(maps, 8):
        one((c, s, s), lambda g, x: g.concat([x, g.relu(x, name="r")], name="cat"))
    # the mcu space's input resize (a square task's side to a lower resolution, mostly 1 or 3
    # channels), some upsampling and non-square maps; drawn last, so the draws above stand
    resizes = [(c, s, r, r) for c in (1, 3, 8, 16) for s in (24, 32, 48, 64, 96, 128)
               for r in (s // 2, 5 * s // 8, 3 * s // 4, 7 * s // 8, s + 8)]
    resizes += [(c, 49, 10, (25, 5)) for c in (1, 8)] + [(3, 40, 30, (32, 24))]
    for c, s, w, r in pick(resizes, 18):
        size = r if isinstance(r, tuple) else (r, r)
        one((c, s, s if isinstance(r, int) else w),
            lambda g, x, size=size: g.resize_bilinear(x, size, name="rs"))
    return out


# --- fitting ------------------------------------------------------------------------------

def _fit_class(feats: list[dict[str, float]], cycles: list[float]) -> tuple[dict[str, float], float]:
    used = [k for k in COEFFICIENTS if any(f[k] for f in feats)]
    a = np.array([[f[k] for k in used] for f in feats], dtype=np.float64)
    y = np.array(cycles, dtype=np.float64)
    w = 1.0 / y
    coef, _ = nnls(a * w[:, None], y * w)
    pred = a @ coef
    return dict(zip(used, (float(c) for c in coef), strict=True)), float(np.mean(np.abs(pred - y) / y))


def fit(samples: list[tuple[Network, Layer, float]]) -> tuple[dict[str, dict[str, float]], dict]:
    """Per op class coefficients from (network, layer, measured cycles) samples."""
    by_class: dict[str, list[tuple[dict[str, float], float]]] = defaultdict(list)
    for net, layer, cyc in samples:
        by_class[op_class(layer)].append((layer_features(net, layer), cyc))
    tables, stats = {}, {}
    for cls, rows in sorted(by_class.items()):
        coef, mape = _fit_class([f for f, _ in rows], [c for _, c in rows])
        tables[cls] = coef
        stats[cls] = {"rows": len(rows), "mape": mape}
    return tables, stats


def calibrate_emulated(device: Device, seed: int = 0, progress=None) -> Calibration:
    """Fit ``device``'s coefficients to emulated layer measurements on its core: the latency
    of micronas's own C kernels, so ``device`` must be costed for runtime ``micronas-c``."""
    from micronas.measure.layers import LayerCache, measure_layer

    if device.runtime.name != "micronas-c":
        raise MicronasError(f"emulation measures micronas's own C kernels (runtime micronas-c), "
                            f"not {device.runtime.name}; drop --runtime or give --runtime "
                            "micronas-c, or calibrate from board measurements (--measurements)")
    design = designed_layers(seed)
    cache = LayerCache(device.core)
    samples = []
    for i, (net, layer) in enumerate(design):
        m = measure_layer(net, layer, device.core, cache, seed)
        samples.append((net, layer, m.cycles))
        if progress:
            progress(i + 1, len(design))
        if (i + 1) % 10 == 0:
            cache.save()
    cache.save()
    tables, stats = fit(samples)
    for cls, coefs in device.latency.items():  # classes we cannot emulate keep their constants
        tables.setdefault(cls, dict(coefs))
    mape = float(np.mean([s["mape"] for s in stats.values() for _ in range(s["rows"])]))
    return Calibration(device, f"emulation ({device.core}, seed {seed})", tables, 0.0,
                       len(samples), mape, stats,
                       runtime="micronas-c")


# --- measurements from a board ------------------------------------------------------------

def read_measurements(path: str | Path) -> list[dict[str, str]]:
    """Rows of a measurement CSV (``arch,latency_ms`` or ``arch,layer,latency_ms``; an optional
    ``runtime`` column names the runtime each row was measured with)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"measurement file {p} does not exist")
    if not p.is_file():
        raise DataError(f"measurement file {p} is not a regular file; give a CSV file")
    try:
        return _read_measurements(p)
    except UnicodeDecodeError:
        raise DataError(f"{p} is not UTF-8 text; save the measurements as a UTF-8 CSV") from None
    except csv.Error as e:
        raise DataError(f"{p}: not a readable CSV ({e})") from None
    except OSError as e:
        raise DataError(f"cannot read {p}: {e.strerror}") from None


#: the longest latency a measurement may state (ms): about three hours
MAX_LATENCY_MS = 1e7
MAX_ROWS = 100_000


def _read_measurements(p: Path) -> list[dict[str, str]]:
    with open(p, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        if not {"arch", "latency_ms"} <= cols:
            raise DataError(f"{p}: line 1: the header must have columns arch and latency_ms "
                            f"(and optionally layer); got {', '.join(sorted(cols)) or 'nothing'}")
        rows = []
        for lineno, row in enumerate(reader, start=2):
            if lineno > MAX_ROWS + 1:
                raise DataError(f"{p}: more than {MAX_ROWS:,} measurements; calibrate on fewer")
            try:
                v = float(row["latency_ms"])
            except (TypeError, ValueError):
                raise DataError(f"{p}: line {lineno}: latency_ms {row['latency_ms']!r} is not a "
                                "number") from None
            if not math.isfinite(v) or v <= 0 or v > MAX_LATENCY_MS:
                raise DataError(f"{p}: line {lineno}: latency_ms must be a positive number of at "
                                f"most {MAX_LATENCY_MS:g} ms, got {row['latency_ms']!r}")
            if "runtime" in row and not (row.get("runtime") or "").strip():
                raise DataError(f"{p}: line {lineno}: runtime is empty; name the runtime the "
                                "row was measured with (micronas list runtimes)")
            if not (row.get("arch") or "").strip():
                raise DataError(f"{p}: line {lineno}: arch is empty")
            rows.append({**row, "_line": str(lineno)})
    if not rows:
        raise DataError(f"{p}: no measurements (only a header)")
    return rows


def measurement_runtime(rows: list[dict[str, str]], path: str | Path) -> str | None:
    """The runtime a measurement CSV's ``runtime`` column names (None without one); rows that
    name different runtimes, or an unknown one, are refused."""
    from micronas.hardware.runtime import RUNTIMES

    names = {(r.get("runtime") or "").strip() for r in rows if "runtime" in r}
    if not names:
        return None
    if len(names) > 1:
        raise DataError(f"{path}: rows name {len(names)} runtimes ({', '.join(sorted(names))}); "
                        "calibrate one runtime at a time")
    name = names.pop()
    if name not in RUNTIMES:
        close = RUNTIMES.closest(name)
        guess = f" (did you mean {close!r}?)" if close else ""
        raise DataError(f"{path}: unknown runtime {name!r}{guess}; choose from "
                        f"{', '.join(RUNTIMES)}")
    return RUNTIMES.entry(name).name


def calibrate_measured(device: Device, path: str | Path,
                       build: Callable[[str], Network]) -> Calibration:
    """Scale ``device``'s coefficients (per op class, or one scale) to a board's measurements;
    ``build(arch)`` gives the network IR of a row's ``arch`` (the API resolves space and
    task)."""
    rows = read_measurements(path)
    named = measurement_runtime(rows, path)
    if named is not None and named != device.runtime.name:
        raise DataError(f"{path}: the measurements are for runtime {named}, but the constants "
                        f"being fitted are {device.runtime.name}'s; give --runtime {named}")
    khz = device.clock_mhz * 1e3
    preds: list[dict[str, float]] = []   # per row: op class -> predicted cycles (no overhead)
    measured: list[float] = []
    for row in rows:
        try:
            net = lower_for_tflm(build(row["arch"].strip()))
        except MicronasError as e:
            raise DataError(f"{path}: line {row['_line']}: {e}") from None
        layers = net.layers
        name = (row.get("layer") or "").strip()
        if name:
            layers = [lay for lay in net.layers if lay.name == name]
            if not layers:
                raise DataError(f"{path}: line {row['_line']}: no layer {name!r} in {row['arch']} "
                                "(names as printed by micronas cost ARCH --layers)")
        per: dict[str, float] = defaultdict(float)
        for lay in layers:
            per[op_class(lay)] += layer_cycles(net, lay, device)
        preds.append(dict(per))
        measured.append(float(row["latency_ms"]) * khz)
    classes = sorted({c for p in preds for c in p})
    counts = {c: sum(1 for p in preds if c in p) for c in classes}
    per_class = all(n >= 2 for n in counts.values()) and len(rows) >= 2 * len(classes)
    groups = classes if per_class else ["all"]
    a = np.array([[sum(p.values()) if g == "all" else p.get(g, 0.0) for g in groups] for p in preds])
    y = np.array(measured)
    w = 1.0 / y
    scale, _ = nnls(a * w[:, None], y * w)
    mape = float(np.mean(np.abs(a @ scale - y) / y))
    factor = dict(zip(groups, scale, strict=True))
    tables = {cls: {k: v * factor.get(cls, factor.get("all", 1.0)) for k, v in coefs.items()}
              for cls, coefs in device.latency.items()}
    overhead = device.overhead_cycles * float(np.mean(scale))
    stats = {g: {"scale": float(s)} for g, s in factor.items()}
    return Calibration(device, str(path), tables, overhead, len(rows), mape, stats,
                       runtime=device.runtime.name)
