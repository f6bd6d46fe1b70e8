"""Hardware: device profiles, the buffer planner and the MCU cost model."""

from micronas.hardware.cost import CostReport, LayerCost, estimate
from micronas.hardware.device import Device, builtin_devices, load_device
from micronas.hardware.planner import plan

__all__ = ["CostReport", "Device", "LayerCost", "builtin_devices", "estimate", "load_device",
           "plan"]
