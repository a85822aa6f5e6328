"""litevit: lightweight vision transformers (LVT, ELSA, Mobile-Former, SegViT) from PyTorch to
ONNX, TensorRT engines and edge serving.

``import litevit`` needs only numpy: the deployment side (runners, bench, report, serve) runs
on a Jetson without torch. The authoring API below (models, FLOP counting, checkpoint loading)
imports torch on first use.
"""

from __future__ import annotations

from typing import Any

from litevit.errors import LitevitError

__version__ = "0.1.0"

_LAZY = {
    "create_model": ("litevit.models", "create_model"),
    "list_models": ("litevit.models", "list_models"),
    "get_model_cfg": ("litevit.models", "get_model_cfg"),
    "load_pretrained": ("litevit.models", "load_pretrained"),
    "count_model": ("litevit.flops", "count_model"),
}

__all__ = [
    "LitevitError",
    "__version__",
    "count_model",
    "create_model",
    "get_model_cfg",
    "list_models",
    "load_pretrained",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        from litevit._deps import require_torch

        require_torch()
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'litevit' has no attribute {name!r}")
