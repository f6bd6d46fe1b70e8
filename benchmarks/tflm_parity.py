"""int8 export parity and arena agreement on seeded NB201 architectures (issue 5 acceptance).

For each architecture (seeded draw; those with no path from input to output cannot be
exported and are skipped and counted): quantise with seeded stand-in weights, write the
.tflite, run it in the TFLM interpreter and compare

- every activation tensor with the numpy model of TFLM's integer kernels (bit-exact?);
- every layer with the fake-quantised PyTorch reference fed TFLM's own inputs (within 1 LSB);
- the network output with the fake-quantised reference run end to end;
- TFLM's planned arena (the recording allocator's "head") with our planner's arena.

    python benchmarks/tflm_parity.py [--n 100] [--seed 0] [--C 16] [--N 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from micronas.deploy.export import parity, prepare
from micronas.deploy.quantize import gaussian_batch
from micronas.deploy.tflite import build_tflite, tflm_arena
from micronas.errors import MicronasError
from micronas.hardware.planner import plan
from micronas.spaces.nb201 import NB201Space, nb201_network


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--N", type=int, default=5)
    ap.add_argument("--samples", type=int, default=1, help="inputs per architecture")
    ap.add_argument("--json", help="write per-architecture rows here")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    space = NB201Space()
    rows, skipped, t0 = [], 0, time.time()
    while len(rows) < args.n:
        arch = space.sample(rng)
        net = nb201_network(arch, C=args.C, N=args.N)
        try:
            q = prepare(net, seed=arch.index)
        except MicronasError:
            skipped += 1
            continue
        data, index = build_tflite(q)
        x_q = q.input_quant.quantize(gaussian_batch(net, args.samples, arch.index + 2))
        p = parity(q, data, index, x_q)
        arena = tflm_arena(data)
        ours = plan(q.net)[0]
        rows.append({"index": arch.index, **p, "tflm_head": arena.head, "tflm_tail": arena.tail,
                     "planner": ours, "arena_rel_err": (ours - arena.head) / arena.head})
        print(f"[{len(rows):3d}] {arch.index:5d}  exact {p['tflm_equals_int8_model']!s:5}  "
              f"layer<=1 {p['layerwise_within_1lsb']:.4f}  out<=1 {p['output_within_1lsb']:.2f}  "
              f"arena TFLM {arena.head:7d} ours {ours:7d}", flush=True)
    err = np.array([abs(r["arena_rel_err"]) for r in rows])
    lw = np.array([r["layerwise_within_1lsb"] for r in rows])
    lw_vals = sum(r["layerwise_values"] for r in rows)
    lw_ok = sum(r["layerwise_within_1lsb"] * r["layerwise_values"] for r in rows)
    out_vals = sum(r["output_values"] for r in rows)
    out_ok = sum(r["output_within_1lsb"] * r["output_values"] for r in rows)
    print(f"\n{len(rows)} architectures (seed {args.seed}, C={args.C}, N={args.N}; {skipped} "
          f"drawn without an input-output path skipped), {time.time() - t0:.0f} s")
    print(f"TFLM == numpy int8 model on every tensor: {sum(r['tflm_equals_int8_model'] for r in rows)}"
          f" / {len(rows)}")
    print(f"layer by layer vs fake-quant: {100 * lw_ok / lw_vals:.4f} % of {lw_vals:,} values within "
          f"1 LSB (worst architecture {100 * lw.min():.4f} %, "
          f"max {max(r['layerwise_max_lsb'] for r in rows)} LSB)")
    print(f"network output vs end-to-end fake-quant: {100 * out_ok / out_vals:.1f} % of {out_vals} "
          f"within 1 LSB (max {max(r['output_max_lsb'] for r in rows)} LSB)")
    print(f"arena |ours - TFLM| / TFLM: max {100 * err.max():.2f} %, mean {100 * err.mean():.3f} %, "
          f"exact {int((err == 0).sum())} / {len(rows)}; within 1 %: {int((err <= 0.01).sum())}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
