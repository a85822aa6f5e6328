"""litevit.plugins: CUDA kernels and TensorRT plugins for CSA, RASA and GhostHead.

One folder per op (``csa/``, ``rasa/``, ``ghost_head/``), each with its CUDA kernel (FP32/FP16, one
source that nvcc and NVRTC both compile), its TensorRT-independent C++ core (attributes, shape
checks, output dims, launch configuration), its Python mirror ``spec.py`` and a README in
TensorRT-OSS style. The op's reference and ONNX contract live in ``litevit/ops/``.

* ``kernels.py``: the kernel contract in Python (``KernelSpec``, ``Launch``, ``AffineDim``, ``specs()``).
* ``common/``: the C++ shared by every op: contract types, attribute serialization, the generic
  kernel launcher and the TensorRT glue (``IPluginV2DynamicExt`` for TensorRT 8.5/8.6, ``IPluginV3``
  for >= 10) with the library's creators and entry points.
* ``CMakeLists.txt`` and ``build.py``: ``litevit plugins build|path|check`` compiles
  ``liblitevit_plugins.so`` on the target, finds it and checks TensorRT registers its plugins.
* ``compile.py``: nvcc, NVRTC and g++ drivers (CI's compile checks, the Python plugin path).
* ``python_plugin.py``: ``IPluginV3`` in Python over NVRTC-compiled kernels (TensorRT >= 10, no compiler
  needed on the target).

Importing this package, or any module here, needs neither torch nor CUDA nor TensorRT.
"""
