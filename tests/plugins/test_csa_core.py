"""CSA plugin core and kernel index math, host side (no GPU here).

* ``cpp/test_csa_core.cpp`` (built with g++): window ranges vs brute force, launch coverage (every
  output element owned by exactly one thread of the grid), attribute round trip; the C++ output
  dims, launch and refusal sentences equal ``plugins/csa/spec.py``'s for the same cases.
* The kernel's own per-thread code (``csa_gather.h``: thread mapping + gather, FP32) run for every
  thread of the launch on the CPU equals the PyTorch reference ``litevit.ops.csa.csa``.
* ``spec.output_shape`` equals ``csa_output_shape`` (and refuses what it refuses).
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from litevit.errors import LitevitError
from litevit.ops import CSA_OP
from litevit.ops.csa import csa, csa_output_shape
from litevit.plugins.csa import spec as csa_spec
from litevit.plugins.kernels import Launch

REPO = Path(__file__).resolve().parents[2]
TEST_PROGRAM = REPO / "tests" / "plugins" / "cpp" / "test_csa_core.cpp"
CORE = REPO / "plugins" / "csa" / "csa_core.cpp"


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ is not installed")
    binary = tmp_path_factory.mktemp("csa_core") / "test_csa_core"
    subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            str(TEST_PROGRAM),
            str(CORE),
            "-o",
            str(binary),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return binary


def _attrs(heads: int, kernel_size: int, stride: int, padding: int, channels: int) -> dict[str, int]:
    return {
        "heads": heads,
        "kernel_size": kernel_size,
        "stride": stride,
        "padding": padding,
        "channels": channels,
    }


def _shapes(
    batch: int, heads: int, kernel_size: int, channels: int, windows_h: int, windows_w: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    taps = kernel_size * kernel_size
    return (batch, heads * taps * taps, windows_h, windows_w), (batch, taps * channels, windows_h, windows_w)


def test_selfcheck(program: Path) -> None:
    result = subprocess.run([str(program), "selfcheck"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ok coverage 401408 elements" in result.stdout  # LVT stage 1 at 224x224, batch 2


def test_cpp_names_equal_spec(program: Path) -> None:
    result = subprocess.run([str(program), "info"], capture_output=True, text=True, timeout=60, check=True)
    spec = csa_spec.SPEC
    assert result.stdout.split() == [spec.op_type, str(spec.num_inputs), *spec.attribute_names]


# (attributes, attn shape, values shape): accepted ones (LVT's geometry and others), then one
# case per refusal.
CASES: list[tuple[dict[str, Any], tuple[int, ...], tuple[int, ...]]] = [
    (_attrs(2, 3, 2, 1, 64), *_shapes(1, 2, 3, 64, 28, 28)),
    (_attrs(2, 3, 2, 1, 64), *_shapes(8, 2, 3, 64, 14, 21)),
    (_attrs(1, 3, 2, 1, 16), *_shapes(2, 1, 3, 16, 5, 3)),
    (_attrs(4, 2, 2, 0, 8), *_shapes(3, 4, 2, 8, 4, 6)),
    (_attrs(1, 3, 1, 2, 3), *_shapes(1, 1, 3, 3, 6, 1)),
    (_attrs(2, 2, 5, 1, 2), *_shapes(1, 2, 2, 2, 3, 4)),
    (_attrs(2, 3, 2, 1, 64), *_shapes(0, 2, 3, 64, 7, 7)),
    (_attrs(1, 3, 1, 1, 4), *_shapes(1, 1, 3, 4, 0, 5)),
    ({"heads": 2, "kernel_size": 3, "stride": 2, "padding": 1}, *_shapes(1, 2, 3, 64, 4, 4)),
    ({**_attrs(2, 3, 2, 1, 64), "stride": [2, 2]}, *_shapes(1, 2, 3, 64, 4, 4)),
    (_attrs(2, 3, 2, 3, 64), *_shapes(1, 2, 3, 64, 4, 4)),
    (_attrs(0, 3, 2, 1, 64), *_shapes(1, 1, 3, 64, 4, 4)),
    (_attrs(2, 3, 0, 1, 64), *_shapes(1, 2, 3, 64, 4, 4)),
    (_attrs(3, 3, 2, 1, 64), *_shapes(1, 3, 3, 64, 4, 4)),
    (_attrs(2, 300, 2, 1, 64), (1, 2, 4, 4), (1, 2, 4, 4)),
    (_attrs(2, 3, 2, 1, 64), (1, 162, 4), (1, 576, 4, 4)),
    (_attrs(2, 3, 2, 1, 64), (1, 162, 4, 4), (576,)),
    (_attrs(2, 3, 2, 1, 64), (1, 162, -1, 4), (1, 576, -1, 4)),
    (_attrs(2, 3, 2, 1, 64), (-1, 162, -1, -1), (-1, 575, -1, -1)),  # what is known while building
    (_attrs(2, 3, 2, 1, 64), (-1, 81, -1, -1), (-1, 576, -1, -1)),
    (_attrs(2, 3, 2, 1, 64), *_shapes(1, 2, 3, 63, 4, 4)),
    (_attrs(2, 3, 2, 1, 64), *_shapes(1, 2, 3, 66, 4, 4)),
    (_attrs(2, 3, 2, 1, 64), (2, 162, 4, 4), (1, 576, 4, 4)),
    (_attrs(2, 3, 2, 1, 64), (1, 81, 4, 4), (1, 576, 4, 4)),
    (_attrs(2, 3, 2, 1, 64), (1, 162, 4, 5), (1, 576, 4, 4)),
    (_attrs(1, 2, 3, 1, 4), *_shapes(1, 1, 2, 4, 0, 5)),
    (_attrs(2, 3, 2, 1, 64), *_shapes(1, 2, 3, 64, 16384, 16384)),
    (_attrs(1, 1, 4, 0, 1), *_shapes(1, 1, 1, 1, 12000, 12000)),  # inputs fit, the output does not
]


def _case_line(attrs: dict[str, Any], attn: tuple[int, ...], values: tuple[int, ...]) -> str:
    items = " ".join(
        f"{name}={','.join(str(v) for v in (value if isinstance(value, list) else [value]))}"
        for name, value in attrs.items()
    )
    return f"{items}; attn {' '.join(map(str, attn))}; values {' '.join(map(str, values))}"


def _spec_answer(attrs: dict[str, Any], attn: tuple[int, ...], values: tuple[int, ...]) -> str:
    try:
        shape = csa_spec.SPEC.output_shape([attn, values], attrs)
        rules = csa_spec.SPEC.output_dims(attrs)
        launch = csa_spec.SPEC.launch([attn, values], attrs)
    except LitevitError as error:
        return f"error {error}"
    rule_numbers = [n for r in rules for n in (r.input, r.axis, r.scale, r.offset)]
    launch_numbers = [*launch.grid, *launch.block, launch.shared_bytes, *launch.scalars]
    return (
        f"ok dims {' '.join(map(str, shape))} rules {' '.join(map(str, rule_numbers))} "
        f"launch {' '.join(map(str, launch_numbers))}"
    )


def test_cpp_core_equals_spec(program: Path) -> None:
    """Output dims (the C++ rules evaluated), rules, launch and refusal sentences: C++ == Python."""
    lines = "\n".join(_case_line(*case) for case in CASES) + "\n"
    result = subprocess.run([str(program), "cases"], input=lines, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answers = result.stdout.splitlines()
    assert len(answers) == len(CASES)
    for case, answer in zip(CASES, answers, strict=True):
        assert answer == _spec_answer(*case), case
    refusals = [a for a in answers if a.startswith("error")]
    assert len(refusals) == len(CASES) - 8  # every refusal case is refused, for its own reason
    assert len(set(refusals)) == len(refusals)


def test_spec_output_shape_equals_reference() -> None:
    """spec.output_shape == ops.csa's csa_output_shape; the spec refuses what the reference refuses."""
    checked = 0
    for heads, kernel_size, stride, padding, batch, windows_h, windows_w in itertools.product(
        (1, 2, 5), (1, 2, 3, 4), (1, 2, 3, 5), (0, 1, 2, 3), (1, 3), (1, 2, 7), (1, 4)
    ):
        channels = 10 * heads
        attn, values = _shapes(batch, heads, kernel_size, channels, windows_h, windows_w)
        attrs = {"heads": heads, "kernel_size": kernel_size, "stride": stride, "padding": padding}
        try:
            expected = csa_output_shape(attn, values, **attrs)
        except ValueError:
            with pytest.raises(LitevitError):
                csa_spec.output_shape([attn, values], {**attrs, "channels": channels})
            continue
        assert csa_spec.output_shape([attn, values], {**attrs, "channels": channels}) == expected
        checked += 1
    assert checked > 300
    bad_values = (1, 9 * 10 + 1, 4, 4)  # not k²·C channels
    with pytest.raises(ValueError):
        csa_output_shape((1, 162, 4, 4), bad_values, 2, 3, 2, 1)
    with pytest.raises(LitevitError, match="k²·channels"):
        csa_spec.output_shape([(1, 162, 4, 4), bad_values], _attrs(2, 3, 2, 1, 10))


