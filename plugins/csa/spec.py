"""CSA's kernel contract in Python: the mirror of ``csa_core.cpp`` (same rules, same sentences).

``output_shape`` agrees with :func:`litevit.ops.csa.csa_output_shape` and ``launch`` with
``CsaOp::launch()``; ``tests/plugins/test_csa_core.py`` checks both. The thread mapping the launch
serves is documented in ``csa_gather.h``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from litevit.errors import LitevitError
from litevit.plugins.kernels import UNKNOWN_DIM, AffineDim, KernelSpec, Launch, is_known, may_equal

ATTRIBUTE_NAMES = ("heads", "kernel_size", "stride", "padding", "channels")
# The kernel's int32 parameters after the pointers (attn, values, output), as Launch.scalars orders them.
SCALAR_NAMES = ("batch", "channels", "heads", "kernel_size", "stride", "padding", "windows_h", "windows_w")
BLOCK_SIZE = 256  # csa::kBlockSize: threads per block, one output element each
INDEX_LIMIT = 2**31  # the kernel indexes with int32: every tensor stays below this many elements


def _shape(dims: Sequence[int]) -> str:
    return str(tuple(dims))


def _element_count(dims: Sequence[int]) -> int:
    count = 1
    for dim in dims:
        count *= dim
    return count


def _attribute(attrs: Mapping[str, Any], name: str) -> int:
    """One integer attribute, given as an int or (as TensorRT plugin fields hold it) one-int array."""
    if name not in attrs:
        raise LitevitError(f"CSA needs the integer attribute '{name}'.")
    value = attrs[name]
    if hasattr(value, "__len__"):
        if len(value) != 1:
            raise LitevitError(f"CSA attribute '{name}' must be one integer; got {len(value)} values.")
        value = value[0]
    return int(value)


def attributes(attrs: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    """Validated (heads, kernel_size, stride, padding, channels), as ``CsaOp::fromAttributes``."""
    heads, kernel_size, stride, padding, channels = (_attribute(attrs, name) for name in ATTRIBUTE_NAMES)
    if kernel_size < 1 or stride < 1 or not 0 <= padding < kernel_size or heads < 1:
        raise LitevitError(
            f"CSA needs kernel_size, stride, heads >= 1 and 0 <= padding < kernel_size; "
            f"got kernel_size={kernel_size}, stride={stride}, padding={padding}, heads={heads}."
        )
    if channels < 1 or channels % heads:
        raise LitevitError(f"CSA needs channels >= 1 divisible by heads={heads}; got channels={channels}.")
    taps = kernel_size * kernel_size
    if kernel_size >= 256 or heads * taps * taps >= INDEX_LIMIT or channels * taps >= INDEX_LIMIT:
        raise LitevitError(
            f"CSA needs heads·k⁴ and k²·channels below 2^31; "
            f"got heads={heads}, kernel_size={kernel_size}, channels={channels}."
        )
    return heads, kernel_size, stride, padding, channels


def output_shape(shapes: Sequence[tuple[int, ...]], attrs: Mapping[str, Any]) -> tuple[int, ...]:
    """(B, C, s·(H'-1) + k - p, s·(W'-1) + k - p), after the checks of ``CsaOp::checkInputs``; dims
    not known yet pass those checks and stay unknown (``UNKNOWN_DIM``) in the output."""
    heads, kernel_size, stride, padding, channels = attributes(attrs)
    if len(shapes) != 2:
        raise LitevitError(f"CSA takes 2 inputs (attn, values); got {len(shapes)}.")
    attn, values = tuple(shapes[0]), tuple(shapes[1])
    if len(attn) != 4 or len(values) != 4:
        raise LitevitError(f"CSA takes 4-D attn and values; got shapes {_shape(attn)} and {_shape(values)}.")
    taps = kernel_size * kernel_size
    batch, values_channels, windows_h, windows_w = values
    if is_known(values_channels) and values_channels != taps * channels:
        raise LitevitError(
            f"CSA values need k²·channels = {taps * channels} channels for channels={channels}; "
            f"got {values_channels}."
        )
    expected_attn = (batch, heads * taps * taps, windows_h, windows_w)
    if not may_equal(expected_attn, attn):
        raise LitevitError(
            f"CSA attn must have shape {_shape(expected_attn)} for values {_shape(values)}; "
            f"got {_shape(attn)}."
        )
    if 0 in (windows_h, windows_w) and stride > kernel_size - padding:
        raise LitevitError(
            f"CSA needs H', W' >= 1 when stride > kernel_size - padding; got values {_shape(values)}."
        )
    if not all(map(is_known, attn + values)):
        # The sizes below are checked once every dim is known.
        return (
            batch if is_known(batch) else UNKNOWN_DIM,
            channels,
            *(stride * (w - 1) + kernel_size - padding if is_known(w) else UNKNOWN_DIM for w in values[2:]),
        )
    if _element_count(attn) >= INDEX_LIMIT or _element_count(values) >= INDEX_LIMIT:
        raise LitevitError(
            f"CSA needs attn and values below 2^31 elements (int32 indexing); "
            f"got {_shape(attn)} and {_shape(values)}."
        )
    output = (
        batch,
        channels,
        stride * (windows_h - 1) + kernel_size - padding,
        stride * (windows_w - 1) + kernel_size - padding,
    )
    if _element_count(output) >= INDEX_LIMIT:
        raise LitevitError(
            f"CSA needs its output below 2^31 elements (int32 indexing); "
            f"got {_shape(output)} for values {_shape(values)}."
        )
    return output


def output_dims(attrs: Mapping[str, Any]) -> tuple[AffineDim, ...]:
    """Batch from values, C the ``channels`` attribute, H_out = s·H' + (k - p - s), same for W."""
    _, kernel_size, stride, padding, channels = attributes(attrs)
    offset = kernel_size - padding - stride
    return (
        AffineDim(input=1, axis=0, scale=1, offset=0),
        AffineDim(input=1, axis=1, scale=0, offset=channels),
        AffineDim(input=1, axis=2, scale=stride, offset=offset),
        AffineDim(input=1, axis=3, scale=stride, offset=offset),
    )


def launch(shapes: Sequence[tuple[int, ...]], attrs: Mapping[str, Any]) -> Launch:
    """1-D grid, one thread per output element (offset = block·BLOCK_SIZE + thread), no shared memory;
    scalars (B, C, heads, k, s, p, H', W'). An empty output gives grid 0: nothing to launch."""
    heads, kernel_size, stride, padding, channels = attributes(attrs)
    output = output_shape(shapes, attrs)
    attn, values = tuple(shapes[0]), tuple(shapes[1])
    if not all(map(is_known, attn + values)):
        raise LitevitError(
            f"CSA needs known, non-negative input sizes; got shapes {_shape(attn)} and {_shape(values)}."
        )
    batch, _, windows_h, windows_w = values
    blocks = -(-_element_count(output) // BLOCK_SIZE)
    return Launch(
        grid=(blocks, 1, 1),
        block=(BLOCK_SIZE, 1, 1),
        shared_bytes=0,
        scalars=(batch, channels, heads, kernel_size, stride, padding, windows_h, windows_w),
    )


SPEC = KernelSpec(
    op_type="CSA",
    source=Path(__file__).resolve().parent / "csa_kernel.cu",
    kernels={"float32": "litevit_csa_f32", "float16": "litevit_csa_f16"},
    num_inputs=2,
    attribute_names=ATTRIBUTE_NAMES,
    output_shape=output_shape,
    output_dims=output_dims,
    launch=launch,
)
