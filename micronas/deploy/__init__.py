"""Deployment: int8 quantisation, TFLite export and TFLM checks, C code generation, emulation."""
