"""Every op's CUDA kernel, run on the CPU, against its ``litevit.ops`` reference.

``tests/plugins/emulator/emulate.cpp`` compiles a kernel's device code as plain C++ (g++, with
``cuda_host_shim.h`` standing in for the CUDA built-ins) and runs the launch that
``plugins/<op>/spec.py`` computes, every CUDA thread a fiber, ``__syncthreads`` a real barrier. For
small shapes per op (LVT's and ELSA's attribute values, odd sizes, partial blocks, batch 2) in FP32
and FP16 this checks that

* the output matches the reference computed in float64 on the same inputs (FP16: inputs rounded
  to half first), within 1e-5 (FP32) or 1e-2 (FP16) of the reference's largest magnitude;
* every output element is stored by exactly one CUDA thread (the contract: no atomics, one owner
  per element), none outside the output, and no barrier is left by some of a block's threads.

So the kernels' index math, thread mapping, launch geometry, padding and shared-memory staging are
proven without a GPU. Not proven: anything warp-level (the fibers run one at a time, so races that
need two threads running together, shuffles or warp-synchronous code are not exercised), the GPU's
own fp16 conversions and math functions (``expf``, FMA contraction), and speed or coalescing:
``benchmarks/gpu_kernels.py`` covers those on a GPU.
"""

from __future__ import annotations

import math
import subprocess
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from litevit.errors import LitevitError
from litevit.ops import OPS
from litevit.plugins.compile import CompileError, cxx_compile, find_cxx
from litevit.plugins.kernels import KernelSpec, Launch, specs

EMULATOR_DIR = Path(__file__).resolve().parent / "emulator"
SPECS = specs()

# Per dtype: the emulator's name for it, its storage, and the largest error allowed, as a fraction
# of the reference's largest magnitude (FP16 stores the output rounded to 11 significant bits).
DTYPES: dict[str, tuple[str, torch.dtype, float]] = {
    "float32": ("f32", torch.float32, 1e-5),
    "float16": ("f16", torch.float16, 1e-2),
}


@dataclass(frozen=True)
class Case:
    op_type: str
    shapes: tuple[tuple[int, ...], ...]  # the inputs', in ONNX input order
    attrs: dict[str, Any]  # the reference's keyword attributes
    node_attrs: dict[str, Any]  # the ONNX node's attributes: what the plugin (and its spec) reads

    @property
    def name(self) -> str:
        attrs = ",".join(f"{key}={value}" for key, value in self.attrs.items()).replace(" ", "")
        return f"{self.op_type}-{'x'.join(map(str, self.shapes[0]))}-{attrs}"


def csa_case(
    batch: int,
    heads: int,
    channels: int,
    windows: tuple[int, int],
    kernel_size: int = 3,
    stride: int = 2,
    padding: int = 1,
) -> Case:
    taps = kernel_size * kernel_size
    shapes = ((batch, heads * taps * taps, *windows), (batch, taps * channels, *windows))
    attrs = {"heads": heads, "kernel_size": kernel_size, "stride": stride, "padding": padding}
    return Case("CSA", shapes, attrs, {**attrs, "channels": channels})


def rasa_case(q: tuple[int, int, int, int], dilations: list[int], kernel_size: int = 3) -> Case:
    attrs = {"dilations": dilations, "kernel_size": kernel_size}
    shapes = (q, (q[1], 1, kernel_size, kernel_size))
    return Case("RASA", shapes, attrs, {**attrs, "channels": q[1]})


def ghost_head_case(
    v: tuple[int, int, int, int], heads: int, kernel_size: int = 7, dilation: int = 1
) -> Case:
    batch, channels, height, width = v
    ghost = (channels, kernel_size, kernel_size)
    shapes = (v, (batch, heads * kernel_size * kernel_size, height, width), ghost, ghost)
    attrs = {"heads": heads, "kernel_size": kernel_size, "dilation": dilation}
    return Case("GhostHead", shapes, attrs, attrs)


