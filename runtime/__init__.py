"""litevit.runtime: the thin, torch-free runtime.

Runners (ONNX Runtime, TensorRT, and torch eager for reference) behind one small interface,
the TensorRT engine build layer for TensorRT 8.5 through 11, and the latency/FPS/FLOPs
benchmark, report generator, ``doctor`` and server built on them. Must import without torch,
since a Jetson serving engines has TensorRT, numpy and cuda-python/pycuda only. Filled by the
runtime, TensorRT-build and serving issues.
"""
