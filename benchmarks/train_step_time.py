"""Seconds per optimiser step of the digits search's network (stm32l4r5, 50 ms), under
each OpenMP wait policy and thread count, each in a fresh process (the policy is read when
torch loads). The numbers depend on what else the machine runs: docs/train.md quotes them
from a 2-core machine busy with other jobs.

    python benchmarks/train_step_time.py [--steps 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

ARCH = "w0.5_h1024|k3e6,k5e6,k7e4|k7e4,k5e4|k5e6,k3e6|k3e6,k7e4,k3e4|k7e4,k7e3,k3e4|k5e3"
CHILD = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from micronas.ship.train import Recipe, time_steps, build_module
from micronas.spaces import bind, get_space
from micronas.tasks import get_task
task = get_task("digits"); sp = bind(get_space("mcu"), task)
m = build_module(sp, sp.parse(sys.argv[2]), task, 0).to(memory_format=torch.channels_last)
g = torch.Generator().manual_seed(0)
n = 128 * (int(sys.argv[3]) + 1)
x, y = torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)
print(time_steps(m, x, y, Recipe(), steps=int(sys.argv[3]))[0])
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    a = ap.parse_args()
    for policy, threads in (("ACTIVE", 2), ("PASSIVE", 2), ("ACTIVE", 1)):
        env = {**os.environ, "OMP_WAIT_POLICY": policy}
        out = subprocess.run([sys.executable, "-c", CHILD, str(threads), ARCH, str(a.steps)],
                             env=env, capture_output=True, text=True, check=True)
        print(f"OMP_WAIT_POLICY={policy:<7} {threads} threads: "
              f"{float(out.stdout.strip()):.3f} s per step", flush=True)


if __name__ == "__main__":
    main()
