"""Train an architecture of any space on a task's real data, on the CPU, resumably.

The default recipe (:class:`Recipe`; docs/train.md says why):

- AdamW (learning rate 3e-3, weight decay 0.02 on weights, none on BatchNorm and biases),
  batch 128, one epoch of linear warm-up then a cosine decay to 0, set per step.
- Cross-entropy with label smoothing 0.1.
- Augmentation for images of side >= 16: random crop after zero padding by side / 8 (the
  padding is the normalised value of a black pixel), and horizontal flips where the dataset
  says they keep the label (fashion-mnist: yes, digits: no). Smaller inputs (digits) and
  ``.npz`` data (MFCCs, time series) get none unless asked.
- A time series (a 1-D input, ``(C, L, 1)``) is never cropped or flipped across its width
  of 1: ``--augment crop`` shifts it in time (zero padding by L / 8 at both ends, then a
  random window of L steps), and ``crop-flip`` is refused (reversing time does not keep a
  gesture's or a heartbeat's label).

Every random choice comes from generators seeded from ``seed``: the weights from ``seed``,
each epoch's order and augmentation from ``(seed, epoch)``, so a run resumed from a
checkpoint draws exactly what the uninterrupted run draws. On the CPU the result is
bit-identical (same torch build and thread count).

A :class:`~micronas.ship.checkpoint.Checkpoint` (``OUT/checkpoint.pt``) is written
atomically after every epoch: the model, the optimiser state, the epoch, the history, and
everything needed to rebuild the network (space, architecture, task, data description and
normalisation, recipe, seed, versions). Rerunning the same command resumes from it; a
checkpoint of a different run is refused.

Before the first epoch the run is timed (:func:`time_steps`: a few optimiser steps on a copy
of the network, so the training itself draws and computes exactly what an untimed run does)
and the plan (:class:`TrainPlan`: epochs, steps, seconds per step, the estimated time) is
handed to ``on_plan``. ``max_minutes`` caps the epochs to what fits that time on this
machine; the epochs chosen are part of the recorded recipe, so ``--epochs`` reproduces the
run elsewhere.
"""

from __future__ import annotations

import copy
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from micronas.errors import DataError, MicronasBug, MicronasError
from micronas.infra.torchinit import init_kaiming
from micronas.ship.checkpoint import CHECKPOINT, Checkpoint, DataInfo, Identity
from micronas.spaces import AnySpace, VariantInput, get_space, offers
from micronas.spaces.base import bind
from micronas.tasks import Task, is_1d
from micronas.tasks.data import Dataset

