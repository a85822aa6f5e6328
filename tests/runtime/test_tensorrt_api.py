"""The per-release Python API surface (tensorrt_api_surface.json) against NVIDIA's binding
sources, the fake cut to it, and litevit's Python plugins against the callbacks TensorRT reads."""

from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path

import fake_tensorrt
import pytest
import tensorrt_api

# A git directory of a clone of NVIDIA/TensorRT (all release branches/tags), e.g. from `git clone --mirror`:
# the tests that re-read the sources skip without one.
MIRROR = Path(os.environ["LITEVIT_TENSORRT_GIT"]) if os.environ.get("LITEVIT_TENSORRT_GIT") else None


@pytest.mark.skipif(
    MIRROR is None or not MIRROR.is_dir(),
    reason="no clone of NVIDIA/TensorRT: set LITEVIT_TENSORRT_GIT to its git directory",
)
def test_surface_is_what_the_binding_sources_define():
    # Every release's surface is re-read from python/src and python/packaging at its tag.
    assert tensorrt_api.build_surface(MIRROR) == json.loads(tensorrt_api.SURFACE.read_text())


def test_the_extractor_reads_pybind11_definitions():
    source = """
    class PyThing : public Thing {
        void f() override { PYBIND11_OVERLOAD_PURE_NAME(void, Thing, "on_f", f); }
    };
    void bind(py::module& m) {
        py::class_<Thing, PyThing> thing{m, "Thing", "doc"};
        thing.def(py::init<>()).def("run", &Thing::run, "x"_a, "y"_a = 2);  // a comment; with a semicolon
        py::enum_<Thing::Mode>(thing, "Mode").value("A", Mode::kA).value("B", Mode::kB).export_values();
        py::class_<Sub, Thing>(m, "Sub").def("old", utils::deprecateMember(&Sub::old, "run"), "z"_a)
            .def_property_readonly("size", [](Sub& s) { return s.size(); });
        m.def("make_thing", &make, "name"_a);
        m.attr("float32") = 1;
    }
    """
    surface = tensorrt_api.parse_bindings({"a.cpp": source})
    assert surface["classes"]["Thing"] == {
        "kind": "class",
        "bases": [],
        "members": {"run": ["method(x, y=)"]},
        "exported_values": ["A", "B"],
        "callbacks": ["on_f"],
    }
    assert surface["classes"]["Thing.Mode"] == {"kind": "enum", "bases": [], "values": ["A", "B"]}
    assert surface["classes"]["Sub"]["bases"] == ["Thing"]
    assert surface["classes"]["Sub"]["members"] == {"old": ["deprecated method(z)"], "size": ["attribute()"]}
    assert surface["functions"] == {"make_thing": ["function(name)"]}
    assert surface["attributes"] == ["float32"]
    assert tensorrt_api.parse_signature("deprecated method(x, y=)") == {
        "kind": "method",
        "deprecated": True,
        "args": ["x", "y"],
        "required": 1,
    }


def test_what_the_sources_say_about_the_calls_litevit_makes():
    # The facts TrtFeatures decides from the version, read from the bindings themselves.
    surfaces = json.loads(tensorrt_api.SURFACE.read_text())["releases"]

    def members(release, cls):
        return surfaces[release]["classes"].get(cls, {}).get("members", {})

    assert "load_library" not in members("8.5", "IPluginRegistry")
    assert "load_library" in members("8.6", "IPluginRegistry")
    assert "get_creator" not in members("8.6", "IPluginRegistry") and "get_creator" in members(
        "10.3", "IPluginRegistry"
    )
    assert "get_plugin_creator" not in members("11.1", "IPluginRegistry")
    assert "OnnxParserFlag" not in surfaces["8.5"]["classes"]
    assert "ENABLE_PLUGIN_OVERRIDE" in surfaces["10.15"]["classes"]["OnnxParserFlag"]["values"]
    assert "ENABLE_PLUGIN_OVERRIDE" not in surfaces["10.13"]["classes"]["OnnxParserFlag"]["values"]
    assert "FP16" not in surfaces["11.1"]["classes"]["BuilderFlag"]["values"]
    assert "EXPLICIT_BATCH" not in surfaces["11.1"]["classes"]["NetworkDefinitionCreationFlag"]["values"]
    assert "IInt8EntropyCalibrator2" not in surfaces["11.1"]["classes"]
    assert members("10.3", "IBuilderConfig")["int8_calibrator"] == ["deprecated attribute()"]
    for release in surfaces:
        assert surfaces[release]["functions"]["init_libnvinfer_plugins"] == ["function(logger, namespace)"]
        assert "execute_async_v3" in members(release, "IExecutionContext")
        assert "set_memory_pool_limit" in members(release, "IBuilderConfig")


