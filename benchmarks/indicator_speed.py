"""Seconds per architecture for ntk_cond + linear_regions with the default settings.

    python benchmarks/indicator_speed.py [--n 40] [--workers 2] [--seed 0]

No cache: every architecture is computed. Wall time divided by the number of architectures
(spawn start-up included), on whatever cores the machine has (the target is a 2-core CPU).
"""

from __future__ import annotations

import argparse
import os
import time

from micronas.bench.correlate import sample_archs
from micronas.proxies import ProxySettings, score_many
from micronas.spaces import get_space
from micronas.tasks import get_task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    archs = sample_archs(a.n, a.seed + 12345)
    t0 = time.perf_counter()
    settings = ProxySettings(ntk_batch=32, repeats=3, lr_batches=3, lr_input=None)  # as measured
    res = score_many(get_space("nb201"), archs, get_task("cifar10"),
                     ["ntk_cond", "linear_regions"], a.seed, settings, None, f"process:{a.workers}")
    wall = time.perf_counter() - t0
    ntk = sum(r["ntk_cond"].seconds for r in res) / len(res)
    lr = sum(r["linear_regions"].seconds for r in res) / len(res)
    print(f"{len(archs)} architectures, {a.workers} worker(s), {os.cpu_count()} cores: "
          f"{wall / len(archs):.2f} s per architecture (wall); per worker: ntk_cond {ntk:.2f} s, "
          f"linear_regions {lr:.2f} s")


if __name__ == "__main__":
    main()
