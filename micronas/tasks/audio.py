"""A folder of WAV clips, one sub-folder per class (or ``train/`` and ``test/`` with class
folders): read with the standard library's ``wave`` (8/16/24/32-bit integer PCM, mono or
multi-channel averaged to mono), resampled to the front end's rate, cut or padded to its clip
length (:func:`micronas.tasks.frontend.to_clip`) and turned into int8 MFCC feature maps
(:class:`~micronas.tasks.frontend.FrontEnd`).

Bad input, each refused with one :class:`~micronas.errors.DataError` line naming the file:
clips of different sample rates in one folder (the first clip's rate is the folder's; a clip
at another rate is named with both rates: converting them silently would hide a recording
mistake, so they are refused; clips that share a rate other than the front end's are
resampled), a file ``wave`` cannot read (not RIFF/WAVE, not integer PCM, truncated), an empty
class folder.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from micronas.errors import DataError
from micronas.tasks.frontend import FrontEnd, to_clip

WAV_SUFFIX = ".wav"


def is_audio_folder(root: Path) -> bool:
    """Whether ``root`` (``CLASS/*.wav`` or ``train|test/CLASS/*.wav``) holds WAV clips."""
    for d in (root, root / "train"):
        if not d.is_dir():
            continue
        for c in d.iterdir():
            if c.is_dir() and any(p.suffix.lower() == WAV_SUFFIX for p in c.iterdir()):
                return True
    return False


def wav_files(d: Path) -> list[Path]:
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() == WAV_SUFFIX)
    if not files:
        raise DataError(f"data {d}: class folder is empty (no {WAV_SUFFIX} files)")
    return files


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(float samples in int16 units, mono; sample rate in Hz) of a PCM WAV file."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            n = w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError, OSError) as e:
        raise DataError(f"data {path}: cannot read the WAV file ({e}); remove or replace it "
                        "(integer PCM WAV files only)") from None
    if len(raw) != n * width * channels or n == 0:
        raise DataError(f"data {path}: the WAV file is truncated or empty ({len(raw)} bytes of "
                        f"{n * width * channels}); remove or replace it")
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / 256.0).astype(np.float64)
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    else:
        raise DataError(f"data {path}: {8 * width}-bit samples are not supported (8/16/24/32-bit "
                        "PCM)")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return x, rate


def read_clips(items: list[tuple[Path, int]], fe: FrontEnd,
               rates: dict[int, Path]) -> tuple[np.ndarray, np.ndarray]:
    """int16 clips ``(N, clip_samples)`` and labels of ``(path, label)`` items; ``rates``
    collects the folder's sample rate (its first clip's) and refuses another."""
    clips = np.empty((len(items), fe.clip_samples), dtype=np.int16)
    for i, (p, _) in enumerate(items):
        x, rate = read_wav(p)
        if rates and rate not in rates:
            first_rate, first = next(iter(rates.items()))
            raise DataError(f"data {p}: sampled at {rate} Hz, but {first} is at {first_rate} Hz; "
                            "every clip must have the same sample rate (convert them first, "
                            f"e.g. 'sox IN.wav -r {first_rate} OUT.wav')")
        rates.setdefault(rate, p)
        clips[i] = to_clip(x, rate, fe, str(p))
    return clips, np.array([lab for _, lab in items], dtype=np.int64)


__all__ = ["WAV_SUFFIX", "is_audio_folder", "read_clips", "read_wav", "wav_files"]