def test_spec_attributes_accept_plugin_field_arrays() -> None:
    """TensorRT plugin fields hold each attribute as a one-element int32 array."""
    as_arrays = {name: np.array([value], dtype=np.int32) for name, value in _attrs(2, 3, 2, 1, 64).items()}
    shapes = list(_shapes(1, 2, 3, 64, 28, 28))
    assert csa_spec.launch(shapes, as_arrays) == csa_spec.launch(shapes, _attrs(2, 3, 2, 1, 64))
    assert csa_spec.launch(shapes, as_arrays) == Launch(
        grid=(-(-64 * 56 * 56 // 256), 1, 1),
        block=(256, 1, 1),
        shared_bytes=0,
        scalars=(1, 64, 2, 3, 2, 1, 28, 28),
    )


@pytest.mark.parametrize(
    ("heads", "kernel_size", "stride", "padding", "batch", "channels", "windows_h", "windows_w"),
    [
        (2, 3, 2, 1, 2, 16, 7, 5),  # LVT's geometry, odd window counts
        (1, 3, 2, 1, 1, 8, 4, 4),
        (4, 2, 2, 0, 2, 8, 3, 5),  # no overlap
        (2, 3, 1, 2, 1, 6, 5, 4),  # stride 1: up to 9 windows per pixel
        (1, 2, 3, 1, 2, 3, 3, 2),  # stride > k: rows and columns no window reaches stay 0
        (3, 1, 1, 0, 1, 9, 2, 3),  # 1x1 windows
        (2, 3, 2, 1, 1, 4, 1, 1),
    ],
)
def test_kernel_code_on_cpu_equals_reference(
    program: Path,
    tmp_path: Path,
    heads: int,
    kernel_size: int,
    stride: int,
    padding: int,
    batch: int,
    channels: int,
    windows_h: int,
    windows_w: int,
) -> None:
    """Every thread of the launch through the kernel's threadElement + gatherElement (FP32, g++)."""
    attn_shape, values_shape = _shapes(batch, heads, kernel_size, channels, windows_h, windows_w)
    generator = torch.Generator().manual_seed(kernel_size * 100 + stride * 10 + padding)
    attn = torch.rand(attn_shape, generator=generator)
    values = torch.randn(values_shape, generator=generator)
    expected = csa(attn, values, heads, kernel_size, stride, padding)

    header = np.array(
        [heads, kernel_size, stride, padding, channels, *attn_shape, *values_shape], dtype=np.int32
    )
    inputs = tmp_path / "inputs.bin"
    inputs.write_bytes(header.tobytes() + attn.numpy().tobytes() + values.numpy().tobytes())
    outputs = tmp_path / "output.bin"
    result = subprocess.run(
        [str(program), "emulate", str(inputs), str(outputs)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    got = torch.from_numpy(np.fromfile(outputs, dtype=np.float32)).reshape(expected.shape)
    assert not got.isnan().any(), "some output element was written by no thread"
    scale = expected.abs().max().item()
    assert (got - expected).abs().max().item() <= 1e-5 * scale


def test_spec_describes_the_kernel_source() -> None:
    """Kernel names, and scalar parameters in the order of the launch's scalars (which the kernel
    hands to makeGeometry positionally)."""
    source = " ".join(csa_spec.SPEC.source.read_text().split())
    scalars = ", ".join(csa_spec.SCALAR_NAMES)
    for name in csa_spec.SPEC.kernels.values():
        declaration = f'extern "C" __global__ void __launch_bounds__(litevit::csa::kBlockSize) {name}('
        assert declaration in source
        parameters = source.split(declaration)[1].split(")")[0]
        assert parameters.endswith(
            "__restrict__ output, " + ", ".join(f"int {n}" for n in csa_spec.SCALAR_NAMES)
        )
    assert f"makeGeometry( {scalars});" in source
    assert csa_spec.SPEC.num_inputs == len(CSA_OP.tensor_args) == 2
    gather = (csa_spec.SPEC.source.parent / "csa_gather.h").read_text()
    assert f"constexpr int kBlockSize = {csa_spec.BLOCK_SIZE};" in gather


def test_exported_node_carries_every_attribute_the_plugin_reads() -> None:
    assert set(csa_spec.ATTRIBUTE_NAMES) <= set(CSA_OP.attr_args) | set(CSA_OP.onnx_attr_names)


def test_spec_imports_without_torch(tmp_path: Path) -> None:
    code = "import sys, litevit.plugins.csa.spec; sys.exit('torch' in sys.modules)"
    # Outside the checkout, where the source tree would shadow the installed package.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr or "importing the spec imported torch"
