"""The training checkpoint: one typed value, saved and loaded here and nowhere else.

On disk it is a ``torch.save`` of plain values and tensors (``weights_only`` loading: no code
runs), tagged with its format version. :meth:`Checkpoint.load` reads every version this
package knows and refuses others in one line; :meth:`Checkpoint.save` writes the current
version atomically.

Format ``micronas-checkpoint-1`` (the only one so far): ``format``, ``identity`` (space,
architecture, task, data, recipe, seed: what makes two runs the same run), ``epoch``,
``epochs``, ``model`` (state dict), ``optimizer`` (AdamW state), ``history``,
``train_seconds``, ``augment``, ``network_input``, ``normalisation`` (mean, std),
``class_names``, ``versions``, ``complete``. An audio task's identity holds its front end
(``identity.task.frontend``: sample rate, clip, frame, hop, FFT length, mel bands,
coefficients, mel range, window, q15, the feature scaling; absent for other tasks), so
deploying rebuilds the same features and writes them into the bundle as C.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import torch

from micronas.errors import DataError, MicronasError
from micronas.infra.fileio import atomic_write
from micronas.tasks import Task
from micronas.tasks.frontend import FrontEnd

#: The file name inside a training output folder.
CHECKPOINT = "checkpoint.pt"
#: The format written; :data:`READABLE` lists every format :meth:`Checkpoint.load` reads.
FORMAT = "micronas-checkpoint-1"
READABLE = (FORMAT,)

JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]


@dataclass(frozen=True)
class DataInfo:
    """Where the training data came from, enough to reload the same split."""

    source: str
    ref: str
    split_seed: int
    train: int
    test: int

    def to_dict(self) -> dict[str, JSON]:
        return {"source": self.source, "ref": self.ref, "split_seed": self.split_seed,
                "train": self.train, "test": self.test}


@dataclass(frozen=True)
class Identity:
    """What makes two training runs the same run (a checkpoint of another run is refused)."""

    space: str
    arch: str
    task: Task
    data: DataInfo
    recipe: dict[str, JSON]
    seed: int

    def task_dict(self) -> dict[str, JSON]:
        d: dict[str, JSON] = {"name": self.task.name, "input_shape": list(self.task.input_shape),
                              "classes": self.task.classes}
        if self.task.frontend is not None:
            d["frontend"] = self.task.frontend.to_dict()
        return d

    def to_dict(self) -> dict[str, JSON]:
        return {"space": self.space, "arch": self.arch, "task": self.task_dict(),
                "data": self.data.to_dict(), "recipe": dict(self.recipe), "seed": self.seed}

    @staticmethod
    def from_dict(d: dict[str, object]) -> Identity:
        t = cast(dict[str, object], d["task"])
        data = cast(dict[str, object], d["data"])
        shape = tuple(int(v) for v in cast(list[int], t["input_shape"]))
        fe = t.get("frontend")
        return Identity(str(d["space"]), str(d["arch"]),
                        Task(str(t["name"]), cast(tuple[int, int, int], shape),
                             int(cast(int, t["classes"])),
                             frontend=None if fe is None else FrontEnd.from_dict(
                                 cast(dict[str, object], fe))),
                        DataInfo(str(data["source"]), str(data.get("ref", data["source"])),
                                 int(cast(int, data.get("split_seed", 0))),
                                 int(cast(int, data["train"])), int(cast(int, data["test"]))),
                        cast(dict[str, JSON], d["recipe"]), int(cast(int, d["seed"])))


@dataclass(frozen=True)
class Checkpoint:
    """A training run after ``epoch`` of ``epochs`` epochs."""

    identity: Identity
    epoch: int
    epochs: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, object]
    history: list[dict[str, float]]
    train_seconds: float
    augment: str
    network_input: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    versions: dict[str, str] = field(default_factory=dict)
    path: str | None = None       # where it was read from or written to

    @property
    def complete(self) -> bool:
        """Whether training ran every epoch."""
        return self.epoch == self.epochs

    def to_state(self) -> dict[str, object]:
        """The on-disk value (format :data:`FORMAT`)."""
        return {"format": FORMAT, "identity": self.identity.to_dict(), "epoch": self.epoch,
                "epochs": self.epochs, "model": self.model, "optimizer": self.optimizer,
                "history": self.history, "train_seconds": self.train_seconds,
                "augment": self.augment, "network_input": list(self.network_input),
                "normalisation": {"mean": list(self.mean), "std": list(self.std)},
                "class_names": list(self.class_names), "versions": self.versions,
                "complete": self.complete}

    @staticmethod
    def from_state(state: dict[str, object], path: str | None = None) -> Checkpoint:
        """The checkpoint of an on-disk value of a :data:`READABLE` format."""
        norm = cast(dict[str, list[float]], state["normalisation"])
        shape = tuple(int(v) for v in cast(list[int], state["network_input"]))
        return Checkpoint(
            Identity.from_dict(cast(dict[str, object], state["identity"])),
            int(cast(int, state["epoch"])), int(cast(int, state["epochs"])),
            cast(dict[str, torch.Tensor], state["model"]),
            cast(dict[str, object], state.get("optimizer", {})),
            list(cast(list[dict[str, float]], state["history"])),
            float(cast(float, state["train_seconds"])), str(state["augment"]),
            cast(tuple[int, int, int], shape), tuple(float(v) for v in norm["mean"]),
            tuple(float(v) for v in norm["std"]),
            tuple(str(n) for n in cast(list[str], state["class_names"])),
            {str(k): str(v) for k, v in cast(dict[str, str], state.get("versions", {})).items()},
            path)

    def save(self, path: str | Path) -> Checkpoint:
        """Write atomically to ``path``; this checkpoint with its ``path`` set."""
        p = Path(path)
        buf = io.BytesIO()
        torch.save(self.to_state(), buf)
        data = buf.getvalue()
        try:
            atomic_write(p, lambda f: f.write(data), binary=True)
        except OSError as e:
            raise MicronasError(f"cannot write {p} ({e.strerror}); choose another --out") from None
        return replace(self, path=str(p))

    @staticmethod
    def load(path: str | Path) -> Checkpoint:
        """Read a checkpoint file, or the one in a training output folder."""
        p = Path(path)
        if p.is_dir():
            p = p / CHECKPOINT
        if not p.is_file():
            raise DataError(f"checkpoint {p} not found; give the file (or the --out folder) "
                            "'micronas train' wrote")
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises many kinds; one line
            raise DataError(f"cannot read checkpoint {p} ({type(e).__name__}); it is not a "
                            "micronas checkpoint or it is damaged") from None
        if not isinstance(state, dict) or "format" not in state:
            raise DataError(f"{p} is not a micronas checkpoint (format {FORMAT})")
        if state["format"] not in READABLE:
            raise DataError(f"{p} is a checkpoint of format {state['format']!r}, which this "
                            f"micronas cannot read (it reads {', '.join(READABLE)}); use the "
                            "micronas version that wrote it")
        try:
            return Checkpoint.from_state(state, str(p))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"checkpoint {p} is incomplete or damaged (format "
                            f"{state['format']}); retrain") from None


__all__ = ["CHECKPOINT", "FORMAT", "READABLE", "Checkpoint", "DataInfo", "Identity"]
