"""Optional dependencies: one sentence, naming the extra to install, when one is missing."""

from __future__ import annotations

import importlib.util

from litevit.errors import MissingDependencyError

_EXTRA_FOR = {
    "torch": ("the model zoo, FLOP counting and export", "pip install 'litevit[author]' (torch)"),
    "onnxscript": ("ONNX export", "pip install 'litevit[author]'"),
    "onnxruntime": ("the ONNX Runtime backend", "pip install 'litevit[ort]' (or onnxruntime-gpu)"),
}


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def require(module: str) -> None:
    if not has(module):
        what, how = _EXTRA_FOR.get(module, ("this feature", f"pip install {module}"))
        raise MissingDependencyError(f"{module} is not installed; {what} needs it: {how}.")


def require_torch() -> None:
    require("torch")