CASES = [
    # CSA: LVT's k=3, s=2, p=1 (stage 1: 2 heads, C=64) on even and odd window grids, several and
    # partial blocks of 256 outputs; overlap-heavy stride 1; no overlap (k=s); gaps between the
    # windows (s>k: outputs no window reaches must still be stored, as 0); k=5; one window row.
    csa_case(1, 2, 8, (4, 4)),
    csa_case(1, 2, 64, (7, 7)),
    csa_case(2, 2, 6, (3, 5)),
    csa_case(1, 1, 4, (5, 4), stride=1, padding=0),
    csa_case(1, 2, 4, (3, 3), kernel_size=2, stride=2, padding=0),
    csa_case(1, 1, 3, (3, 2), kernel_size=2, stride=3, padding=1),
    csa_case(1, 2, 4, (3, 3), kernel_size=5, stride=2, padding=2),
    csa_case(2, 1, 2, (1, 6)),
    # RASA: LVT's k=3 with dilations 1, 3, 5 (batch 2, odd maps smaller than the widest reach),
    # all 8 dilation slots on a plane of several blocks, the generic-k path (k=5), k=1, and a
    # dilation past the whole map (only the centre tap is inside).
    rasa_case((1, 4, 9, 7), [1, 3, 5]),
    rasa_case((2, 3, 6, 11), [1, 3, 5]),
    rasa_case((1, 2, 17, 19), [1, 2, 3, 4, 5, 6, 7, 8]),
    rasa_case((1, 3, 8, 8), [1, 2], kernel_size=5),
    rasa_case((2, 2, 3, 1), [1], kernel_size=1),
    rasa_case((1, 2, 5, 5), [7]),
    # GhostHead: ELSA's k=7, d=1 with 32-channel heads (full 8-channel chunks; ELSA-Swin-T's stage 1
    # at 14 x 14 is C=96, 3 heads); heads smaller
    # than a chunk and not a multiple of it (batch 2); dilation 2; k=9 and k=11 (81 and 121 taps:
    # the ghost matrices are staged in two rounds of shared memory); k=1; a plane of two
    # partial blocks.
    ghost_head_case((1, 64, 7, 9), heads=2),
    ghost_head_case((1, 96, 14, 14), heads=3),
    ghost_head_case((2, 12, 6, 5), heads=3, kernel_size=3),
    ghost_head_case((1, 20, 9, 8), heads=2, kernel_size=5, dilation=2),
    ghost_head_case((1, 8, 5, 6), heads=1, kernel_size=9),
    ghost_head_case((2, 6, 4, 5), heads=2, kernel_size=11),
    ghost_head_case((1, 8, 3, 3), heads=2, kernel_size=1),
    ghost_head_case((1, 4, 17, 17), heads=1, kernel_size=3, dilation=3),
]


def _skip_unless_cxx20_with_float16(compiler: str, folder: Path) -> None:
    """The emulator needs C++20, _Float16 (the host's __half) and ucontext fibers."""
    probe = folder / "probe.cpp"
    probe.write_text(
        "#include <bit>\n#include <cstdint>\n#include <ucontext.h>\n"
        "int main() { return std::bit_cast<std::uint16_t>(static_cast<_Float16>(1.0f)) == 0x3c00 ? 0 : 1; }\n"
    )
    try:
        cxx_compile([probe], folder / "probe", flags=["-std=c++20"], compiler=compiler)
    except CompileError as error:
        pytest.skip(f"{compiler} cannot build the kernel emulator (C++20, _Float16, ucontext): {error}")


