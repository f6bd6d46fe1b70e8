"""int8 export parity and arena agreement on seeded architectures of a space (NB201
and mcu).

For each architecture (seeded draw; those with no path from input to output cannot be
exported and are skipped and counted): quantise with seeded stand-in weights, write the
.tflite, run it in the TFLM interpreter and compare

- every activation tensor with the numpy model of TFLM's integer kernels (bit-exact?);
- every layer with the fake-quantised PyTorch reference fed TFLM's own inputs (within 1 LSB);
- the network output with the fake-quantised reference run end to end;
- TFLM's planned arena (the recording allocator's "head") with our planner's arena.

    python benchmarks/tflm_parity.py [--n 100] [--seed 0] [--C 16] [--N 5] [--json FILE]
    python benchmarks/tflm_parity.py --space mcu --n 50 [--input 96x96x1 --classes 2]

On ``mcu`` the architectures rotate over four tasks (32x32x3/10, 96x96x1/2, 49x10x1/12,
28x28x1/10) unless ``--input`` names one.
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
from micronas.spaces import get_space
from micronas.spaces.nb201 import NB201Space, nb201_network
from micronas.tasks import Task, parse_input

MCU_TASKS = ((3, 32, 32, 10), (1, 96, 96, 2), (1, 49, 10, 12), (1, 28, 28, 10))


def architectures(args: argparse.Namespace, rng: np.random.Generator):
    """(label, network, seed) of seeded draws."""
    if args.space == "nb201":
        space = NB201Space()
        while True:
            arch = space.sample(rng)
            yield str(arch.index), nb201_network(arch, C=args.C, N=args.N), arch.index
    space = get_space(args.space)
    tasks = ([Task.custom(parse_input(args.input), args.classes)] if args.input else
             [Task.custom((c, h, w), k) for c, h, w, k in MCU_TASKS])
    i = 0
    while True:
        task = tasks[i % len(tasks)]
        arch = space.sample(rng)
        yield f"{task.key()} {space.format(arch)}", space.to_network(arch, task), args.seed + i
        i += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="nb201", help="nb201 | mcu")
    ap.add_argument("--input", help="HxWxC of the mcu task (default: four tasks in turn)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--N", type=int, default=5)
    ap.add_argument("--samples", type=int, default=1, help="inputs per architecture")
    ap.add_argument("--json", help="write per-architecture rows here")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows, skipped, t0 = [], 0, time.time()
    draws = architectures(args, rng)
    while len(rows) < args.n:
        label, net, seed = next(draws)
        try:
            q = prepare(net, seed=seed)
        except MicronasError:
            skipped += 1
            continue
        data, index = build_tflite(q)
        x_q = q.input_quant.quantize(gaussian_batch(net, args.samples, seed + 2))
        p = parity(q, data, index, x_q)
        arena = tflm_arena(data)
        ours = plan(q.net)[0]
        rows.append({"arch": label, **p, "tflm_head": arena.head, "tflm_tail": arena.tail,
                     "planner": ours, "arena_rel_err": (ours - arena.head) / arena.head,
                     "relu6": sum(la.activation == "relu6" for la in q.net.layers)})
        print(f"[{len(rows):3d}] {label[:60]:60s}  exact {p['tflm_equals_int8_model']!s:5}  "
              f"layer<=1 {p['layerwise_within_1lsb']:.4f}  out<=1 {p['output_within_1lsb']:.2f}  "
              f"arena TFLM {arena.head:7d} ours {ours:7d}", flush=True)
    err = np.array([abs(r["arena_rel_err"]) for r in rows])
    lw = np.array([r["layerwise_within_1lsb"] for r in rows])
    lw_vals = sum(r["layerwise_values"] for r in rows)
    lw_ok = sum(r["layerwise_within_1lsb"] * r["layerwise_values"] for r in rows)
    out_vals = sum(r["output_values"] for r in rows)
    out_ok = sum(r["output_within_1lsb"] * r["output_values"] for r in rows)
    what = f"C={args.C}, N={args.N}" if args.space == "nb201" else f"space {args.space}"
    print(f"\n{len(rows)} architectures (seed {args.seed}, {what}; {skipped} "
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
    print(f"layers with a fused ReLU6: {sum(r['relu6'] for r in rows)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
