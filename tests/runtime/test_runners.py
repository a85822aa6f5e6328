"""Runners: ort and torch agree on the same artefact, metadata, refusals, missing backends, and
the TensorRT runner's tensor/buffer logic against a fake TensorRT (none can be installed here)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import fake_tensorrt
import numpy as np
import onnx
import onnx.numpy_helper
import pytest

import litevit._deps as deps
from litevit.errors import LitevitError, MissingDependencyError
from litevit.export import export_model
from litevit.models import get_model_cfg
from litevit.runtime import runners
from litevit.runtime.runners import TensorInfo, open_runner


def _export(name: str, folder, **kwargs):
    export_model(
        name,
        model_kwargs=get_model_cfg(name).smoke_arch,
        out_dir=folder,
        check=False,
        log=lambda s: None,
        threads=1,
        **kwargs,
    )
    return folder


@pytest.fixture(scope="module")
def lvt_artifact(tmp_path_factory):
    return _export("lvt", tmp_path_factory.mktemp("lvt"), img_size=(64, 64), dynamic_batch=True, fp16=True)


@pytest.fixture(scope="module")
def seg_artifact(tmp_path_factory):
    return _export(
        "lvt_seg", tmp_path_factory.mktemp("lvt_seg"), img_size=(64, 64), dynamic_batch=True, dynamic_hw=True
    )


@pytest.fixture(scope="module")
def plugin_graph(lvt_artifact, tmp_path_factory):
    """The function-mode graph with its function bodies removed: what --ops plugin writes."""
    model = onnx.load(lvt_artifact / "lvt.onnx")
    assert {node.domain for node in model.graph.node} >= {"litevit"}
    del model.functions[:]
    path = tmp_path_factory.mktemp("plugin") / "lvt_plugin.onnx"
    onnx.save(model, path)
    return path


def _image(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _relative_error(actual, reference):
    return float(np.abs(actual - reference).max() / np.abs(reference).max())


def test_ort_and_torch_agree_on_the_same_artifact(lvt_artifact):
    x = _image((2, 3, 64, 64))
    with (
        open_runner(lvt_artifact, "ort", threads=1) as ort_runner,
        open_runner(lvt_artifact, "torch", threads=1) as torch_runner,
    ):
        assert (ort_runner.backend, ort_runner.device) == ("ort", "cpu")
        assert (torch_runner.backend, torch_runner.device) == ("torch", "cpu")
        ort_out = ort_runner.infer({"input": x})
        torch_out = torch_runner.infer({"input": x})
    assert set(ort_out) == set(torch_out) == {"logits"}
    assert ort_out["logits"].shape == torch_out["logits"].shape == (2, 1000)
    assert ort_out["logits"].dtype == np.float32
    assert _relative_error(ort_out["logits"], torch_out["logits"]) < 1e-4


def test_ort_fp16_graph_is_close_to_torch(lvt_artifact):
    x = _image((1, 3, 64, 64), seed=1)
    with open_runner(lvt_artifact, "ort", precision="fp16", threads=1) as fp16_runner:
        assert fp16_runner.path.name == "lvt.fp16.onnx"
        fp16 = fp16_runner.infer({"input": x})["logits"]
    with open_runner(lvt_artifact, "torch", threads=1) as torch_runner:
        reference = torch_runner.infer({"input": x})["logits"]
    error = _relative_error(fp16, reference)
    # FP16 rounding is visible (so this really is the fp16 graph), but small.
    assert 1e-6 < error < 1e-2


def test_metadata_names_dynamic_dims_and_dtypes(lvt_artifact, seg_artifact):
    with open_runner(lvt_artifact, "ort") as runner:
        assert runner.inputs() == [TensorInfo("input", "float32", ("batch", 3, 64, 64))]
        assert runner.outputs() == [TensorInfo("logits", "float32", ("batch", 1000))]
    with open_runner(seg_artifact, "ort") as ort_runner, open_runner(seg_artifact, "torch") as torch_runner:
        for runner in (ort_runner, torch_runner):
            assert runner.inputs() == [TensorInfo("input", "float32", ("batch", 3, "height", "width"))]
            assert runner.outputs() == [TensorInfo("labels", "int32", ("batch", "height", "width"))]


def test_segmentation_runners_agree_at_another_size(seg_artifact):
    x = _image((1, 3, 64, 96), seed=2)
    with (
        open_runner(seg_artifact, "ort", threads=1) as ort_runner,
        open_runner(seg_artifact, "torch", threads=1) as torch_runner,
    ):
        ort_labels = ort_runner.infer({"input": x})["labels"]
        torch_labels = torch_runner.infer({"input": x})["labels"]
    assert ort_labels.shape == torch_labels.shape == (1, 64, 96)
    assert ort_labels.dtype == np.int32
    assert np.mean(ort_labels == torch_labels) >= 0.99


def test_timed_region_on_cpu_runs_one_inference_and_says_what_it_times(lvt_artifact):
    x = _image((1, 3, 64, 64))
    with open_runner(lvt_artifact, "ort", threads=1) as runner:
        calls = []
        real_run = runner.session.run
        runner.session.run = lambda *a, **k: calls.append(1) or real_run(*a, **k)
        region = runner.timed_region({"input": x})
        region.run()
        region.run()
        assert len(calls) == 2
        assert region.gpu_timer is None
        assert "host" in region.scope
    with open_runner(lvt_artifact, "torch", threads=1) as runner:
        region = runner.timed_region({"input": x})
        region.run()
        assert region.gpu_timer is None and "PyTorch" in region.scope


def test_direct_onnx_file_and_wrong_feeds(lvt_artifact):
    with open_runner(lvt_artifact / "lvt.onnx", "ort") as runner:
        out = runner.infer({"input": _image((3, 3, 64, 64))})
        assert out["logits"].shape == (3, 1000)
        with pytest.raises(LitevitError, match=r"takes inputs \['input'\].*missing input"):
            runner.infer({"image": _image((1, 3, 64, 64))})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "tensorflow"}, "unknown backend 'tensorflow'; choose one of ort, torch, trt."),
        ({"backend": "ort", "precision": "fp8"}, "unknown precision 'fp8'"),
        ({"backend": "ort", "device": "gpu"}, "unknown device 'gpu'; use cpu, cuda or cuda:N."),
        ({"backend": "torch", "precision": "fp16"}, "the torch backend runs the FP32 reference only"),
        ({"backend": "ort", "compile": True}, "applies to the torch backend only"),
        ({"backend": "trt", "device": "cpu"}, "the trt backend runs on a CUDA device"),
    ],
)
def test_bad_requests_are_one_sentence(lvt_artifact, kwargs, message):
    with pytest.raises(LitevitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_runner(lvt_artifact, **kwargs)


def test_missing_files_are_named(lvt_artifact, seg_artifact, tmp_path):
    with pytest.raises(LitevitError, match=r"has no fp16 ONNX graph \(export with --fp16\); it has fp32"):
        open_runner(seg_artifact, "ort", precision="fp16")
    with pytest.raises(LitevitError, match="is not a litevit artefact folder"):
        open_runner(tmp_path, "ort")
    with pytest.raises(LitevitError, match="rebuilds the model from an artefact folder"):
        open_runner(lvt_artifact / "lvt.onnx", "torch")
    with pytest.raises(LitevitError, match="is not a .onnx file"):
        open_runner(lvt_artifact / "manifest.json", "ort")
    with pytest.raises(LitevitError, match="has no lvt.fp32.engine"):
        open_runner(lvt_artifact, "trt")


def test_ort_cuda_without_the_gpu_build_names_onnxruntime_gpu(lvt_artifact):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(LitevitError, match="pip install onnxruntime-gpu"):
        open_runner(lvt_artifact, "ort", device="cuda")


def test_plugin_graph_runs_with_bodies_attached_when_torch_is_here(lvt_artifact, plugin_graph):
    x = _image((1, 3, 64, 64), seed=3)
    with (
        open_runner(plugin_graph, "ort", threads=1) as plugin,
        open_runner(lvt_artifact, "ort", threads=1) as function,
    ):
        np.testing.assert_allclose(
            plugin.infer({"input": x})["logits"], function.infer({"input": x})["logits"]
        )


def _run_without(blocked: list[str], code: str) -> subprocess.CompletedProcess:
    block = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    # Outside the checkout: the source tree on sys.path would shadow the installed package.
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run([sys.executable, "-c", block + code], capture_output=True, text=True, cwd=cwd)


_PRINT_ERROR = (
    "from litevit.runtime.runners import open_runner\n"
    "from litevit.errors import LitevitError\n"
    "try:\n"
    "    open_runner({target!r}, {backend!r})\n"
    "except LitevitError as exc:\n"
    "    print(type(exc).__name__, exc)\n"
    "print('torch imported:', any(m == 'torch' and sys.modules[m] for m in sys.modules))\n"
)


def test_plugin_graph_without_torch_is_refused_with_the_fix(plugin_graph):
    proc = _run_without(["torch", "onnxscript"], _PRINT_ERROR.format(target=str(plugin_graph), backend="ort"))
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.strip().splitlines()
    assert first == (
        f"LitevitError {str(plugin_graph)!r} is a plugin-mode graph (litevit::CSA, litevit::RASA have no "
        f"function bodies), which ONNX Runtime cannot run: export it with --ops function or --ops inline, "
        f"or install pip install 'litevit[author]' so the bodies are attached here."
    )
    assert second == "torch imported: False"


def test_function_graph_runs_without_torch(lvt_artifact):
    code = (
        "import numpy as np\n"
        "from litevit.runtime.runners import open_runner\n"
        f"with open_runner({str(lvt_artifact)!r}, 'ort') as r:\n"
        "    print(r.infer({'input': np.zeros((1, 3, 64, 64), np.float32)})['logits'].shape)\n"
        "print('torch' in [m for m in sys.modules if sys.modules[m] is not None])\n"
    )
    proc = _run_without(["torch", "onnxscript"], code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["(1, 1000)", "False"]


@pytest.mark.parametrize(
    ("blocked", "backend", "expected"),
    [
        (
            ["onnxruntime"],
            "ort",
            "MissingDependencyError onnxruntime is not installed; the ONNX Runtime backend needs it: "
            "pip install 'litevit[ort]' (or onnxruntime-gpu).",
        ),
        (
            ["torch"],
            "torch",
            "MissingDependencyError torch is not installed; the model zoo, FLOP counting and export needs "
            "it: pip install 'litevit[author]' (torch).",
        ),
    ],
)
def test_missing_backend_library_is_one_sentence(lvt_artifact, blocked, backend, expected):
    proc = _run_without(blocked, _PRINT_ERROR.format(target=str(lvt_artifact), backend=backend))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[0] == expected


def test_missing_tensorrt_and_cuda_binding_are_one_sentence(tmp_path, monkeypatch):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    with pytest.raises(MissingDependencyError) as info:
        open_runner(engine, "trt")
    assert str(info.value).startswith(
        "tensorrt is not installed; the TensorRT backend needs it: pip install tensorrt"
    )
    # TensorRT present, neither cuda-python nor pycuda:
    present = {"tensorrt"}
    monkeypatch.setattr(deps, "has", lambda module: module in present)
    monkeypatch.setattr(runners, "has", lambda module: module in present)
    with pytest.raises(MissingDependencyError) as info:
        open_runner(engine, "trt")
    assert str(info.value) == (
        "cuda-python is not installed; the TensorRT backend's device buffers and CUDA streams needs it: "
        "pip install cuda-python (or pycuda)."
    )


# ---------------------------------------------------------------------------------------------
# TensorRT runner against the fake TensorRT and fake CUDA of fake_tensorrt.py (device memory =
# host memory): checks the name-based tensor API use, dynamic shapes, buffer sizing and the copies.


def _doubling_engine(version: str) -> bytes:
    """Engine: input "input" (batch 1..8, 3, 4) float32 -> output "output" = 2 * input."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Mul", ["input", "two"], ["output"])],
        "double",
        [onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["batch", 3, 4])],
        [onnx.helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["batch", 3, 4])],
        [onnx.numpy_helper.from_array(np.array(2.0, np.float32), "two")],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8
    return fake_tensorrt.engine_bytes(model, version, {"input": ((1, 3, 4), (1, 3, 4), (8, 3, 4))})


