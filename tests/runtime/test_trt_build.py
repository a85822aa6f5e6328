"""The TensorRT build layer (litevit.runtime.trt_build) against fake_tensorrt.py, a FAKE of the
TensorRT API subset litevit uses, made per version (TensorRT cannot be installed here).

What these tests prove is litevit's own logic: which version facts it derives, which flags and
graphs it hands TensorRT per version and precision, how it routes custom ops, what it writes and
what it refuses. They prove nothing about TensorRT's behaviour. The model is a tiny hand-built
graph (Conv -> litevit::CSA -> litevit::RASA -> pool) in an artefact folder with FP32, FP16 and
Q/DQ INT8 graphs, so no torch export is needed.
"""

from __future__ import annotations

import _ctypes
import hashlib
import json
import shutil
import sys
from pathlib import Path

import fake_tensorrt
import numpy as np
import onnx
import onnx.inliner
import onnx.numpy_helper
import pytest
from onnx import TensorProto, helper

import litevit._deps as deps
from litevit.export.trt_target import adapt_for_target
from litevit.errors import LitevitError, MissingDependencyError
from litevit.runtime import doctor, environment, runners, trt_build
from litevit.runtime.runners import open_runner
from litevit.runtime.trt_build import (
    ShapeRange,
    TrtFeatures,
    build_artifact,
    build_engine,
    optimisation_profiles,
    parse_shapes,
    route_custom_ops,
)

GPU = {"gpu_name": "NVIDIA Orin (fake)", "compute_capability": "8.7", "driver": "540.4.0"}
OTHER_GPU = {"gpu_name": "NVIDIA A100 (fake)", "compute_capability": "8.0", "driver": "550.1"}
OPSET = 17


# ---------------------------------------------------------------------------------------------
# The tiny model and its artefact folder


def _function(name: str, nodes: list[onnx.NodeProto]) -> onnx.FunctionProto:
    return helper.make_function(
        "litevit", name, ["x"], ["y"], nodes, opset_imports=[helper.make_opsetid("", OPSET)], attributes=[]
    )


CSA_BODY = _function(
    "CSA",
    [
        helper.make_node(
            "Constant", [], ["two"], value=helper.make_tensor("v", TensorProto.FLOAT, [], [2.0])
        ),
        helper.make_node("CastLike", ["two", "x"], ["two_like"], name="csa_two_like"),
        helper.make_node("Mul", ["x", "two_like"], ["y"]),
    ],
)
RASA_BODY = _function("RASA", [helper.make_node("Relu", ["x"], ["y"])])
CREATORS = {("CSA", "1", "litevit"): CSA_BODY, ("RASA", "1", "litevit"): RASA_BODY}


