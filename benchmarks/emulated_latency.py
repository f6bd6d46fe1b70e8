"""Cost model vs emulated latency on seeded NB201 architectures (issue 5 acceptance).

1. ``micronas calibrate --device D``: fit the device's latency constants to the designed,
   seeded layer set run on the emulated core.
2. For N seeded NB201 architectures (full size, C=16, N=5), the emulated latency
   (``micronas measure``: each distinct layer emulated once and summed) against the calibrated
   cost model, and against the built-in (MLPerf-fitted) profile: MAPE and Spearman.
3. Consistency: on a few reduced networks (C=8, N=1) the whole network is emulated in one run
   (every tensor checked bit-exact against the integer reference) and compared with the
   per-layer sum.

    python benchmarks/emulated_latency.py [--device stm32f746] [--n 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from micronas.calibration import calibrate_emulated, write_profile
from micronas.deploy.measure import LayerCache, measure_network
from micronas.deploy.quantize import check_exportable
from micronas.errors import MicronasError
from micronas.hardware import estimate, load_device
from micronas.spaces.nb201 import NB201Space, nb201_network


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="stm32f746")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--whole", type=int, default=3, help="reduced networks run whole")
    args = ap.parse_args()
    dev = load_device(args.device)
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
    while len(emu) < args.n:
        arch = space.sample(rng)
        net = nb201_network(arch)
        try:
            check_exportable(net)
        except MicronasError:
            continue
        m = measure_network(net, dev.core, "layers", cache=cache)
        emu.append(m.cycles / (dev.clock_mhz * 1e3))
        pred_cal.append(estimate(net, calibrated).latency_ms)
        pred_builtin.append(estimate(net, dev).latency_ms)
        idx.append(arch.index)
        if len(emu) % 20 == 0:
            cache.save()
            print(f"  {len(emu)} architectures ({time.time() - t0:.0f} s)", flush=True)
    cache.save()
    emu_a, cal_a, bi_a = map(np.array, (emu, pred_cal, pred_builtin))
    mape = float(np.mean(np.abs(cal_a - emu_a) / emu_a))
    print(f"\n{len(emu)} NB201 architectures (seed {args.seed}, C=16, N=5) on {dev.name}: emulated "
          f"{emu_a.min():.0f}..{emu_a.max():.0f} ms (median {np.median(emu_a):.0f})")
    print(f"calibrated cost model vs emulated: MAPE {100 * mape:.2f} %, max "
          f"{100 * np.max(np.abs(cal_a - emu_a) / emu_a):.1f} %, Spearman "
          f"{spearmanr(cal_a, emu_a)[0]:.4f}")
    print(f"built-in (MLPerf-fitted) profile vs emulated: Spearman {spearmanr(bi_a, emu_a)[0]:.4f}, "
          f"median ratio built-in/emulated {np.median(bi_a / emu_a):.2f} (different kernels: "
          "CMSIS-NN-class on boards, ours here)")

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
