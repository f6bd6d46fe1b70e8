"""The ``micronas`` command line: a thin layer over :mod:`micronas.api`."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NoReturn

from micronas import __version__
from micronas.errors import MicronasError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _kb(n: float) -> str:
    return f"{n / 1024:,.1f} KB"


def cmd_arch(args: argparse.Namespace) -> int:
    from micronas.api import arch_info

    info = arch_info(args.arch)
    if args.json:
        _print_json(info)
        return 0
    print(f"index      {info['index']}")
    print(f"string     {info['arch']}")
    counts = ", ".join(f"{op} {n}" for op, n in info["op_counts"].items() if n)
    print(f"ops        {counts}")
    print(f"live edges {sum(info['live_edges'])} of 6")
    print(f"iso key    {info['iso_key']}")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from micronas.hardware import builtin_devices, load_device

    devs = [load_device(n) for n in builtin_devices()]
    if args.json:
        _print_json([{"name": d.name, "core": d.core, "clock_mhz": d.clock_mhz,
                      "sram_bytes": d.sram_bytes, "flash_bytes": d.flash_bytes, "dsp": d.dsp,
                      "description": d.description} for d in devs])
        return 0
    print(f"{'name':<11} {'core':<14} {'MHz':>5} {'SRAM':>11} {'flash':>11}  DSP")
    for d in devs:
        print(f"{d.name:<11} {d.core:<14} {d.clock_mhz:>5.0f} {_kb(d.sram_bytes):>11} "
              f"{_kb(d.flash_bytes):>11}  {'yes' if d.dsp else 'no'}")
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from micronas.api import cost

    res = cost(args.arch, args.device, args.dataset)
    d = res.to_dict()
    if args.json:
        _print_json(d)
        return 0
    r = res.report
    print(f"arch       {res.arch}" + (f"  (index {res.index})" if res.index is not None else ""))
    print(f"device     {r.device}   dataset {res.dataset}")
    print(f"MACs       {r.macs:,}   params {r.params:,}")
    if res.nb201_flops is not None:
        print(f"NB201      {res.nb201_flops:.4f} MFLOPs, {res.nb201_params:.6f} M params "
              "(as trained, every edge)")
    print(f"latency    {r.latency_ms:,.2f} ms  ({r.cycles:,.0f} cycles)")
    print(f"peak SRAM  {_kb(r.peak_sram_bytes)} of {_kb(r.sram_limit_bytes)}  (arena "
          f"{_kb(r.arena_bytes)}, scratch {_kb(r.scratch_bytes)}, persistent "
          f"{_kb(r.persistent_bytes)}, reserved {_kb(r.reserved_bytes)})")
    print(f"flash      {_kb(r.flash_bytes)} of {_kb(r.flash_limit_bytes)}")
    print(f"fits       {'yes' if r.fits else 'NO'}")
    if args.layers:
        print(f"\n{'layer':<34} {'op':<17} {'out shape':<13} {'MACs':>12} {'ms':>9}")
        for lc in r.layers:
            shape = "x".join(map(str, lc.output_shape))
            print(f"{lc.name[:34]:<34} {lc.op:<17} {shape:<13} {lc.macs:>12,} "
                  f"{lc.latency_ms:>9.3f}")
    else:
        by_op: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        for lc in r.layers:
            by_op[lc.op][0] += 1
            by_op[lc.op][1] += lc.macs
            by_op[lc.op][2] += lc.latency_ms
        print(f"\n{'op':<17} {'layers':>6} {'MACs':>13} {'ms':>10} {'share':>6}")
        for op, (n, macs, ms) in sorted(by_op.items(), key=lambda kv: -kv[1][2]):
            print(f"{op:<17} {n:>6} {macs:>13,} {ms:>10.2f} {ms / r.latency_ms:>6.1%}")
        print("(--layers for the per-layer table, --json for everything)")
    return 0


def _cache_path(args: argparse.Namespace) -> str | None:
    from micronas.store import default_cache_path

    if getattr(args, "no_cache", False):
        return None
    return str(args.cache) if args.cache else str(default_cache_path())


def cmd_score(args: argparse.Namespace) -> int:
    from micronas.api import parse_arch
    from micronas.proxies import DEFAULT_INDICATORS, ProxySettings, parse_indicators, score_many

    arch = parse_arch(args.arch)
    names = parse_indicators(args.indicators, DEFAULT_INDICATORS)
    settings = ProxySettings(dataset=args.dataset, network=args.network)
    res = score_many([arch], names, args.seed, settings, _cache_path(args), 1)[0]
    rows = {n: res.get(n) for n in names}
    if args.json:
        _print_json({"arch": str(arch), "index": arch.index, "seed": args.seed,
                     "settings": settings.__dict__, "indicators": {
                         n: (None if sc is None else {"value": sc.value, "flags": list(sc.flags),
                                                       "seconds": sc.seconds, "cached": sc.cached})
                         for n, sc in rows.items()}})
        return 0
    print(f"arch  {arch}  (index {arch.index})   seed {args.seed}")
    for n, sc in rows.items():
        if n == "tenas":
            print(f"{n:<15} {'(a rank over a set of architectures; see bench correlate)'}")
            continue
        flags = f"  [{', '.join(sc.flags)}]" if sc.flags else ""
        src = "cache" if sc.cached else f"{sc.seconds:.2f} s"
        print(f"{n:<15} {sc.value:>16.6g}   {src}{flags}")
    return 0


def cmd_bench_correlate(args: argparse.Namespace) -> int:
    from micronas.bench.correlate import correlate
    from micronas.bench.table import load_table
    from micronas.proxies import parse_indicators

    names = parse_indicators(args.indicators, ["ntk_cond", "linear_regions", "tenas", "naswot",
                                               "synflow", "snip", "grad_norm", "jacov",
                                               "params", "flops"])
    if args.sample is not None and args.sample < 1:
        raise MicronasError(f"--sample must be a positive number of architectures, "
                            f"got {args.sample}")
    table = load_table(args.benchmark)
    n = None if args.all else args.sample
    from micronas.bench.correlate import sample_archs

    archs = sample_archs(n, args.seed)
    from tqdm import tqdm

    with tqdm(total=len(archs), desc="scoring", unit="arch", disable=args.json or None,
              file=sys.stderr) as bar:
        res = correlate(table, names, args.dataset, n, args.seed, args.workers,
                        _cache_path(args), bar.update, archs)
    if args.json:
        _print_json(res)
        return 0
    print(f"{res['n']} architectures, {res['dataset']} test accuracy, seed {res['seed']}, "
          f"{res['wall_seconds']:.1f} s wall with {res['workers']} worker(s)")
    print(f"{'indicator':<15} {'spearman':>9} {'kendall':>8} {'s/arch':>8} {'flagged':>8}")
    for name, r in res["indicators"].items():
        rho = "n/a" if r["spearman"] is None else f"{r['spearman']:.3f}"
        tau = "n/a" if r["kendall"] is None else f"{r['kendall']:.3f}"
        print(f"{name:<15} {rho:>9} {tau:>8} {r['seconds_per_arch']:>8.3f} {r['flagged']:>8}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    import os

    from tqdm import tqdm

    from micronas.fileio import check_out_dir
    from micronas.search.report import indicator_text, plot_points, write_outputs
    from micronas.search.run import SearchConfig, run_search

    cfg = SearchConfig(
        space=args.space, device=args.device, dataset=args.dataset, strategy=args.strategy,
        latency_weight=args.latency_weight, flops_weight=args.flops_weight,
        max_latency_ms=args.max_latency_ms, max_sram_kb=args.max_sram_kb,
        max_flash_kb=args.max_flash_kb, seed=args.seed, rank_mode=args.rank_mode,
        latency_mode=args.latency_mode,
        evaluations=args.evaluations, refine=args.refine, fill=args.fill, workers=args.workers,
        **({"indicators": args.indicators} if args.indicators else {}))
    cfg.validate()
    out = check_out_dir(args.out) if args.out else None
    table = None
    if args.benchmark or os.environ.get("MICRONAS_NB201"):
        from micronas.bench.table import load_table

        table = load_table(args.benchmark)
    total = {"prune": 58, "evolution": args.evaluations + 1, "random": args.evaluations + 1}
    expected = (total.get(cfg.strategy) or 0) + 24 * cfg.refine or None
    with tqdm(total=expected, desc=f"search ({cfg.strategy})", unit="eval",
              disable=args.json or None, file=sys.stderr, leave=False) as bar:
        res = run_search(cfg, table, _cache_path(args), bar.update)
    if out is not None:
        from micronas.hardware import load_device
        from micronas.search.costs import CostModel

        allc = CostModel(load_device(cfg.device), cfg.dataset).all_archs() if table else None
        pts, ylabel, chosen_y = plot_points(res, table, allc)
        write_outputs(res, out, pts, ylabel, chosen_y)
    if args.json:
        d = res.to_json()
        d.pop("history")
        _print_json(d)
        return 0
    print(f"architecture  {res.arch}")
    print(f"index         {res.index}")
    print(f"indicators    {indicator_text(res.indicators)}")
    print(f"device        {cfg.device}: latency {res.latency_ms:.2f} ms, peak SRAM "
          f"{_kb(res.peak_sram_bytes)}, flash {_kb(res.flash_bytes)}, "
          f"fits {'yes' if res.fits else 'NO'}")
    print(f"size          {res.macs:,} MACs, {res.params:,} params")
    if res.accuracy is not None:
        print(f"accuracy      {res.accuracy:.2f} % ({cfg.dataset} test, NB201); best under the "
              f"same budgets {res.oracle_accuracy:.2f} %")
    print(f"search        {cfg.strategy}, {res.evaluations} indicator evaluations, "
          f"{res.search_seconds:.1f} s, seed {res.seed}")
    if out is not None:
        print(f"wrote         {out}/result.json, report.md, pareto.png, config.json")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from micronas.api import export

    r = export(args.arch, args.format, args.out, args.dataset, args.seed, args.calibration,
               check=not args.no_check)
    if args.json:
        _print_json(r.to_dict())
        return 0
    print(f"wrote {r.path}  ({r.format}, {r.size_bytes:,} bytes, seed {r.seed})")
    c = r.checks
    if "tflm_equals_int8_model" in c:
        print(f"TFLM vs numpy int8 model  bit-exact on every tensor: "
              f"{'yes' if c['tflm_equals_int8_model'] else 'NO'}")
        print(f"vs fake-quant PyTorch     layer by layer {100 * c['layerwise_within_1lsb']:.2f} % "
              f"within 1 LSB (max {c['layerwise_max_lsb']}); end to end "
              f"{100 * c['output_within_1lsb']:.1f} % (max {c['output_max_lsb']})")
        print(f"arena                     TFLM {c['tflm_arena_head_bytes']:,} B (+ "
              f"{c['tflm_arena_tail_bytes']:,} B x86 host structures), our planner "
              f"{c['planner_arena_bytes']:,} B")
    elif "onnxruntime_max_rel_error" in c:
        print(f"onnxruntime vs PyTorch    max relative error {c['onnxruntime_max_rel_error']:.2e}")
    return 0


def cmd_measure(args: argparse.Namespace) -> int:
    from micronas.api import measure

    r = measure(args.arch, args.device, args.dataset, args.method, args.seed)
    d = r.to_dict()
    if args.json:
        _print_json(d)
        return 0
    print(f"arch       {r.arch}")
    print(f"device     {r.device} ({r.core} @ {r.clock_mhz:g} MHz), emulated ({d['method']}"
          + (f", every tensor bit-exact: {'yes' if d['bit_exact'] else 'NO'}" if d["bit_exact"] is not None
             else "") + ")")
    if args.layers:
        print(f"{'layer':<34} {'instructions':>13} {'cycles':>14} {'ms':>9}")
        for lay in d["layers"]:
            print(f"{lay['name'][:34]:<34} {lay['instructions']:>13,} {lay['cycles']:>14,.0f} "
                  f"{lay['latency_ms']:>9.3f}")
    print(f"total      {d['instructions']:,} instructions, {d['cycles']:,.0f} cycles, "
          f"{d['latency_ms']:,.2f} ms  (cost model: {d['predicted_latency_ms']:,.2f} ms)")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from micronas.api import calibrate
    from micronas.hardware.calibrate import write_profile

    out = args.out or f"{args.device.removesuffix('.toml').split('/')[-1]}-calibrated.toml"
    bar = None
    if not args.measurements and not args.json:
        from tqdm import tqdm
        bar = tqdm(desc="emulating layers", unit="layer", file=sys.stderr)

    def progress(i: int, n: int) -> None:
        bar.total = n
        bar.update(i - bar.n)

    try:
        cal = calibrate(args.device, args.measurements, args.dataset, args.seed,
                        progress if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    path = write_profile(cal, out)
    if args.json:
        _print_json({"profile": str(path), "source": cal.source, "rows": cal.rows,
                     "fit_mape": cal.fit_mape, "per_class": cal.per_class, "latency": cal.tables})
        return 0
    print(f"fitted {len(cal.tables)} op classes to {cal.rows} measurements from {cal.source}; "
          f"fit MAPE {100 * cal.fit_mape:.1f} %")
    for cls, st in cal.per_class.items():
        print("  " + cls.ljust(16) + "  ".join(f"{k} {v:.3g}" for k, v in st.items()))
    print(f"wrote {path}  (use it with --device {path})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="micronas", description="Training-free, hardware-aware NAS for MCUs.")
    p.add_argument("--version", action="version", version=f"micronas {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    a = sub.add_parser("arch", help="show an architecture: index, string, ops, iso key")
    a.add_argument("arch", help="NB201 index (0..15624) or canonical string")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_arch)

    d = sub.add_parser("devices", help="list the built-in device profiles")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_devices)

    c = sub.add_parser("cost", help="MACs, flash, peak SRAM and latency on a device")
    c.add_argument("arch", help="NB201 index or string, or mlperf:kws|vww|ad|ic")
    c.add_argument("--device", default="stm32f746", help="built-in name or .toml path")
    c.add_argument("--dataset", default="cifar10",
                   help="cifar10 | cifar100 | imagenet16-120")
    c.add_argument("--layers", action="store_true", help="print the per-layer table")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_cost)

    def cache_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--cache", help="results cache (SQLite); default "
                        "$MICRONAS_CACHE or ~/.cache/micronas/results.sqlite")
        sp.add_argument("--no-cache", action="store_true", help="do not read or write a cache")

    s = sub.add_parser("score", help="training-free indicators of one architecture")
    s.add_argument("arch", help="NB201 index or string")
    s.add_argument("--indicators", help="comma-separated names (default "
                   "ntk_cond,linear_regions,tenas)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--dataset", default="cifar10")
    s.add_argument("--network", default="tenas", help="tenas (small, default) or full")
    s.add_argument("--json", action="store_true")
    cache_opts(s)
    s.set_defaults(func=cmd_score)

    b = sub.add_parser("bench", help="evaluate against NB201 ground truth")
    bsub = b.add_subparsers(dest="bench_command", required=True, parser_class=_Parser)
    bc = bsub.add_parser("correlate", help="rank correlation of indicators with accuracy")
    bc.add_argument("--benchmark", help="NB201 accuracy CSV (default $MICRONAS_NB201)")
    bc.add_argument("--dataset", default="cifar10")
    g = bc.add_mutually_exclusive_group()
    g.add_argument("--sample", type=int, default=1000, help="architectures to draw (1000)")
    g.add_argument("--all", action="store_true", help="all 15,625 architectures")
    bc.add_argument("--seed", type=int, default=0)
    bc.add_argument("--indicators", help="comma-separated names (default: all)")
    bc.add_argument("--workers", type=int, default=1, help="scoring processes")
    bc.add_argument("--json", action="store_true")
    cache_opts(bc)
    bc.set_defaults(func=cmd_bench_correlate)

    se = sub.add_parser("search", help="find an architecture for a device (the main command)")
    se.add_argument("--space", default="nb201")
    se.add_argument("--device", default="stm32f746", help="built-in name or .toml path")
    se.add_argument("--dataset", default="cifar10")
    se.add_argument("--strategy", default="prune",
                    help="prune (MicroNAS) | evolution | random | exhaustive")
    se.add_argument("--latency-weight", type=float, default=0.0)
    se.add_argument("--flops-weight", type=float, default=0.0)
    se.add_argument("--max-latency-ms", type=float)
    se.add_argument("--max-sram-kb", type=float)
    se.add_argument("--max-flash-kb", type=float)
    se.add_argument("--seed", type=int, default=0)
    se.add_argument("--rank-mode", default="percentile", help="percentile (ours) | dense "
                    "(MicroNAS)")
    se.add_argument("--latency-mode", default="rank", help="rank: the latency weight joins the "
                    "rank mix (MicroNAS); target: it sets a latency ceiling between the slowest "
                    "and fastest network of the space (smooth)")
    se.add_argument("--refine", type=int, default=0, help="after the strategy, hill-climb up to "
                    "K steps over one-edge neighbours scored like `micronas score` (ours; ~10 s "
                    "per step on 2 cores)")
    se.add_argument("--fill", type=float, default=0.9, help="prune: when --max-* budgets bind, "
                    "never prune below this share of the largest network they allow (ours; 0: "
                    "published, feasibility only)")
    se.add_argument("--workers", type=int, default=0, help="prune: processes evaluating a "
                    "round's supernets (0: up to 2; results do not depend on it)")
    se.add_argument("--evaluations", type=int, default=54,
                    help="indicator evaluations for evolution and random")
    se.add_argument("--indicators", help="the indicator part of the objective, "
                    "'name[:share],...' (default: see docs/search.md; ntk_cond,linear_regions "
                    "is TE-NAS)")
    se.add_argument("--benchmark", help="NB201 accuracy CSV for true/oracle accuracy "
                    "(default $MICRONAS_NB201)")
    se.add_argument("--out", help="directory for result.json, report.md, pareto.png")
    se.add_argument("--json", action="store_true")
    cache_opts(se)
    se.set_defaults(func=cmd_search)

    ex = sub.add_parser("export", help="write an int8 .tflite (checked in TFLM) or ONNX model")
    ex.add_argument("arch", help="NB201 index or string, or mlperf:kws|vww|ad|ic")
    ex.add_argument("--format", default="tflite", help="tflite (int8) | onnx (float)")
    ex.add_argument("--out", required=True, help="output file")
    ex.add_argument("--dataset", default="cifar10")
    ex.add_argument("--seed", type=int, default=0, help="seed of the stand-in weights")
    ex.add_argument("--calibration", help=".npy float batch (batch, *input shape); default "
                    "8 Gaussian samples")
    ex.add_argument("--no-check", action="store_true", help="skip the TFLM / onnxruntime check")
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(func=cmd_export)

    me = sub.add_parser("measure", help="emulated latency: our int8 C kernels on the device's "
                        "core (unicorn), instructions per class -> cycles")
    me.add_argument("arch", help="NB201 index or string, or mlperf:kws|vww|ad|ic")
    me.add_argument("--device", default="stm32f746", help="built-in name or .toml path")
    me.add_argument("--dataset", default="cifar10")
    me.add_argument("--method", default="layers", help="layers (each distinct layer emulated "
                    "once, cached; default) | whole (one run of the whole network, every tensor "
                    "checked bit-exact)")
    me.add_argument("--seed", type=int, default=0)
    me.add_argument("--layers", action="store_true", help="print the per-layer table")
    me.add_argument("--json", action="store_true")
    me.set_defaults(func=cmd_measure)

    ca = sub.add_parser("calibrate", help="fit the device's latency constants (emulated "
                        "layers, or your measurements) and write a profile")
    ca.add_argument("--device", default="stm32f746", help="built-in name or .toml path")
    ca.add_argument("--measurements", help="CSV of board measurements: arch,latency_ms "
                    "(per model) or arch,layer,latency_ms (per layer)")
    ca.add_argument("--out", help="profile to write (default DEVICE-calibrated.toml)")
    ca.add_argument("--dataset", default="cifar10")
    ca.add_argument("--seed", type=int, default=0, help="seed of the designed layer set")
    ca.add_argument("--json", action="store_true")
    ca.set_defaults(func=cmd_calibrate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except MicronasError as e:
        sys.stderr.write(f"micronas: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("micronas: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
