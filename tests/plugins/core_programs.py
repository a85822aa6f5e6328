"""The g++-built drivers of tests/plugins/cpp/test_<op>_core.cpp (core_test_util.h), shared by the
op core tests (``import core_programs``, as pytest puts this folder on sys.path).

Each driver prints what one op core makes of one node: its refusals, output shape, launch and
whether that launch writes every output element exactly once.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from litevit.errors import LitevitError
from litevit.plugins.compile import cxx_compile, find_cxx
from litevit.plugins import kernels
from litevit.plugins.kernels import KernelSpec

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"

Shapes = list[tuple[int, ...]]


def build(tmp_path_factory: pytest.TempPathFactory, package: str) -> Path:
    """plugins/<package>/<package>_core.cpp with its driver; skips the test without a C++ compiler."""
    try:
        find_cxx()
    except LitevitError as missing:
        pytest.skip(str(missing))
    sources = [
        PLUGINS / package / f"{package}_core.cpp",
        PLUGINS / "common" / "serialize.cpp",
        ROOT / "tests" / "plugins" / "cpp" / f"test_{package}_core.cpp",
    ]
    binary = tmp_path_factory.mktemp(f"{package}_core") / f"test_{package}_core"
    return cxx_compile(sources, binary, include_dirs=[PLUGINS])


def run_core(core: Path, attrs: dict[str, list[int]], shapes: Shapes) -> dict[str, str]:
    """The driver's facts as {"launch": "...", "error": "...", ...}."""
    args = [f"{name}={','.join(map(str, values))}" for name, values in attrs.items()]
    args += ["--", *(",".join(map(str, shape)) for shape in shapes)]
    out = subprocess.run([str(core), *args], check=True, capture_output=True, text=True).stdout
    return {key: value for key, _, value in (line.partition(" ") for line in out.splitlines())}


def python_launch(spec: KernelSpec, shapes: Shapes, attrs: dict[str, list[int]]) -> str:
    """``spec``'s launch in the driver's "launch" format."""
    launch = spec.launch(shapes, attrs)
    return " ".join(map(str, (*launch.grid, *launch.block, launch.shared_bytes, *launch.scalars)))


def check_rules_names_and_kernels(
    core: Path, spec: KernelSpec, shapes: Shapes, attrs: dict[str, list[int]]
) -> None:
    """The driver's output rules, attribute names and input count are ``spec``'s, and ``spec`` is the
    registered one."""
    facts = run_core(core, attrs, shapes)
    rules = [(r.input, r.axis, r.scale, r.offset) for r in spec.output_dims(attrs)]
    assert facts["rules"] == " ".join(str(v) for rule in rules for v in rule)
    assert tuple(facts["names"].split()) == spec.attribute_names
    assert int(facts["inputs"]) == spec.num_inputs
    assert kernels.specs()[spec.op_type] is spec


def check_kernel_signature(spec: KernelSpec, shapes: Shapes, attrs: dict[str, Any]) -> None:
    """Each kernel takes the inputs, the output, then exactly the scalars the launch gives."""
    source = spec.source.read_text()
    launch = spec.launch(shapes, attrs)
    for dtype, name in spec.kernels.items():
        match = re.search(rf'extern "C" __global__ void __launch_bounds__\(256\) {name}\(([^)]*)\)', source)
        assert match, f"{name} not found in {spec.source.name}"
        params = [p.strip() for p in match.group(1).split(",")]
        element = "float" if dtype == "float32" else "__half"
        pointers = [p for p in params if p.split("*")[0].strip() in (f"const {element}", element)]
        assert len(pointers) == spec.num_inputs + 1
        assert params[len(pointers) :] == [p for p in params if p.startswith("int ")]
        assert len(params) - len(pointers) == len(launch.scalars)
