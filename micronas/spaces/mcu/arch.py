"""Architecture values of the ``mcu`` space and their one canonical string.

An architecture is a width multiplier, an optional input resolution, a head width and six
stages of inverted-residual blocks, each block a depthwise kernel and an expansion ratio.
The canonical string, in the spirit of timm's block strings::

    w0.35_r96_h1280|k3e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6

``w`` the width multiplier (0.2-1.0), ``r`` the input side (omitted: the task's input as it
is), ``h`` the channels of the 1x1 head convolution before pooling (``h0``: none), then one
``|``-separated group per stage (1-4 blocks), each block ``k<kernel>e<expansion>`` with
kernel 3, 5 or 7 and expansion 3, 4 or 6. The stage template (output channels before the
width multiplier, stride) is MobileNetV2's: see :data:`STAGES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from micronas.errors import ArchError

#: (output channels at width 1.0, stride) of the six searched stages (MobileNetV2's,
#: after its fixed stem and first block).
STAGES = ((24, 2), (32, 2), (64, 2), (96, 1), (160, 2), (320, 1))
STEM_CHANNELS = 32      # the 3x3 stride-2 stem convolution
FIRST_CHANNELS = 16     # the fixed first block (depthwise 3x3, project; expansion 1)
KERNELS = (3, 5, 7)
EXPANSIONS = (3, 4, 6)
MAX_DEPTH = 4
#: Width multipliers the search draws (the parser accepts any 0.20-1.00 in steps of 0.01).
WIDTHS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.75, 1.0)
#: Head widths the search draws (the parser also accepts 0, no head conv, and any multiple of
#: 8 up to 4096). ``h0`` is not drawn: a network whose pooled features are a linear function
#: of a BatchNorm output has, with batch statistics (TE-NAS's NTK), logits summing to a
#: constant over the batch for every earlier weight, so its NTK is singular by construction.
HEADS = (128, 256, 512, 1024, 1280)


def make_divisible(v: float, divisor: int = 8) -> int:
    """MobileNetV2's channel rounding: the nearest multiple of ``divisor`` (at least
    ``divisor``), never more than 10 % below ``v``."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


@dataclass(frozen=True, order=True)
class Block:
    """One inverted-residual block: depthwise kernel size and expansion ratio."""

    kernel: int
    expand: int

    def __str__(self) -> str:
        return f"k{self.kernel}e{self.expand}"


@dataclass(frozen=True)
class McuArch:
    """A network of the ``mcu`` space. ``width`` in hundredths (35 = 0.35); ``resolution``
    the input side (None: the task's input as it is); ``head`` channels (0: no head conv)."""

    width: int
    resolution: int | None
    head: int
    stages: tuple[tuple[Block, ...], ...]

    @property
    def width_multiplier(self) -> float:
        return self.width / 100

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(s) for s in self.stages)

    def __str__(self) -> str:
        res = "" if self.resolution is None else f"_r{self.resolution}"
        body = "|".join(",".join(map(str, s)) for s in self.stages)
        return f"w{self.width / 100:.2f}".rstrip("0").rstrip(".") + f"{res}_h{self.head}|{body}"


_HEADER = re.compile(r"^w(?P<w>[0-9.]+)(?:_r(?P<r>[0-9]+))?_h(?P<h>[0-9]+)$")
_BLOCK = re.compile(r"^k(?P<k>[0-9]+)e(?P<e>[0-9]+)$")
EXAMPLE = "w0.35_r96_h1280|k3e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6"


def _fail(text: str, pos: int, what: str, example: bool = False) -> ArchError:
    tail = f" (e.g. {EXAMPLE})" if example else ""
    return ArchError(f"mcu architecture {text!r}, character {pos + 1}: {what}{tail}")


def _check(cond: bool, text: str, pos: int, what: str, example: bool = False) -> None:
    if not cond:
        raise _fail(text, pos, what, example)


def _names(values: tuple[int, ...]) -> str:
    return ", ".join(map(str, values))


def parse_arch(text: str) -> McuArch:
    """Parse the canonical string; errors name the character position and the allowed
    values."""
    s = str(text).strip()
    if not s.isascii() or any(c.isspace() for c in s):
        raise ArchError(f"mcu architecture {text!r}: only ASCII letters, digits and _ | , . "
                        f"are allowed, no spaces (e.g. {EXAMPLE})")
    parts = s.split("|")
    head = parts[0]
    m = _HEADER.match(head)
    if not m:
        raise _fail(s, 0, f"the header {head!r} must be w<width>[_r<resolution>]_h<head "
                    "channels>, then 6 '|'-separated stages of k<kernel>e<expansion> blocks", example=True)
    try:
        w = float(m.group("w"))
    except ValueError:
        raise _fail(s, m.start("w"), f"width {m.group('w')!r} is not a number") from None
    width = round(w * 100)
    _check(0.2 <= w <= 1.0 and abs(width - w * 100) < 1e-6, s, m.start("w"),
           f"width {m.group('w')} must be 0.2 to 1.0 in steps of 0.01 (the search draws "
           f"{', '.join(map(str, WIDTHS))})")
    res = None
    if m.group("r") is not None:
        res = int(m.group("r"))
        _check(8 <= res <= 4096, s, m.start("r"), f"resolution {res} must be 8 to 4096")
    h = int(m.group("h"))
    _check(h == 0 or (h % 8 == 0 and 8 <= h <= 4096), s, m.start("h"),
           f"head {h} must be 0 (no head conv) or a multiple of 8 up to 4096 (the search "
           f"draws {_names(HEADS)})")
    _check(len(parts) == len(STAGES) + 1, s, len(s) - 1 if len(parts) < 7 else
           len("|".join(parts[:7])),
           f"{len(parts) - 1} stage(s) given; the space has {len(STAGES)} "
           "('|'-separated groups of blocks)", example=True)
    stages = []
    pos = len(head) + 1
    for i, group in enumerate(parts[1:], 1):
        blocks = group.split(",") if group else []
        _check(1 <= len(blocks) <= MAX_DEPTH, s, pos,
               f"stage {i} has {len(blocks)} block(s); each stage has 1 to {MAX_DEPTH}")
        out = []
        bpos = pos
        for j, tok in enumerate(blocks, 1):
            bm = _BLOCK.match(tok)
            where = f"stage {i}, block {j} ({tok!r})"
            _check(bm is not None, s, bpos, f"{where} must be k<kernel>e<expansion>, e.g. k3e6")
            k, e = int(bm.group("k")), int(bm.group("e"))
            _check(k in KERNELS, s, bpos + bm.start("k"),
                   f"{where}: kernel {k} is not one of {_names(KERNELS)}")
            _check(e in EXPANSIONS, s, bpos + bm.start("e"),
                   f"{where}: expansion {e} is not one of {_names(EXPANSIONS)}")
            out.append(Block(k, e))
            bpos += len(tok) + 1
        stages.append(tuple(out))
        pos += len(group) + 1
    return McuArch(width, res, h, tuple(stages))
