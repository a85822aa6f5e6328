"""The build and run paths once per TensorRT release, against fake_tensorrt.py (a FAKE cut to
each release's Python API surface as its binding sources define it; see tensorrt_api.py), and
TensorRT's own plugins registered before every parse and every deserialization.

What a release lacks, the fake lacks; a member a release deprecates is recorded when used. So a
litevit call that one release does not have fails here for that release, and a deprecated call
fails unless it is one litevit makes knowingly (implicit INT8 on 10.1 - 10.x, which TensorRT
deprecates and litevit builds only when asked, saying so).
"""

from __future__ import annotations

import argparse

import fake_tensorrt
import pytest
import test_trt_build
from test_trt_build import CREATORS, write_artifact

from litevit.runtime import doctor, selftest
from litevit.runtime.runners import open_runner
from litevit.runtime.trt_build import TrtFeatures, build_artifact

# The fake-TensorRT fixtures of the build tests.
install_trt, plugin_library = test_trt_build.install_trt, test_trt_build.plugin_library
# Deprecated members litevit uses knowingly: the implicit INT8 calibrator (deprecated 10.1).
KNOWN_DEPRECATED = {"IBuilderConfig.int8_calibrator", "IBuilderConfig.set_calibration_profile"}


def _args(*argv):
    parser = argparse.ArgumentParser()
    selftest.configure_selftest_parser(parser)
    return parser.parse_args([str(a) for a in argv])


@pytest.mark.parametrize("version", fake_tensorrt.VERSIONS)
def test_every_precision_builds_runs_and_loads_on_every_release(
    install_trt, plugin_library, tmp_path, capsys, version
):
    # Proves, per release: litevit builds fp32, fp16, Q/DQ INT8 and (before 11) implicit INT8,
    # runs each engine against ONNX Runtime (the parity check goes through the trt runner) and
    # doctor loads it, touching only what that release's bindings define. 8.x parse no function
    # bodies: there the graph goes through the plugin library, as `litevit-export --trt` writes
    # it for that release; later releases inline the bodies.
    trt = install_trt(version, plugins=CREATORS)
    features = TrtFeatures.from_version(version)
    eight = not features.parses_local_functions
    folder = write_artifact(tmp_path / "tiny", ops="function", trt=version[:3] if eight else None)
    arguments = [folder, "--keep", tmp_path / "work"] + (["--plugins", plugin_library] if eight else [])
    assert selftest.run_selftest(_args(*arguments)) == 0
    output = capsys.readouterr().out
    lines = output.strip().splitlines()
    rows = lines[next(i for i, line in enumerate(lines) if line.startswith("precision")) + 2 :]
    assert len(rows) == (4 if features.int8_calibrators else 3) and all(r.endswith("pass") for r in rows)
    if features.int8_calibrators_deprecated:
        assert f"note: TensorRT {version} deprecates implicit INT8 calibration" in output
    engines = sorted((tmp_path / "work" / "engines").rglob("*.engine"))
    assert len(engines) == len(rows)
    for engine in engines:
        line = doctor._engine_loads(
            engine, None if not eight else {"plugins": {"library": str(plugin_library)}}
        )
        assert line == f"it loads with this TensorRT {version} on this GPU"
    used = set(trt.records.deprecated)
    assert used <= KNOWN_DEPRECATED, used - KNOWN_DEPRECATED
    assert bool(used) == features.int8_calibrators_deprecated


# ---------------------------------------------------------------------------------------------
# TensorRT's own plugins are registered before an engine is deserialized or a graph parsed


def test_the_runner_registers_tensorrt_plugins_before_it_deserializes(install_trt, tmp_path):
    trt = install_trt("8.5.2.2")
    engine = tmp_path / "m.engine"
    engine.write_bytes(fake_tensorrt.engine_bytes(_identity_model(), "8.5.2.2"))
    with open_runner(engine, "trt"):
        pass
    assert trt.records.events == ["init_libnvinfer_plugins", "deserialize"]


def test_doctor_registers_tensorrt_plugins_before_it_deserializes(install_trt, tmp_path):
    trt = install_trt("10.3.0.26")
    engine = tmp_path / "m.engine"
    engine.write_bytes(fake_tensorrt.engine_bytes(_identity_model(), "10.3.0.26"))
    assert doctor._engine_loads(engine, None) == "it loads with this TensorRT 10.3.0.26 on this GPU"
    assert trt.records.events == ["init_libnvinfer_plugins", "deserialize"]


def test_the_build_registers_tensorrt_plugins_before_it_parses_and_before_parity_loads(install_trt, tmp_path):
    trt = install_trt("10.3.0.26")
    build_artifact(write_artifact(tmp_path / "tiny", ops="inline"), "fp32", log=lambda line: None)
    assert trt.records.events == [
        "init_libnvinfer_plugins",
        "parse",
        "init_libnvinfer_plugins",
        "deserialize",
    ]


def _identity_model():
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "identity",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model
