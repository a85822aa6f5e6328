"""The plugin library against real TensorRT headers, through the C++ harness (tests/plugins/trt_harness).

* The fixture the harness reads (``trt_harness/plugin_nodes.json``, nodes of the exported LVT and
  ELSA-Swin-T) is in step with the ops and the exporter: the ONNX schema of each op, a fresh export
  of the smoke models with ``--ops plugin`` and dynamic axes (the same attribute names, types and
  plugin lookup values, the same pattern of fixed and symbolic input dims), and the ops' shape rules
  (``spec.py``) for the output shapes the exporter wrote.
* ``harness_build.py`` builds ``liblitevit_plugins.so`` with ``plugins/CMakeLists.txt`` against a set
  of TensorRT headers (every plugin API of that release), builds the harness against the same
  headers under AddressSanitizer and runs it. Headers: ``../shared/third_party/tensorrt`` next to the
  repository (what CI has), or the include dirs / folders of ``<version>/include`` in
  ``$LITEVIT_TRT_HEADERS`` (os.pathsep-separated; every set found there is tested). Without
  ``$LITEVIT_TRT_HEADERS`` only the newest set is tested here; ``.ci/plugins`` does every one.
  Skipped in one line where the headers or the compilers are absent.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

import harness_build
import make_plugin_nodes
from litevit.plugins.kernels import OP_PACKAGES, specs

FIXTURE = json.loads(harness_build.FIXTURE.read_text(encoding="utf-8"))
SHARED_HEADERS = harness_build.ROOT.parent / "shared" / "third_party" / "tensorrt"
HEADERS_ENV = "LITEVIT_TRT_HEADERS"


def _header_sets() -> list[harness_build.HeaderSet]:
    chosen = os.environ.get(HEADERS_ENV)
    if chosen:
        return harness_build.find_header_sets(*(Path(p) for p in chosen.split(os.pathsep) if p))
    found = harness_build.find_header_sets(SHARED_HEADERS) if SHARED_HEADERS.is_dir() else []
    return found[-1:]


HEADER_SETS = _header_sets()
CASES = [(headers, api) for headers in HEADER_SETS for api in headers.apis]


def _symbolic(dim: int | str) -> bool:
    return isinstance(dim, str)


def _evaluate(dim: int | str, symbols: dict[str, int]) -> int:
    """A dim of the fixture (an int, or the exporter's ``4*s75 + 1``: sums and differences of
    products of integers and symbols) with every symbol bound."""
    if isinstance(dim, int):
        return dim
    total = 0
    for sign, term in re.findall(r"([+-]?)\s*([^+-]+)", dim.replace(" ", "")):
        product = 1
        for factor in term.split("*"):
            product *= int(factor) if factor.isdigit() else symbols[factor]
        total += -product if sign == "-" else product
    return total


def _symbols(shapes: list[list[int | str]]) -> list[str]:
    names = {
        name
        for shape in shapes
        for dim in shape
        if _symbolic(dim)
        for name in re.findall(r"[A-Za-z_]\w*", str(dim))
    }
    return sorted(names)


def _attrs(node: dict[str, Any]) -> dict[str, Any]:
    return {a["name"]: a["value"] for a in node["attributes"]}


def _smoke_export_nodes() -> list[dict[str, Any]]:
    pytest.importorskip("torch")
    from litevit.export.onnx_export import GraphSpec, apply_ops_mode, output_names, torch_to_onnx
    from litevit.models import create_model

    nodes = []
    for name in make_plugin_nodes.MODELS:
        model = create_model(name, smoke=True).eval()
        # Dynamic batch only: a dynamic height and width take minutes more to export here.
        spec = GraphSpec((64, 64), 1, True, False, make_plugin_nodes.OPSET, "plugin")
        graph = apply_ops_mode(torch_to_onnx(model, spec, output_names(model.cfg.task, "labels")), "plugin")
        nodes += make_plugin_nodes.litevit_nodes(graph, name)
    return nodes


def test_fixture_nodes_follow_the_op_schemas_and_shape_rules() -> None:
    import onnx

    import litevit.ops  # noqa: F401  (registers the litevit schemas with onnx)

    kinds = {"INT": onnx.defs.OpSchema.AttrType.INT, "INTS": onnx.defs.OpSchema.AttrType.INTS}
    kinds["STRING"] = onnx.defs.OpSchema.AttrType.STRING
    assert {node["op_type"] for node in FIXTURE["nodes"]} == set(OP_PACKAGES)
    for node in FIXTURE["nodes"]:
        schema = onnx.defs.get_schema(node["op_type"], 1, "litevit")
        declared = {name: attribute.type for name, attribute in schema.attributes.items()}
        assert {a["name"]: kinds[a["type"]] for a in node["attributes"]} == declared, node["name"]
        attrs = _attrs(node)
        assert (attrs["plugin_version"], attrs["plugin_namespace"]) == ("1", "litevit")
        spec = specs()[node["op_type"]]
        symbols = _symbols(node["inputs"])
        for binding in ({s: 1 for s in symbols}, {s: 2 + i for i, s in enumerate(symbols)}):
            shapes = [tuple(_evaluate(d, binding) for d in shape) for shape in node["inputs"]]
            wanted = tuple(_evaluate(d, binding) for d in node["outputs"][0])
            assert tuple(spec.output_shape(shapes, attrs)) == wanted, node["name"]
    names = {node["name"] for node in FIXTURE["nodes"]}
    assert {r["node"] for r in FIXTURE["refusals"]} <= names
    assert {r["stage"] for r in FIXTURE["refusals"]} == {"network", "profile"}


def test_fixture_matches_a_fresh_export() -> None:
    """The smoke models exported as the fixture's were (dynamic batch): per op, the same attributes
    (names, ONNX types, plugin lookup values) and the same inputs (ranks; which have a batch axis)."""
    fresh = _smoke_export_nodes()

    def signature(node: dict[str, Any]) -> tuple[Any, ...]:
        attributes = tuple(
            (a["name"], a["type"], a["value"] if a["name"].startswith("plugin_") else None)
            for a in node["attributes"]
        )
        inputs = tuple((len(shape), _symbolic(shape[0])) for shape in node["inputs"])
        return node["op_type"], attributes, inputs

    assert {signature(n) for n in fresh} == {signature(n) for n in FIXTURE["nodes"]}


@pytest.mark.skipif(not HEADER_SETS, reason=f"no TensorRT headers in {SHARED_HEADERS} or ${HEADERS_ENV}")
@pytest.mark.parametrize(("headers", "api"), CASES, ids=[f"trt{h.name}-{api}" for h, api in CASES])
def test_library_builds_and_passes_the_harness(
    headers: harness_build.HeaderSet, api: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    missing = harness_build.missing_tools()
    if missing:
        pytest.skip(f"cannot build the plugin library here: {missing}")
    build_dir = os.environ.get(harness_build.BUILD_DIR_ENV)
    root = Path(build_dir) if build_dir else tmp_path_factory.getbasetemp() / "plugin-builds"
    lines: list[str] = []
    assert harness_build.check(headers, api, root, log=lines.append), "\n".join(lines)
