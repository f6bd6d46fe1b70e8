"""Tasks: what a network is for (input shape, classes, which resolutions may be searched).

A :class:`Task` is resolved once at the edge (CLI or API: :func:`resolve_task`) and passed
down; nothing below re-parses a name. NB201's three datasets are built-in tasks without
data (their ground truth is the benchmark table, :mod:`micronas.bench`); ``digits`` and
``fashion-mnist`` are built-in tasks with train / test data (:mod:`micronas.tasks.data`,
which also reads a user's image folder or ``.npz``);
``Task.custom((C, H, W), classes)`` (CLI: ``--input HxWxC --classes K``) makes one on the
fly for searching and costing.

A 1-D input (a time series: IMU, vibration, ECG) of L steps and C channels is the shape
``(C, L, 1)``: height L, width 1, so every layer below (the IR, the cost model, the .tflite
and the C code) sees an ordinary L x 1 map. The CLI spells it ``--input LxC`` (``128x3``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from micronas.errors import MicronasError
from micronas.infra.registry import Registry

if TYPE_CHECKING:
    from micronas.tasks.frontend import FrontEnd


@dataclass(frozen=True)
class Task:
    """Input shape (channels, height, width; height and width may differ), number of classes
    and the input resolutions a search may choose from (``None``: fixed at the input's);
    ``frontend``: the audio front end that makes the input (keyword spotting from WAV clips),
    whose cost on the device counts against the budgets."""

    name: str
    input_shape: tuple[int, int, int]
    classes: int
    resolutions: tuple[int, ...] | None = None
    frontend: FrontEnd | None = None

    def __post_init__(self) -> None:
        shape = tuple(self.input_shape)
        if len(shape) != 3 or not all(isinstance(v, int) and v >= 1 for v in shape):
            raise MicronasError(f"task {self.name!r}: input shape must be three positive "
                                f"integers (channels, height, width), got {self.input_shape}")
        if not (isinstance(self.classes, int) and self.classes >= 2):
            raise MicronasError(f"task {self.name!r}: needs at least 2 classes, got "
                                f"{self.classes}")
        object.__setattr__(self, "input_shape", shape)

    @property
    def channels(self) -> int:
        return self.input_shape[0]

    @property
    def height(self) -> int:
        return self.input_shape[1]

    @property
    def width(self) -> int:
        return self.input_shape[2]

    @property
    def is_1d(self) -> bool:
        """A time series: L steps (the height) of C channels, width 1."""
        return is_1d(self.input_shape)

    def input_text(self) -> str:
        """The input as the CLI spells it: ``LxC`` for a 1-D input, ``HxWxC`` otherwise."""
        return input_text(self.input_shape)

    def key(self) -> str:
        """A stable string identifying the task's geometry (cache keys, file names)."""
        res = "" if self.resolutions is None else "-r" + ",".join(map(str, self.resolutions))
        c, h, w = self.input_shape
        return f"{self.name}-{h}x{w}x{c}-{self.classes}{res}"

    def describe(self) -> str:
        """``cifar10 (32x32x3, 10 classes)``."""
        c, h, w = self.input_shape
        if self.is_1d:
            return f"{self.name} ({h}x{c}: {h} steps x {c} channels, {self.classes} classes)"
        return f"{self.name} ({h}x{w}x{c}, {self.classes} classes)"

    @staticmethod
    def custom(input_shape: tuple[int, int, int], classes: int, name: str | None = None,
               resolutions: tuple[int, ...] | None = None,
               frontend: FrontEnd | None = None) -> Task:
        """A data-less task for searching and costing; ``input_shape`` is (C, H, W)."""
        c, h, w = input_shape
        return Task(name or f"custom-{input_text((c, h, w))}", (c, h, w), classes, resolutions,
                    frontend)


def is_1d(shape: tuple[int, ...]) -> bool:
    """Whether a (C, H, W) input is a time series (width 1, length at least 2)."""
    return len(shape) == 3 and shape[2] == 1 and shape[1] > 1


def input_text(shape: tuple[int, ...]) -> str:
    """``(3, 128, 1)`` -> ``"128x3"``; ``(1, 49, 10)`` -> ``"49x10x1"``."""
    c, h, w = shape
    return f"{h}x{c}" if is_1d(shape) else f"{h}x{w}x{c}"


#: Built-in tasks: NB201's datasets (tasks without data: the benchmark table is their ground
#: truth) and the tasks with train / test data of :mod:`micronas.tasks.data`.
TASKS: Registry[Task] = Registry("task", hint="or give --input HxWxC (or LxC) --classes K", aliases={
    "imagenet16": "imagenet16-120", "imagenet16_120": "imagenet16-120",
    "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"})
for _task, _summary in [
        (Task("cifar10", (3, 32, 32), 10), "NAS-Bench-201's CIFAR-10 (benchmark table, no data)"),
        (Task("cifar100", (3, 32, 32), 100), "NAS-Bench-201's CIFAR-100 (benchmark table, no data)"),
        (Task("imagenet16-120", (3, 16, 16), 120),
         "NAS-Bench-201's ImageNet16-120 (benchmark table, no data)"),
        (Task("digits", (1, 8, 8), 10), "scikit-learn's 8x8 digits (data shipped with it)"),
        (Task("fashion-mnist", (1, 28, 28), 10),
         "Fashion-MNIST 28x28 (Debian package dataset-fashion-mnist)")]:
    TASKS.register(_task.name, _task, _summary)


#: The former name of :data:`TASKS` (a registry now; it still reads like the dict it was).
BUILTIN = TASKS


def list_tasks() -> list[str]:
    return TASKS.names()


def get_task(name: str) -> Task:
    """A built-in task by name; a one-line error naming the choices otherwise."""
    dashed = str(name).replace("_", "-")
    return TASKS[dashed] if dashed in TASKS else TASKS[str(name)]


_INPUT_RE = re.compile(r"^(\d+)x(\d+)(?:x(\d+))?$")


def parse_input(text: str) -> tuple[int, int, int]:
    """``"96x96x1"`` (height x width x channels) -> (C, H, W); ``"128x3"`` (a 1-D input:
    length x channels) -> ``(3, 128, 1)``."""
    s = str(text).strip().lower()
    m = _INPUT_RE.match(s) if s.isascii() else None
    if not m:
        raise MicronasError(f"--input {text!r} is neither HxWxC (an image, e.g. 96x96x1) nor "
                            "LxC (a time series, e.g. 128x3)")
    if m.group(3) is None:
        length, c = int(m.group(1)), int(m.group(2))
        if not (2 <= length <= 65536 and 1 <= c <= 64):
            raise MicronasError(f"--input {text!r} is LxC (a time series): length must be "
                                "2..65536 and channels 1..64 (an image is HxWxC, e.g. 96x96x1)")
        return c, length, 1
    h, w, c = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if min(h, w, c) < 1 or max(h, w) > 4096 or c > 64:
        raise MicronasError(f"--input {text!r}: height and width must be 1..4096 and channels "
                            "1..64")
    return c, h, w


def parse_resolutions(text: str | tuple[int, ...] | None) -> tuple[int, ...] | None:
    """``"64,80"`` -> ``(64, 80)``."""
    if text is None or isinstance(text, tuple):
        return text
    out = []
    for part in str(text).split(","):
        p = part.strip()
        if not (p.isascii() and p.isdigit()) or not 1 <= int(p) <= 4096:
            raise MicronasError(f"--resolutions {text!r}: give comma-separated sides 1..4096, "
                                "e.g. 64,80,96")
        out.append(int(p))
    return tuple(sorted(set(out)))


def resolve_task(task: Task | str | None = None, input: str | tuple[int, int, int] | None = None,
                 classes: int | None = None, default: str = "cifar10",
                 resolutions: str | tuple[int, ...] | None = None) -> Task:
    """The task a command runs on: a Task, a built-in name, or ``input`` + ``classes`` (and
    optionally the other ``resolutions`` a search may draw)."""
    if isinstance(task, Task):
        return task
    res = parse_resolutions(resolutions)
    if res is not None and input is None:
        raise MicronasError("--resolutions goes with a custom --input HxWxC --classes K")
    if input is not None or classes is not None:
        if task is not None:
            raise MicronasError("give either --task NAME or --input HxWxC --classes K, not both")
        if input is None or classes is None:
            raise MicronasError("--input and --classes go together, e.g. --input 96x96x1 "
                                "--classes 2")
        shape = parse_input(input) if isinstance(input, str) else tuple(input)
        if not (isinstance(classes, int) and classes >= 2):
            raise MicronasError(f"--classes must be an integer >= 2, got {classes}")
        if res is not None and is_1d(shape):  # type: ignore[arg-type]
            raise MicronasError(f"--resolutions is for a square image --input; a time series' "
                                f"length is fixed ({input_text(shape)}): resample the data "  # type: ignore[arg-type]
                                "instead")
        if res is not None and shape[1] != shape[2]:
            raise MicronasError(f"--resolutions needs a square --input; {input} is fixed")
        return Task.custom(shape, classes, resolutions=res)  # type: ignore[arg-type]
    return get_task(task if task is not None else default)


__all__ = ["BUILTIN", "TASKS", "Task", "get_task", "input_text", "is_1d", "list_tasks", "parse_input",
           "parse_resolutions", "resolve_task"]
