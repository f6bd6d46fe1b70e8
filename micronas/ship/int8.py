"""A trained checkpoint in int8: its float network, calibration, quantisation, TFLM.

:func:`quantize_checkpoint`: the trained module -> ``(Network, weights)`` with BatchNorm
folded (:func:`micronas.deploy.weights.weights_from_torch`) -> int8 post-training
quantisation with activation ranges from training samples -> ``.tflite``.
:func:`tflm_accuracy` runs a test set through the TFLM interpreter itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from micronas.deploy.export import ExportResult, quantize_network
from micronas.deploy.quantize import FloatParams, QNetwork, TensorQuant
from micronas.deploy.weights import weights_from_torch
from micronas.errors import MicronasError
from micronas.ir import Network
from micronas.ship.checkpoint import Checkpoint
from micronas.ship.train import (
    checkpoint_input,
    evaluate,
    module_from_checkpoint,
    prepare_inputs,
)
from micronas.spaces import get_space
from micronas.tasks.data import Dataset, load_dataset
from micronas.tasks.frontend import INPUT_STEPS_PER_STD

CALIBRATION_SAMPLES = 256


@dataclass
class Trained:
    """A finished checkpoint's network as float IR (BatchNorm folded), its calibration batch,
    its float test accuracy and test set."""

    checkpoint: Checkpoint
    net: Network                   # the traced float network (BatchNorm folded)
    weights: dict[str, FloatParams]
    calibration: np.ndarray        # the float batch the activation ranges come from
    float_accuracy: float          # torch, eval mode, whole test set
    x_test: torch.Tensor           # float test inputs at the network's input size
    y_test: torch.Tensor
    #: the test inputs as stored (N, C, H, W) and what they are divided by before the
    #: normalisation (:func:`micronas.tasks.data.normalise`); None when the network reads
    #: them resized (a searched resolution), which the bundle's C does not repeat
    raw_test: np.ndarray | None = None
    raw_divisor: float = 1.0


@dataclass
class Int8Model:
    """A trained network quantised to int8, with its .tflite."""

    trained: Trained
    qnet: QNetwork                 # lowered for TFLM and quantised
    tflite: bytes
    index: dict[str, int]
    seconds: float = 0.0           # how long quantising took (float network included)

    @property
    def checkpoint(self) -> Checkpoint:
        return self.trained.checkpoint

    @property
    def net(self) -> Network:
        return self.trained.net

    @property
    def float_accuracy(self) -> float:
        return self.trained.float_accuracy

    @property
    def calibration_samples(self) -> int:
        return len(self.trained.calibration)

    @property
    def x_test(self) -> torch.Tensor:
        return self.trained.x_test

    @property
    def y_test(self) -> torch.Tensor:
        return self.trained.y_test


def dataset_of(ck: Checkpoint) -> Dataset:
    """Reload the data a checkpoint was trained on (same split)."""
    d = ck.identity.data
    ds = load_dataset(d.ref, seed=d.split_seed, frontend=ck.identity.task.frontend)
    if (len(ds.y_train), len(ds.y_test)) != (d.train, d.test):
        raise MicronasError(f"the data at {d.ref} changed since training ({d.train} / "
                            f"{d.test} samples then, {len(ds.y_train)} / {len(ds.y_test)} now); "
                            "retrain or restore it")
    return ds


def _checkpoint(checkpoint: str | Path | Checkpoint) -> Checkpoint:
    return checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint.load(checkpoint)


def trained_network(checkpoint: str | Path | Checkpoint, ds: Dataset | None = None,
                    calibration_samples: int = CALIBRATION_SAMPLES, seed: int = 0,
                    module: torch.nn.Module | None = None) -> Trained:
    """The float network of a finished checkpoint and ``calibration_samples`` seeded
    training samples (no augmentation) to calibrate its int8 ranges on. ``ds`` and
    ``module``: the training data and the trained module when the caller holds them (else
    reloaded from what the checkpoint records)."""
    ck = _checkpoint(checkpoint)
    if not ck.complete:
        raise MicronasError(f"checkpoint {ck.path} is from epoch {ck.epoch} of "
                            f"{ck.epochs}; finish training first (rerun 'micronas train' "
                            "with the same arguments)")
    if module is None:
        _, _, _, module = module_from_checkpoint(ck)
    ds = ds or dataset_of(ck)
    # what the network reads today: an mcu network at a lower resolution resizes the task's
    # input itself, so a checkpoint trained when the data was resized beforehand (its
    # network_input the lower side) loads as it is: the same torch bilinear resize, moved
    # inside the network, computes the same function on the task's data
    shape = checkpoint_input(ck)
    x_tr, x_te = prepare_inputs(ds, shape)
    y_te = torch.from_numpy(ds.y_test)
    float_acc = evaluate(module, x_te, y_te)
    net, weights = weights_from_torch(module, shape,
                                      name=f"{ck.identity.space}:{ck.identity.arch}")
    n = min(int(calibration_samples), len(x_tr))
    if n < 1:
        raise MicronasError("--calibration-samples must be at least 1")
    pick = np.sort(np.random.default_rng(seed).permutation(len(x_tr))[:n])
    calib = x_tr[torch.from_numpy(pick)].double().numpy()
    raw = ds.raw_test if ds.raw_test is not None and ds.input_shape == tuple(shape) else None
    return Trained(ck, net, weights, calib, float_acc, x_te, y_te, raw, ds.raw_divisor)


def quantize_checkpoint(checkpoint: str | Path | Checkpoint, ds: Dataset | None = None,
                        calibration_samples: int = CALIBRATION_SAMPLES, seed: int = 0,
                        module: torch.nn.Module | None = None) -> Int8Model:
    """int8 model of a trained checkpoint (:func:`trained_network`'s calibration; ``ds``
    and ``module`` as there)."""
    from micronas.deploy.tflite import build_tflite

    t0 = time.perf_counter()
    t = trained_network(checkpoint, ds, calibration_samples, seed, module)
    # an audio network reads the front end's int8 features as they are: its input
    # quantisation is the front end's (scale 1/INPUT_STEPS_PER_STD, zero point 0), not calibrated
    fixed = (None if t.checkpoint.identity.task.frontend is None
             else TensorQuant(1.0 / INPUT_STEPS_PER_STD, 0))
    qnet = quantize_network(t.net, t.weights, t.calibration, input_quant=fixed)
    data, index = build_tflite(qnet)
    return Int8Model(t, qnet, data, index, time.perf_counter() - t0)


def tflm_outputs(model: Int8Model, x: torch.Tensor,
                 progress: Callable[[int], None] | None = None) -> np.ndarray:
    """int8 outputs of the TFLM interpreter for float inputs ``x`` (quantised here)."""
    from micronas.deploy.tflite import run_tflm

    xq = model.qnet.input_quant.quantize(x.double().numpy())
    outs = []
    for i in range(0, len(xq), 250):
        outs.append(run_tflm(model.tflite, xq[i:i + 250]))
        if progress is not None:
            progress(len(xq[i:i + 250]))
    return np.concatenate(outs)


def tflm_accuracy(model: Int8Model, limit: int | None = None,
                  progress: Callable[[int], None] | None = None) -> tuple[float, int]:
    """Top-1 accuracy of the .tflite in the TFLM interpreter on the test set (all of it
    unless ``limit``) and the number of samples run."""
    n = len(model.y_test) if limit is None else min(limit, len(model.y_test))
    out = tflm_outputs(model, model.x_test[:n], progress)
    return float((out.argmax(1) == model.y_test[:n].numpy()).mean()), n


def export_checkpoint(checkpoint: str | Path, fmt: str, out: str | Path, arch: str | None = None,
                      check: bool = True, calibration_samples: int = CALIBRATION_SAMPLES,
                      ) -> ExportResult:
    """``micronas export --weights``: the trained network as int8 .tflite (calibrated on
    training samples) or float ONNX (BatchNorm folded), checked on two test samples."""
    from micronas.deploy.export import export

    ck = Checkpoint.load(checkpoint)
    want = ck.identity.arch
    if arch is not None and str(arch).strip() and str(arch).strip() != want:
        sp = get_space(ck.identity.space)
        if sp.format(sp.parse(arch)) != want:
            raise MicronasError(f"--weights {ck.path} holds architecture {want}, not {arch}; "
                                "drop the architecture or give the matching checkpoint")
    m = trained_network(ck, calibration_samples=calibration_samples)
    res = export(m.net, fmt, out, 0, m.calibration, check, m.weights,
                 m.x_test[:2].double().numpy(), f"trained ({ck.path}, epoch {ck.epoch})")
    res.checks["float_test_accuracy"] = m.float_accuracy
    return res


__all__ = ["CALIBRATION_SAMPLES", "Int8Model", "Trained", "dataset_of", "export_checkpoint",
           "quantize_checkpoint", "tflm_accuracy", "tflm_outputs", "trained_network"]
