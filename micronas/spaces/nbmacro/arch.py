"""NAS-Bench-Macro architecture values (Su et al., CVPR 2021) and their isomorphism classes.

An architecture is 8 digits, one per searchable layer: ``0`` identity, ``1`` MB3_K3 (inverted
residual, expansion 3, kernel 3), ``2`` MB6_K5 (expansion 6, kernel 5). The layers form three
stages of 2, 3 and 3; the first layer of each stage halves the resolution and doubles the
channels (32 -> 64 -> 128 -> 256), so its "identity" is a 1x1 stride-2 convolution. Inside a
stage every other identity is a plain pass-through: moving one changes nothing the network
computes, so ``1 0 2`` and ``1 2 0`` are one function. The canonical member of a class keeps
each stage's non-identity layers in order and its identities last; the 6,561 codes form
9 x 21 x 21 = 3,969 classes.
"""

from __future__ import annotations

from dataclasses import dataclass

from micronas.errors import ArchError

#: Searchable layers per stage.
STAGE_DEPTHS = (2, 3, 3)
#: Output channels of the stem and of each stage.
STEM_CHANNELS = 32
STAGE_CHANNELS = (64, 128, 256)
HEAD_CHANNELS = 1280
#: The three choices of a layer: (name, expansion, kernel); identity has neither.
CHOICES: tuple[tuple[str, int, int], ...] = (("identity", 0, 0), ("MB3_K3", 3, 3),
                                             ("MB6_K5", 6, 5))
LAYERS = sum(STAGE_DEPTHS)
NUM_ARCHS = len(CHOICES) ** LAYERS  # 6,561
NUM_CLASSES = 3969


def stages_of(ops: tuple[int, ...]) -> list[tuple[int, ...]]:
    """``ops`` split into its three stages."""
    out, i = [], 0
    for d in STAGE_DEPTHS:
        out.append(ops[i:i + d])
        i += d
    return out


@dataclass(frozen=True, order=True)
class NBMacroArch:
    """One NAS-Bench-Macro network: ``ops[i]`` is layer i's choice (0, 1 or 2)."""

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != LAYERS or any(o not in (0, 1, 2) for o in self.ops):
            raise ArchError(f"a NAS-Bench-Macro architecture is {LAYERS} choices of 0, 1, 2; "
                            f"got {self.ops!r}")

    @classmethod
    def from_string(cls, text: str) -> NBMacroArch:
        s = str(text).strip()
        if len(s) != LAYERS or any(c not in "012" for c in s):
            raise ArchError(f"cannot read NAS-Bench-Macro architecture {s!r}: give {LAYERS} "
                            "digits, each 0 (identity), 1 (MB3_K3) or 2 (MB6_K5), e.g. 22212220")
        return cls(tuple(int(c) for c in s))

    @classmethod
    def from_code(cls, code: int) -> NBMacroArch:
        """The architecture whose digits are ``code`` in base 3 (first layer most
        significant)."""
        if not 0 <= code < NUM_ARCHS:
            raise ArchError(f"NAS-Bench-Macro code {code} out of range 0..{NUM_ARCHS - 1}")
        ops = []
        for _ in range(LAYERS):
            code, d = divmod(code, 3)
            ops.append(d)
        return cls(tuple(reversed(ops)))

    @property
    def code(self) -> int:
        c = 0
        for o in self.ops:
            c = c * 3 + o
        return c

    def canonical(self) -> NBMacroArch:
        """The class member with each stage's pass-through identities moved last."""
        out: list[int] = []
        for st in stages_of(self.ops):
            rest = [o for o in st[1:] if o]
            out += [st[0], *rest, *[0] * (len(st) - 1 - len(rest))]
        return NBMacroArch(tuple(out))

    def __str__(self) -> str:
        return "".join(str(o) for o in self.ops)