def tiny_model(kind: str = "fp32", ops: str = "function", namespace: bool = True) -> onnx.ModelProto:
    """input (batch, 3, 8, 8) -> [Q/DQ | cast to fp16] -> Conv 3->4 -> CSA -> RASA -> pool -> logits."""
    weight = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32) / 3
    initializers = [
        onnx.numpy_helper.from_array(weight.astype(np.float16 if kind == "fp16" else np.float32), "w")
    ]
    nodes = []
    x = "input"
    if kind == "int8":
        initializers += [
            onnx.numpy_helper.from_array(np.array(1 / 32, np.float32), "scale"),
            onnx.numpy_helper.from_array(np.array(0, np.int8), "zero"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["input", "scale", "zero"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"]),
        ]
        x = "dq"
    if kind == "fp16":
        nodes.append(helper.make_node("Cast", ["input"], ["half"], to=TensorProto.FLOAT16))
        x = "half"
    plugin_attrs = {"plugin_version": "1", **({"plugin_namespace": "litevit"} if namespace else {})}
    nodes += [
        helper.make_node("Conv", [x, "w"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("CSA", ["conv"], ["csa"], domain="litevit", **plugin_attrs),
        helper.make_node("RASA", ["csa"], ["rasa"], domain="litevit", **plugin_attrs),
        helper.make_node("GlobalAveragePool", ["rasa"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat" if kind == "fp16" else "logits"]),
    ]
    if kind == "fp16":
        nodes.append(helper.make_node("Cast", ["flat"], ["logits"], to=TensorProto.FLOAT))
    graph = helper.make_graph(
        nodes,
        f"tiny-{kind}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("litevit", 1)],
        functions=[CSA_BODY, RASA_BODY] if ops != "plugin" else [],
    )
    model.ir_version = 8
    if ops == "inline":
        model = onnx.inliner.inline_local_functions(model)
        del model.functions[:]
        kept = [o for o in model.opset_import if o.domain != "litevit"]
        del model.opset_import[:]
        model.opset_import.extend(kept)
    helper.set_model_props(model, {"litevit.model": "tiny", "litevit.ops_mode": ops})
    return model


def write_artifact(
    folder: Path, ops: str = "function", namespace: bool = True, trt: str | None = None
) -> Path:
    """An artefact folder as litevit-export and the calibration step write it (manifest v1);
    ``trt``: the graphs as ``litevit-export --trt RELEASE`` rewrites them."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for kind, name in (("fp32", "tiny.onnx"), ("fp16", "tiny.fp16.onnx"), ("int8", "tiny.int8.onnx")):
        path = folder / name
        model = tiny_model(kind, ops, namespace)
        if trt is not None:
            model, _ = adapt_for_target(model, trt)
        onnx.save(model, path)
        files[name] = {
            "precision": kind,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "bytes": path.stat().st_size,
        }
    manifest = {
        "manifest_version": 1,
        "model": "tiny",
        "task": "classification",
        "data_config": {
            "input_size": [3, 8, 8],
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "pixel_scale": 1.0,
            "interpolation": "bilinear",
            "crop_pct": 0.875,
        },
        "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 3, 8, 8]}],
        "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 4]}],
        "dynamic_axes": {"input": {"0": "batch"}},
        "img_size": [8, 8],
        "batch": 1,
        "ops_mode": ops,
        "trt_target": trt,
        "files": files,
        "calibration": {"key": "tiny-calibration-key"},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def plugin_library(tmp_path):
    """A real shared object named like litevit's plugin library (8.5 loads it with ctypes)."""
    path = tmp_path / "plugins" / "liblitevit_plugins.so"
    path.parent.mkdir()
    shutil.copy(_ctypes.__file__, path)
    return path


@pytest.fixture
def install_trt(monkeypatch):
    """Install a fake TensorRT of one version, fake CUDA, and a fixed GPU."""

    def install(version: str = "10.3.0.26", gpu=GPU, **kwargs):
        trt = fake_tensorrt.make_tensorrt(version, **kwargs)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        present = {"tensorrt", "cuda.bindings", "onnxruntime"}
        for module in (deps, runners, trt_build.parity):
            monkeypatch.setattr(module, "has", lambda name: name in present)
        monkeypatch.setattr(runners, "_open_cuda", lambda index: fake_tensorrt.FakeCuda(index))
        monkeypatch.setattr(environment, "gpu_facts", lambda: dict(gpu))
        monkeypatch.setattr(environment, "cuda_version", lambda: "12.6")
        monkeypatch.setattr(environment, "tensorrt_version", lambda: version)
        monkeypatch.setattr(trt_build.plugins, "_LOADED_PLUGIN_LIBRARIES", set())
        return trt

    return install


def _quiet(lines):
    return lines.append


def _network_flags(trt, flags: int) -> set[str]:
    return {member.name for member in trt.NetworkDefinitionCreationFlag if flags & (1 << member.value)}


# ---------------------------------------------------------------------------------------------
# Version facts


# Expected facts written from the sources cited in TrtFeatures' docstring, not from the code:
# (weak typing, STRONGLY_TYPED flag, always strong, calibrators, calibrators deprecated,
#  plugin precedence, load_library, get_creator, explicit-batch flag)
VERSION_FACTS = {
    "8.5.2.2": (True, False, False, True, False, "no-functions", False, False, True),
    "8.6.2.3": (True, False, False, True, False, "no-functions", True, False, True),
    "9.0.1": (True, True, False, True, False, "function", True, False, True),
    "10.3.0.26": (True, True, False, True, True, "function", True, True, False),
    "10.4.0.26": (True, True, False, True, True, "function", True, True, False),
    "10.6.0": (True, True, False, True, True, "function", True, True, False),
    "10.7.0": (True, True, False, True, True, "plugin-if-registered", True, True, False),
    "10.8.0.43": (True, True, False, True, True, "plugin-if-registered", True, True, False),
    "10.14.1.48": (True, True, False, True, True, "plugin-if-registered", True, True, False),
    "10.15.1.29": (True, True, False, True, True, "plugin-if-namespaced", True, True, False),
    "11.4.0.106": (False, False, True, False, False, "plugin-if-namespaced", True, True, False),
}


@pytest.mark.parametrize("version", VERSION_FACTS)
def test_version_decision_table(version):
    # Proves: every version difference is decided from the version string as the sources say,
    # at each boundary (8.6, 9.0, 10.0, 10.7, 10.15, 11.0).
    f = TrtFeatures.from_version(version)
    actual = (
        f.weak_typing,
        f.strongly_typed_flag,
        f.always_strongly_typed,
        f.int8_calibrators,
        f.int8_calibrators_deprecated,
        f.plugin_precedence,
        f.registry_load_library,
        f.registry_get_creator,
        f.explicit_batch_flag,
    )
    assert actual == VERSION_FACTS[version]


def test_versions_litevit_cannot_build_with_are_one_sentence():
    # Proves: TensorRT older than 8.5 and unreadable versions are refused, not guessed at.
    with pytest.raises(
        LitevitError, match=r"^TensorRT 8\.4\.3 is too old; litevit builds engines with TensorRT 8\.5"
    ):
        TrtFeatures.from_version("8.4.3")
    with pytest.raises(LitevitError, match="cannot read the TensorRT version 'dev'"):
        TrtFeatures.from_version("dev")


# ---------------------------------------------------------------------------------------------
# Flags and graphs per version x precision


@pytest.mark.parametrize(
    ("version", "precision", "strongly_typed", "network_flags", "builder_flags", "graph"),
    [
        ("8.5.2.2", "fp32", None, {"EXPLICIT_BATCH"}, set(), "tiny-fp32"),
        ("8.6.2.3", "fp16", None, {"EXPLICIT_BATCH"}, {"FP16"}, "tiny-fp32"),
        ("8.6.2.3", "int8", None, {"EXPLICIT_BATCH"}, {"INT8", "FP16"}, "tiny-int8"),
        ("10.3.0.26", "fp16", None, set(), {"FP16"}, "tiny-fp32"),
        ("10.3.0.26", "fp16", True, {"STRONGLY_TYPED"}, set(), "tiny-fp16"),
        ("10.8.0.43", "int8", None, set(), {"INT8", "FP16"}, "tiny-int8"),
        ("10.15.1.29", "int8", True, {"STRONGLY_TYPED"}, set(), "tiny-int8"),
        ("11.4.0.106", "fp32", None, set(), set(), "tiny-fp32"),
        ("11.4.0.106", "fp16", None, set(), set(), "tiny-fp16"),
        ("11.4.0.106", "int8", None, set(), set(), "tiny-int8"),
    ],
)
def test_flags_and_graph_per_version_and_precision(
    install_trt, tmp_path, version, precision, strongly_typed, network_flags, builder_flags, graph
):
    # Proves: weakly typed builds (< 11) set FP16 / INT8+FP16 on the FP32 or Q/DQ graph, strongly
    # typed builds set no precision flag and take the FP16 / Q/DQ graph, 11.x gets no flags at
    # all, and the explicit-batch flag is passed before 10.0 only. The fake lacks the members a
    # version lacks, so using e.g. BuilderFlag.FP16 on 11 would fail here.
    trt = install_trt(version)
    # TensorRT 8.x has no CastLike importer (the tiny CSA body has one): export --trt 8.5 / 8.6.
    target = version[:3] if version.startswith("8.") else None
    folder = write_artifact(tmp_path / "tiny", ops="inline", trt=target)
    result = build_artifact(folder, precision, strongly_typed=strongly_typed, log=_quiet([]))
    ((model, path),) = trt.records.parsed
    assert model.graph.name == graph
    assert Path(path).parent == folder
    assert _network_flags(trt, trt.records.network_flags[0]) == network_flags
    assert trt.records.configs[0].flags == builder_flags
    assert result.sidecar["typing"] == ("strong" if strongly_typed or version.startswith("11") else "weak")
    assert set(result.sidecar["builder_flags"]) == builder_flags
    assert result.parity_status == "passed", result.sidecar["parity"]


@pytest.mark.parametrize(
    ("version", "kwargs", "message"),
    [
        (
            "8.5.2.2",
            {"precision": "fp16", "strongly_typed": True},
            "TensorRT 8.5.2.2 has no strongly typed networks (9.0+); build weakly typed (leave out "
            "--strongly-typed).",
        ),
        (
            "11.4.0.106",
            {"precision": "fp16", "strongly_typed": False},
            "TensorRT 11.4.0.106 builds strongly typed networks only; leave out --weakly-typed.",
        ),
        (
            "11.4.0.106",
            {"precision": "int8", "int8_mode": "implicit"},
            "TensorRT 11.4.0.106 removed implicit INT8 calibration; build the Q/DQ INT8 graph with "
            "--int8-mode qdq.",
        ),
        (
            "10.3.0.26",
            {"precision": "fp16", "strongly_typed": True},
            "tiny.onnx is an FP32 graph, but a strongly typed fp16 engine builds from an FP16 graph.",
        ),
        (
            "10.3.0.26",
            {"precision": "int8"},
            "tiny.onnx is an FP32 graph, but a weakly typed int8 engine builds from a Q/DQ INT8 graph.",
        ),
        ("10.3.0.26", {"precision": "fp32", "dla_core": 0}, "DLA runs FP16 and INT8 only; build --precision"),
    ],
)
def test_impossible_requests_are_refused_in_one_sentence(install_trt, tmp_path, version, kwargs, message):
    # Proves: what a version or a graph cannot build is refused before TensorRT is asked.
    trt = install_trt(version)
    folder = write_artifact(tmp_path / "tiny", ops="inline")
    with pytest.raises(LitevitError) as info:
        build_engine(folder / "tiny.onnx", tmp_path / "out.engine", log=_quiet([]), **kwargs)
    assert str(info.value).startswith(message)
    assert trt.records.network_flags == []


# ---------------------------------------------------------------------------------------------
# Custom ops: function bodies stripped, kept or refused


def _routes(version, registered=(), plugin=True, ops="function", namespace=True):
    model = tiny_model("fp32", ops, namespace)
    library = Path("/opt/litevit/liblitevit_plugins.so") if plugin else None
    result = route_custom_ops(
        model, TrtFeatures.from_version(version), library, lambda *key: key in set(registered)
    )
    return result, {f.name for f in result.model.functions}


BOTH = list(CREATORS)
CSA_ONLY = [("CSA", "1", "litevit")]
PLUGIN_LINE = "{op} x1: TensorRT plugin litevit::{op} v1 from liblitevit_plugins.so"
BODY_LINE = "{op} x1: ONNX function body, inlined by the parser"


@pytest.mark.parametrize(
    ("version", "registered", "plugin", "lines", "functions", "flags"),
    [
        # 8.5/8.6 cannot run bodies: plugins, bodies stripped.
        ("8.5.2.2", BOTH, True, [PLUGIN_LINE.format(op="CSA"), PLUGIN_LINE.format(op="RASA")], set(), []),
        # 9.0-10.6 would inline a body over a plugin: strip the ones the plugin library has.
        (
            "10.3.0.26",
            CSA_ONLY,
            True,
            [
                PLUGIN_LINE.format(op="CSA"),
                BODY_LINE.format(op="RASA") + " (liblitevit_plugins.so registers no litevit::RASA v1)",
            ],
            {"RASA"},
            [],
        ),
        (
            "10.4.0.26",
            (),
            False,
            [BODY_LINE.format(op="CSA"), BODY_LINE.format(op="RASA")],
            {"CSA", "RASA"},
            [],
        ),
        # 10.7+ prefers a registered plugin by itself: bodies stay as the fallback.
        (
            "10.8.0.43",
            BOTH,
            True,
            [PLUGIN_LINE.format(op="CSA"), PLUGIN_LINE.format(op="RASA")],
            {"CSA", "RASA"},
            [],
        ),
        (
            "10.15.1.29",
            BOTH,
            True,
            [PLUGIN_LINE.format(op="CSA"), PLUGIN_LINE.format(op="RASA")],
            {"CSA", "RASA"},
            [],
        ),
    ],
)
def test_custom_op_routes_per_version(version, registered, plugin, lines, functions, flags):
    # Proves: per version and plugin presence, which bodies litevit strips or keeps and the
    # one line per op it reports.
    result, kept = _routes(version, registered, plugin)
    assert [route.line for route in result.routes] == lines
    assert kept == functions
    assert result.parser_flags == flags


def test_plugin_override_flag_only_for_nodes_without_a_namespace_on_10_15():
    # Proves: >= 10.15 needs ENABLE_PLUGIN_OVERRIDE only when a node lacks plugin_namespace
    # (creators registered in the empty namespace here); 10.8 never needs it.
    empty_namespace = [("CSA", "1", ""), ("RASA", "1", "")]
    result, _ = _routes("10.15.1.29", empty_namespace, namespace=False)
    assert result.parser_flags == ["ENABLE_PLUGIN_OVERRIDE"]
    assert [r.line for r in result.routes][0] == "CSA x1: TensorRT plugin CSA v1 from liblitevit_plugins.so"
    assert _routes("10.8.0.43", empty_namespace, namespace=False)[0].parser_flags == []


@pytest.mark.parametrize(
    ("version", "registered", "plugin", "ops", "message"),
    [
        (
            "8.6.2.3",
            (),
            False,
            "function",
            "TensorRT 8.6.2.3 cannot run ONNX function bodies (litevit::CSA, litevit::RASA): build with the "
            "plugin library (--plugins liblitevit_plugins.so) or from a graph exported with --ops inline.",
        ),
        (
            "8.5.2.2",
            CSA_ONLY,
            True,
            "function",
            "TensorRT 8.5.2.2 cannot run ONNX function bodies and liblitevit_plugins.so registers no "
            "litevit::RASA v1: use a plugin library that has it or a graph exported with --ops inline.",
        ),
        (
            "10.4.0.26",
            (),
            False,
            "plugin",
            "litevit::CSA has no ONNX function body (an --ops plugin export) and no plugin library was "
            "given: pass --plugins liblitevit_plugins.so or use a graph exported with --ops function or "
            "--ops inline.",
        ),
    ],
)
def test_custom_ops_without_a_route_are_refused(version, registered, plugin, ops, message):
    # Proves: a graph this TensorRT cannot run (no plugin, no body it can use) is one sentence.
    with pytest.raises(LitevitError) as info:
        _routes(version, registered, plugin, ops)
    assert str(info.value) == message


def test_inline_export_is_reported_as_standard_ops():
    # Proves: an --ops inline graph (no litevit nodes left) is reported as such, on every version.
    for version in ("8.5.2.2", "11.4.0.106"):
        result, _ = _routes(version, plugin=False, ops="inline")
        assert [r.line for r in result.routes] == ["litevit ops: standard ops (inline export)"]


@pytest.mark.parametrize(("version", "uses_load_library"), [("8.5.2.2", False), ("8.6.2.3", True)])
def test_build_with_plugins_end_to_end(install_trt, tmp_path, plugin_library, version, uses_load_library):
    # Proves: on 8.5/8.6 litevit loads the plugin library (ctypes on 8.5, load_library on 8.6),
    # hands the parser the graph without function bodies, logs the route per op, records the
    # library and its SHA-256 in the sidecar, and the engine (bodies from the fake's creators)
    # passes parity against ONNX Runtime.
    trt = install_trt(version, plugins=CREATORS)
    folder = write_artifact(tmp_path / "tiny", ops="function")
    lines: list[str] = []
    result = build_artifact(folder, "fp16", plugin_library=plugin_library, log=lines.append)
    assert trt.records.loaded_libraries == ([str(plugin_library)] if uses_load_library else [])
    ((parsed, _),) = trt.records.parsed
    assert list(parsed.functions) == []
    assert lines[:2] == [PLUGIN_LINE.format(op="CSA"), PLUGIN_LINE.format(op="RASA")]
    assert result.sidecar["plugins"] == {
        "library": str(plugin_library),
        "sha256": hashlib.sha256(plugin_library.read_bytes()).hexdigest(),
    }
    assert [r["route"] for r in result.sidecar["custom_ops"]] == ["plugin", "plugin"]
    assert result.parity_status == "passed"


def test_plugin_override_flag_reaches_the_parser(install_trt, tmp_path, plugin_library):
    # Proves: the flag decided for >= 10.15 is set on the real parser object by name.
    trt = install_trt("10.15.1.29", plugins={("CSA", "1", ""): CSA_BODY, ("RASA", "1", ""): RASA_BODY})
    folder = write_artifact(tmp_path / "tiny", namespace=False)
    build_artifact(folder, "fp32", plugin_library=plugin_library, log=_quiet([]))
    assert trt.records.parser_flags == ["ENABLE_PLUGIN_OVERRIDE"]


# ---------------------------------------------------------------------------------------------
# TensorRT's log: the first ERROR, in one sentence, and the whole log kept


def test_parse_failure_surfaces_the_first_error_and_keeps_the_log(install_trt, tmp_path):
    # Proves: a parse failure raises one sentence made of the first ERROR TensorRT logged (not
    # a warning, not a later error), says where the full log is, and writes that log.
    install_trt(
        log_on_parse=[
            ("WARNING", "onnxOpImporters.cpp: Your ONNX model has been generated with INT64 weights."),
            ("VERBOSE", "Parsing node: conv [Conv]"),
            ("ERROR", "ModelImporter.cpp:771: plugin CSA version 1 not found."),
            ("ERROR", "a later error"),
        ],
        parse_fails=True,
    )
    folder = write_artifact(tmp_path / "tiny")
    engine = folder / "tiny.fp32.engine"
    with pytest.raises(LitevitError) as info:
        build_artifact(folder, "fp32", log=_quiet([]))
    log_path = folder / "tiny.fp32.engine.log"
    assert str(info.value) == (
        f"TensorRT could not parse tiny.onnx: ModelImporter.cpp:771: plugin CSA version 1 not found "
        f"(full log: {log_path})."
    )
    log_text = log_path.read_text()
    assert "[WARNING] onnxOpImporters.cpp" in log_text and "[ERROR] a later error" in log_text
    assert "[PARSER] In node 3 (importFallbackPluginImporter): UNSUPPORTED_NODE" in log_text
    assert "Parsing node" not in log_text  # VERBOSE is not kept
    assert not engine.exists()


def test_parse_failure_without_a_logged_error_uses_the_parser_error(install_trt, tmp_path):
    # Proves: when TensorRT's logger said nothing, the parser's own error is the sentence.
    install_trt(parse_fails=True)
    folder = write_artifact(tmp_path / "tiny")
    with pytest.raises(LitevitError, match=r"could not parse tiny\.onnx: In node 3 \(importFallbackPlugin"):
        build_artifact(folder, "fp32", log=_quiet([]))


def test_build_failure_surfaces_the_first_error(install_trt, tmp_path):
    # Proves: a failed build (no plan returned) is the first ERROR, one line, plus the log.
    install_trt(
        log_on_build=[
            ("INFO", "Detected 1 inputs and 1 output network tensors."),
            ("ERROR", "10: Could not find any implementation for node {ForeignNode[CSA...]}.\nDetails"),
        ],
        build_fails=True,
    )
    folder = write_artifact(tmp_path / "tiny")
    with pytest.raises(LitevitError) as info:
        build_artifact(folder, "fp32", log=_quiet([]))
    # The message is one line: the error's own line break becomes a space.
    assert str(info.value) == (
        "TensorRT could not build tiny.fp32.engine: 10: Could not find any implementation for node "
        f"{{ForeignNode[CSA...]}}. Details (full log: {folder / 'tiny.fp32.engine.log'})."
    )
    assert not (folder / "tiny.fp32.engine").exists()


# ---------------------------------------------------------------------------------------------
# What a build writes


def test_sidecar_contents(install_trt, tmp_path, plugin_library):
    # Proves: the sidecar records what was built, with what and from what (values recomputed
    # here from the inputs, not read back from the code), and the parity against ONNX Runtime.
    install_trt("10.8.0.43", plugins={("CSA", "1", "litevit"): CSA_BODY})
    folder = write_artifact(tmp_path / "tiny")
    result = build_artifact(folder, "fp16", plugin_library=plugin_library, workspace_mb=256, log=_quiet([]))
    engine = folder / "tiny.fp16.engine"
    sidecar = json.loads((folder / "tiny.fp16.engine.json").read_text())
    assert sidecar == result.sidecar
    assert engine.read_bytes().startswith(fake_tensorrt.ENGINE_MAGIC)
    sha = lambda path: hashlib.sha256(Path(path).read_bytes()).hexdigest()  # noqa: E731
    assert sidecar["format"] == "litevit.engine/1"
    assert sidecar["engine_sha256"] == sha(engine)
    assert sidecar["tensorrt"] == "10.8.0.43"
    assert sidecar["gpu"] == {
        "name": GPU["gpu_name"],
        "compute_capability": "8.7",
        "driver": "540.4.0",
        "cuda": "12.6",
    }
    assert sidecar["plugins"] == {"library": str(plugin_library), "sha256": sha(plugin_library)}
    assert (sidecar["precision"], sidecar["typing"], sidecar["int8_mode"]) == ("fp16", "weak", None)
    assert sidecar["builder_flags"] == ["FP16"]
    assert sidecar["profiles"] == [{"input": {"min": [1, 3, 8, 8], "opt": [1, 3, 8, 8], "max": [8, 3, 8, 8]}}]
    assert (sidecar["workspace_mb"], sidecar["dla_core"], sidecar["calibration"]) == (256, None, None)
    assert sidecar["source"] == {
        "onnx": "tiny.onnx",
        "path": str((folder / "tiny.onnx").resolve()),
        "sha256": sha(folder / "tiny.onnx"),
        "graph": "fp32",
        "model": "tiny",
        "artifact": str(folder.resolve()),
    }
    assert [(r["op_type"], r["count"], r["route"]) for r in sidecar["custom_ops"]] == [
        ("CSA", 1, "plugin"),
        ("RASA", 1, "function"),
    ]
    parity = sidecar["parity"]
    assert parity["status"] == "passed"
    assert parity["reference"] == "ONNX Runtime CPU on tiny.onnx"
    assert parity["tolerance"] == {
        "max_abs_over_scale": 0.02,
        "min_cosine": None,
        "min_label_agreement": 0.99,
    }
    (logits,) = parity["results"]
    assert logits["output"] == "logits" and logits["shape"] == [1, 4]
    assert logits["max_abs"] < 1e-5 and logits["cosine"] > 0.999999
    assert sidecar["build_seconds"] >= 0


def test_every_file_is_written_atomically(install_trt, tmp_path, monkeypatch):
    # Proves: every file a build leaves (engine, sidecar, timing cache, calibration cache and
    # key) went through litevit's atomic writers, and no partial file is left behind.
    install_trt()
    folder = write_artifact(tmp_path / "tiny")
    before = set(folder.iterdir())
    written = []
    for module in (trt_build.build, trt_build.calibration, trt_build.tensorrt_log):
        for name in ("write_bytes", "write_json"):
            if not hasattr(module, name):
                continue
            real = getattr(module, name)
            monkeypatch.setattr(
                module, name, lambda path, data, real=real: (written.append(Path(path)), real(path, data))[1]
            )
    batches = lambda: iter([np.zeros((1, 3, 8, 8), np.float32)])  # noqa: E731
    build_engine(
        folder / "tiny.onnx",
        folder / "tiny.int8.engine",
        precision="int8",
        int8_mode="implicit",
        calibrator_batches=batches,
        calibration_key="k",
        timing_cache=folder / "timing.cache",
        log=_quiet([]),
    )
    new = set(folder.iterdir()) - before
    assert {p.name for p in new} == {
        "tiny.int8.engine",
        "tiny.int8.engine.json",
        "timing.cache",
        "tiny.int8.calibration.cache",
        "tiny.int8.calibration.cache.key.json",
    }
    assert new == set(written)
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial")]


def test_an_interrupted_parity_check_leaves_a_sidecar_that_says_so(install_trt, tmp_path, monkeypatch):
    # Proves: the sidecar is written before parity runs (the runner needs it) and says parity
    # did not run, so a crash never leaves an engine that looks checked.
    install_trt()
    folder = write_artifact(tmp_path / "tiny")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trt_build.build, "engine_parity", crash)
    with pytest.raises(KeyboardInterrupt):
        build_artifact(folder, "fp32", log=_quiet([]))
    sidecar = json.loads((folder / "tiny.fp32.engine.json").read_text())
    assert sidecar["parity"]["status"] == "not run"


def test_parity_failure_is_recorded_and_fails_the_command(install_trt, tmp_path):
    # Proves: an engine that disagrees with ONNX Runtime beyond the stated tolerance is recorded
    # as failed with the reason, and `litevit build` exits 1.
    import argparse

    install_trt(output_error=0.05)
    folder = write_artifact(tmp_path / "tiny")
    parser = argparse.ArgumentParser()
    trt_build.configure_build_parser(parser)
    assert trt_build.run_build(parser.parse_args([str(folder), "--precision", "fp32"])) == 1
    parity = json.loads((folder / "tiny.fp32.engine.json").read_text())["parity"]
    assert parity["status"] == "failed"
    assert parity["results"][0]["reasons"][0].startswith("max abs ")


def test_parity_is_skipped_with_the_reason_when_onnx_runtime_cannot_run_the_graph(
    install_trt, tmp_path, plugin_library
):
    # Proves: a plugin-only graph that ONNX Runtime cannot run (no torch to attach bodies) is
    # recorded as skipped with why, not as passed.
    install_trt("10.8.0.43", plugins=CREATORS)
    folder = write_artifact(tmp_path / "tiny", ops="plugin")
    result = build_artifact(folder, "fp32", plugin_library=plugin_library, log=_quiet([]))
    assert result.parity_status == "skipped"
    assert "is a plugin-mode graph" in result.sidecar["parity"]["reason"]


def test_timing_cache_is_read_and_updated(install_trt, tmp_path):
    # Proves: the timing cache is written after the build, and one from another GPU is replaced
    # with a fresh cache rather than failing the build.
    install_trt()
    folder = write_artifact(tmp_path / "tiny", ops="inline")
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"other-gpu timing data")
    lines: list[str] = []
    build_artifact(folder, "fp16", timing_cache=cache, log=lines.append)
    assert "the timing cache timing.cache is from another GPU or TensorRT; starting a new one" in lines
    assert cache.read_bytes() == b"fake-timing-cache:10.3.0.26"


def test_dla_core(install_trt, tmp_path):
    # Proves: --dla sets the DLA device, the core and GPU fallback; a core the device lacks is
    # one sentence.
    trt = install_trt(dla_cores=2)
    folder = write_artifact(tmp_path / "tiny", ops="inline")
    result = build_artifact(folder, "fp16", dla_core=1, log=_quiet([]))
    config = trt.records.configs[0]
    assert (config.default_device_type, config.DLA_core) == (trt.DeviceType.DLA, 1)
    assert config.flags == {"FP16", "GPU_FALLBACK"} and result.sidecar["dla_core"] == 1
    with pytest.raises(LitevitError, match=r"--dla 2 names no DLA core here; this device has 2"):
        build_artifact(folder, "fp16", dla_core=2, log=_quiet([]))


# ---------------------------------------------------------------------------------------------
# Loading: the sidecar check and the plugin library


def test_engine_for_another_gpu_or_tensorrt_is_refused_before_tensorrt_sees_it(
    install_trt, tmp_path, monkeypatch
):
    # Proves: the runner refuses, in one sentence naming built-for vs here and the rebuild
    # command, an engine whose sidecar names another GPU or TensorRT, without deserialising it;
    # doctor --engine says the same through the same function.
    install_trt()
    folder = write_artifact(tmp_path / "tiny", ops="inline")
    build_artifact(folder, "fp32", log=_quiet([]))
    trt = install_trt(gpu=OTHER_GPU)
    expected = (
        "tiny.fp32.engine was built for TensorRT 10.3.0.26 on NVIDIA Orin (fake) (compute capability 8.7), "
        "but this machine has TensorRT 10.3.0.26 on NVIDIA A100 (fake) (compute capability 8.0): rebuild it "
        f"here with `litevit build {folder.resolve()} --precision fp32`."
    )
    with pytest.raises(LitevitError) as info:
        open_runner(folder, "trt", precision="fp32")
    assert str(info.value) == expected
    assert trt.records.deserialized == 0
    _, line = doctor._engine(str(folder / "tiny.fp32.engine"), OTHER_GPU)
    assert line.startswith(f"{folder / 'tiny.fp32.engine'}: {expected[:-1]};")

    trt = install_trt("10.4.0.26")
    with pytest.raises(
        LitevitError, match=r"built for TensorRT 10\.3\.0\.26 on .* this machine has TensorRT 10\.4"
    ):
        open_runner(folder, "trt", precision="fp32")
    assert trt.records.deserialized == 0


def test_matching_engine_loads_and_a_replaced_engine_is_refused(install_trt, tmp_path):
    # Proves: the same TensorRT and GPU load the engine (doctor agrees); an engine file that is
    # not the one the sidecar describes is refused rather than trusted.
    trt = install_trt()
    folder = write_artifact(tmp_path / "tiny", ops="inline")
    build_artifact(folder, "fp32", log=_quiet([]))
    with open_runner(folder, "trt", precision="fp32") as runner:
        assert runner.infer({"input": np.ones((2, 3, 8, 8), np.float32)})["logits"].shape == (2, 4)
    _, line = doctor._engine(str(folder / "tiny.fp32.engine"), GPU)
    assert (
        "built for TensorRT 10.3.0.26 on NVIDIA Orin (fake) (compute capability 8.7), as this machine is"
        in line
    )
    engine = folder / "tiny.fp32.engine"
    engine.write_bytes(engine.read_bytes() + b" ")
    before = trt.records.deserialized
    with pytest.raises(
        LitevitError, match=r"^tiny\.fp32\.engine is not the engine its sidecar tiny\.fp32\.engine\.json"
    ):
        open_runner(folder, "trt", precision="fp32")
    assert trt.records.deserialized == before


def test_runner_loads_the_plugin_library_the_sidecar_names(
    install_trt, tmp_path, plugin_library, monkeypatch
):
    # Proves: an engine built with plugins gets its library loaded before deserialisation (from
    # the sidecar, or $LITEVIT_PLUGINS), and a library that is gone is one sentence.
    install_trt("10.8.0.43", plugins=CREATORS)
    folder = write_artifact(tmp_path / "tiny")
    build_artifact(folder, "fp32", plugin_library=plugin_library, log=_quiet([]))
    trt = install_trt("10.8.0.43", plugins=CREATORS)  # a fresh process: nothing loaded yet
    with open_runner(folder, "trt", precision="fp32"):
        assert trt.records.loaded_libraries == [str(plugin_library)]
    moved = plugin_library.rename(tmp_path / "liblitevit_plugins.so")
    trt = install_trt("10.8.0.43", plugins=CREATORS)
    with pytest.raises(LitevitError, match=r"uses TensorRT plugins from .*, which does not exist here"):
        open_runner(folder, "trt", precision="fp32")
    monkeypatch.setenv("LITEVIT_PLUGINS", str(moved))
    with open_runner(folder, "trt", precision="fp32"):
        assert trt.records.loaded_libraries == [str(moved)]


# ---------------------------------------------------------------------------------------------
# Implicit INT8 calibration cache


def _implicit(folder, key="key-1", batches=3, shape=(1, 3, 8, 8)):
    images = lambda: iter(np.full(shape, i / 10, np.float32) for i in range(batches))  # noqa: E731
    return build_engine(
        folder / "tiny.onnx",
        folder / "tiny.int8.engine",
        precision="int8",
        int8_mode="implicit",
        calibrator_batches=images,
        calibration_key=key,
        log=_quiet([]),
    )


def test_implicit_int8_calibrates_then_reuses_only_its_own_cache(install_trt, tmp_path):
    # Proves: implicit INT8 feeds every batch through the calibrator at the calibration
    # profile's shape, TensorRT writes the cache, litevit keys it; a rebuild with the same key
    # hands TensorRT that cache (no batches read).
    trt = install_trt()
    folder = write_artifact(tmp_path / "tiny", ops="inline")
    result = _implicit(folder)
    assert trt.records.calibration_batches == 3
    assert trt.records.configs[0].flags == {"INT8", "FP16"}
    cache = folder / "tiny.int8.calibration.cache"
    assert cache.read_bytes() == b"FAKE-CALIBRATION-CACHE 10.3.0.26"
    key = json.loads((folder / "tiny.int8.calibration.cache.key.json").read_text())
    assert (key["key"], key["sha256"]) == ("key-1", hashlib.sha256(cache.read_bytes()).hexdigest())
    assert result.sidecar["calibration"] == {
        "mode": "implicit",
        "key": "key-1",
        "cache": str(cache),
        "reused_cache": False,
        "batches": 3,
    }
    trt = install_trt()
    again = _implicit(folder)
    assert trt.records.calibration_cache_read == [cache.read_bytes()]
    assert trt.records.calibration_batches == 0
    assert again.sidecar["calibration"]["reused_cache"] is True


def test_calibration_caches_litevit_cannot_vouch_for_are_refused(install_trt, tmp_path):
    # Proves: a cache with another key, without litevit's key file, or changed since litevit
    # wrote it is refused in one sentence, never reused silently.
    install_trt()
    folder = write_artifact(tmp_path / "tiny", ops="inline")
    _implicit(folder, key="key-1")
    cache = folder / "tiny.int8.calibration.cache"
    with pytest.raises(LitevitError) as info:
        _implicit(folder, key="key-2")
    assert str(info.value) == (
        f"the calibration cache {str(cache)!r} was computed for calibration key key-1..., not this build's "
        f"key-2... (other images, preprocessing or graph): delete it to recalibrate, or pass another "
        f"--calib-cache."
    )
    cache.write_bytes(b"edited")
    with pytest.raises(LitevitError, match=r"changed since litevit wrote it: delete it to recalibrate"):
        _implicit(folder, key="key-1")
    (folder / "tiny.int8.calibration.cache.key.json").unlink()
    with pytest.raises(
        LitevitError, match=r"was not written by litevit \(no tiny\.int8\.calibration\.cache\.key\.json\)"
    ):
        _implicit(folder, key="key-1")


def test_calibration_batches_of_the_wrong_shape_stop_the_build(install_trt, tmp_path):
    # Proves: a batch that does not match the calibration profile is reported, not fed.
    install_trt()
    folder = write_artifact(tmp_path / "tiny", ops="inline")
    with pytest.raises(LitevitError) as info:
        _implicit(folder, shape=(2, 3, 8, 8))
    assert str(info.value) == (
        "calibration stopped: calibration batch 1 is float32[2, 3, 8, 8] for ['input']; the calibration "
        "profile takes float32[1, 3, 8, 8] for ['input']."
    )


# ---------------------------------------------------------------------------------------------
# Profiles


def test_shapes_parse_and_profiles_follow_the_manifest(tmp_path):
    # Proves: --shapes syntax, the manifest-derived default (batch 1..8 at the exported batch),
    # overrides, and that impossible ones are refused.
    assert parse_shapes(["input=1x3x8x8:4x3x8x8:16x3x8x8", "2x3x8x8"]) == {
        "input": ShapeRange((1, 3, 8, 8), (4, 3, 8, 8), (16, 3, 8, 8)),
        "": ShapeRange((2, 3, 8, 8), (2, 3, 8, 8), (2, 3, 8, 8)),
    }
    model = tiny_model()
    manifest = {"batch": 2, "img_size": [8, 8]}
    assert optimisation_profiles(model, manifest, {}) == {
        "input": ShapeRange((1, 3, 8, 8), (2, 3, 8, 8), (8, 3, 8, 8))
    }
    custom = parse_shapes(["1x3x8x8:3x3x8x8:32x3x8x8"])
    assert optimisation_profiles(model, manifest, custom)["input"].max == (32, 3, 8, 8)
    for bad, message in [
        (["input=4x3x8x8:1x3x8x8:8x3x8x8"], "needs min <= opt <= max"),
        (["input=1x3x8"], "must be|rank"),
        (["input=1xAx8x8"], "cannot read the shape '1xAx8x8'"),
    ]:
        with pytest.raises(LitevitError, match=message):
            optimisation_profiles(model, manifest, parse_shapes(bad))
    with pytest.raises(
        LitevitError, match=r"--shapes for 'input' must have rank 4 and keep its static dims \(\?x3x8x8\)"
    ):
        optimisation_profiles(model, manifest, parse_shapes(["1x4x8x8"]))
    with pytest.raises(
        LitevitError, match="--shapes names image, which the graph does not take; its inputs are input"
    ):
        optimisation_profiles(model, manifest, parse_shapes(["image=1x3x8x8"]))


# ---------------------------------------------------------------------------------------------
# CLI without TensorRT


def test_build_without_tensorrt_is_one_sentence(tmp_path):
    # Proves: `litevit build` on a machine without TensorRT (this one) says what to install.
    import argparse

    if deps.has("tensorrt"):
        pytest.skip("TensorRT is installed here")
    parser = argparse.ArgumentParser()
    trt_build.configure_build_parser(parser)
    with pytest.raises(
        MissingDependencyError, match=r"^tensorrt is not installed; the TensorRT backend needs it"
    ):
        trt_build.run_build(parser.parse_args([str(tmp_path), "--precision", "fp16"]))


def test_build_command_on_an_onnx_file(install_trt, tmp_path, capsys):
    # Proves: `litevit build FILE.onnx` writes MODEL.PRECISION.engine next to the graph (or at
    # --out), and calibration options outside implicit INT8 are refused rather than ignored.
    import argparse

    install_trt()
    folder = write_artifact(tmp_path / "tiny", ops="inline")
    parser = argparse.ArgumentParser()
    trt_build.configure_build_parser(parser)
    assert (
        trt_build.run_build(parser.parse_args([str(folder / "tiny.fp16.onnx"), "--precision", "fp16"])) == 0
    )
    assert (folder / "tiny.fp16.engine").is_file() and (folder / "tiny.fp16.engine.json").is_file()
    out = tmp_path / "elsewhere" / "model.engine"
    args = parser.parse_args(
        [str(folder / "tiny.onnx"), "--out", str(out), "--shapes", "1x3x8x8:2x3x8x8:4x3x8x8"]
    )
    assert trt_build.run_build(args) == 0
    assert json.loads(out.with_name("model.engine.json").read_text())["profiles"] == [
        {"input": {"min": [1, 3, 8, 8], "opt": [2, 3, 8, 8], "max": [4, 3, 8, 8]}}
    ]
    with pytest.raises(
        LitevitError, match=r"^--calib and --calib-cache apply to --precision int8 --int8-mode implicit"
    ):
        trt_build.run_build(parser.parse_args([str(folder), "--precision", "fp16", "--calib", str(tmp_path)]))
