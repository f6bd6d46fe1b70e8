"""Spoken-keyword test data: WAV clips made with espeak-ng (several voices, speeds, pitches),
noise mixed in with sox. Shared by the audio tests; not a test module."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

INSTALL = "apt-get install --no-install-recommends espeak-ng sox"
KEYWORDS = ("yes", "no", "up", "down")
UNKNOWN = ("cat", "left", "house", "seven", "bird", "tree", "go", "happy")
VOICES = ("en", "en-us", "en+f3", "en+m3", "en+f4")
SPEEDS = (120, 160, 200)
PITCHES = (30, 50, 70)
NOISES = (("whitenoise", 0.02), ("pinknoise", 0.04), ("brownnoise", 0.08))


def missing_tools() -> str | None:
    """The install line when espeak-ng or sox is absent, else None."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        return f"needs espeak-ng and sox: {INSTALL}"
    return None


def _say(text: str, voice: str, speed: int, pitch: int, out: Path) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w",
                    str(out), text], check=True, capture_output=True)


def _noisy(clean: Path, noise: tuple[str, float], out: Path) -> None:
    kind, vol = noise
    # -R: sox's repeatable random numbers (the same noise on every run)
    noise_wav = out.with_suffix(".noise.wav")
    info = subprocess.run(["soxi", "-D", str(clean)], capture_output=True, text=True, check=True)
    rate = subprocess.run(["soxi", "-r", str(clean)], capture_output=True, text=True, check=True)
    subprocess.run(["sox", "-R", "-n", "-r", rate.stdout.strip(), "-c", "1", "-b", "16",
                    str(noise_wav), "synth", info.stdout.strip(), kind, "vol", str(vol)],
                   check=True, capture_output=True)
    subprocess.run(["sox", "-R", "-m", str(clean), str(noise_wav), str(out)], check=True,
                   capture_output=True)
    noise_wav.unlink()


def make_kws_folder(root: Path, keywords: tuple[str, ...] = KEYWORDS,
                    unknown: tuple[str, ...] = UNKNOWN) -> Path:
    """``root/CLASS/*.wav``: each keyword spoken by every voice, speed and pitch (45 clips),
    clean and with one of three noises mixed in (90 clips a keyword), and an ``_unknown_``
    class of other words (as many clips, drawn the same way)."""
    root.mkdir(parents=True, exist_ok=True)
    variants = [(v, s, p) for v in VOICES for s in SPEEDS for p in PITCHES]
    for word in (*keywords, "unknown"):
        d = root / ("_unknown_" if word == "unknown" else word)
        d.mkdir(exist_ok=True)
        for i, (voice, speed, pitch) in enumerate(variants):
            text = unknown[i % len(unknown)] if word == "unknown" else word
            clean = d / f"{i:02d}_{voice.replace('+', '_')}_{speed}_{pitch}.wav"
            _say(text, voice, speed, pitch, clean)
            _noisy(clean, NOISES[i % len(NOISES)], clean.with_name(clean.stem + "_noisy.wav"))
    return root


if __name__ == "__main__":  # python tests/kws_audio.py OUTDIR: the data set the docs' build uses
    import sys

    if len(sys.argv) != 2 or missing_tools():
        sys.exit(missing_tools() or "usage: python tests/kws_audio.py OUTDIR")
    print(make_kws_folder(Path(sys.argv[1])))