def _build_emulator(spec: KernelSpec, compiler: str, folder: Path) -> Path:
    """emulate.cpp around ``spec``'s kernel source. -Wno-unknown-pragmas: g++ ignores #pragma unroll."""
    return cxx_compile(
        [EMULATOR_DIR / "emulate.cpp"],
        folder / f"emulate_{spec.source.stem}",
        include_dirs=[folder, EMULATOR_DIR],
        flags=[
            "-std=c++20",
            "-O2",
            "-Wno-unknown-pragmas",
            f'-DLITEVIT_KERNEL_SOURCE="{spec.source}"',
            f"-DLITEVIT_KERNEL_F32={spec.kernels['float32']}",
            f"-DLITEVIT_KERNEL_F16={spec.kernels['float16']}",
        ],
        compiler=compiler,
    )


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Callable[[], Path]]:
    """Per op type, the emulator binary (compiled once, all ops in parallel); calling it raises that
    op's CompileError, so one kernel that does not compile fails only its own tests."""
    try:
        compiler = find_cxx()
    except LitevitError as missing:
        pytest.skip(str(missing))
    folder = tmp_path_factory.mktemp("kernel_emulator")
    _skip_unless_cxx20_with_float16(compiler, folder)
    # The kernels include <cuda_fp16.h>; cuda_host_shim.h, included before them, defines it all.
    (folder / "cuda_fp16.h").write_text("// The emulator's stand-in: cuda_host_shim.h defines __half.\n")
    with ThreadPoolExecutor() as pool:
        builds = {op: pool.submit(_build_emulator, spec, compiler, folder) for op, spec in SPECS.items()}
        return {op: build.result for op, build in builds.items()}


def _random_inputs(case: Case, storage: torch.dtype) -> list[torch.Tensor]:
    """Seeded normal inputs, rounded to ``storage`` and held in float64 (exactly what the kernel reads)."""
    generator = torch.Generator().manual_seed(zlib.crc32(case.name.encode()))
    return [
        torch.randn(shape, generator=generator, dtype=torch.float64).to(storage).to(torch.float64)
        for shape in case.shapes
    ]


def _emulate(
    binary: Path,
    dtype: str,
    launch: Launch,
    inputs: list[torch.Tensor],
    output_shape: tuple[int, ...],
    folder: Path,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(output in float64, per-element store counts), both of ``output_shape``."""
    name, storage, _ = DTYPES[dtype]
    numpy_storage = np.float32 if storage == torch.float32 else np.float16
    input_files = []
    for index, tensor in enumerate(inputs):
        input_files.append(folder / f"input{index}.bin")
        tensor.numpy().astype(numpy_storage).tofile(input_files[-1])
    output_file, writes_file = folder / "output.bin", folder / "writes.bin"
    command: list[str | Path] = [
        binary,
        name,
        ",".join(map(str, launch.grid)),
        ",".join(map(str, launch.block)),
        ",".join(map(str, launch.scalars)),
        str(math.prod(output_shape)),
        output_file,
        writes_file,
        *input_files,
    ]
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, f"the emulated launch {launch} failed: {run.stderr.strip()}"
    output = np.fromfile(output_file, dtype=numpy_storage).astype(np.float64)
    writes = np.fromfile(writes_file, dtype=np.int32)
    return torch.from_numpy(output).reshape(output_shape), torch.from_numpy(writes).reshape(output_shape)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_kernel_matches_the_reference(
    case: Case, dtype: str, emulators: dict[str, Callable[[], Path]], tmp_path: Path
) -> None:
    spec = SPECS[case.op_type]
    try:
        binary = emulators[case.op_type]()
    except CompileError as error:
        pytest.fail(f"{spec.source.name} does not compile as the emulator's C++: {error}\n{error.log}")
    launch = spec.launch(case.shapes, case.node_attrs)
    assert launch.shared_bytes == 0, "the emulator has no dynamic shared memory"
    output_shape = spec.output_shape(case.shapes, case.node_attrs)
    inputs = _random_inputs(case, DTYPES[dtype][1])

    output, writes = _emulate(binary, dtype, launch, inputs, output_shape, tmp_path)

    not_once = (writes != 1).nonzero()
    assert len(not_once) == 0, (
        f"{len(not_once)} of {writes.numel()} output elements are not stored by exactly one thread; "
        f"element {tuple(not_once[0].tolist())} by {int(writes[tuple(not_once[0])])}"
    )
    reference = OPS[case.op_type].reference(*inputs, **case.attrs)
    assert tuple(reference.shape) == output_shape
    scale = float(reference.abs().max()) or 1.0
    relative_error = float((output - reference).abs().max()) / scale
    # A NaN anywhere (an input guard read, an element never stored) makes this NaN: the <= fails.
    assert relative_error <= DTYPES[dtype][2], (
        f"max |kernel - reference| = {relative_error:.2e} x max |reference| ({scale:.3g})"
    )
