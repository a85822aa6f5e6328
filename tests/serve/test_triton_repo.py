"""``litevit triton-repo``: config.pbtxt per manifest, the model files, the plugin instructions and
the refusals, on tiny artefacts written by hand (torch-free).

Each config.pbtxt is parsed back with protobuf's own text-format parser into a message declared
here with the field names, numbers and types of Triton's ``model_config.proto`` (the subset litevit
writes), so a misspelt field, a wrong enum value or a scalar where a list belongs fails the parse.
What this does not prove: that a given tritonserver accepts the repository (no Triton here).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import onnx
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from onnx import TensorProto, helper

from litevit.errors import LitevitError
from litevit.serve.triton_repo import (
    configure_triton_repo_parser,
    plugin_instructions,
    run_triton_repo,
    write_triton_repo,
)

FIELD = descriptor_pb2.FieldDescriptorProto


def _model_config_class() -> Any:
    """Triton's ModelConfig, reduced to the fields litevit writes (names and numbers as in
    triton-inference-server/common protobuf/model_config.proto)."""
    proto = descriptor_pb2.FileDescriptorProto(name="litevit_test_model_config.proto", package="inference")
    proto.syntax = "proto3"
    data_type = proto.enum_type.add(name="DataType")
    for number, name in enumerate(
        ["INVALID", "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"]
        + ["FP16", "FP32", "FP64", "STRING", "BF16"]
    ):
        data_type.value.add(name=f"TYPE_{name}", number=number)

    def message(name: str, fields: list[tuple[str, int, int, int, str | None]]) -> None:
        described = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = described.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".inference.{type_name}"

    one, many = FIELD.LABEL_OPTIONAL, FIELD.LABEL_REPEATED
    message(
        "ModelInput",
        [
            ("name", 1, FIELD.TYPE_STRING, one, None),
            ("data_type", 2, FIELD.TYPE_ENUM, one, "DataType"),
            ("dims", 4, FIELD.TYPE_INT64, many, None),
        ],
    )
    message(
        "ModelOutput",
        [
            ("name", 1, FIELD.TYPE_STRING, one, None),
            ("data_type", 2, FIELD.TYPE_ENUM, one, "DataType"),
            ("dims", 3, FIELD.TYPE_INT64, many, None),
        ],
    )
    message(
        "ModelDynamicBatching",
        [
            ("preferred_batch_size", 1, FIELD.TYPE_INT32, many, None),
            ("max_queue_delay_microseconds", 2, FIELD.TYPE_UINT64, one, None),
        ],
    )
    group = proto.message_type.add(name="ModelInstanceGroup")
    kind = group.enum_type.add(name="Kind")
    for number, name in enumerate(["KIND_AUTO", "KIND_GPU", "KIND_CPU", "KIND_MODEL"]):
        kind.value.add(name=name, number=number)
    group.field.add(name="count", number=2, type=FIELD.TYPE_INT32, label=one)
    group.field.add(
        name="kind", number=4, type=FIELD.TYPE_ENUM, label=one, type_name=".inference.ModelInstanceGroup.Kind"
    )
    message(
        "ModelConfig",
        [
            ("name", 1, FIELD.TYPE_STRING, one, None),
            ("platform", 2, FIELD.TYPE_STRING, one, None),
            ("max_batch_size", 4, FIELD.TYPE_INT32, one, None),
            ("input", 5, FIELD.TYPE_MESSAGE, many, "ModelInput"),
            ("output", 6, FIELD.TYPE_MESSAGE, many, "ModelOutput"),
            ("instance_group", 7, FIELD.TYPE_MESSAGE, many, "ModelInstanceGroup"),
            ("dynamic_batching", 11, FIELD.TYPE_MESSAGE, one, "ModelDynamicBatching"),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelConfig"))


ModelConfig = _model_config_class()


def parse_config(path: Path) -> Any:
    return text_format.Parse(path.read_text(), ModelConfig())


def enum_name(message: Any, field: str) -> str:
    return message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number[getattr(message, field)].name


def _graph(task: str, shape: list[int | str]) -> onnx.ModelProto:
    """input (N, 3, H, W) -> per-channel mean -> logits (N, 3), or -> argmax -> int32 labels (N, H, W)."""
    batch = shape[0]
    if task == "classification":
        nodes = [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["logits"]),
        ]
        output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3])
    else:
        nodes = [
            helper.make_node("ArgMax", ["input"], ["index"], axis=1, keepdims=0),
            helper.make_node("Cast", ["index"], ["labels"], to=TensorProto.INT32),
        ]
        output = helper.make_tensor_value_info("labels", TensorProto.INT32, [batch, *shape[2:]])
    graph = helper.make_graph(
        nodes, task, [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)], [output]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def write_artifact(
    folder: Path,
    model: str = "tiny",
    task: str = "classification",
    shape: tuple[int | str, ...] = ("batch", 3, 8, 8),
    ops_mode: str = "function",
    custom_ops: tuple[str, ...] = (),
) -> Path:
    """An artefact folder laid out as litevit-export writes it (manifest v1, FP32 graph)."""
    folder.mkdir(parents=True, exist_ok=True)
    graph = _graph(task, list(shape))
    path = folder / f"{model}.onnx"
    onnx.save(graph, path)
    output = graph.graph.output[0]
    manifest = {
        "manifest_version": 1,
        "model": model,
        "task": task,
        "inputs": [{"name": "input", "dtype": "float32", "shape": list(shape)}],
        "outputs": [
            {
                "name": output.name,
                "dtype": "float32" if task == "classification" else "int32",
                "shape": [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim],
            }
        ],
        "dynamic_axes": {"input": {str(i): d for i, d in enumerate(shape) if isinstance(d, str)}},
        "img_size": [8, 8],
        "batch": 1 if isinstance(shape[0], str) else shape[0],
        "seg_output": "labels" if task == "segmentation" else None,
        "ops_mode": ops_mode,
        "custom_ops": {op: {"domain": "litevit", "version": 1, "count": 1} for op in custom_ops},
        "files": {
            path.name: {
                "precision": "fp32",
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "bytes": path.stat().st_size,
            }
        },
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def write_engine(folder: Path, precision: str = "fp16", sidecar: dict[str, Any] | None = None) -> Path:
    """Bytes standing in for MODEL.PRECISION.engine, with a litevit build sidecar when given."""
    model = json.loads((folder / "manifest.json").read_text())["model"]
    engine = folder / f"{model}.{precision}.engine"
    engine.write_bytes(b"serialized plan " + precision.encode())
    if sidecar is not None:
        (folder / f"{engine.name}.json").write_text(json.dumps({"format": "litevit.engine/1", **sidecar}))
    return engine


def _profile(max_batch: int) -> list[dict[str, Any]]:
    return [{"input": {"min": [1, 3, 8, 8], "opt": [1, 3, 8, 8], "max": [max_batch, 3, 8, 8]}}]


# ---------------------------------------------------------------------------------------------
# config.pbtxt per manifest


def test_onnx_classifier_with_a_dynamic_batch_gets_dynamic_batching(tmp_path):
    artifact = write_artifact(tmp_path / "art")
    repo = tmp_path / "repo"
    (model,) = write_triton_repo(
        [artifact], repo, backend="onnx", preferred_batch_sizes=[2, 4], max_queue_delay_us=250, instances=2
    )
    assert model.directory == repo / "tiny" and model.model_file == repo / "tiny" / "1" / "model.onnx"
    assert model.model_file.read_bytes() == (artifact / "tiny.onnx").read_bytes()
    config = parse_config(repo / "tiny" / "config.pbtxt")
    assert config.name == "tiny" and config.platform == "onnxruntime_onnx"
    # Dynamic batch axis: Triton batches, dims leave the batch out; default max = max(batch, 8).
    assert config.max_batch_size == 8
    assert [(i.name, enum_name(i, "data_type"), list(i.dims)) for i in config.input] == [
        ("input", "TYPE_FP32", [3, 8, 8])
    ]
    assert [(o.name, enum_name(o, "data_type"), list(o.dims)) for o in config.output] == [
        ("logits", "TYPE_FP32", [3])
    ]
    assert config.HasField("dynamic_batching")
    assert list(config.dynamic_batching.preferred_batch_size) == [2, 4]
    assert config.dynamic_batching.max_queue_delay_microseconds == 250
    (group,) = config.instance_group
    assert group.count == 2 and enum_name(group, "kind") == "KIND_CPU"


def test_the_config_matches_what_onnx_runtime_reports_for_the_graph(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    artifact = write_artifact(tmp_path / "art", task="segmentation", shape=("batch", 3, "height", "width"))
    (model,) = write_triton_repo([artifact], tmp_path / "repo", backend="onnx", max_batch=4)
    config = parse_config(model.directory / "config.pbtxt")
    session = ort.InferenceSession(str(model.model_file), providers=["CPUExecutionProvider"])
    assert config.max_batch_size == 4
    for declared, actual in [
        *zip(config.input, session.get_inputs(), strict=True),
        *zip(config.output, session.get_outputs(), strict=True),
    ]:
        assert declared.name == actual.name
        # Triton's dims are the graph's without the batch axis, symbolic dims as -1.
        assert list(declared.dims) == [d if isinstance(d, int) else -1 for d in actual.shape[1:]]
    assert [enum_name(o, "data_type") for o in config.output] == ["TYPE_INT32"]  # the label map


def test_a_fixed_batch_graph_gets_its_full_dims_and_no_batching(tmp_path):
    artifact = write_artifact(tmp_path / "art", shape=(2, 3, 8, 8))
    (model,) = write_triton_repo([artifact], tmp_path / "repo", backend="onnx", max_batch=8)
    config = parse_config(model.directory / "config.pbtxt")
    assert model.max_batch_size == 0 and config.max_batch_size == 0
    assert list(config.input[0].dims) == [2, 3, 8, 8]
    assert list(config.output[0].dims) == [2, 3]
    assert not config.HasField("dynamic_batching")


def test_several_artifacts_become_one_repository(tmp_path):
    first = write_artifact(tmp_path / "a", model="tiny_cls")
    second = write_artifact(tmp_path / "b", model="tiny_seg", task="segmentation")
    models = write_triton_repo([first, second], tmp_path / "repo", backend="onnx")
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["tiny_cls", "tiny_seg"]
    seg = parse_config(models[1].directory / "config.pbtxt")
    assert seg.name == "tiny_seg" and [list(o.dims) for o in seg.output] == [[8, 8]]


# ---------------------------------------------------------------------------------------------
# TensorRT engines and their plugins


def test_trt_engine_becomes_model_plan_with_the_profile_max_batch(tmp_path):
    artifact = write_artifact(tmp_path / "art")
    engine = write_engine(artifact, "fp16", {"plugins": None, "profiles": _profile(16)})
    (model,) = write_triton_repo([artifact], tmp_path / "repo", precision="fp16")
    assert model.model_file == tmp_path / "repo" / "tiny" / "1" / "model.plan"
    assert model.model_file.read_bytes() == engine.read_bytes()
    config = parse_config(model.directory / "config.pbtxt")
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 16
    assert enum_name(config.instance_group[0], "kind") == "KIND_GPU"
    assert model.plugin_library is None
    assert plugin_instructions(tmp_path / "repo", [model]) == [
        f"start Triton with: tritonserver --model-repository={(tmp_path / 'repo').resolve()}"
    ]
    with pytest.raises(LitevitError, match=r"--max-batch 32 exceeds the largest batch \(16\)"):
        write_triton_repo([artifact], tmp_path / "repo", precision="fp16", max_batch=32)


def test_an_engine_built_with_the_plugin_library_says_how_triton_loads_it(tmp_path):
    library = "/opt/litevit/liblitevit_plugins.so"
    artifact = write_artifact(tmp_path / "art", custom_ops=("CSA",))
    write_engine(
        artifact, "fp32", {"plugins": {"library": library, "sha256": "0" * 64}, "profiles": _profile(8)}
    )
    (model,) = write_triton_repo([artifact], tmp_path / "repo")
    assert model.plugin_library == library
    text = "\n".join(plugin_instructions(tmp_path / "repo", [model]))
    assert f"LD_PRELOAD={library}:${{LD_PRELOAD}} tritonserver --model-repository=" in text
    assert f"--backend-config=tensorrt,plugins={library}" in text


def test_an_engine_without_a_sidecar_from_a_graph_with_custom_ops_may_need_the_plugins(tmp_path):
    artifact = write_artifact(tmp_path / "art", custom_ops=("RASA",))
    write_engine(artifact, "fp32")
    (model,) = write_triton_repo([artifact], tmp_path / "repo")
    assert model.plugin_library == "liblitevit_plugins.so"
    assert model.max_batch_size == 8  # no profile recorded: max(exported batch, 8)
    assert "LD_PRELOAD=/path/to/liblitevit_plugins.so:" in "\n".join(
        plugin_instructions(tmp_path / "r", [model])
    )
    inline = write_artifact(tmp_path / "inline", model="flat", ops_mode="inline", custom_ops=("RASA",))
    write_engine(inline, "fp32")
    assert write_triton_repo([inline], tmp_path / "repo")[0].plugin_library is None


def test_cli_writes_the_repository_and_prints_the_instructions(tmp_path, capsys):
    artifact = write_artifact(tmp_path / "art")
    parser = argparse.ArgumentParser()
    configure_triton_repo_parser(parser)
    args = parser.parse_args(
        [str(artifact), "--out", str(tmp_path / "repo"), "--backend", "onnx", "--preferred-batch-sizes", "4"]
    )
    assert run_triton_repo(args) == 0
    out = capsys.readouterr().out
    assert "config.pbtxt" in out and "(max_batch_size 8)" in out and "function bodies" in out
    assert list(
        parse_config(tmp_path / "repo" / "tiny" / "config.pbtxt").dynamic_batching.preferred_batch_size
    ) == [4]


# ---------------------------------------------------------------------------------------------
# Refusals: one sentence each, and nothing written


@pytest.mark.parametrize(
    ("setup", "kwargs", "message"),
    [
        (lambda a: None, {"precision": "int8"}, r"has no tiny\.int8\.engine; build it .*litevit build"),
        (
            lambda a: None,
            {"backend": "onnx", "precision": "fp16"},
            r"has no fp16 ONNX graph \(export with --fp16\)",
        ),
        (lambda a: write_engine(a, "fp32"), {"device": "cpu"}, r"TensorRT engines run on a GPU only"),
        (
            lambda a: write_engine(a, "fp32", {"plugins": {"library": "python"}}),
            {},
            r"built with litevit's Python plugins, which run only inside litevit",
        ),
        (
            lambda a: None,
            {"backend": "onnx", "preferred_batch_sizes": [4, 9]},
            r"must lie in 1\.\.8 .*9 do not",
        ),
        (lambda a: None, {"backend": "onnx", "max_batch": 0}, r"--max-batch must be at least 1"),
        (lambda a: None, {"backend": "tensorflow"}, r"unknown backend 'tensorflow'"),
    ],
)
def test_refusals(tmp_path, setup, kwargs, message):
    artifact = write_artifact(tmp_path / "art")
    setup(artifact)
    with pytest.raises(LitevitError, match=message) as raised:
        write_triton_repo([artifact], tmp_path / "repo", **kwargs)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "repo").exists()


def test_a_plugin_mode_graph_is_refused_for_onnx_runtime(tmp_path):
    artifact = write_artifact(tmp_path / "art", ops_mode="plugin", custom_ops=("CSA",))
    with pytest.raises(
        LitevitError, match=r"plugin-mode graph .* export it with --ops function or --ops inline"
    ):
        write_triton_repo([artifact], tmp_path / "repo", backend="onnx")


def test_checks_run_before_any_file_is_written(tmp_path):
    good = write_artifact(tmp_path / "good", model="good")
    twin = write_artifact(tmp_path / "twin", model="good")
    with pytest.raises(LitevitError, match=r"two artefacts are both model 'good'"):
        write_triton_repo([good, twin], tmp_path / "repo", backend="onnx")
    with pytest.raises(LitevitError, match=r"is not a litevit artefact folder"):
        write_triton_repo([good, tmp_path / "nothing"], tmp_path / "repo", backend="onnx")
    assert not (tmp_path / "repo").exists()
