"""The argument parser: every command, its options and help."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from micronas import __version__
from micronas.cli import commands as c
from micronas.infra import defaults


def executor_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", help="where indicators are computed: serial | thread:N | "
                   "process:N | local:N (a dask LocalCluster) | dask://HOST:PORT (a running dask scheduler; "
                   "README: Several machines); overrides --workers")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def _int(text: str) -> int:
    """An ASCII decimal integer (``int`` would take '１２３' and '1_000')."""
    s = text.strip()
    if not (s.isascii() and s.lstrip("-").isdigit()) or len(s) > 19:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}")
    return int(s)


def _seed(text: str) -> int:
    v = _int(text)
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"seed must be in 0..{2**32 - 1}, got {text}")
    return v


def space_opt(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--space", default=default, help=f"search space (default {default})"
                   if default else "search space: nb201 | mcu | nbmacro (default: the one the "
                   "architecture is written in; else nb201 for NB201's tasks, mcu for yours)")


def device_opt(p: argparse.ArgumentParser, runtime: bool = True) -> None:
    p.add_argument("--device", default=defaults.DEVICE,
                   help=f"built-in name (micronas list devices) or .toml path "
                        f"(default {defaults.DEVICE})")
    if runtime:
        p.add_argument("--runtime", default=None,
                       help="what runs the network on the board, and so which latency and "
                            "memory figures apply: tflm-cmsis-nn | tflm-reference | micronas-c | "
                            "optimized (micronas list runtimes; default: the device profile's, "
                            f"else {defaults.RUNTIME}, what the bundle's main.cc runs)")


def parsimony_opt(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument("--prefer-fewer-params", action=argparse.BooleanOptionalAction, default=True,
                   help=f"{prefix}among the networks scored within the objective's measured "
                   "noise of the best, take the one with the fewest parameters (default: on; "
                   "--no-prefer-fewer-params keeps the best-scored)")


def budget_opts(p: argparse.ArgumentParser) -> None:
    """Hard budgets and the application's reserve (search and build)."""
    p.add_argument("--max-latency-ms", type=float,
                   help="hard budget: the network's latency on the device (cost model)")
    p.add_argument("--max-sram-kb", type=float, help="hard budget: peak SRAM of the network "
                   "(arena, scratch and runtime; default: the device's, less the reserve)")
    p.add_argument("--max-flash-kb", type=float, help="hard budget: flash of the network and "
                   "runtime (default: the device's, less the reserve)")
    p.add_argument("--reserve-sram-kb", type=float, help="SRAM left to your application, "
                   "outside every budget (default: 10 %% of the device's)")
    p.add_argument("--reserve-flash-kb", type=float, help="flash left to your application "
                   "(default: 10 %% of the device's)")
    p.add_argument("--fixed-resolution", action="store_true", help="keep a square custom "
                   "input's resolution even when no network meets the budgets at it (default: "
                   "then search lower sides, the network resizing its input itself)")


def data_opts(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--task", dest="task", help="a built-in task with data: digits | "
                   "fashion-mnist")
    g.add_argument("--data", help="your data: an image folder DIR/CLASS/*.png (or DIR/train, "
                   "DIR/test), a WAV folder DIR/CLASS/*.wav (keyword spotting: CMSIS-DSP MFCCs, "
                   "docs/train.md) or an .npz with x_train, y_train, x_test, y_test (images, or a "
                   "time series (N, L, C))")