@pytest.mark.parametrize("version", fake_tensorrt.VERSIONS)
def test_the_fake_exposes_no_more_than_its_release(version):
    trt = fake_tensorrt.make_tensorrt(version)
    release, api = fake_tensorrt.api_surface(version)
    classes = api["classes"]
    module_names = (
        set(classes) | set(api["functions"]) | set(api["attributes"]) | set(api["package_functions"])
    )
    for name, value in vars(trt).items():
        if name.startswith("_") or name in fake_tensorrt.FAKE_ONLY:
            continue
        assert name in module_names, (release, name)
        entry = classes.get(name)
        if entry is None or not isinstance(value, type):
            continue
        if entry["kind"] == "enum":
            assert set(value.__members__) == set(entry["values"]), (release, name)
            continue
        allowed, _ = fake_tensorrt._members(classes, name)
        for member, binding in value.__dict__.items():
            if member.startswith("_"):
                continue
            assert member in allowed, (release, name, member)
            signatures = entry.get("members", {}).get(member)
            if callable(binding) and signatures:
                _assert_arity_fits(release, name, member, binding, signatures)


def _assert_arity_fits(release, cls, member, function, signatures):
    """The fake's method takes as many positional arguments as one of the binding's overloads."""
    parameters = list(inspect.signature(function).parameters.values())[1:]  # after self
    accepted = range(sum(1 for p in parameters if p.default is inspect.Parameter.empty), len(parameters) + 1)
    parsed = [tensorrt_api.parse_signature(s) for s in signatures]
    named = [p for p in parsed if p["args"]]
    if not named:
        return  # the binding names no keywords: its arity is not in the source
    assert any(
        p["required"] in accepted
        and len(p["args"]) in accepted
        or p["required"] <= len(parameters) <= len(p["args"])
        for p in named
    ), (release, cls, member, signatures, [p.name for p in parameters])


def test_the_fake_refuses_what_a_release_lacks():
    eight_five = fake_tensorrt.make_tensorrt("8.5.2.2")
    assert not hasattr(eight_five.get_plugin_registry(), "load_library")
    assert not hasattr(eight_five, "OnnxParserFlag") and not hasattr(eight_five, "IPluginV3")
    eleven = fake_tensorrt.make_tensorrt("11.4.0.106")
    assert not hasattr(eleven.BuilderFlag, "FP16") and not hasattr(eleven, "IInt8EntropyCalibrator2")
    config = eleven.Builder(eleven.Logger()).create_builder_config()
    with pytest.raises(
        AttributeError, match="'tensorrt.IBuilderConfig' object has no attribute 'int8_calibrator'"
    ):
        config.int8_calibrator = object()
    ten = fake_tensorrt.make_tensorrt("10.3.0.26")
    ten.Builder(ten.Logger()).create_builder_config().int8_calibrator = None
    assert ten.records.deprecated == ["IBuilderConfig.int8_calibrator"]


@pytest.mark.parametrize("version", [v for v in fake_tensorrt.VERSIONS if int(v.split(".")[0]) >= 10])
def test_litevit_python_plugins_define_only_what_tensorrt_reads(monkeypatch, version):
    # Every method and attribute litevit's IPluginV3 plugin and creator define is a callback
    # TensorRT's trampolines read from a Python plugin of that release (a misspelt or renamed
    # callback would silently never be called).
    trt = fake_tensorrt.make_tensorrt(version)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    from litevit.plugins import python_plugin

    python_plugin.plugin_classes.cache_clear()
    plugin_class, creator_class = python_plugin.plugin_classes()
    _, api = fake_tensorrt.api_surface(version)
    classes = api["classes"]

    def callbacks(*names):
        found = set()
        for name in names:
            found |= set(classes[name].get("callbacks", [])) | set(classes[name].get("members", {}))
        return found

    plugin_reads = callbacks("IPluginV3", "IPluginV3OneCore", "IPluginV3OneBuild", "IPluginV3OneRuntime")
    defined = {n for n in vars(plugin_class) if not n.startswith("_")} - {"spec", "attributes"}
    assert defined <= plugin_reads, defined - plugin_reads
    assert {"plugin_name", "plugin_namespace", "plugin_version", "num_outputs"} <= plugin_reads
    creator_reads = callbacks("IPluginCreatorV3One")
    assert {n for n in vars(creator_class) if not n.startswith("_")} <= creator_reads
    assert {"name", "plugin_namespace", "plugin_version", "field_names"} <= creator_reads
    python_plugin.plugin_classes.cache_clear()
