"""The MCU space: MobileNetV2-style inverted-residual networks sized for a microcontroller
(width, depth, kernel, expansion, head and input resolution). Nothing outside this folder
names these types."""

from micronas.spaces.mcu.arch import (
    EXPANSIONS,
    HEADS,
    KERNELS,
    MAX_DEPTH,
    STAGES,
    WIDTHS,
    Block,
    McuArch,
    make_divisible,
)
from micronas.spaces.mcu.space import McuSpace

__all__ = ["EXPANSIONS", "HEADS", "KERNELS", "MAX_DEPTH", "STAGES", "WIDTHS", "Block",
           "McuArch", "McuSpace", "make_divisible"]
