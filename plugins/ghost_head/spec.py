"""GhostHead's kernel spec: the Python mirror of ``ghost_head_core.cpp``.

``output_shape`` gives what :func:`litevit.ops.ghost_head.ghost_head_output_shape` gives (without
torch), and ``launch`` exactly what ``GhostHeadOp::launch`` gives, refusals included with the same
sentences; ``tests/plugins/test_ghost_head_core.py`` checks both against the reference and the C++
core.
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
    ceil_div,
    is_known,
    may_equal,
    plane_launch,
)

# GhostHeadOp::kChannelsPerThread: channels of one head that one thread aggregates.
CHANNELS_PER_THREAD = 8
# GhostHeadOp::kMaxThreadsPerBlock, the kernel's __launch_bounds__.
MAX_THREADS_PER_BLOCK = 256


def _scalar(attrs: Mapping[str, Any], name: str) -> int:
    """An attribute that must be one int (a bare int, or a sequence or NumPy array of one)."""
    if name not in attrs:
        raise ValueError(f"GhostHead needs the attribute {name}.")
    value = attrs[name]
    values = [int(value)] if isinstance(value, numbers.Integral) else [int(v) for v in value]
    if len(values) != 1:
        raise ValueError(f"GhostHead's {name} attribute must be one integer; got {len(values)} values.")
    return values[0]


def _attributes(attrs: Mapping[str, Any]) -> tuple[int, int, int]:
    """(heads, kernel_size, dilation), validated as ``GhostHeadOp::fromAttributes`` validates them."""
    heads = _scalar(attrs, "heads")
    kernel_size = _scalar(attrs, "kernel_size")
    dilation = _scalar(attrs, "dilation")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"GhostHead: kernel_size must be odd and positive; got {kernel_size}.")
    if dilation < 1:
        raise ValueError(f"GhostHead: dilation must be >= 1; got {dilation}.")
    if heads < 1:
        raise ValueError(f"GhostHead: heads must be >= 1; got {heads}.")
    return heads, kernel_size, dilation


def _checked_values(shapes: Sequence[tuple[int, ...]], heads: int, kernel_size: int) -> tuple[int, ...]:
    """v's shape, after the checks of ``GhostHeadOp::checkInputs`` (dims not known yet pass)."""
    if len(shapes) != 4:
        raise ValueError(f"GhostHead takes 4 inputs (v, attn, ghost_mul, ghost_add); got {len(shapes)}.")
    v, attn, ghost_mul, ghost_add = (tuple(int(d) for d in shape) for shape in shapes)
    if len(v) != 4:
        raise ValueError(f"GhostHead: v must be (B, C, H, W); got {v}.")
    batch, channels, height, width = v
    if is_known(channels) and channels % heads:
        raise ValueError(f"GhostHead: heads ({heads}) must divide the {channels} channels of v.")
    expected_attn = (batch, heads * kernel_size**2, height, width)
    if not may_equal(expected_attn, attn):
        raise ValueError(f"GhostHead: attn must be {expected_attn} (B, heads*k*k, H, W); got {attn}.")
    expected_ghost = (channels, kernel_size, kernel_size)
    for name, shape in (("ghost_mul", ghost_mul), ("ghost_add", ghost_add)):
        if not may_equal(expected_ghost, shape):
            raise ValueError(f"GhostHead: {name} must be {expected_ghost} (C, k, k); got {shape}.")
    return v


def output_shape(shapes: Sequence[tuple[int, ...]], attrs: Mapping[str, Any]) -> tuple[int, ...]:
    """(B, C, H, W) of v."""
    heads, kernel_size, _ = _attributes(attrs)
    return _checked_values(shapes, heads, kernel_size)


def output_dims(attrs: Mapping[str, Any]) -> tuple[AffineDim, ...]:
    """The output is v's shape, axis by axis."""
    _attributes(attrs)
    return tuple(AffineDim(input=0, axis=axis, scale=1, offset=0) for axis in range(4))


def launch(shapes: Sequence[tuple[int, ...]], attrs: Mapping[str, Any]) -> Launch:
    """grid (plane blocks, G * channel chunks per head, B), scalars (C, H, W, G, k, d)."""
    heads, kernel_size, dilation = _attributes(attrs)
    v = _checked_values(shapes, heads, kernel_size)
    if not all(map(is_known, v)):
        raise ValueError(f"GhostHead cannot launch for v with negative dims; got {v}.")
    for name, shape in zip(("attn", "ghost_mul", "ghost_add"), shapes[1:]):
        dims = tuple(int(d) for d in shape)
        if not all(map(is_known, dims)):
            raise ValueError(f"GhostHead cannot launch for {name} with negative dims; got {dims}.")
    batch, channels, height, width = v
    channel_blocks = heads * ceil_div(channels // heads, CHANNELS_PER_THREAD)
    if batch > MAX_GRID_YZ or channel_blocks > MAX_GRID_YZ:
        raise ValueError(
            "GhostHead's launch takes at most 65535 batches and 65535 blocks of 8 channels of one head"
            f" (CUDA grid y, z); got v {v} with {heads} heads."
        )
    reach = kernel_size // 2 * dilation
    if (
        channels > INT32_MAX
        or CHANNELS_PER_THREAD * height * width > INT32_MAX
        or max(height, width) + reach > INT32_MAX
        or kernel_size**2 * CHANNELS_PER_THREAD > INT32_MAX
    ):
        raise ValueError(
            "GhostHead's kernel indexes with int32: C, 8*H*W, 8*k*k and H or W plus (k//2)*dilation must stay"
            f" below 2^31; got v {v}."
        )
    return plane_launch(
        height * width,
        MAX_THREADS_PER_BLOCK,
        channel_blocks,
        batch,
        (channels, height, width, heads, kernel_size, dilation),
    )


SPEC = KernelSpec(
    op_type="GhostHead",
    source=Path(__file__).with_name("ghost_head_kernel.cu"),
    kernels={"float32": "litevit_ghost_head_f32", "float16": "litevit_ghost_head_f16"},
    num_inputs=4,
    attribute_names=("heads", "kernel_size", "dilation"),
    output_shape=output_shape,
    output_dims=output_dims,
    launch=launch,
)
