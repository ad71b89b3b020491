"""bnncc: binarized / low-bit ONNX networks to bit-exact FPGA streaming dataflow accelerators."""

__version__ = "0.1.0"