AUGMENT = ("auto", "none", "crop", "crop-flip")
#: Training progress: (optimiser steps done, steps in all, {"epoch", "loss", "acc"}).
TrainProgress = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True)
class Recipe:
    """How a network is trained (the defaults are the documented recipe)."""

    epochs: int | None = None      # None: auto_epochs (about AUTO_STEPS optimiser steps)
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.02
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    augment: str = "auto"
    train_subset: int | None = None   # train on a seeded subset of this many samples

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise a one-line error on a bad setting (run when the recipe is made)."""
        if self.epochs is not None and not (isinstance(self.epochs, int)
                                            and 1 <= self.epochs <= 10_000):
            raise MicronasError(f"--epochs must be an integer 1..10000, got {self.epochs}")
        if not (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65_536):
            raise MicronasError(f"--batch-size must be an integer 1..65536, got {self.batch_size}")
        for name in ("lr", "weight_decay", "warmup_epochs", "label_smoothing"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise MicronasError(f"recipe {name} must be a finite number >= 0, got {v}")
        if self.lr <= 0 or self.label_smoothing >= 1:
            raise MicronasError("recipe: lr must be > 0 and label smoothing < 1")
        if self.augment not in AUGMENT:
            raise MicronasError(f"--augment {self.augment!r}: choose from {', '.join(AUGMENT)}")
        if self.train_subset is not None and not (isinstance(self.train_subset, int)
                                                  and self.train_subset >= 1):
            raise MicronasError(f"train subset must be a positive integer, got {self.train_subset}")

    @property
    def n_epochs(self) -> int:
        """The number of epochs of a :meth:`resolved` recipe."""
        if self.epochs is None:
            raise MicronasBug("the recipe's epochs were used before resolved() fixed them")
        return self.epochs

    def resolved(self, n_train: int) -> Recipe:
        """This recipe with ``epochs`` fixed for ``n_train`` training samples."""
        if self.epochs is not None:
            return self
        return replace(self, epochs=auto_epochs(n_train, self.batch_size))


#: The default training length: enough epochs for about this many optimiser steps, at least
#: MIN_EPOCHS and at most MAX_AUTO_EPOCHS (fashion-mnist: 43 epochs; digits: 200).
AUTO_STEPS = 20_000
MIN_EPOCHS, MAX_AUTO_EPOCHS = 15, 200


def auto_epochs(n_train: int, batch_size: int) -> int:
    steps = max(1, math.ceil(n_train / batch_size))
    return max(MIN_EPOCHS, min(MAX_AUTO_EPOCHS, math.ceil(AUTO_STEPS / steps)))


@dataclass
class TrainResult:
    """A finished (or resumed-and-finished) training run."""

    checkpoint: str
    space: str
    arch: str
    task: Task
    network_input: tuple[int, int, int]
    epochs: int
    seed: int
    test_accuracy: float          # float model, whole test set, in [0, 1]
    train_seconds: float
    resumed_from: int             # epochs already done when this call started (0: fresh)
    history: list[dict[str, float]] = field(default_factory=list)
    module: nn.Module | None = None
    recipe: dict[str, Any] = field(default_factory=dict)   # as trained (epochs resolved)
    final_checkpoint: Checkpoint | None = None   # what ``checkpoint`` holds, in memory
    plan: TrainPlan | None = None   # the plan made before training (estimate, any cap)

    def to_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "space": self.space, "arch": self.arch,
                "task": self.task.name, "network_input": list(self.network_input),
                "epochs": self.epochs, "seed": self.seed,
                "float_test_accuracy": self.test_accuracy, "train_seconds": self.train_seconds,
                "resumed_from_epoch": self.resumed_from, "recipe": self.recipe,
                "history": self.history,
                **({"plan": self.plan.to_dict()} if self.plan is not None else {})}


def versions() -> dict[str, str]:
    import micronas

    return {"micronas": str(micronas.__version__), "torch": str(torch.__version__),
            "numpy": str(np.__version__), "python": platform.python_version()}


def network_input(space: AnySpace, arch: Any, task: Task) -> tuple[int, int, int]:
    """The input the deployed network takes (an ``mcu`` architecture may fix a resolution)."""
    if offers(space, VariantInput):
        c, h, w = space.variant_input("full", task, arch)
        return int(c), int(h), int(w)
    return task.input_shape


def checkpoint_input(ck: Checkpoint) -> tuple[int, int, int]:
    """The input a checkpoint's network reads now (the task's, for an mcu network that
    resizes it itself; ``ck.network_input`` may name the lower side of a checkpoint made when
    the data was resized before the network)."""
    ident = ck.identity
    sp = bind(get_space(ident.space), ident.task)
    return network_input(sp, sp.parse(ident.arch), ident.task)


def _seeded(seed: int, *salt: int) -> torch.Generator:
    mixed = np.random.SeedSequence([seed & 0xFFFFFFFF, *salt]).generate_state(2)
    return torch.Generator().manual_seed(int(mixed[0]) << 32 | int(mixed[1]))


def _resize(x: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if tuple(t.shape[2:]) != tuple(shape[1:]):
        t = F.interpolate(t, size=tuple(shape[1:]), mode="bilinear", align_corners=False)
    return t


def prepare_inputs(ds: Dataset, shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's train and test images at the size the network reads (an mcu network at
    a lower resolution reads the task's input and resizes it itself, so the data is left as
    it is; a bilinear resize here only for data of another size than the network reads)."""
    if ds.input_shape[0] != shape[0]:
        raise DataError(f"data {ds.source} has {ds.input_shape[0]} channels but the network "
                        f"takes {shape[0]}")
    return _resize(ds.x_train, shape), _resize(ds.x_test, shape)


Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def check_augment(recipe: Recipe, ds: Dataset) -> None:
    """Refuse, in one line, an augmentation the data cannot take (crop-flip on a time
    series), before anything is searched or written."""
    _augmenter(recipe, ds, ds.input_shape)


