"""micronas: training-free, hardware-aware neural architecture search for microcontrollers."""

import os

__version__ = "0.1.0"

# PyTorch's OpenMP threads spin while they wait for each other. On a 2-core machine that also
# runs something else, a spinning thread holds a core its partner needs, and small networks
# trained 3-30x slower (1.8 s per step instead of 0.54 s, digits' 2 M-MAC network under load;
# docs/train.md). Passive waiting gives the core back; it is read when torch loads, so it
# holds wherever micronas is imported first (the command line, worker processes). A value
# the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from micronas.errors import MicronasError  # noqa: E402

__all__ = ["MicronasError", "__version__"]
