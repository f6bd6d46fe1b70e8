"""The audio front end of a keyword-spotting task: int16 samples -> q15 MFCCs -> int8 input.

A :class:`FrontEnd` is plain data (sample rate, clip length, frame and hop, FFT length, mel
bands, coefficients, the mel range, the window, the fixed-point type and the feature
scaling). Its features are computed with **CMSIS-DSP's own MFCC** (``arm_mfcc_q15`` of the
``cmsisdsp`` Python package, the same C code the board links) on the same tables the bundle
writes as C arrays (:meth:`FrontEnd.tables`, made with ``cmsisdsp.mfcc``), so the features a
network is trained on are the board's, bit for bit.

Why q15 and not f32: every step of ``arm_mfcc_q15`` is integer arithmetic (fixed-point FFT,
saturating dot products, the integer ``arm_vlog_q31``), so the x86 build of the Python
package, a Cortex-M4 with the DSP extension and a Cortex-M0+ without an FPU compute the same
bits; ``arm_mfcc_f32`` calls ``logf`` (libm: glibc on the host, newlib on the board) and its
sums may be contracted into fused multiply-adds by the compiler, so f32 features can differ in
the last bits between the host and the board. q15 also runs on the FPU-less Cortex-M0+
devices (rp2040, stm32g0b1). ``arm_mfcc_q15``'s output is q8.7 (int16, value / 128).

Feature scaling (:class:`FeatureScaling`): per coefficient ``k``, the int8 network input is
``sat8((mfcc - offset[k]) * multiplier[k] + 2**(shift - 1) >> shift)``, integer arithmetic
the board repeats exactly; the offsets and multipliers standardise each coefficient over the
training clips (mean 0, standard deviation :data:`INPUT_STEPS_PER_STD` steps), and the network
reads ``int8 / INPUT_STEPS_PER_STD`` (its input scale is ``1 / INPUT_STEPS_PER_STD``, zero
point 0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from micronas.errors import DataError, MicronasError

#: the int8 steps per standard deviation of a coefficient: the network's input scale is 1/32
INPUT_STEPS_PER_STD = 32
#: the right shift of the feature scaling's fixed-point multipliers
SCALING_SHIFT = 16
#: the install line of CMSIS-DSP's Python package
CMSISDSP_PIP = "pip install 'cmsisdsp>=1.10.3'"
#: FFT lengths CMSIS-DSP has a length-specific ``arm_mfcc_init_<N>_q15`` for
FFT_LENGTHS = (32, 64, 128, 256, 512, 1024, 2048, 4096)


def _cmsisdsp() -> Any:
    try:
        import cmsisdsp
        import cmsisdsp.datatype  # noqa: F401
        import cmsisdsp.fixedpoint  # noqa: F401
        import cmsisdsp.mfcc  # noqa: F401
    except ImportError:
        raise MicronasError(f"the audio front end needs CMSIS-DSP's Python package; install it "
                            f"with \"{CMSISDSP_PIP}\"") from None
    return cmsisdsp


@dataclass(frozen=True)
class FeatureScaling:
    """Per-coefficient int8 scaling of the q8.7 MFCCs (see the module's docstring)."""

    offsets: tuple[int, ...]        # q8.7 units
    multipliers: tuple[int, ...]    # >> shift
    shift: int = SCALING_SHIFT

    @staticmethod
    def fit(features: np.ndarray) -> FeatureScaling:
        """The scaling that standardises each coefficient of ``features`` (``(N, frames,
        coefficients)`` int16 q8.7): offset = the mean, rounded; multiplier =
        round(INPUT_STEPS_PER_STD * 2**shift / std)."""
        f = np.asarray(features, dtype=np.float64).reshape(-1, features.shape[-1])
        mean, std = f.mean(axis=0), f.std(axis=0)
        std = np.where(std > 1.0, std, 1.0)   # under one q8.7 step: constant, do not blow up
        mult = np.round(INPUT_STEPS_PER_STD * 2.0**SCALING_SHIFT / std)
        return FeatureScaling(tuple(int(v) for v in np.round(mean)),
                              tuple(int(v) for v in mult), SCALING_SHIFT)

    def apply(self, mfcc: np.ndarray) -> np.ndarray:
        """int8 network input of q8.7 MFCCs ``(..., coefficients)``: the board's integer
        arithmetic (int64 product, round half up, arithmetic shift, saturation)."""
        v = np.asarray(mfcc, dtype=np.int64)
        off = np.asarray(self.offsets, dtype=np.int64)
        mult = np.asarray(self.multipliers, dtype=np.int64)
        q = ((v - off) * mult + (1 << (self.shift - 1))) >> self.shift
        return np.clip(q, -128, 127).astype(np.int8)


@dataclass(frozen=True)
class FrontEnd:
    """MFCC front end parameters. Defaults: 8 kHz (the telephone band, which keeps speech's
    formants; half the FFT work of 16 kHz), 1 s clips, 32 ms frames (256 samples, the FFT
    length) every 20 ms (160 samples): 49 frames of 10 coefficients from 40 mel bands over
    20-4000 Hz, a periodic Hann window, q15."""

    sample_rate_hz: int = 8000
    clip_samples: int = 8000
    frame_samples: int = 256          # = the FFT length (arm_mfcc windows fftLen samples)
    hop_samples: int = 160
    mel_bands: int = 40
    coefficients: int = 10
    fmin_hz: float = 20.0
    fmax_hz: float = 4000.0
    window: str = "hann"
    dtype: str = "q15"
    scaling: FeatureScaling | None = None

    def __post_init__(self) -> None:
        if self.frame_samples not in FFT_LENGTHS:
            raise MicronasError(f"front end: the frame (FFT length) must be one of "
                                f"{', '.join(map(str, FFT_LENGTHS))} samples, not {self.frame_samples}")
        if self.dtype != "q15":
            raise MicronasError(f"front end: only q15 is supported (bit-exact on every core; "
                                f"f32's logf differs between host and board), not {self.dtype!r}")
        if self.window not in ("hann", "hamming"):
            raise MicronasError(f"front end: window must be hann or hamming, not {self.window!r}")
        if not (0 < self.hop_samples and self.frame_samples <= self.clip_samples):
            raise MicronasError("front end: needs hop > 0 and a frame no longer than the clip")
        if not (0 <= self.fmin_hz < self.fmax_hz <= self.sample_rate_hz / 2):
            raise MicronasError(f"front end: mel range {self.fmin_hz:g}-{self.fmax_hz:g} Hz must "
                                f"lie within 0-{self.sample_rate_hz / 2:g} Hz")
        if not (2 <= self.mel_bands and 1 <= self.coefficients <= self.mel_bands):
            raise MicronasError("front end: needs >= 2 mel bands and 1..mel_bands coefficients")

    @property
    def fft_length(self) -> int:
        return self.frame_samples

    @property
    def frames(self) -> int:
        return 1 + (self.clip_samples - self.frame_samples) // self.hop_samples

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """The network input (C, H, W): one channel, frames x coefficients."""
        return (1, self.frames, self.coefficients)

    def describe(self) -> str:
        """``MFCC q15: 16000 Hz, 1000 ms clips, 512-sample frames every 320, 40 mel -> 10``."""
        return (f"MFCC {self.dtype} (CMSIS-DSP): {self.sample_rate_hz} Hz, "
                f"{1000 * self.clip_samples / self.sample_rate_hz:g} ms clips, "
                f"{self.frame_samples}-sample {self.window} frames (FFT {self.fft_length}) every "
                f"{self.hop_samples}, {self.mel_bands} mel bands "
                f"{self.fmin_hz:g}-{self.fmax_hz:g} Hz -> {self.coefficients} coefficients, "
                f"{self.frames}x{self.coefficients}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scaling"] = None if self.scaling is None else {
            "offsets": list(self.scaling.offsets), "multipliers": list(self.scaling.multipliers),
            "shift": self.scaling.shift}
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> FrontEnd:
        s = d.get("scaling")
        scaling = None if s is None else FeatureScaling(
            tuple(int(v) for v in s["offsets"]), tuple(int(v) for v in s["multipliers"]),
            int(s["shift"]))
        keys = {k: v for k, v in d.items() if k != "scaling"}
        return FrontEnd(**keys, scaling=scaling)

    # --- CMSIS-DSP ---------------------------------------------------------------------------

    def tables(self) -> MfccTables:
        """The q15 window, sparse mel filters and DCT matrix (``cmsisdsp.mfcc``), exactly the
        const arrays the bundle's C holds."""
        dsp = _cmsisdsp()
        import scipy.signal

        win = scipy.signal.get_window(self.window, self.frame_samples, fftbins=True)
        lengths, positions, coefs = dsp.mfcc.melFilterMatrix(
            dsp.datatype.Q15, self.fmin_hz, self.fmax_hz, self.mel_bands, self.sample_rate_hz,
            self.fft_length)
        dct = dsp.mfcc.dctMatrix(dsp.datatype.Q15, self.coefficients, self.mel_bands)
        return MfccTables(np.asarray(dsp.fixedpoint.toQ15(win), dtype=np.int16),
                          np.asarray(positions, dtype=np.uint32),
                          np.asarray(lengths, dtype=np.uint32),
                          np.asarray(coefs, dtype=np.int16), np.asarray(dct, dtype=np.int16))

    def mfcc(self, clips: np.ndarray) -> np.ndarray:
        """q8.7 MFCCs ``(N, frames, coefficients)`` int16 of int16 clips ``(N, clip_samples)``,
        frame by frame through ``arm_mfcc_q15``."""
        dsp = _cmsisdsp()
        t = self.tables()
        inst = dsp.arm_mfcc_instance_q15()
        st = dsp.arm_mfcc_init_q15(inst, self.fft_length, self.mel_bands, self.coefficients,
                                   t.dct, t.filter_positions.tolist(),
                                   t.filter_lengths.tolist(), t.filter_coefs, t.window)
        if st != 0:
            raise MicronasError(f"arm_mfcc_init_q15 failed with status {st} for {self.describe()}")
        clips = np.asarray(clips, dtype=np.int16).reshape(-1, self.clip_samples)
        tmp = np.zeros(2 * self.fft_length, dtype=np.int32)
        out = np.empty((len(clips), self.frames, self.coefficients), dtype=np.int16)
        for i, clip in enumerate(clips):
            for f in range(self.frames):
                s = f * self.hop_samples
                st, v = dsp.arm_mfcc_q15(inst, clip[s:s + self.frame_samples].copy(), tmp)
                if st != 0:
                    raise MicronasError(f"arm_mfcc_q15 failed with status {st}")
                out[i, f] = v
        return out

    def features(self, clips: np.ndarray) -> np.ndarray:
        """The int8 network input ``(N, frames, coefficients)`` of int16 clips (needs the
        scaling)."""
        if self.scaling is None:
            raise MicronasError("front end: the feature scaling is not fitted yet")
        return self.scaling.apply(self.mfcc(clips))


@dataclass(frozen=True)
class MfccTables:
    """CMSIS-DSP's MFCC tables (q15 / uint32), in ``arm_mfcc_init_q15``'s order."""

    window: np.ndarray
    filter_positions: np.ndarray
    filter_lengths: np.ndarray
    filter_coefs: np.ndarray
    dct: np.ndarray

    def flash_bytes(self) -> int:
        return int(2 * (self.window.size + self.filter_coefs.size + self.dct.size)
                    + 4 * (self.filter_positions.size + self.filter_lengths.size))


# --- clips ----------------------------------------------------------------------------------

def to_clip(samples: np.ndarray, rate_hz: int, fe: FrontEnd, source: str) -> np.ndarray:
    """int16 samples at the front end's rate and clip length: resampled with
    ``scipy.signal.resample_poly`` when the rate differs, then the loudest clip-long window
    kept (most energy; the earliest on ties) or, when shorter, centred between zeros."""
    x = np.asarray(samples, dtype=np.float64)
    if rate_hz != fe.sample_rate_hz:
        from math import gcd

        import scipy.signal

        g = gcd(int(rate_hz), fe.sample_rate_hz)
        x = scipy.signal.resample_poly(x, fe.sample_rate_hz // g, int(rate_hz) // g)
    x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    n = fe.clip_samples
    if len(x) == 0:
        raise DataError(f"data {source}: the WAV file holds no samples")
    if len(x) > n:
        e = np.concatenate([[0], np.cumsum(x.astype(np.int64) ** 2)])
        start = int(np.argmax(e[n:] - e[:-n]))
        return x[start:start + n]
    out = np.zeros(n, dtype=np.int16)
    start = (n - len(x)) // 2
    out[start:start + len(x)] = x
    return out


__all__ = ["CMSISDSP_PIP", "FFT_LENGTHS", "INPUT_STEPS_PER_STD", "FeatureScaling", "FrontEnd",
           "MfccTables", "to_clip"]
