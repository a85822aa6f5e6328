"""Every op's CUDA kernel, run on the CPU, against its ``litevit.ops`` reference.

``tests/plugins/emulator/emulate.cpp`` compiles a kernel's device code as plain C++ (g++, with
``cuda_host_shim.h`` standing in for the CUDA built-ins) and runs the launch that
``plugins/<op>/spec.py`` computes from the attributes an exported node carries, every CUDA thread a
fiber, ``__syncthreads`` a real barrier. For small shapes per op (LVT's and ELSA's attribute values,
odd sizes, partial blocks, batch 2) in FP32 and FP16 this checks that

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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from litevit.errors import LitevitError
from litevit.ops import OPS
from litevit.plugins.compile import CompileError, cxx_compile, find_cxx
from litevit.plugins.kernels import KernelSpec, Launch, specs

EMULATOR_DIR = Path(__file__).resolve().parent / "emulator"
SPECS = specs()


@dataclass(frozen=True)
class Precision:
    emulator_dtype: str  # emulate's first argument
    storage: torch.dtype
    tolerance: float  # the largest error allowed, as a fraction of the reference's largest magnitude


# FP16 stores the output rounded to 11 significant bits; both accumulate in float.
PRECISIONS = {
    "float32": Precision("f32", torch.float32, 1e-5),
    "float16": Precision("f16", torch.float16, 1e-2),
}


@dataclass(frozen=True)
class Case:
    name: str
    op_type: str
    shapes: tuple[tuple[int, ...], ...]  # the inputs', in ONNX input order
    attrs: dict[str, Any]  # the reference's keyword attributes

    def node_attrs(self) -> dict[str, Any]:
        """What the exported node carries, and so what the plugin reads: the reference's attributes
        and those derived from the input shapes at export (CSA's and RASA's ``channels``)."""
        op = OPS[self.op_type]
        derived = op.onnx_attrs(*self.shapes, **self.attrs) if op.onnx_attrs else {}
        return {**self.attrs, **derived}


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
    name = f"CSA-b{batch}c{channels}h{heads}-{windows[0]}x{windows[1]}-k{kernel_size}s{stride}p{padding}"
    return Case(name, "CSA", shapes, attrs)


def rasa_case(q: tuple[int, int, int, int], dilations: list[int], kernel_size: int = 3) -> Case:
    attrs = {"dilations": dilations, "kernel_size": kernel_size}
    shapes = (q, (q[1], 1, kernel_size, kernel_size))
    name = f"RASA-b{q[0]}c{q[1]}-{q[2]}x{q[3]}-k{kernel_size}d{','.join(map(str, dilations))}"
    return Case(name, "RASA", shapes, attrs)


def ghost_head_case(
    v: tuple[int, int, int, int], heads: int, kernel_size: int = 7, dilation: int = 1
) -> Case:
    batch, channels, height, width = v
    ghost = (channels, kernel_size, kernel_size)
    shapes = (v, (batch, heads * kernel_size * kernel_size, height, width), ghost, ghost)
    attrs = {"heads": heads, "kernel_size": kernel_size, "dilation": dilation}
    name = f"GhostHead-b{batch}c{channels}h{heads}-{height}x{width}-k{kernel_size}d{dilation}"
    return Case(name, "GhostHead", shapes, attrs)


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
    # GhostHead: ELSA's k=7, d=1 with 32-channel heads (full 8-channel chunks), also as ELSA-Swin-T's
    # stage 1 (C=96, 3 heads) at 14 x 14; heads smaller than a chunk and not a multiple of it
    # (batch 2); dilation 2; k=9 and k=11 (81 and 121 taps: the ghost matrices are staged in shared
    # memory in two rounds); k=1; a plane of two partial blocks.
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
def emulators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Future[Path]]:
    """Per op type, its emulator binary, compiled once for all ops in parallel. A future, so that a
    kernel that does not compile fails only its own tests (``result()`` raises its CompileError)."""
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
    return builds


def _random_inputs(case: Case, storage: torch.dtype) -> list[torch.Tensor]:
    """Seeded normal inputs, rounded to ``storage`` and held in float64 (exactly what the kernel reads)."""
    generator = torch.Generator().manual_seed(zlib.crc32(case.name.encode()))
    return [
        torch.randn(shape, generator=generator, dtype=torch.float64).to(storage).to(torch.float64)
        for shape in case.shapes
    ]


def _emulate(
    binary: Path,
    precision: Precision,
    launch: Launch,
    inputs: list[torch.Tensor],
    output_shape: tuple[int, ...],
    folder: Path,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(output in float64, per-element store counts), both of ``output_shape``."""
    input_files = []
    for index, tensor in enumerate(inputs):
        input_files.append(folder / f"input{index}.bin")
        tensor.to(precision.storage).numpy().tofile(input_files[-1])
    output_file, writes_file = folder / "output.bin", folder / "writes.bin"
    count = math.prod(output_shape)
    command: list[str | Path] = [
        binary,
        precision.emulator_dtype,
        ",".join(map(str, launch.grid)),
        ",".join(map(str, launch.block)),
        ",".join(map(str, launch.scalars)),
        str(count),
        output_file,
        writes_file,
        *input_files,
    ]
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, f"the emulated launch {launch} failed: {run.stderr.strip()}"
    output = torch.from_file(str(output_file), size=count, dtype=precision.storage).to(torch.float64)
    writes = torch.from_file(str(writes_file), size=count, dtype=torch.int32)
    return output.reshape(output_shape), writes.reshape(output_shape)


@pytest.mark.parametrize("dtype", list(PRECISIONS))
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_kernel_matches_the_reference(
    case: Case, dtype: str, emulators: dict[str, Future[Path]], tmp_path: Path
) -> None:
    spec, precision = SPECS[case.op_type], PRECISIONS[dtype]
    try:
        binary = emulators[case.op_type].result()
    except CompileError as error:
        pytest.fail(f"{spec.source.name} does not compile as the emulator's C++: {error}\n{error.log}")
    node_attrs = case.node_attrs()
    launch = spec.launch(case.shapes, node_attrs)
    assert launch.shared_bytes == 0, "the emulator has no dynamic shared memory"
    output_shape = spec.output_shape(case.shapes, node_attrs)
    inputs = _random_inputs(case, precision.storage)

    output, writes = _emulate(binary, precision, launch, inputs, output_shape, tmp_path)

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
    assert relative_error <= precision.tolerance, (
        f"max |kernel - reference| = {relative_error:.2e} x max |reference| ({scale:.3g})"
    )
