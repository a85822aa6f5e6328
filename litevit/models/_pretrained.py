"""Loading the official releases' checkpoints into litevit models."""

from __future__ import annotations

import argparse
import os
from typing import Any

import torch
from torch import nn

from litevit.errors import CheckpointError
from litevit.models._registry import get_checkpoint_filter

# Wrappers the official training scripts put around the weights (timm: state_dict /
# state_dict_ema, mmcv: state_dict + meta, plain torch.save: the dict itself).
_WRAPPER_KEYS = ("state_dict", "model", "module")
_MAX_LISTED = 20


def read_state_dict(path: str | os.PathLike[str], *, use_ema: bool = False) -> dict[str, torch.Tensor]:
    """Read a checkpoint file and return its flat ``{key: tensor}`` state dict.

    Loads with ``weights_only=True`` (no arbitrary code); timm checkpoints also hold their
    ``argparse.Namespace`` of training arguments, which is allowed explicitly.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist or is not a file.")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path!r}: {first}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path!r} holds a {type(obj).__name__}, not a state dict.")
    if use_ema:
        if "state_dict_ema" not in obj:
            raise CheckpointError(f"checkpoint {path!r} has no 'state_dict_ema' entry.")
        obj = obj["state_dict_ema"]
    else:
        for key in _WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    state = {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(f"checkpoint {path!r} holds no tensors.")
    return state


def load_pretrained(
    model: nn.Module,
    path: str | os.PathLike[str] | dict[str, torch.Tensor],
    *,
    use_ema: bool = False,
) -> nn.Module:
    """Load an official checkpoint (file path or state dict) into a litevit model.

    The model family's ``checkpoint_filter_fn`` maps the release's key names onto ours. Any
    missing key, unexpected key or shape mismatch raises :class:`CheckpointError` listing them;
    nothing is loaded partially.
    """
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        raise CheckpointError("load_pretrained takes a model made by litevit.create_model.")
    state = path if isinstance(path, dict) else read_state_dict(path, use_ema=use_ema)
    where = "the given state dict" if isinstance(path, dict) else repr(os.fspath(path))
    state = convert_checkpoint(model, state)
    check_state_dict(model, state, where)
    model.load_state_dict(state, strict=True)
    return model


def convert_checkpoint(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an official state dict onto the model's key names (the family's filter fn)."""
    checkpoint_filter = get_checkpoint_filter(model.cfg.name)  # type: ignore[union-attr,arg-type]
    return checkpoint_filter(state, model) if checkpoint_filter is not None else state


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], where: str = "the state dict") -> None:
    """Raise :class:`CheckpointError` listing missing/unexpected keys and shape mismatches.

    Works on ``meta``-device models and state dicts, so key mappings of the largest models are
    checked without allocating their weights.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if keys:
            shown = ", ".join(keys[:_MAX_LISTED])
            more = f" and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else ""
            problems.append(f"{label} ({len(keys)}): {shown}{more}")
    if problems:
        name = getattr(getattr(model, "cfg", None), "name", type(model).__name__)
        raise CheckpointError(f"checkpoint {where} does not fit {name}: " + "; ".join(problems) + ".")


def checkpoint_keys(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of a model's state dict (used to compare against official key lists)."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def state_dict_from_key_list(keys: dict[str, Any], device: str = "cpu") -> dict[str, torch.Tensor]:
    """A zero-filled state dict with the given ``{key: shape}`` (for key-mapping tests)."""
    return {k: torch.zeros(tuple(shape), device=device) for k, shape in keys.items()}