@pytest.fixture
def fake_trt(monkeypatch):
    def install():
        trt = fake_tensorrt.make_tensorrt("10.3.0")
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        present = {"tensorrt", "cuda.bindings"}
        monkeypatch.setattr(deps, "has", lambda module: module in present)
        monkeypatch.setattr(runners, "has", lambda module: module in present)
        cudas = []
        monkeypatch.setattr(
            runners, "_open_cuda", lambda index: cudas.append(fake_tensorrt.FakeCuda(index)) or cudas[-1]
        )
        return cudas

    return install


def test_trt_runner_metadata_infer_and_timed_region(fake_trt, tmp_path):
    cudas = fake_trt()
    engine = tmp_path / "m.fp16.engine"
    engine.write_bytes(_doubling_engine("10.3.0"))
    runner = open_runner(engine, "trt")
    assert (runner.backend, runner.device) == ("trt", "cuda:0")
    assert runner.inputs() == [TensorInfo("input", "float32", ("dim0", 3, 4))]
    assert runner.outputs() == [TensorInfo("output", "float32", ("dim0", 3, 4))]
    for batch in (2, 5, 1):  # grows, then reuses the larger buffer
        x = _image((batch, 3, 4), seed=batch)
        out = runner.infer({"input": x})
        np.testing.assert_array_equal(out["output"], 2 * x)
    assert cudas[0].freed == 2  # input and output buffers grew once, from batch 2 to 5
    region = runner.timed_region({"input": _image((2, 3, 4))})
    region.run()
    assert region.gpu_timer is not None and region.gpu_timer() == 0.5
    assert region.scope.startswith("compute only")
    copies = runner.timed_region({"input": _image((2, 3, 4))}, with_copies=True)
    assert copies.scope.startswith("host->device copy + compute + device->host copy")
    with pytest.raises(LitevitError, match=r"outside the engine's optimisation profile"):
        runner.infer({"input": _image((9, 3, 4))})
    runner.close()
    assert cudas[0].closed


def test_trt_runner_names_dynamic_dims_from_the_manifest(fake_trt, tmp_path):
    fake_trt()
    manifest = {
        "manifest_version": 1,
        "model": "m",
        "files": {},
        "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 3, 4]}],
        "outputs": [{"name": "output", "dtype": "float32", "shape": ["batch", 3, 4]}],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "m.fp16.engine").write_bytes(_doubling_engine("10.3.0"))
    with open_runner(tmp_path, "trt", precision="fp16") as runner:
        assert runner.inputs()[0].shape == ("batch", 3, 4)
        assert runner.outputs()[0].shape == ("batch", 3, 4)


def test_trt_runner_refuses_an_engine_from_another_tensorrt(fake_trt, tmp_path):
    # Without a sidecar only TensorRT itself can tell: the fake refuses another version's engine.
    cudas = fake_trt()
    engine = tmp_path / "m.engine"
    engine.write_bytes(_doubling_engine("10.4.0"))
    with pytest.raises(LitevitError, match=r"TensorRT 10.3.0 could not load .*rebuild it here"):
        open_runner(engine, "trt")
    assert cudas[0].closed
