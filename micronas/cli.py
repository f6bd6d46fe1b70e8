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
