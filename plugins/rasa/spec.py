"""RASA's kernel spec: the Python mirror of ``rasa_core.cpp``.

``output_shape`` gives what :func:`litevit.ops.rasa.rasa_output_shape` gives (without torch), and
``launch`` exactly what ``RasaOp::launch`` gives, refusals included with the same sentences;
``tests/plugins/test_rasa_core.py`` checks both against the reference and the C++ core.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..kernels import (
    INT32_MAX,
    MAX_GRID_YZ,
    AffineDim,
    KernelSpec,
    Launch,
    is_known,
    may_equal,
    plane_launch,
)

# RasaOp::kMaxDilations: the kernel takes the dilations as this many int32 arguments.
MAX_DILATIONS = 8
# RasaOp::kMaxThreadsPerBlock, the kernel's __launch_bounds__.
MAX_THREADS_PER_BLOCK = 256


def _ints(value: Any) -> list[int]:
    """An attribute's values: an int, or a sequence (list, NumPy array) of ints."""
    if isinstance(value, numbers.Integral):
        return [int(value)]
    return [int(v) for v in value]


def _attributes(attrs: Mapping[str, Any]) -> tuple[list[int], int]:
    """(dilations, kernel_size), validated as ``RasaOp::fromAttributes`` validates them."""
    for name in ("kernel_size", "dilations"):
        if name not in attrs:
            raise ValueError(f"RASA needs the attribute {name}.")
    kernel_size = _ints(attrs["kernel_size"])
    dilations = _ints(attrs["dilations"])
    if len(kernel_size) != 1:
        raise ValueError(f"RASA's kernel_size attribute must be one integer; got {len(kernel_size)} values.")
    (size,) = kernel_size
    if size < 1 or size % 2 == 0:
        raise ValueError(f"RASA needs an odd kernel_size (same-size output); got {size}.")
    if not dilations or any(d < 1 for d in dilations):
        raise ValueError(f"RASA needs a non-empty list of dilations >= 1; got {dilations}.")
    if len(dilations) > MAX_DILATIONS:
        raise ValueError(f"RASA's kernel takes at most {MAX_DILATIONS} dilations; got {len(dilations)}.")
    return dilations, size


def _checked_query(shapes: Sequence[tuple[int, ...]], kernel_size: int) -> tuple[int, ...]:
    """q's shape, after the checks of ``RasaOp::checkInputs`` (dims not known yet pass)."""
    if len(shapes) != 2:
        raise ValueError(f"RASA takes 2 inputs (q, weight); got {len(shapes)}.")
    q, weight = (tuple(int(d) for d in shape) for shape in shapes)
    if len(q) != 4:
        raise ValueError(f"RASA takes a 4-D (B, C, H, W) query; got shape {q}.")
    expected_weight = (q[1], 1, kernel_size, kernel_size)
    if not may_equal(expected_weight, weight):
        raise ValueError(f"RASA weight must have shape {expected_weight} for query {q}; got {weight}.")
    return q


def output_shape(shapes: Sequence[tuple[int, ...]], attrs: Mapping[str, Any]) -> tuple[int, ...]:
    """(B, C, H, W) of q."""
    _, kernel_size = _attributes(attrs)
    return _checked_query(shapes, kernel_size)


def output_dims(attrs: Mapping[str, Any]) -> tuple[AffineDim, ...]:
    """The output is q's shape, axis by axis."""
    _attributes(attrs)
    return tuple(AffineDim(input=0, axis=axis, scale=1, offset=0) for axis in range(4))


def launch(shapes: Sequence[tuple[int, ...]], attrs: Mapping[str, Any]) -> Launch:
    """One thread per output element: grid (plane blocks, C, B), scalars (C, H, W, k, n, 8 dilation slots)."""
    dilations, kernel_size = _attributes(attrs)
    q = _checked_query(shapes, kernel_size)
    if not all(map(is_known, q)):
        raise ValueError(f"RASA cannot launch for a query with negative dims; got {q}.")
    weight = tuple(int(d) for d in shapes[1])
    if not all(map(is_known, weight)):
        raise ValueError(f"RASA cannot launch for a weight with negative dims; got {weight}.")
    batch, channels, height, width = q
    if batch > MAX_GRID_YZ or channels > MAX_GRID_YZ:
        raise ValueError(
            f"RASA's launch takes at most 65535 batches and 65535 channels (CUDA grid y, z); got {q}."
        )
    reach = kernel_size // 2 * max(dilations)
    if height * width > INT32_MAX or max(height, width) + reach > INT32_MAX or kernel_size**2 > INT32_MAX:
        raise ValueError(
            "RASA's kernel indexes with int32: H*W, k*k and H or W plus (k//2)*dilation must stay below 2^31;"
            f" got query {q}."
        )
    slots = tuple(dilations) + (0,) * (MAX_DILATIONS - len(dilations))
    scalars = (channels, height, width, kernel_size, len(dilations), *slots)
    return plane_launch(height * width, MAX_THREADS_PER_BLOCK, channels, batch, scalars)


SPEC = KernelSpec(
    op_type="RASA",
    source=Path(__file__).with_name("rasa_kernel.cu"),
    kernels={"float32": "litevit_rasa_f32", "float16": "litevit_rasa_f16"},
    num_inputs=2,
    attribute_names=("dilations", "kernel_size"),
    output_shape=output_shape,
    output_dims=output_dims,
    launch=launch,
)
