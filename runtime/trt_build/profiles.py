"""Optimisation profiles: min/opt/max shapes per input, from ``--shapes`` or the manifest's
dynamic axes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import onnx

from litevit._compat import strict_zip
from litevit.errors import LitevitError


# Dynamic batch profiles span 1..max(exported batch, 8), as litevit-export's trtexec hint does.
DEFAULT_MAX_BATCH = 8


@dataclass(frozen=True)
class ShapeRange:
    """One input's optimisation-profile shapes."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def _dims(text: str, spec: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise LitevitError(f"cannot read the shape {text!r} in --shapes {spec!r}; write dims as 1x3x224x224.")
    return dims


def parse_shapes(specs: Sequence[str]) -> dict[str, ShapeRange]:
    """``[NAME=]MIN[:OPT:MAX]`` per input (dims as 1x3x224x224; one shape fixes min = opt = max;
    NAME may be left out for a single-input graph) -> {name or "": range}."""
    ranges: dict[str, ShapeRange] = {}
    for spec in specs:
        name, _, shapes = spec.rpartition("=")
        parts = shapes.split(":")
        if len(parts) not in (1, 3):
            raise LitevitError(f"--shapes {spec!r} must be [NAME=]SHAPE or [NAME=]MIN:OPT:MAX.")
        dims = [_dims(part, spec) for part in parts]
        low, opt, high = (dims[0], dims[0], dims[0]) if len(dims) == 1 else dims
        if not len(low) == len(opt) == len(high) or not all(
            a <= b <= c for a, b, c in strict_zip(low, opt, high)
        ):
            raise LitevitError(f"--shapes {spec!r} needs min <= opt <= max in every dim, with one rank.")
        if name in ranges:
            raise LitevitError(f"--shapes names input {name or '(unnamed)'!r} twice.")
        ranges[name] = ShapeRange(low, opt, high)
    return ranges


def graph_inputs(model: onnx.ModelProto) -> list[tuple[str, list[int | None]]]:
    initializers = {t.name for t in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        inputs.append((value.name, dims))
    return inputs


def optimisation_profiles(
    model: onnx.ModelProto, manifest: Mapping[str, Any] | None, overrides: Mapping[str, ShapeRange]
) -> dict[str, ShapeRange]:
    """min/opt/max per input: ``overrides`` first; else a dynamic batch spans 1..max(batch, 8) at
    opt = the exported batch, and dynamic height/width stay at the exported size, or span the
    manifest's ``hw_range`` (detectors: the smallest canvas to a square of the export size's long
    side, opt = the export size). A static input keeps its shape. Every input is listed (static
    ones with min = opt = max)."""
    inputs = graph_inputs(model)
    overrides = dict(overrides)
    if "" in overrides:
        if len(inputs) != 1:
            raise LitevitError(
                f"--shapes without an input name needs a one-input graph; name one of "
                f"{', '.join(name for name, _ in inputs)} (NAME=MIN:OPT:MAX)."
            )
        overrides[inputs[0][0]] = overrides.pop("")
    unknown = sorted(set(overrides) - {name for name, _ in inputs})
    if unknown:
        raise LitevitError(
            f"--shapes names {', '.join(unknown)}, which the graph does not take; its inputs are "
            f"{', '.join(name for name, _ in inputs)}."
        )
    exported_batch = int(manifest["batch"]) if manifest else 1
    exported_hw = tuple(manifest["img_size"]) if manifest else None
    hw_range = manifest.get("hw_range") if manifest else None
    profiles: dict[str, ShapeRange] = {}
    for name, dims in inputs:
        if name in overrides:
            chosen = overrides[name]
            fits = len(chosen.min) == len(dims) and all(
                d is None or lo == hi == d for d, lo, hi in strict_zip(dims, chosen.min, chosen.max)
            )
            if not fits:
                raise LitevitError(
                    f"--shapes for {name!r} must have rank {len(dims)} and keep its static dims "
                    f"({'x'.join('?' if d is None else str(d) for d in dims)})."
                )
            profiles[name] = chosen
            continue
        per_axis: list[tuple[int, int, int]] = []
        for axis, dim in enumerate(dims):
            if dim is not None:
                per_axis.append((dim, dim, dim))
            elif axis == 0:
                per_axis.append((1, exported_batch, max(exported_batch, DEFAULT_MAX_BATCH)))
            elif exported_hw is not None and len(dims) == 4 and axis in (2, 3):
                size = int(exported_hw[axis - 2])
                if hw_range:
                    per_axis.append((int(hw_range["min"][axis - 2]), size, int(hw_range["max"][axis - 2])))
                else:
                    per_axis.append((size, size, size))
            else:
                raise LitevitError(
                    f"input {name!r} has a dynamic dim {axis} whose range litevit cannot infer here; "
                    f"give it with --shapes {name}=MIN:OPT:MAX."
                )
        low, opt, high = (tuple(column) for column in strict_zip(*per_axis))
        profiles[name] = ShapeRange(low, opt, high)
    return profiles
