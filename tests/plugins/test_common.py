"""The shared plugin C++ (plugins/common) and the C++/Python contract of every op, with g++.

* serialize.{h,cpp}: the documented byte layout, round trips, and refusal of every truncation and
  corruption (tests/plugins/cpp/common_serialize.cpp).
* For every op with a core and a spec: a generated program prints the C++ ``launch()`` and
  ``outputDims()`` for several shapes, also after the attributes went through the engine
  serialization the TensorRT glue uses; they must equal the spec's ``launch`` and ``output_dims``,
  and the dims rules must give the spec's ``output_shape``.
"""

from __future__ import annotations

import json
import struct
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from litevit.plugins.compile import cxx_compile
from litevit.plugins.kernels import OP_PACKAGES, PLUGINS_DIR, AffineDim, KernelSpec, Launch

COMMON = PLUGINS_DIR / "common"
CPP_TESTS = Path(__file__).parent / "cpp"
# The op classes of the contract (plugins/<package>/<package>_core.h).
OP_CLASSES = {"CSA": "CsaOp", "RASA": "RasaOp", "GhostHead": "GhostHeadOp"}

Case = tuple[list[tuple[int, ...]], dict[str, Any]]


def _csa(
    batch: int, heads: int, channels: int, windows: tuple[int, int], k: int = 3, s: int = 2, p: int = 1
) -> Case:
    h, w = windows
    shapes: list[tuple[int, ...]] = [(batch, heads * k**4, h, w), (batch, k * k * channels, h, w)]
    return shapes, {"heads": heads, "kernel_size": k, "stride": s, "padding": p, "channels": channels}


def _rasa(batch: int, channels: int, size: tuple[int, int], dilations: list[int], k: int = 3) -> Case:
    return [(batch, channels, *size), (channels, 1, k, k)], {"dilations": dilations, "kernel_size": k}


def _ghost(
    batch: int, channels: int, heads: int, size: tuple[int, int], k: int = 3, dilation: int = 1
) -> Case:
    shapes: list[tuple[int, ...]] = [
        (batch, channels, *size),
        (batch, heads * k * k, *size),
        (channels, k, k),
        (channels, k, k),
    ]
    return shapes, {"heads": heads, "kernel_size": k, "dilation": dilation}


# Shapes the models use (LVT at 224: 56x56 -> 28x28 windows; ELSA's ghost heads) and odd ones.
CASES: dict[str, list[Case]] = {
    "CSA": [
        _csa(1, 2, 64, (28, 28)),
        _csa(8, 2, 64, (28, 28)),
        _csa(1, 4, 96, (7, 5)),
        _csa(2, 1, 8, (1, 1), k=2, s=1, p=0),
        _csa(3, 2, 16, (4, 6), k=5, s=3, p=2),
    ],
    "RASA": [
        _rasa(1, 64, (56, 56), [1, 3, 5]),
        _rasa(8, 64, (56, 56), [1, 3, 5]),
        _rasa(2, 3, (7, 9), [2]),
        _rasa(1, 32, (1, 1), [1, 2, 3, 4], k=5),
    ],
    "GhostHead": [
        _ghost(1, 64, 2, (56, 56)),
        _ghost(8, 128, 4, (28, 28), dilation=2),
        _ghost(2, 6, 3, (5, 7), k=5),
        _ghost(1, 8, 8, (1, 1), k=1),
    ],
}


def _present_ops() -> dict[str, KernelSpec]:
    """The ops whose core header and spec exist (a helper may not have finished one)."""
    import importlib

    present = {}
    for op_type, package in OP_PACKAGES.items():
        folder = PLUGINS_DIR / package
        if (folder / f"{package}_core.h").is_file() and (folder / "spec.py").is_file():
            present[op_type] = importlib.import_module(f"litevit.plugins.{package}.spec").SPEC
    return present


