"""Every default a user sees, in one place (the CLI, the API and the configs read them here)."""

from __future__ import annotations

#: The device a command costs for when none is named.
DEVICE = "stm32f746"
#: The runtime a cost is for when neither the command nor the device profile names one: what
#: the bundle's main.cc runs (TFLite Micro with CMSIS-NN kernels).
RUNTIME = "tflm-cmsis-nn"
#: The space of the benchmark commands (search, cost, score, measure) and the task they use.
BENCHMARK_SPACE = "nb201"
BENCHMARK_TASK = "cifar10"
#: NB201's own tasks (its benchmark table's datasets): a search for one of them uses
#: BENCHMARK_SPACE unless told otherwise; any other task (yours) uses DATA_SPACE.
BENCHMARK_TASKS = ("cifar10", "cifar100", "imagenet16-120")
#: The space of the commands that take the user's data or task (train, build, --input).
DATA_SPACE = "mcu"
#: The search's strategy (``auto``: pruning where the space has a supernet, else evolution),
#: its objective's weights and how ranks mix, and hill-climbing steps after it.
STRATEGY = "auto"
LATENCY_WEIGHT = 0.0
FLOPS_WEIGHT = 0.0
RANK_MODE = "percentile"
LATENCY_MODE = "rank"
REFINE = 0
#: Architectures ``bench correlate`` draws (None on the command line's --all: every one).
SAMPLE = 1000
#: Indicator evaluations of evolution and random search (pruning's rounds evaluate 24 + 18 + 12).
EVALUATIONS = 54
#: Share of the device's SRAM and of its flash left to the application.
RESERVE_SHARE = 0.10
#: Pruning keeps a network that uses this share of a binding budget's capacity.
FILL = 0.9
#: Processes computing indicators (1: this one, on two threads where there are two cores).
WORKERS = 1
SEED = 0

__all__ = ["BENCHMARK_SPACE", "BENCHMARK_TASK", "BENCHMARK_TASKS", "DATA_SPACE", "DEVICE",
           "EVALUATIONS", "FILL", "FLOPS_WEIGHT", "LATENCY_MODE", "LATENCY_WEIGHT", "RANK_MODE",
           "REFINE", "RESERVE_SHARE", "RUNTIME", "SAMPLE", "SEED", "STRATEGY", "WORKERS"]