def _augmenter(recipe: Recipe, ds: Dataset,
               shape: tuple[int, int, int]) -> tuple[str, Augment | None]:
    mode = recipe.augment
    if mode == "auto":
        image = ds.meta.get("kind", "image") == "image" and not ds.source.endswith(".npz")
        mode = ("crop-flip" if ds.flips else "crop") if image and min(shape[1:]) >= 16 else "none"
    if mode == "none":
        return mode, None
    series = is_1d(shape)
    if series and mode == "crop-flip":
        raise MicronasError("--augment crop-flip would reverse a time series' time axis, which "
                            "does not keep its label; use --augment crop (a random time shift) "
                            "or none")
    # a time series is shifted along time only (by up to L / 8 steps)
    pad = max(1, shape[1] // 8) if series else max(1, min(shape[1:]) // 8)
    fill = torch.tensor([-m / s for m, s in zip(ds.mean, ds.std, strict=True)],
                        dtype=torch.float32).view(1, -1, 1, 1)
    flip = mode == "crop-flip"

    def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        if series:
            padded = fill.expand(b, c, h + 2 * pad, w).clone()
            padded[:, :, pad:pad + h] = x
            dy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
            rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None].expand(b, c, h, w)
            return padded.gather(2, rows)
        padded = fill.expand(b, c, h + 2 * pad, w + 2 * pad).clone()
        padded[:, :, pad:pad + h, pad:pad + w] = x
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=g)
        rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None].expand(b, c, h, w + 2 * pad)
        cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :].expand(b, c, h, w)
        out = padded.gather(2, rows).gather(3, cols)
        if flip:
            mask = torch.rand(b, generator=g) < 0.5
            out = torch.where(mask[:, None, None, None], out.flip(3), out)
        return out

    return mode, augment


