"""GPU verification of litevit's CUDA kernels (CSA, RASA, GhostHead) against the PyTorch reference.

    python benchmarks/gpu_kernels.py [--ops CSA RASA GhostHead] [--batches 1 8]
        [--resolutions 160 224 320] [--dtypes float32 float16] [--iters 200] [--warmup 20]
        [--compiler cupy|nvrtc|nvcc] [--json OUT]

Runs where a CUDA GPU, torch and CuPy are (no TensorRT needed). For each op it takes the input
shapes the op has in the models, at each batch and input resolution: CSA in LVT stage 1, RASA in
LVT stages 2-4, GhostHead in ELSA-Swin-T stages 1-3. Per case and precision:

* accuracy: the kernel (``plugins/<op>/<op>_kernel.cu``, launched with the grid, block and
  scalars of the op's ``KernelSpec.launch``, as the TensorRT plugins launch it) against the
  op's PyTorch reference (``litevit.ops``) on the same GPU inputs at the same precision, TF32
  off: max |kernel - reference| / max |reference| must stay <= 1e-5 (FP32) or 1e-2 (FP16);
* time: CUDA events around each call on one stream, median of ``--iters`` after ``--warmup``,
  for the kernel and for the reference (the decomposed PyTorch ops, eager, as they run without
  the kernel);
* roofline: bytes moved (every input read once, the output written once) / kernel time, against
  the device's peak memory bandwidth 2 x memory clock x bus width / 8.

Prints a table (op, where, shape, dtype, max err / scale, pass, kernel us, torch us, speed-up,
GB/s, % of peak) and, with ``--json``, every figure and the device facts. The issue's goals, at
least 2x faster than the decomposed PyTorch ops and at least 60 % of the roofline, are reported,
not asserted. Exit status: 0 when every case is accurate, 1 on an accuracy failure, 2 when
there is no GPU (or no CuPy) to run on.

Kernels are compiled once per op: ``cupy`` (default) by CuPy's NVRTC from the source, ``nvrtc``
by ``litevit.plugins.compile.nvrtc_compile`` (cuda-python, the Python plugins' path), ``nvcc``
by ``litevit.plugins.compile.nvcc_compile``; all are launched through CuPy on torch's stream.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OP_TYPES = ("CSA", "RASA", "GhostHead")
TOLERANCE = {"float32": 1e-5, "float16": 1e-2}  # max abs error / max |reference|
GOAL_SPEEDUP = 2.0
GOAL_ROOFLINE = 0.60
BYTES_PER_ELEMENT = {"float32": 4, "float16": 2}
# The report's columns.
COLUMNS: tuple[str, ...] = ("op", "where", "output", "dtype", "max err / scale", "pass", "kernel us")
COLUMNS += ("torch us", "speed-up", "GB/s", "% of peak")
NO_GPU = (
    "No CUDA GPU is visible here (torch.cuda.is_available() is False), so the kernels cannot run: "
    "run benchmarks/gpu_kernels.py on a machine with an NVIDIA GPU, torch and CuPy."
)
NO_CUPY = (
    "CuPy is not installed, and the kernels are launched through it: pip install cupy-cuda12x (or cuda13x)."
)

# The models' configurations the shapes come from: litevit.models.lvt.LVT_ARCH and
# litevit.models.elsa VARIANTS["elsa_swin_tiny"] (stages 1-3 are ELSA).
LVT_DIMS = (64, 64, 160, 256)
LVT_HEADS = (2, 2, 5, 8)
LVT_ATTN_TYPES = ("csa", "rasa", "rasa", "rasa")
LVT_CSA = {"kernel_size": 3, "stride": 2, "padding": 1}
LVT_RASA_DILATIONS = [1, 3, 5]
LVT_RASA_KERNEL = 3
ELSA_EMBED_DIM = 96
ELSA_HEADS = (3, 6, 12)
ELSA_KERNEL = 7
ELSA_DILATION = 1


# ---------------------------------------------------------------------------------------------
# Cases: the shapes each op has in the models


@dataclass(frozen=True)
class Case:
    """One op at one place of one model, resolution and batch."""

    op_type: str
    where: str  # "LVT stage 1"
    resolution: int
    batch: int
    shapes: tuple[tuple[int, ...], ...]  # the inputs, in ONNX input order
    reference_attrs: dict[str, Any]  # keyword arguments of the litevit.ops reference
    node_attrs: dict[str, Any]  # attributes of the exported node (what the spec reads)
    output: tuple[int, ...] = field(default=())

    def label(self) -> str:
        return "x".join(str(d) for d in self.output)


def lvt_stage_sizes(resolution: int) -> list[int]:
    """LVT's map side per stage: 7x7/4 patch embedding with padding 3, then 3x3/2 with padding 1."""
    sizes = [(resolution + 2 * 3 - 7) // 4 + 1]
    for _ in range(3):
        sizes.append((sizes[-1] + 2 * 1 - 3) // 2 + 1)
    return sizes


def elsa_stage_sizes(resolution: int) -> list[int]:
    """ELSA-Swin's map side per stage: 4x4/4 patch embedding, then 2x2 patch merging."""
    sizes = [resolution // 4]
    for _ in range(3):
        sizes.append(sizes[-1] // 2)
    return sizes


def node_attributes(
    op_type: str, shapes: Sequence[tuple[int, ...]], reference_attrs: dict[str, Any]
) -> dict[str, Any]:
    """The attributes litevit's export writes on the op's node: the reference's, plus those it
    derives from the input shapes (``OpDef.onnx_attrs``, e.g. the channel count)."""
    from litevit.ops import OPS

    opdef = OPS[op_type]
    derived = opdef.onnx_attrs(*shapes, **reference_attrs) if opdef.onnx_attrs else {}
    return {**reference_attrs, **derived}


def lvt_cases(resolution: int, batch: int) -> list[Case]:
    sizes = lvt_stage_sizes(resolution)
    cases = []
    for stage, (kind, dim, heads, side) in enumerate(
        zip(LVT_ATTN_TYPES, LVT_DIMS, LVT_HEADS, sizes, strict=True), 1
    ):
        where = f"LVT stage {stage}"
        if kind == "csa":
            k, s, p = LVT_CSA["kernel_size"], LVT_CSA["stride"], LVT_CSA["padding"]
            windows = (side + 2 * p - k) // s + 1
            attrs = {"heads": heads, **LVT_CSA}
            shapes = ((batch, heads * k**4, windows, windows), (batch, k * k * dim, windows, windows))
            cases.append(
                Case("CSA", where, resolution, batch, shapes, attrs, node_attributes("CSA", shapes, attrs))
            )
        else:
            k = LVT_RASA_KERNEL
            rasa = {"dilations": list(LVT_RASA_DILATIONS), "kernel_size": k}
            shapes = ((batch, dim, side, side), (dim, 1, k, k))
            cases.append(
                Case("RASA", where, resolution, batch, shapes, rasa, node_attributes("RASA", shapes, rasa))
            )
    return cases


def elsa_cases(resolution: int, batch: int) -> list[Case]:
    k = ELSA_KERNEL
    cases = []
    for stage, (heads, side) in enumerate(zip(ELSA_HEADS, elsa_stage_sizes(resolution)[:3], strict=True), 1):
        channels = ELSA_EMBED_DIM * 2 ** (stage - 1)
        attrs = {"heads": heads, "kernel_size": k, "dilation": ELSA_DILATION}
        shapes = (
            (batch, channels, side, side),
            (batch, heads * k * k, side, side),
            (channels, k, k),
            (channels, k, k),
        )
        where = f"ELSA-Swin-T stage {stage}"
        node = node_attributes("GhostHead", shapes, attrs)
        cases.append(Case("GhostHead", where, resolution, batch, shapes, attrs, node))
    return cases


def all_cases(op_types: Sequence[str], resolutions: Sequence[int], batches: Sequence[int]) -> list[Case]:
    """Every case, each with its output shape from the op's spec (which also checks the shapes)."""
    from litevit.plugins.kernels import specs

    found = specs()
    cases = [
        case
        for resolution in resolutions
        for batch in batches
        for case in lvt_cases(resolution, batch) + elsa_cases(resolution, batch)
        if case.op_type in op_types
    ]
    return [
        Case(
            **{
                **asdict(case),
                "output": tuple(found[case.op_type].output_shape(case.shapes, case.node_attrs)),
            }
        )
        for case in cases
    ]


# ---------------------------------------------------------------------------------------------
# Roofline arithmetic


def elements(shape: Sequence[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def bytes_moved(case: Case, dtype: str) -> int:
    """Every input read once and the output written once: the least a fused kernel can move."""
    return BYTES_PER_ELEMENT[dtype] * (sum(elements(s) for s in case.shapes) + elements(case.output))


def peak_bandwidth(memory_clock_khz: int, bus_width_bits: int) -> float:
    """Peak DRAM bytes/s: two transfers per memory clock (DDR) over the bus width."""
    return 2.0 * memory_clock_khz * 1e3 * bus_width_bits / 8


def roofline(nbytes: int, seconds: float, peak_bytes_per_s: float | None) -> tuple[float, float | None]:
    """(GB/s achieved, fraction of peak or None when the peak is unknown)."""
    achieved = nbytes / seconds
    return achieved / 1e9, (achieved / peak_bytes_per_s if peak_bytes_per_s else None)


# ---------------------------------------------------------------------------------------------
# Device facts


def device_facts(cupy: Any, torch: Any) -> dict[str, Any]:
    """Name, compute capability and peak memory bandwidth of the current device."""
    device = torch.cuda.current_device()
    properties = torch.cuda.get_device_properties(device)
    runtime = cupy.cuda.runtime
    clock_khz = bus_bits = 0
    try:
        clock_khz = runtime.deviceGetAttribute(runtime.cudaDevAttrMemoryClockRate, device)
        bus_bits = runtime.deviceGetAttribute(runtime.cudaDevAttrGlobalMemoryBusWidth, device)
    except Exception:  # attribute names differ between CuPy versions; nvidia-smi below
        pass
    if not clock_khz:
        clock_khz = _nvidia_smi_memory_clock_khz(device)
    return {
        "name": properties.name,
        "compute_capability": f"{properties.major}.{properties.minor}",
        "memory_clock_khz": clock_khz or None,
        "memory_bus_width_bits": bus_bits or None,
        "peak_bandwidth_gb_s": peak_bandwidth(clock_khz, bus_bits) / 1e9 if clock_khz and bus_bits else None,
        "torch": torch.__version__,
        "cupy": cupy.__version__,
        "cuda_runtime": runtime.runtimeGetVersion(),
    }


def _nvidia_smi_memory_clock_khz(device: int) -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    done = subprocess.run(
        ["nvidia-smi", f"--id={device}", "--query-gpu=clocks.max.memory", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return int(float(done.stdout.strip())) * 1000
    except ValueError:
        return 0


# ---------------------------------------------------------------------------------------------
# Kernels: compile, load, launch


def load_module(cupy: Any, source: Path, compiler: str, arch: str, work: Path) -> Any:
    """A CuPy RawModule holding the op's FP32 and FP16 kernels."""
    from litevit.errors import LitevitError
    from litevit.plugins import compile as plugin_compile

    if compiler == "cupy":
        options = ["--std=c++17", f"-I{source.parent}"]
        try:
            options.append(f"-I{plugin_compile.cuda_include_dir()}")
        except LitevitError:
            pass  # CuPy adds the CUDA headers it was built with
        return cupy.RawModule(code=source.read_text(), options=tuple(options))
    if compiler == "nvrtc":
        cubin = work / f"{source.stem}.{arch}.cubin"
        cubin.write_bytes(bytes(plugin_compile.nvrtc_compile(source, arch).cubin or b""))
        return cupy.RawModule(path=str(cubin))
    return cupy.RawModule(path=str(plugin_compile.nvcc_compile(source, [arch], work)))


def kernel_call(
    function: Any, launch: Any, tensors: Sequence[Any], output: Any, stream: Any
) -> Callable[[], None]:
    """A closure launching ``function`` as the plugins do: input pointers, output pointer, int32 scalars."""
    import numpy as np

    args = tuple(np.uint64(t.data_ptr()) for t in (*tensors, output)) + tuple(
        np.int32(s) for s in launch.scalars
    )

    def call() -> None:
        with stream:  # CuPy launches on its current stream: torch's, so events and references agree
            function(launch.grid, launch.block, args, shared_mem=launch.shared_bytes)

    return call


# ---------------------------------------------------------------------------------------------
# Inputs, timing, one case


def make_inputs(torch: Any, case: Case, dtype: Any, generator: Any) -> list[Any]:
    """Inputs like the models' (on the generator's device): softmaxed attention, unit-scale
    activations, small weights."""

    def randn(shape: Sequence[int], scale: float = 1.0) -> Any:
        return torch.randn(tuple(shape), generator=generator, device=generator.device) * scale

    if case.op_type == "CSA":
        attn_shape, values_shape = case.shapes
        taps = case.node_attrs["kernel_size"] ** 2
        batch, _, h, w = attn_shape
        logits = randn((batch, case.node_attrs["heads"], taps, taps, h, w))
        attn = logits.softmax(dim=3).reshape(attn_shape)  # over the k² sources j
        tensors = [attn, randn(values_shape)]
    elif case.op_type == "RASA":
        q_shape, weight_shape = case.shapes
        tensors = [randn(q_shape), randn(weight_shape, 1 / 3)]
    else:
        v_shape, attn_shape, mul_shape, add_shape = case.shapes
        batch, _, h, w = attn_shape
        taps = case.node_attrs["kernel_size"] ** 2
        attn = randn((batch, case.node_attrs["heads"], taps, h, w)).softmax(dim=2).reshape(attn_shape)
        tensors = [randn(v_shape), attn, 1 + randn(mul_shape, 0.1), randn(add_shape, 0.1)]
    return [t.to(dtype).contiguous() for t in tensors]


def median_ms(torch: Any, call: Callable[[], Any], iters: int, warmup: int) -> float:
    """Median of per-call CUDA event times on the current stream."""
    for _ in range(warmup):
        call()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for start, end in zip(starts, ends, strict=True):
        start.record()
        call()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in zip(starts, ends, strict=True))


def run_case(
    torch: Any,
    cupy: Any,
    case: Case,
    dtype: str,
    module: Any,
    spec: Any,
    args: argparse.Namespace,
    peak: float | None,
) -> dict[str, Any]:
    from litevit.ops import OPS

    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator(device="cuda").manual_seed(0)
    tensors = make_inputs(torch, case, torch_dtype, generator)
    reference_fn = OPS[case.op_type].reference
    output = torch.empty(case.output, device="cuda", dtype=torch_dtype)
    launch = spec.launch(case.shapes, case.node_attrs)
    stream = cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)
    kernel = kernel_call(module.get_function(spec.kernels[dtype]), launch, tensors, output, stream)

    with torch.inference_mode():
        output.fill_(float("nan"))  # an element the kernel misses shows up as an error
        kernel()
        reference = reference_fn(*tensors, **case.reference_attrs)
        exact = reference_fn(*(t.double() for t in tensors), **case.reference_attrs)
        torch.cuda.synchronize()
        got = output.double()
        scale = max(reference.double().abs().max().item(), 1e-12)
        error = (got - reference.double()).abs().max().item() / scale
        error_exact = (got - exact).abs().max().item() / max(exact.abs().max().item(), 1e-12)
        kernel_ms = median_ms(torch, kernel, args.iters, args.warmup)
        torch_ms = median_ms(
            torch, lambda: reference_fn(*tensors, **case.reference_attrs), args.iters, args.warmup
        )
    nbytes = bytes_moved(case, dtype)
    gb_s, fraction = roofline(nbytes, kernel_ms / 1e3, peak)
    passed = not math.isnan(error) and error <= TOLERANCE[dtype]  # NaN: an element the kernel missed
    return {
        "op": case.op_type,
        "where": case.where,
        "resolution": case.resolution,
        "batch": case.batch,
        "inputs": [list(s) for s in case.shapes],
        "output": list(case.output),
        "attributes": case.node_attrs,
        "dtype": dtype,
        "launch": {
            "grid": list(launch.grid),
            "block": list(launch.block),
            "shared_bytes": launch.shared_bytes,
        },
        "max_err_over_scale": error,
        "max_err_over_scale_vs_fp64": error_exact,
        "tolerance": TOLERANCE[dtype],
        "passed": passed,
        "kernel_us": kernel_ms * 1e3,
        "torch_us": torch_ms * 1e3,
        "speedup": torch_ms / kernel_ms,
        "bytes": nbytes,
        "gb_s": gb_s,
        "fraction_of_peak": fraction,
    }


# ---------------------------------------------------------------------------------------------
# Report


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        peak = f"{100 * r['fraction_of_peak']:.0f}" if r["fraction_of_peak"] is not None else "n/a"
        cells = (
            r["op"],
            f"{r['where']} @{r['resolution']}",
            "x".join(map(str, r["output"])),
            r["dtype"],
            f"{r['max_err_over_scale']:.2e}",
            "yes" if r["passed"] else "NO",
            f"{r['kernel_us']:.1f}",
            f"{r['torch_us']:.1f}",
            f"{r['speedup']:.1f}x",
            f"{r['gb_s']:.0f}",
            peak,
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: Sequence[dict[str, Any]]) -> str:
    """One line per goal: how many cases reach it."""
    fast = sum(r["speedup"] >= GOAL_SPEEDUP for r in rows)
    known = [r for r in rows if r["fraction_of_peak"] is not None]
    near_peak = sum(r["fraction_of_peak"] >= GOAL_ROOFLINE for r in known)
    failed = [
        f"{r['op']} {r['where']} @{r['resolution']} b{r['batch']} {r['dtype']}"
        for r in rows
        if not r["passed"]
    ]
    lines = [
        f"accuracy: {len(rows) - len(failed)}/{len(rows)} cases within tolerance"
        + (f"; FAILED: {', '.join(failed)}" if failed else ""),
        f"goal >= {GOAL_SPEEDUP:g}x decomposed PyTorch: {fast}/{len(rows)} cases",
        f"goal >= {100 * GOAL_ROOFLINE:.0f} % of peak bandwidth: {near_peak}/{len(known)} cases"
        + ("" if known else " (peak bandwidth unknown)"),
    ]
    return "\n".join(lines)


def gpu_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", nargs="+", choices=OP_TYPES, default=list(OP_TYPES))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--resolutions", nargs="+", type=int, default=[160, 224, 320])
    parser.add_argument("--dtypes", nargs="+", choices=tuple(TOLERANCE), default=list(TOLERANCE))
    parser.add_argument("--iters", type=int, default=200, help="timed calls per case (median; at least 100)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--compiler", choices=("cupy", "nvrtc", "nvcc"), default="cupy")
    parser.add_argument("--json", metavar="OUT", help="write every figure and the device facts here")
    args = parser.parse_args(argv)
    if args.iters < 100:
        parser.error("--iters must be at least 100 (the issue asks for the median of >= 100).")

    if not gpu_available():
        print(NO_GPU, file=sys.stderr)
        return 2
    import torch

    try:
        import cupy
    except ImportError:
        print(NO_CUPY, file=sys.stderr)
        return 2
    from litevit.plugins.kernels import specs

    # The reference must be FP32 where FP32 is asked for: no TF32 in cuDNN convolutions or matmuls.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    facts = device_facts(cupy, torch)
    peak = facts["peak_bandwidth_gb_s"] * 1e9 if facts["peak_bandwidth_gb_s"] else None
    arch = "sm_" + facts["compute_capability"].replace(".", "")
    print(
        f"{facts['name']} (compute capability {facts['compute_capability']}), peak memory bandwidth "
        f"{facts['peak_bandwidth_gb_s'] or 'unknown'} GB/s; torch {facts['torch']}, CuPy {facts['cupy']}; "
        f"kernels compiled by {args.compiler}"
    )
    found = specs()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        modules = {
            op: load_module(cupy, found[op].source, args.compiler, arch, Path(work)) for op in args.ops
        }
        for case in all_cases(args.ops, args.resolutions, args.batches):
            for dtype in args.dtypes:
                rows.append(
                    run_case(torch, cupy, case, dtype, modules[case.op_type], found[case.op_type], args, peak)
                )
    print(table(rows))
    print(summary(rows))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"device": facts, "compiler": args.compiler, "cases": rows}, indent=1)
        )
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
