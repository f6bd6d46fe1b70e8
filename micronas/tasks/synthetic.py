"""A seeded synthetic time-series task: six IMU-like "gestures" of 128 steps x 3 axes.

For smoke tests and demonstrations of 1-D inputs (``micronas build --data gestures.npz``):
no download, the same arrays for the same seed on every machine. Each sample is one gesture
on a 3-axis accelerometer-like signal, with a random amplitude (0.6-1.4), phase and time
shift, a constant per-axis offset (gravity, N(0, 0.5)) and white noise (sigma 0.35):

====  ===========================================================================
0     a slow wave (1-2 cycles per window) on axis x
1     a fast wave (5-7 cycles per window) on axis y
2     one Gaussian pulse on axis z at a random time
3     a pulse on x followed by an opposite pulse on y (a "flick")
4     a chirp (frequency rising through the window) on x and z together
5     a square wave (2-3 cycles) on axis y
====  ===========================================================================

The classes differ in frequency, axis and shape, so a network must look along time and
across axes; the noise and offsets keep a few percent of test errors for a small network.
``python -m micronas.tasks.synthetic OUT.npz`` writes ``x_train (N, 128, 3)``, ``y_train``,
``x_test``, ``y_test`` (float32 / int64).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from micronas.errors import MicronasError

GESTURES = ("slow-x", "fast-y", "pulse-z", "flick-xy", "chirp-xz", "square-y")
LENGTH, AXES = 128, 3


def _gesture(label: int, rng: np.random.Generator, length: int) -> np.ndarray:
    t = np.arange(length) / length
    amp = rng.uniform(0.6, 1.4)
    phase = rng.uniform(0, 2 * np.pi)
    x = np.zeros((length, AXES))
    if label == 0:
        x[:, 0] = amp * np.sin(2 * np.pi * rng.uniform(1, 2) * t + phase)
    elif label == 1:
        x[:, 1] = amp * np.sin(2 * np.pi * rng.uniform(5, 7) * t + phase)
    elif label == 2:
        c = rng.uniform(0.2, 0.8)
        x[:, 2] = 2 * amp * np.exp(-0.5 * ((t - c) / 0.04) ** 2)
    elif label == 3:
        c = rng.uniform(0.2, 0.6)
        x[:, 0] = 2 * amp * np.exp(-0.5 * ((t - c) / 0.04) ** 2)
        x[:, 1] = -2 * amp * np.exp(-0.5 * ((t - c - 0.15) / 0.04) ** 2)
    elif label == 4:
        f0 = rng.uniform(1, 2)
        wave = amp * np.sin(2 * np.pi * (f0 * t + 3 * t ** 2) + phase)
        x[:, 0], x[:, 2] = wave, wave
    else:
        x[:, 1] = amp * np.sign(np.sin(2 * np.pi * rng.uniform(2, 3) * t + phase))
    return x


def gestures(n_train: int = 3000, n_test: int = 600, seed: int = 0,
             length: int = LENGTH) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` data set: ``x_train`` (n_train, length, 3) float32 and
    ``y_train`` (n_train,) int64 labels 0..5 (balanced), likewise the test set, drawn from
    ``seed`` (train and test from independent streams)."""
    if not (isinstance(n_train, int) and n_train >= len(GESTURES)
            and isinstance(n_test, int) and n_test >= 1):
        raise MicronasError(f"gestures: need at least {len(GESTURES)} training samples and 1 "
                            f"test sample, got {n_train} and {n_test}")
    if not (isinstance(length, int) and length >= 16):
        raise MicronasError(f"gestures: length must be an integer >= 16, got {length}")
    out: dict[str, np.ndarray] = {}
    for part, n, stream in (("train", n_train, 0), ("test", n_test, 1)):
        rng = np.random.default_rng([seed, stream])
        y = np.arange(n) % len(GESTURES)
        rng.shuffle(y)
        x = np.stack([_gesture(int(lab), rng, length) for lab in y])
        x += rng.normal(0, 0.5, (n, 1, AXES))           # gravity / orientation offset
        x += rng.normal(0, 0.35, x.shape)               # sensor noise
        out[f"x_{part}"] = x.astype(np.float32)
        out[f"y_{part}"] = y.astype(np.int64)
    return out


def write_gestures(path: str | Path, **kw: int) -> Path:
    """Write :func:`gestures` (``kw``: its arguments) to the ``.npz`` ``path``; returns it."""
    p = Path(path)
    np.savez(p, **gestures(**kw), class_names=np.array(GESTURES))
    return p


if __name__ == "__main__":  # pragma: no cover - a convenience for the docs' example
    if len(sys.argv) != 2:
        sys.exit("usage: python -m micronas.tasks.synthetic OUT.npz")
    print(write_gestures(sys.argv[1]))