def evaluate(module: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Top-1 accuracy of ``module`` (eval mode) on ``x``, ``y``."""
    was = module.training
    module.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((module(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    module.train(was)
    return correct / max(len(x), 1)


def _param_groups(module: nn.Module, wd: float) -> list[dict[str, Any]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for m in module.modules():
        for name, p in m.named_parameters(recurse=False):
            (decay if name == "weight" and isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear)
             else no_decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def _lr(recipe: Recipe, step: int, steps_per_epoch: int) -> float:
    total = recipe.n_epochs * steps_per_epoch
    warm = min(int(recipe.warmup_epochs * steps_per_epoch), total - 1)
    if step < warm:
        return recipe.lr * (step + 1) / warm
    t = (step - warm) / max(total - warm, 1)
    return recipe.lr * 0.5 * (1.0 + math.cos(math.pi * t))


@dataclass(frozen=True)
class TrainPlan:
    """What a training run will do and how long it should take on this machine."""

    epochs: int
    steps_per_epoch: int
    batch_size: int
    seconds_per_step: float       # median of the timed steps
    timed_steps: int
    estimated_seconds: float      # the remaining epochs at seconds_per_step
    epochs_before_cap: int | None = None   # the epochs max_minutes cut (None: not cut)
    max_minutes: float | None = None
    resumed_from: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for the user, e.g. ``200 epochs x 12 steps of 128, about 9.6 min``."""
        left = self.epochs - self.resumed_from
        text = (f"{left} epochs x {self.steps_per_epoch} steps of {self.batch_size}"
                + (f" (resuming after epoch {self.resumed_from})" if self.resumed_from else "")
                + f", about {_duration(self.estimated_seconds)} on this machine "
                f"({1e3 * self.seconds_per_step:.0f} ms per step, timed over "
                f"{self.timed_steps} steps)")
        if self.epochs_before_cap is not None:
            text += (f"; --max-train-minutes {self.max_minutes:g} cut {self.epochs_before_cap} "
                     f"epochs to {self.epochs} (give --epochs {self.epochs} to repeat this run "
                     "elsewhere)")
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def time_steps(module: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe,
               augment: Augment | None = None, steps: int = 5) -> tuple[float, int]:
    """Median seconds of one optimiser step of ``module`` on batches of ``x`` (one untimed
    warm-up step first), timed on a deep copy with its own optimiser and a fixed generator:
    ``module`` and the global random state are left as they were. Returns (seconds, steps
    timed); fewer steps when the data holds fewer batches."""
    m = copy.deepcopy(module)
    m.train()
    opt = torch.optim.AdamW(_param_groups(m, recipe.weight_decay), lr=recipe.lr)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    g = torch.Generator().manual_seed(0)
    n = len(y)
    batches = max(1, math.ceil(n / recipe.batch_size))
    k = max(1, min(steps, batches - 1)) if batches > 1 else 1
    times = []
    rng_state = torch.get_rng_state()
    try:
        for i in range(k + 1):
            j = i % batches
            xb, yb = x[j * recipe.batch_size:(j + 1) * recipe.batch_size], \
                y[j * recipe.batch_size:(j + 1) * recipe.batch_size]
            t0 = time.perf_counter()
            if augment is not None:
                xb = augment(xb, g)
            loss = loss_fn(m(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i:  # the first step warms up the allocator and kernels
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_rng_state(rng_state)
    return float(np.median(times)), len(times)


def _identity(space: AnySpace, arch_text: str, task: Task, ds: Dataset, recipe: Recipe,
              seed: int) -> Identity:
    return Identity(space.name, arch_text, Task(task.name, task.input_shape, task.classes,
                                                frontend=task.frontend),
                    DataInfo(ds.source, str(ds.meta.get("ref", ds.source)),
                             int(ds.meta.get("split_seed", 0)),  # type: ignore[call-overload]
                             int(len(ds.y_train)), int(len(ds.y_test))),
                    asdict(recipe), int(seed))


def build_module(space: AnySpace, arch: Any, task: Task, seed: int) -> nn.Module:
    module = space.to_module(arch, task)
    init_kaiming(module, _seeded(seed, 0))
    return module


def module_from_checkpoint(ck: Checkpoint) -> tuple[AnySpace, Any, Task, nn.Module]:
    """The trained module (eval mode) of a checkpoint, with its space, architecture, task."""
    ident = ck.identity
    task = ident.task
    sp = bind(get_space(ident.space), task)
    arch = sp.parse(ident.arch)
    module = sp.to_module(arch, task)
    try:
        module.load_state_dict(ck.model)
    except RuntimeError:
        raise DataError(f"checkpoint {ck.path}: its weights do not fit architecture "
                        f"{ident.arch}; the file is damaged") from None
    return sp, arch, task, module.eval()


def train(arch: Any, space: AnySpace | str, ds: Dataset, out: str | Path,
          recipe: Recipe | None = None, seed: int = 0,
          progress: TrainProgress | None = None, max_minutes: float | None = None,
          on_plan: Callable[[TrainPlan], None] | None = None) -> TrainResult:
    """Train ``arch`` on ``ds``; checkpoint to ``out/checkpoint.pt`` after every epoch and
    resume from it when it holds the same run. Returns the float test accuracy.

    Before training, the plan (epochs, the time per step measured on a copy of the network,
    the estimated time) goes to ``on_plan``; ``max_minutes`` lowers the epochs to what fits
    that many minutes here (at least one)."""
    recipe = recipe or Recipe()
    if max_minutes is not None and not (isinstance(max_minutes, int | float) and not isinstance(
            max_minutes, bool) and math.isfinite(max_minutes) and max_minutes > 0):
        raise MicronasError(f"--max-train-minutes must be a number > 0, got {max_minutes}")
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise MicronasError(f"--seed must be an integer 0..{2**32 - 1}, got {seed}")
    task = ds.task()
    sp = bind(get_space(space), task)
    a = sp.parse(str(arch)) if isinstance(arch, str | int) else arch
    arch_text = sp.format(a)
    shape = network_input(sp, a, task)
    mode, augment = _augmenter(recipe, ds, shape)   # a bad --augment: refused before writing
    outdir = Path(out)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MicronasError(f"--out {outdir} is not a writable directory ({e.strerror})") from None
    ck_path = outdir / CHECKPOINT

    x_tr, x_te = prepare_inputs(ds, shape)
    y_tr, y_te = torch.from_numpy(ds.y_train), torch.from_numpy(ds.y_test)
    if recipe.train_subset is not None and recipe.train_subset < len(y_tr):
        keep = torch.randperm(len(y_tr), generator=_seeded(seed, 1))[:recipe.train_subset]
        keep = keep.sort().values
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    recipe = recipe.resolved(len(y_tr))
    module = build_module(sp, a, task, seed)
    # channels-last runs the depthwise convolutions ~1.6x faster on the CPU; it changes the
    # memory layout only (the checkpoint and the returned module are layout-independent)
    module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    n = len(y_tr)
    steps = math.ceil(n / recipe.batch_size)
    ck = Checkpoint.load(ck_path) if ck_path.exists() else None
    if ck is not None and max_minutes is not None and ck.identity.recipe.get("epochs"):
        # a capped run resumes with the epochs it was capped to (the cap is not re-measured)
        recipe = replace(recipe, epochs=int(str(ck.identity.recipe["epochs"])))
        max_minutes_left = None
    else:
        max_minutes_left = max_minutes
    done = ck.epoch if ck is not None else 0
    sps, timed = (time_steps(module, x_tr, y_tr, recipe, augment)
                  if done < recipe.n_epochs else (0.0, 0))
    cut = None
    if max_minutes_left is not None and sps > 0:
        fit = max(1, int(max_minutes_left * 60 / (sps * steps)))
        if fit < recipe.n_epochs:
            cut, recipe = recipe.n_epochs, replace(recipe, epochs=fit)
    plan = TrainPlan(recipe.n_epochs, steps, recipe.batch_size, sps, timed,
                     sps * steps * max(0, recipe.n_epochs - done), cut, max_minutes, done)
    if on_plan is not None:
        on_plan(plan)
    ident = _identity(sp, arch_text, task, ds, recipe, seed)
    opt = torch.optim.AdamW(_param_groups(module, recipe.weight_decay), lr=recipe.lr)
    start, history, spent = 0, [], 0.0
    last: Checkpoint | None = None
    if ck is not None:
        last = ck
        if ck.identity.to_dict() != ident.to_dict():
            raise MicronasError(f"{ck_path} holds a checkpoint of another run (arch "
                                f"{ck.identity.arch}); choose another --out or delete it")
        module.load_state_dict(ck.model)
        opt.load_state_dict(ck.optimizer)
        start, history, spent = ck.epoch, list(ck.history), ck.train_seconds
    resumed = start
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    module.train()
    for epoch in range(start, recipe.n_epochs):
        t0 = time.perf_counter()
        g = _seeded(seed, 2, epoch)
        perm = torch.randperm(n, generator=g)
        tot_loss, tot_ok = 0.0, 0
        for i in range(steps):
            idx = perm[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            xb, yb = x_tr[idx], y_tr[idx]
            if augment is not None:
                xb = augment(xb, g)
            for group in opt.param_groups:
                group["lr"] = _lr(recipe, epoch * steps + i, steps)
            logits = module(xb)
            loss = loss_fn(logits, yb)
            if not torch.isfinite(loss):
                raise MicronasError(f"training diverged (loss {float(loss)}) in epoch {epoch + 1}; "
                                    "lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += float(loss.detach()) * len(idx)
            tot_ok += int((logits.argmax(1) == yb).sum())
            if progress is not None:
                progress(epoch * steps + i + 1, recipe.n_epochs * steps,
                         {"epoch": epoch + 1, "loss": tot_loss / ((i * recipe.batch_size)
                                                                  + len(idx)),
                          "acc": tot_ok / ((i * recipe.batch_size) + len(idx))})
        test_acc = evaluate(module, x_te, y_te)
        spent += time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "train_loss": tot_loss / n, "train_accuracy": tot_ok / n,
                        "test_accuracy": test_acc, "seconds": spent})
        last = Checkpoint(ident, epoch + 1, recipe.n_epochs, module.state_dict(), opt.state_dict(),
                   list(history), spent, mode, shape, tuple(ds.mean), tuple(ds.std),
                   tuple(ds.class_names), versions()).save(ck_path)
    if last is not None:  # the result's checkpoint keeps its own weights, whatever the module does
        last = replace(last, model={k: v.detach().clone() for k, v in last.model.items()})
    module = module.to(memory_format=torch.contiguous_format)
    module.eval()
    acc = history[-1]["test_accuracy"] if history else evaluate(module, x_te, y_te)
    return TrainResult(str(ck_path), sp.name, arch_text, task, shape, recipe.n_epochs, seed, acc,
                       spent, resumed, history, module, {**asdict(recipe), "augment": mode}, last,
                       plan)


__all__ = ["AUGMENT", "AUTO_STEPS", "CHECKPOINT", "Recipe", "TrainPlan", "TrainResult", "auto_epochs",
           "checkpoint_input", "evaluate", "time_steps",
           "module_from_checkpoint", "network_input", "prepare_inputs", "train",
           "versions"]