def recipe_opts(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training recipe (docs/train.md)")
    g.add_argument("--epochs", type=_int, help="epochs (default: enough for about 20,000 "
                   "steps, 15..200: 43 on fashion-mnist, 200 on digits)")
    g.add_argument("--batch-size", type=_int, default=128, help="training batch size (default 128)")
    g.add_argument("--lr", type=float, default=3e-3, help="AdamW peak learning rate")
    g.add_argument("--augment", default="auto", help="auto | none | crop | crop-flip")
    g.add_argument("--train-subset", type=_int, help="train on a seeded subset of N samples")
    g.add_argument("--max-train-minutes", type=float, help="training may take at most this "
                   "long on this machine (timed on a few steps before it starts): build trains "
                   "a quicker network of the search's front, then cuts epochs; train cuts epochs")


def bundle_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tflm-samples", type=_int, help="test samples run in TFLM (default: all)")
    p.add_argument("--verify-samples", type=_int, default=2, help="test samples on which the "
                   "emulated standalone C must equal TFLM (0: skip)")
    p.add_argument("--no-compile", action="store_true", help="skip arm-none-eabi-gcc and the "
                   "emulator check")


def task_opts(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("task (default cifar10)")
    g.add_argument("--task", "--dataset", dest="task", default=None,
                   help="built-in task: cifar10 | cifar100 | imagenet16-120")
    g.add_argument("--input", help="a custom task's input HxWxC, e.g. 96x96x1, or a time series "
                   "LxC, e.g. 128x3 (with --classes)")
    g.add_argument("--classes", type=_int, help="a custom task's number of classes")
    g.add_argument("--resolutions", help="input sides a search may also draw for a square custom "
                   "input, e.g. 64,80 (the mcu space; default: the input's own)")


def cache_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", help="results cache (SQLite); default "
                   "$MICRONAS_CACHE or ~/.cache/micronas/results.sqlite")
    p.add_argument("--no-cache", action="store_true", help="do not read or write a cache")


def proxy_opts(p: argparse.ArgumentParser) -> None:
    # dest proxy_NAME: the ProxySettings field NAME (commands.proxy_overrides reads them)
    g = p.add_argument_group("indicator settings (the same defaults for score, search and "
                             "bench; see docs/indicators.md)")
    for opt, kind, what in [
            ("network", str, "NTK network: tenas (the space's small variant) | full"),
            ("ntk-batch", _int, "NTK batch size"), ("ntk-resolution", _int, "NTK input side cap"),
            ("repeats", _int, "NTK and linear-region repeats"),
            ("lr-samples", _int, "linear regions: patches per batch"),
            ("lr-batches", _int, "linear regions: batches per repeat"),
            ("lr-input", str, "linear-region patches: gaussian | smooth")]:
        g.add_argument(f"--{opt}", dest=f"proxy_{opt.replace('-', '_')}", type=kind, help=what)


def quiet_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="micronas", description="Training-free, hardware-aware NAS for MCUs.")
    p.add_argument("--version", action="version", version=f"micronas {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    a = sub.add_parser("arch", help="show an architecture: index, string, ops, iso key")
    a.add_argument("arch", help="the space's string or index (NB201: 0..15624)")
    space_opt(a)
    task_opts(a)
    a.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    a.set_defaults(func=c.cmd_arch)

    li = sub.add_parser("list", help="list the named things of one kind: spaces, indicators, "
                        "strategies, devices, runtimes, tasks, datasets, references, executors")
    li.add_argument("kind", help="spaces|indicators|strategies|devices|runtimes|tasks|datasets|"
                    "references|executors")
    li.add_argument("--json", action="store_true", help="print the rows as JSON")
    li.set_defaults(func=c.cmd_list)

    d = sub.add_parser("devices", help="list the device profiles (built-in and yours); "
                       "'devices add' writes one for your own board")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(func=c.cmd_devices)
    dsub = d.add_subparsers(dest="devices_command", parser_class=_Parser)
    da = dsub.add_parser("add", help="write a profile of your own board into your config folder "
                         "($MICRONAS_CONFIG, else ~/.config/micronas)")
    da.add_argument("name", help="the device's name (letters, digits, '.', '_', '-')")
    da.add_argument("--core", required=True,
                    help="cortex-m0plus | cortex-m4 | cortex-m7 | cortex-m33 (its latency "
                         "constants are used)")
    da.add_argument("--clock-mhz", type=float, required=True, help="core clock in MHz")
    da.add_argument("--sram-kb", type=float, required=True, help="SRAM in KB (1 KB = 1024 B)")
    da.add_argument("--flash-kb", type=float, required=True, help="flash in KB")
    da.add_argument("--description", help="one line shown by 'micronas devices'")
    da.add_argument("--fpu", action="store_true", help="the core has a floating-point unit")
    da.add_argument("--force", action="store_true", help="replace a profile of yours")
    da.add_argument("--json", action="store_true", help="print JSON")
    da.set_defaults(func=c.cmd_devices)

    co = sub.add_parser("cost", help="MACs, flash, peak SRAM and latency on a device")
    co.add_argument("arch", nargs="?", help="the space's string or index, or "
                    "mlperf:kws|vww|ad|ic (or --torch)")
    co.add_argument("--torch", metavar="FILE.py:Class", help="cost your own torch model "
                    "instead: Class() from FILE.py, traced for one --input HxWxC")
    device_opt(co)
    space_opt(co)
    task_opts(co)
    co.add_argument("--layers", action="store_true", help="print the per-layer table")
    co.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    co.set_defaults(func=c.cmd_cost)

    s = sub.add_parser("score", help="training-free indicators of one architecture")
    s.add_argument("arch", help="the space's string or index")
    s.add_argument("--indicators", help="comma-separated names (default "
                   "ntk_cond,linear_regions,tenas)")
    s.add_argument("--seed", type=_seed, default=defaults.SEED,
                    help="seed of the indicators' random inputs and weights (default 0)")
    executor_opt(s)
    space_opt(s)
    task_opts(s)
    proxy_opts(s)
    s.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    cache_opts(s)
    s.set_defaults(func=c.cmd_score)

    b = sub.add_parser("bench", help="evaluate against NB201 ground truth")
    bsub = b.add_subparsers(dest="bench_command", required=True, parser_class=_Parser)
    bc = bsub.add_parser("correlate", help="rank correlation of indicators with accuracy")
    bc.add_argument("--space", default=None, help="the benchmark: nb201 (NAS-Bench-201, the "
                    "default) or nbmacro (NAS-Bench-Macro, CIFAR-10)")
    bc.add_argument("--benchmark", help="the space's table: NB201's accuracy CSV (default "
                    "$MICRONAS_NB201) or NAS-Bench-Macro's nas-bench-macro_cifar10.json "
                    "(default $MICRONAS_NBMACRO)")
    task_opts(bc)
    g = bc.add_mutually_exclusive_group()
    g.add_argument("--sample", type=_int, default=defaults.SAMPLE,
                   help=f"architectures to draw ({defaults.SAMPLE})")
    g.add_argument("--all", action="store_true", help="every architecture (NB201: all 15,625; "
                   "nbmacro: its 3,969 isomorphism classes)")
    bc.add_argument("--seed", type=_seed, default=defaults.SEED,
                    help="seed of the architectures drawn and of the indicators (default 0)")
    bc.add_argument("--indicators", help="comma-separated names (default: all)")
    bc.add_argument("--workers", type=_int, default=defaults.WORKERS, help="scoring processes")
    executor_opt(bc)
    proxy_opts(bc)
    bc.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    bc.add_argument("--table", metavar="PATH", help="also write every architecture's accuracy "
                    "and indicator values (JSON; gzip-compressed when PATH ends in .gz)")
    bc.add_argument("--force", action="store_true", help="overwrite an existing --table file")
    bc.add_argument("--resume", action="store_true", help="continue the --table file already "
                    "there (scored with the same space, task, seed and settings): score only "
                    "what it lacks; the table is rewritten as scoring goes")
    bc.add_argument("--checkpoint-minutes", type=float, default=15.0, help="with --table: "
                    "write the partial table this often while scoring (default 15)")
    bc.add_argument("--device", default="stm32f746", help="rank inside budgets on this device "
                    "(default stm32f746): mean Kendall / Spearman inside +-10 %% latency "
                    "slices, and the pick metric under latency budgets")
    bc.add_argument("--runtime", default=None, help="the runtime whose latency the budgets "
                    "use (default: the device's)")
    bc.add_argument("--budget-draws", type=int, default=20, help="seeded latency budgets "
                    "drawn for the pick metric besides the 25th/50th/75th percentile (default 20)")
    bc.add_argument("--no-budget", action="store_true", help="skip the in-budget report")
    quiet_opt(bc)
    cache_opts(bc)
    bc.set_defaults(func=c.cmd_bench_correlate)

    se = sub.add_parser("search", help="find an architecture for a device (the main command)")
    space_opt(se)
    device_opt(se)
    task_opts(se)
    se.add_argument("--strategy", default=defaults.STRATEGY,
                    help="prune (MicroNAS) | evolution | random | exhaustive (default: prune "
                    "where the space has a supernet, as nb201; evolution otherwise, as mcu)")
    se.add_argument("--latency-weight", type=float, default=defaults.LATENCY_WEIGHT,
                    help="weight of the latency rank in the objective (0: none)")
    se.add_argument("--flops-weight", type=float, default=defaults.FLOPS_WEIGHT,
                    help="weight of the FLOPs rank in the objective (0: none)")
    budget_opts(se)
    se.add_argument("--seed", type=_seed, default=defaults.SEED,
                    help="seed of the search and of the indicators (default 0)")
    se.add_argument("--rank-mode", default=defaults.RANK_MODE, help="percentile (ours) | dense "
                    "(MicroNAS)")
    se.add_argument("--latency-mode", default=defaults.LATENCY_MODE, help="rank: the latency weight joins the "
                    "rank mix (MicroNAS); target: it sets a latency ceiling between the slowest "
                    "and fastest network of the space (smooth)")
    se.add_argument("--refine", type=_int, default=defaults.REFINE, help="after the strategy, hill-climb up "
                    "to K steps over one-choice neighbours (ours; ~10 s per step on 2 cores)")
    se.add_argument("--fill", type=float, default=defaults.FILL, help="prune: when --max-* budgets bind, "
                    "never prune below this share of the largest network they allow (ours; 0: "
                    "published, feasibility only)")
    se.add_argument("--workers", type=_int, default=defaults.WORKERS, help="processes computing indicators "
                    "(0 or 1: this process, on two threads when there are 2+ cores; N >= 2: N - 1 "
                    "worker processes beside it, at ~400 MB more per worker; results do not "
                    "depend on it)")
    executor_opt(se)
    se.add_argument("--evaluations", type=_int, default=defaults.EVALUATIONS,
                    help="indicator evaluations for evolution and random")
    parsimony_opt(se)
    se.add_argument("--indicators", help="the indicator part of the objective, "
                    "'name[:share],...' (default: see docs/search.md; ntk_cond,linear_regions "
                    "is TE-NAS)")
    proxy_opts(se)
    se.add_argument("--benchmark", help="NB201 accuracy CSV for true/oracle accuracy "
                    "(default $MICRONAS_NB201)")
    se.add_argument("--out", help="directory for result.json, report.md, pareto.png")
    se.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    quiet_opt(se)
    cache_opts(se)
    se.set_defaults(func=c.cmd_search)

    ex = sub.add_parser("export", help="write an int8 .tflite (checked in TFLM) or ONNX model")
    ex.add_argument("arch", nargs="?", help="the space's string or index, or mlperf:kws|vww|ad|"
                    "ic (optional with --weights)")
    ex.add_argument("--weights", help="a checkpoint of 'micronas train' (file or its --out "
                    "folder): export the trained weights; without it, seeded stand-ins")
    space_opt(ex)
    task_opts(ex)
    ex.add_argument("--format", default="tflite", help="tflite (int8) | onnx (float)")
    ex.add_argument("--out", required=True, help="output file")
    ex.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    ex.add_argument("--seed", type=_seed, default=defaults.SEED, help="seed of the stand-in weights")
    ex.add_argument("--calibration", help=".npy float batch (batch, *input shape); default "
                    "8 Gaussian samples")
    ex.add_argument("--no-check", action="store_true", help="skip the TFLM / onnxruntime check")
    ex.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    ex.set_defaults(func=c.cmd_export)

    tr = sub.add_parser("train", help="train an architecture on real data (CPU, resumable)")
    tr.add_argument("arch", help="the space's string or index")
    space_opt(tr, default=defaults.DATA_SPACE)
    data_opts(tr)
    recipe_opts(tr)
    tr.add_argument("--seed", type=_seed, default=defaults.SEED, help="weights, order, augmentation and "
                    "the split of data without one")
    tr.add_argument("--out", required=True, help="folder for checkpoint.pt (rerun to resume)")
    tr.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    quiet_opt(tr)
    tr.set_defaults(func=c.cmd_train)

    dp = sub.add_parser("deploy", help="bundle a trained checkpoint for a device: .tflite, C "
                        "array, headers, TFLM main.cc, standalone C; int8 accuracy in TFLM")
    dp.add_argument("checkpoint", help="checkpoint.pt of 'micronas train' (or its --out folder)")
    device_opt(dp)
    dp.add_argument("--out", required=True, help="folder for the bundle")
    bundle_opts(dp)
    dp.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    quiet_opt(dp)
    dp.set_defaults(func=c.cmd_deploy)

    bu = sub.add_parser("build", help="one command from data to a bundle: search, train, int8, "
                        "TFLM check, deploy, report.md")
    space_opt(bu, default=defaults.DATA_SPACE)
    device_opt(bu)
    data_opts(bu)
    budget_opts(bu)
    bu.add_argument("--latency-weight", type=float, default=defaults.LATENCY_WEIGHT,
                    help="search: weight of the latency rank in the objective (0: none)")
    bu.add_argument("--evaluations", type=_int, default=defaults.EVALUATIONS,
                    help="search: indicator evaluations")
    parsimony_opt(bu, "search: ")
    recipe_opts(bu)
    bundle_opts(bu)
    bu.add_argument("--seed", type=_seed, default=defaults.SEED,
                    help="seed of the search, the training and the int8 calibration (default 0)")
    bu.add_argument("--out", required=True, help="folder for search/, train/, bundle/, report.md")
    bu.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    quiet_opt(bu)
    cache_opts(bu)
    bu.set_defaults(func=c.cmd_build)

    me = sub.add_parser("measure", help="emulated latency: our int8 C kernels on the device's "
                        "core (unicorn), instructions per class -> cycles")
    me.add_argument("arch", help="the space's string or index, or mlperf:kws|vww|ad|ic")
    device_opt(me, runtime=False)
    space_opt(me)
    task_opts(me)
    me.add_argument("--method", default="layers", help="layers (each distinct layer emulated "
                    "once, cached; default) | whole (one run of the whole network, every tensor "
                    "checked bit-exact)")
    me.add_argument("--seed", type=_seed, default=defaults.SEED,
                    help="seed of the input the emulated network runs on (default 0)")
    me.add_argument("--layers", action="store_true", help="print the per-layer table")
    me.add_argument("--json", action="store_true", help="print JSON")
    quiet_opt(me)
    me.set_defaults(func=c.cmd_measure)

    ca = sub.add_parser("calibrate", help="fit the device's latency constants (emulated "
                        "layers, or your measurements) and write a profile")
    device_opt(ca)
    ca.add_argument("--measurements", help="CSV of board measurements: arch,latency_ms "
                    "(per model) or arch,layer,latency_ms (per layer)")
    ca.add_argument("--out", help="profile to write (default DEVICE-calibrated.toml)")
    ca.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    space_opt(ca, default=defaults.BENCHMARK_SPACE)
    task_opts(ca)
    ca.add_argument("--seed", type=_seed, default=defaults.SEED, help="seed of the designed layer set")
    ca.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    quiet_opt(ca)
    ca.set_defaults(func=c.cmd_calibrate)
    return p
