"""litevit.plugins: CUDA kernels and TensorRT plugins for CSA, RASA and GhostHead.

One folder per op (``plugins/csa/``, ``plugins/rasa/``, ``plugins/ghost_head/``) with its CUDA
source (FP32/FP16), its TensorRT plugin (C++ ``IPluginV2DynamicExt``/``IPluginV3`` and a Python
``IPluginV3`` path) and a README in TensorRT-OSS style; plus the commands that build, locate
and self-test ``liblitevit_plugins.so`` on the target. The op's reference and contract live in
``litevit/ops/``. Filled by the plugins issue.
"""