def _run(binary: Path) -> str:
    proc = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_serialization_layout_round_trips_and_refusals(tmp_path: Path) -> None:
    binary = cxx_compile(
        [CPP_TESTS / "common_serialize.cpp", COMMON / "serialize.cpp"],
        tmp_path / "serialize",
        include_dirs=[COMMON],
    )
    lines = _run(binary).splitlines()
    assert lines[-1] == "ok", lines
    # {"dilations": [1, -2], "k": [3]}: magic, version, count, then the attributes sorted by name.
    expected = b"LVTA" + struct.pack("<II", 1, 2)
    expected += struct.pack("<I", 9) + b"dilations" + struct.pack("<Iii", 2, 1, -2)
    expected += struct.pack("<I", 1) + b"k" + struct.pack("<Ii", 1, 3)
    assert lines[0] == f"layout {expected.hex()}"


def _cpp_attributes(attrs: Mapping[str, Any]) -> str:
    entries = []
    for name, value in sorted(attrs.items()):
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        entries.append(f'{{"{name}", {{{", ".join(str(int(v)) for v in values)}}}}}')
    return "{" + ", ".join(entries) + "}"


def _cpp_shapes(shapes: Sequence[tuple[int, ...]]) -> str:
    return "{" + ", ".join("{{" + ", ".join(str(d) for d in shape) + "}}" for shape in shapes) + "}"


def _evaluate(dims: Sequence[AffineDim], shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    return tuple(d.offset if d.scale == 0 else d.scale * shapes[d.input][d.axis] + d.offset for d in dims)


def test_cpp_launch_and_output_dims_equal_the_specs(tmp_path: Path) -> None:
    specs = _present_ops()
    if not specs:
        pytest.skip("no op has a core and a spec yet")
    missing = sorted(set(specs) - set(CASES))
    assert not missing, f"add shapes for {missing} to CASES"
    includes, calls, expected = [], [], {}
    for op_type, spec in specs.items():
        package = OP_PACKAGES[op_type]
        includes.append(f'#include "{package}/{package}_core.h"')
        for index, (shapes, attrs) in enumerate(CASES[op_type]):
            node_attrs = {name: attrs[name] for name in spec.attribute_names}
            label = f"{op_type} {index}"
            arguments = f'"{label}", {_cpp_attributes(node_attrs)}, {_cpp_shapes(shapes)}'
            calls.append(f"    contract::emit<litevit::{OP_CLASSES[op_type]}>({arguments});")
            expected[label] = (spec, shapes, node_attrs)
    main = tmp_path / "contract.cpp"
    lines = ['#include "common_contract.h"', *includes, "int main()", "{", *calls, "    return 0;", "}"]
    main.write_text("\n".join(lines) + "\n")
    cores = [path for op_type in specs for path in (PLUGINS_DIR / OP_PACKAGES[op_type]).glob("*_core.cpp")]
    binary = cxx_compile(
        [main, COMMON / "serialize.cpp", *cores], tmp_path / "contract", include_dirs=[PLUGINS_DIR, CPP_TESTS]
    )

    printed = [json.loads(line) for line in _run(binary).splitlines()]
    assert len(printed) == 2 * len(expected)
    for row in printed:
        spec, shapes, attrs = expected[row["label"].removesuffix(" restored")]
        want: Launch = spec.launch(shapes, attrs)
        got = Launch(tuple(row["grid"]), tuple(row["block"]), row["shared"], tuple(row["scalars"]))
        assert got == want, row["label"]
        dims = tuple(AffineDim(*rule) for rule in row["dims"])
        assert dims == tuple(spec.output_dims(attrs)), row["label"]
        assert _evaluate(dims, shapes) == tuple(spec.output_shape(shapes, attrs)), row["label"]


def test_every_op_with_a_spec_has_a_kernel_source_and_its_names() -> None:
    for op_type, spec in _present_ops().items():
        package = OP_PACKAGES[op_type]
        assert spec.op_type == op_type
        assert spec.source == PLUGINS_DIR / package / f"{package}_kernel.cu"
        assert spec.kernels == {"float32": f"litevit_{package}_f32", "float16": f"litevit_{package}_f16"}
        assert spec.source.is_file()
