"""Cost model vs emulated latency on seeded architectures.

1. ``micronas calibrate --device D``: fit the device's latency constants to the designed,
   seeded layer set run on the emulated core.
2. For N seeded NB201 architectures (full size, C=16, N=5), the emulated latency
   (``micronas measure``: each distinct layer emulated once and summed) against the calibrated
   cost model, and against the built-in (MLPerf-fitted) profile: MAPE and Spearman.
3. Consistency: on a few reduced networks (C=8, N=1) the whole network is emulated in one run
   (every tensor checked bit-exact against the integer reference) and compared with the
   per-layer sum.

    python benchmarks/emulated_latency.py [--device stm32f746] [--n 200] [--seed 0]
    python benchmarks/emulated_latency.py --space mcu --device stm32l4r5 --n 200

On ``mcu`` the architectures rotate over 49x10x1/12, 28x28x1/10 and 32x32x3/10 (``--input
96x96x1 --classes 2`` for the larger one: each network takes minutes to emulate).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from micronas.deploy.quantize import check_exportable
from micronas.errors import MicronasError
from micronas.hardware import estimate, load_device
from micronas.measure.calibration import calibrate_emulated, write_profile
from micronas.measure.layers import LayerCache, measure_network
from micronas.spaces import get_space
from micronas.spaces.nb201 import NB201Space, nb201_network
from micronas.tasks import Task, parse_input

MCU_TASKS = ((1, 49, 10, 12), (1, 28, 28, 10), (3, 32, 32, 10))


def draws(args: argparse.Namespace, rng: np.random.Generator):
    """(label, network) of seeded architectures of the space."""
    if args.space == "nb201":
        space = NB201Space()
        while True:
            arch = space.sample(rng)
            yield str(arch.index), nb201_network(arch)
    space = get_space(args.space)
    tasks = ([Task.custom(parse_input(args.input), args.classes)] if args.input else
             [Task.custom((c, h, w), k) for c, h, w, k in MCU_TASKS])
    i = 0
    while True:
        task = tasks[i % len(tasks)]
        arch = space.sample(rng)
        yield f"{task.key()} {space.format(arch)}", space.to_network(arch, task)
        i += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="stm32f746")
    ap.add_argument("--space", default="nb201", help="nb201 | mcu")
    ap.add_argument("--input", help="HxWxC of the mcu task (default: three tasks in turn)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--json", help="write per-architecture rows here")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--whole", type=int, default=3, help="reduced networks run whole")
    args = ap.parse_args()
    # the emulator runs micronas's own C: its runtime is micronas-c ("built-in" below: the
    # micronas-c constants that ship, fitted with the same designed layers)
    dev = load_device(args.device, "micronas-c")
    t0 = time.time()
    cal = calibrate_emulated(dev, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        calibrated = load_device(write_profile(cal, Path(tmp) / f"{dev.name}-calibrated.toml"))
    print(f"{dev.name} ({dev.core}): calibrated on {cal.rows} designed layers, fit MAPE "
          f"{100 * cal.fit_mape:.1f} % ({time.time() - t0:.0f} s)")

    rng = np.random.default_rng(args.seed)
    space = NB201Space()
    cache = LayerCache(dev.core)
    emu, pred_cal, pred_builtin, idx = [], [], [], []
    t0 = time.time()
    gen = draws(args, rng)
    while len(emu) < args.n:
        label, net = next(gen)
        try:
            check_exportable(net)
        except MicronasError:
            continue
        m = measure_network(net, dev.core, "layers", cache=cache)
        emu.append(m.cycles / (dev.clock_mhz * 1e3))
        pred_cal.append(estimate(net, calibrated).latency_ms)
        pred_builtin.append(estimate(net, dev).latency_ms)
        idx.append(label)
        if len(emu) % 10 == 0 or args.space != "nb201":
            cache.save()
            e, c = np.array(emu), np.array(pred_cal)
            run = (f", running MAPE {100 * np.mean(np.abs(c - e) / e):.2f} %, Spearman "
                   f"{spearmanr(c, e)[0]:.4f}" if len(emu) > 2 else "")
            print(f"  {len(emu)} architectures ({time.time() - t0:.0f} s): emulated {emu[-1]:.2f} ms, "
                  f"calibrated model {pred_cal[-1]:.2f} ms{run}", flush=True)
    cache.save()
    emu_a, cal_a, bi_a = map(np.array, (emu, pred_cal, pred_builtin))
    mape = float(np.mean(np.abs(cal_a - emu_a) / emu_a))
    what = "NB201 architectures (C=16, N=5)" if args.space == "nb201" else f"{args.space} architectures"
    print(f"\n{len(emu)} {what} (seed {args.seed}) on {dev.name}: emulated "
          f"{emu_a.min():.0f}..{emu_a.max():.0f} ms (median {np.median(emu_a):.0f})")
    print(f"calibrated cost model vs emulated: MAPE {100 * mape:.2f} %, max "
          f"{100 * np.max(np.abs(cal_a - emu_a) / emu_a):.1f} %, Spearman "
          f"{spearmanr(cal_a, emu_a)[0]:.4f}")
    print(f"built-in (MLPerf-fitted) profile vs emulated: Spearman {spearmanr(bi_a, emu_a)[0]:.4f}, "
          f"median ratio built-in/emulated {np.median(bi_a / emu_a):.2f} (different kernels: "
          "CMSIS-NN-class on boards, ours here)")
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump({"settings": vars(args), "fit_mape": cal.fit_mape,
                       "rows": [{"arch": a, "emulated_ms": e, "calibrated_ms": c, "builtin_ms": b}
                                for a, e, c, b in zip(idx, emu, pred_cal, pred_builtin, strict=True)]},
                      f, indent=1)
    if args.space != "nb201":
        return

    print("\nwhole-network run vs per-layer sum (C=8, N=1):")
    for arch in [space.sample(rng) for _ in range(args.whole)]:
        net = nb201_network(arch, C=8, N=1)
        try:
            check_exportable(net)
        except MicronasError:
            continue
        whole = measure_network(net, dev.core, "whole")
        layers = measure_network(net, dev.core, "layers", cache=cache)
        print(f"  {arch.index:5d}: whole {whole.cycles:,.0f} cycles (bit-exact {whole.bit_exact}), "
              f"per-layer sum {layers.cycles:,.0f} ({100 * (layers.cycles / whole.cycles - 1):+.3f} %)")
    cache.save()


if __name__ == "__main__":
    main()
