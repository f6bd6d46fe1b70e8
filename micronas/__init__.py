"""micronas: training-free, hardware-aware neural architecture search for microcontrollers."""

__version__ = "0.1.0"

from micronas.errors import MicronasError  # noqa: E402

__all__ = ["MicronasError", "__version__"]
