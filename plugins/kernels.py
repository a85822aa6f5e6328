"""The kernel contract in Python: what each op's CUDA kernel is called, takes and how it is launched.

This mirrors the C++ types in ``plugins/common/op_core.h`` so that everything that launches a
kernel without TensorRT's C++ side (the Python IPluginV3 path, the GPU verification script, the
compile tests) computes exactly what the C++ plugin computes. Each op's ``plugins/<op>/spec.py``
defines ``SPEC = KernelSpec(...)``; :func:`specs` collects them.

Nothing here imports torch, CUDA or TensorRT.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ONNX op_type -> the package under litevit.plugins that holds its kernel, core and spec.
OP_PACKAGES: dict[str, str] = {"CSA": "csa", "RASA": "rasa", "GhostHead": "ghost_head"}

PLUGINS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Launch:
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared_bytes: int
    scalars: tuple[int, ...]  # int32 kernel arguments after the pointers, in order


@dataclass(frozen=True)
class AffineDim:
    """Output dim = ``scale * inputs[input][axis] + offset`` (``scale`` 0: the constant ``offset``)."""

    input: int
    axis: int
    scale: int
    offset: int


@dataclass(frozen=True)
class KernelSpec:
    op_type: str  # "CSA"
    source: Path  # plugins/csa/csa_kernel.cu
    kernels: dict[str, str]  # {"float32": "litevit_csa_f32", "float16": "litevit_csa_f16"}
    num_inputs: int
    attribute_names: tuple[str, ...]
    output_shape: Callable[[Sequence[tuple[int, ...]], Mapping[str, Any]], tuple[int, ...]]
    output_dims: Callable[[Mapping[str, Any]], tuple[AffineDim, ...]]  # symbolic rules (TRT dynamic shapes)
    launch: Callable[[Sequence[tuple[int, ...]], Mapping[str, Any]], Launch]


# The most blocks a CUDA grid takes along y and z; the largest int32 (the kernels index with int32).
MAX_GRID_YZ = 65535
INT32_MAX = 2**31 - 1
# TensorRT's value for a dim not known while the engine is built (``core::kUnknownDim``): the shape
# checks leave relations that involve one to run time; a launch needs every dim known. Any negative
# dim counts as not known there, as in the C++ cores.
UNKNOWN_DIM = -1


def is_known(dim: int) -> bool:
    return dim >= 0


def may_equal(expected: Sequence[int], actual: Sequence[int]) -> bool:
    """Whether ``actual`` can still turn out to be ``expected``: same rank, equal where both are known
    (``core::mayEqual``)."""
    return len(expected) == len(actual) and all(
        e == a or not is_known(e) or not is_known(a) for e, a in zip(expected, actual)
    )


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def plane_threads_per_block(pixels: int, max_threads: int) -> int:
    """Threads per block for planes of ``pixels`` elements: the fewest blocks of at most
    ``max_threads`` threads, each rounded up to whole warps (``core::planeThreadsPerBlock`` in
    ``plugins/common/core_util.h``)."""
    blocks = max(1, ceil_div(pixels, max_threads))
    return max(32, ceil_div(ceil_div(pixels, blocks), 32) * 32)


def plane_launch(pixels: int, max_threads: int, grid_y: int, grid_z: int, scalars: tuple[int, ...]) -> Launch:
    """One thread per pixel of a plane: grid (ceil(pixels / threads), ``grid_y``, ``grid_z``), block
    (threads, 1, 1) from :func:`plane_threads_per_block`, no dynamic shared memory
    (``core::planeLaunch``)."""
    threads = plane_threads_per_block(pixels, max_threads)
    return Launch(
        grid=(ceil_div(pixels, threads), grid_y, grid_z),
        block=(threads, 1, 1),
        shared_bytes=0,
        scalars=scalars,
    )


def specs() -> dict[str, KernelSpec]:
    """``{"CSA": ..., "RASA": ..., "GhostHead": ...}``, each imported from ``plugins/<op>/spec.py``."""
    found: dict[str, KernelSpec] = {}
    for op_type, package in OP_PACKAGES.items():
        module = importlib.import_module(f"{__package__}.{package}.spec")
        spec: KernelSpec = module.SPEC
        if spec.op_type != op_type:
            raise RuntimeError(f"{module.__name__}.SPEC is for {spec.op_type!r}, expected {op_type!r}")
        found[op_type] = spec
    return found
