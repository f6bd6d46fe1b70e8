"""Measuring int8 networks without a board: the Arm toolchain (``toolchain``), the
emulated Cortex-M core (``emulate``), per-layer measurement with a cache (``layers``) and the
cost model's calibration from emulated layers or board measurements (``calibration``)."""
