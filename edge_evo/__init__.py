"""edge_evo: gradient-free, on-device learning of small neural networks.

What you simulate is what the device does, bit for bit: the integer kernels here are the
source of truth that the C runtime and the integer ONNX graph are checked against.
"""
__version__ = "0.1.0"

NUMERICS_CONTRACT = "edge_evo-int8-pow2-v1"
