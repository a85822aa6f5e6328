"""Optional dependencies: one sentence, naming the extra to install, when one is missing."""

from __future__ import annotations

import importlib.util

from litevit.errors import MissingDependencyError

# What each optional package enables, and how to install it. Keys are import names, except
# "cuda-python", which stands for "a CUDA binding" (cuda-python or pycuda: either will do).
_EXTRA_FOR = {
    "torch": ("the model zoo, FLOP counting and export", "pip install 'litevit[author]' (torch)"),
    "onnxscript": ("ONNX export", "pip install 'litevit[author]'"),
    "onnxruntime": ("the ONNX Runtime backend", "pip install 'litevit[ort]' (or onnxruntime-gpu)"),
    "onnxruntime-gpu": (
        "ONNX Runtime on a CUDA GPU",
        "pip uninstall onnxruntime && pip install onnxruntime-gpu (same module, GPU build)",
    ),
    "tensorrt": (
        "the TensorRT backend",
        "pip install tensorrt (on a Jetson it comes with JetPack: sudo apt install python3-libnvinfer)",
    ),
    "pycocotools": (
        "scoring detectors (COCO box and mask AP, mask RLE)",
        "pip install 'litevit[det]' (pycocotools)",
    ),
    "cuda-python": (
        "the TensorRT backend's device buffers and CUDA streams",
        "pip install cuda-python (or pycuda)",
    ),
}


def has(module: str) -> bool:
    """Whether ``module`` (dotted names allowed) is installed, without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ModuleNotFoundError, ValueError):
        # find_spec imports the parent of a dotted name: an absent parent means absent; a
        # module blocked with sys.modules[name] = None raises ValueError.
        return False
    # A bare folder of that name on sys.path (a source checkout, a stubs-only package) imports
    # as an empty namespace package: that is not the library.
    return spec is not None and spec.origin is not None


def missing(module: str) -> MissingDependencyError:
    """The one-sentence error for an absent optional ``module``."""
    what, how = _EXTRA_FOR.get(module, ("this feature", f"pip install {module}"))
    return MissingDependencyError(f"{module} is not installed; {what} needs it: {how}.")


def require(module: str) -> None:
    if not has(module):
        raise missing(module)


def require_torch() -> None:
    require("torch")
