"""run_benchmark end to end on small exported artefacts, timing logic on fake runners, the paper
protocol's resizing against torch, and the JSON writer."""

import json
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from litevit.errors import LitevitError, UnknownModelError
from litevit.runtime import bench
from litevit.runtime.bench import (
    SCHEMA,
    complexity_for,
    paper_image_sizes,
    paper_input_size,
    resize_bilinear,
    resize_nearest,
    run_benchmark,
    write_bench_json,
)
from litevit.runtime.runners import Runner, TensorInfo, TimedRegion
from litevit.runtime.stats import STAT_KEYS

# Small iteration counts keep these tests fast; their percentiles are not what is tested.
QUIET = {"log": lambda s: None, "allow_few_iterations": True}


@pytest.fixture(scope="module")
def classifier(smoke_artifact):
    return smoke_artifact("lvt", dynamic_batch=True)


@pytest.fixture(scope="module")
def seg_labels(smoke_artifact):
    return smoke_artifact("lvt_seg", dynamic_hw=True)


@pytest.fixture(scope="module")
def seg_logits(smoke_artifact):
    return smoke_artifact("lvt_seg", dynamic_hw=True, seg_output="logits")


def test_synthetic_benchmark_document(classifier):
    doc = run_benchmark(classifier, batches=[1, 2], warmup=1, iterations=4, threads=1, **QUIET)
    manifest = json.loads((classifier / "manifest.json").read_text())
    assert doc["schema"] == SCHEMA
    assert (doc["model"], doc["task"], doc["backend"], doc["precision"], doc["device"]) == (
        "lvt",
        "classification",
        "ort",
        "fp32",
        "cpu",
    )
    assert doc["protocol"] == "synthetic"
    assert doc["artifact_sha256"] == manifest["files"]["lvt.onnx"]["sha256"]
    assert doc["environment"]["threads"] == 1
    assert doc["complexity"] == manifest["complexity"]
    assert doc["complexity"]["params"] > 0 and doc["complexity"]["flops"] == 2 * doc["complexity"]["macs"]
    assert doc["reference"] is None  # a smoke architecture is not the paper's model
    assert [run["batch"] for run in doc["runs"]] == [1, 2]
    for run in doc["runs"]:
        assert run["input_shape"] == [run["batch"], 3, 64, 64]
        assert run["measure"] == "host" and "ONNX Runtime CPU" in run["timed_region"]
        assert (run["warmup"], run["iterations"]) == (1, 4)
        assert tuple(run["latency_ms"]) == STAT_KEYS
        assert run["fps"] == pytest.approx(run["batch"] / run["latency_ms"]["mean"] * 1000)
        assert run["throughput_ips"] == run["fps"]
        assert run["gpu_compute_latency_ms"] is None and run["power"] is None
    json.dumps(doc)  # the whole document is plain JSON


def test_seconds_budget(classifier):
    start = time.perf_counter()
    doc = run_benchmark(classifier, warmup=0, seconds=0.3, threads=1, **QUIET)
    assert time.perf_counter() - start >= 0.3
    assert doc["runs"][0]["iterations"] >= 2


def test_static_batch_is_refused_in_one_sentence(seg_labels):
    with pytest.raises(
        LitevitError, match="takes batch 1 only; to benchmark batch 2, export it with --dynamic-batch"
    ):
        run_benchmark(seg_labels, batches=[2], iterations=1, **QUIET)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iterations": 3, "seconds": 1.0}, "either --iters or --seconds"),
        ({"batches": [0]}, "at least 1"),
        ({"batches": []}, "at least 1"),
        ({"warmup": -1}, "--warmup"),
        ({"iterations": 0}, "--iters"),
        ({"seconds": float("nan")}, "--seconds"),
        ({"protocol": "fastest"}, "unknown protocol"),
    ],
)
def test_bad_settings(classifier, kwargs, message):
    with pytest.raises(LitevitError, match=message):
        run_benchmark(classifier, **kwargs, **QUIET)


def test_targets_that_do_not_exist(tmp_path):
    with pytest.raises(LitevitError, match="does not exist"):
        run_benchmark(tmp_path / "missing.onnx", **QUIET)
    with pytest.raises(UnknownModelError):
        run_benchmark("not_a_model", **QUIET)


def test_model_name_without_torch_is_one_sentence():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None
        sys.modules["onnxscript"] = None
        from litevit.runtime.bench import run_benchmark
        try:
            run_benchmark("lvt")
        except Exception as exc:
            print(type(exc).__name__, exc)
        assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
        """
    )
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "MissingDependencyError 'lvt' is neither a file nor a folder; benchmarking a model by name "
        "exports it first, which needs torch: pip install 'litevit[author]', or pass an artefact folder."
    )


# --- timing logic on fake runners ------------------------------------------------------------


class FakeRunner(Runner):
    """Sleeps a known time per run; on "cuda" reports a known GPU time per run."""

    backend = "fake"

    def __init__(self, device="cpu", sleep_s=0.002, gpu_ms=1.5):
        self.device = device
        self.sleep_s = sleep_s
        self.gpu_ms = gpu_ms
        self.regions = []

    def inputs(self):
        return [TensorInfo("input", "float32", ("batch", 3, 8, 8))]

    def outputs(self):
        return [TensorInfo("logits", "float32", ("batch", 10))]

    def infer(self, feeds):
        return {"logits": np.zeros((feeds["input"].shape[0], 10), np.float32)}

    def timed_region(self, feeds, *, with_copies=False):
        self.regions.append((feeds["input"].shape, with_copies))
        timer = (lambda: self.gpu_ms) if self.device.startswith("cuda") else None
        return TimedRegion(lambda: time.sleep(self.sleep_s), f"sleep copies={with_copies}", timer)

    def close(self):
        pass


@pytest.fixture
def fake_runner(monkeypatch, tmp_path):
    holder = {}

    def open_fake(target, backend, **kwargs):
        holder["runner"] = FakeRunner(device=kwargs.get("device") or "cpu")
        return holder["runner"]

    monkeypatch.setattr(bench, "open_runner", open_fake)
    model = tmp_path / "fake.onnx"
    model.write_bytes(b"not really onnx")
    return model, holder


def test_each_iteration_is_timed_separately(fake_runner):
    model, holder = fake_runner
    doc = run_benchmark(model, batches=[3], warmup=2, iterations=10, **QUIET)
    (run,) = doc["runs"]
    assert 2.0 <= run["latency_ms"]["min"] and run["latency_ms"]["p50"] < 50
    assert run["iterations"] == 10 and run["timed_region"] == "sleep copies=False"
    assert holder["runner"].regions == [((3, 3, 8, 8), False)]
    assert doc["model"] == "fake" and doc["complexity"]["params"] is None
    assert doc["artifact_sha256"] is not None  # a direct file is hashed


def test_gpu_runs_report_compute_only_and_with_copies(fake_runner):
    model, holder = fake_runner
    doc = run_benchmark(model, device="cuda:0", warmup=0, iterations=5, **QUIET)
    assert [run["measure"] for run in doc["runs"]] == ["compute_only", "with_copies"]
    assert holder["runner"].regions == [((1, 3, 8, 8), False), ((1, 3, 8, 8), True)]
    for run in doc["runs"]:
        assert run["gpu_compute_latency_ms"] == {key: (0.0 if key == "std" else 1.5) for key in STAT_KEYS}


# A JetPack 6 Orin Nano line (github.com/rbonghi/jetson_stats issue #624; see test_tegrastats.py).
ORIN_NANO_LINE = (
    "05-15-2025 18:30:28 RAM 6982/7620MB (lfb 5x1MB) SWAP 2640/16384MB (cached 202MB) "
    "CPU [97%@1984,95%@1984,95%@1984,91%@1984,88%@1984,93%@247] EMC_FREQ 18%@3199 "
    "GR3D_FREQ 84%@[713] APE 174 cpu@65.562C gpu@63.5C tj@65.562C VDD_IN 17946mW/15710mW "
    "VDD_CPU_GPU_CV 8896mW/7585mW VDD_SOC 3923mW/3515mW"
)


def test_power_comes_from_tegrastats_samples_during_the_timed_loop(fake_runner, monkeypatch, tmp_path):
    fake = tmp_path / "tegrastats"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys, time\n"
        "while True:\n"
        f"    print({ORIN_NANO_LINE!r})\n"
        "    time.sleep(int(sys.argv[2]) / 1000)\n"
    )
    fake.chmod(0o755)
    real_sampler = bench.TegrastatsSampler
    monkeypatch.setattr(bench, "TegrastatsSampler", lambda interval_ms: real_sampler(interval_ms, str(fake)))
    model, _ = fake_runner
    doc = run_benchmark(model, warmup=0, seconds=0.6, **QUIET)
    (run,) = doc["runs"]
    power = run["power"]
    assert power is not None and 2 <= power["samples"] <= 8  # 100 ms interval over ~0.6 s
    assert power["total_rail"] == "VDD_IN" and power["total_mw_mean"] == pytest.approx(17946)
    assert power["gpu_load_percent_mean"] == pytest.approx(84)
    assert power["energy_per_image_mj"] == pytest.approx(17946 * run["latency_ms"]["mean"] / 1000)


# --- paper protocol --------------------------------------------------------------------------


def test_paper_protocol_with_label_artefact(seg_labels):
    doc = run_benchmark(seg_labels, protocol="paper", warmup=1, iterations=3, threads=1, **QUIET)
    (run,) = doc["runs"]
    assert doc["protocol"] == "paper" and run["measure"] == "paper_end_to_end"
    assert run["batch"] == 1 and run["input_shape"] is None and run["iterations"] == 3
    assert "nearest resize of the int32 label map" in run["timed_region"]
    images = run["paper_images"]
    assert images["count"] == 3 and images["resized_short_side"] == 64 and images["seg_output"] == "labels"
    assert images["first_sizes_hw"] == [list(hw) for hw in paper_image_sizes(3)]


def test_paper_protocol_with_logit_artefact(seg_logits):
    doc = run_benchmark(seg_logits, protocol="paper", warmup=0, iterations=2, threads=1, **QUIET)
    assert (
        "bilinear resize of the class scores to the original image size and argmax"
        in doc["runs"][0]["timed_region"]
    )


def test_paper_protocol_refusals(classifier, smoke_artifact):
    with pytest.raises(LitevitError, match="lvt is a classification model: use --protocol synthetic"):
        run_benchmark(classifier, protocol="paper", **QUIET)
    static = smoke_artifact("lvt_seg")
    with pytest.raises(LitevitError, match="re-export it with --dynamic-hw"):
        run_benchmark(static, protocol="paper", **QUIET)
    with pytest.raises(LitevitError, match="use --batch 1"):
        run_benchmark(static, protocol="paper", batches=[1, 2], **QUIET)


def test_paper_image_sizes_are_fixed_and_ade_like():
    sizes = paper_image_sizes(200)
    assert sizes == paper_image_sizes(200) and sizes != paper_image_sizes(200, seed=1)
    assert all(384 <= min(hw) <= 512 and max(hw) <= 1.6 * min(hw) + 1 for hw in sizes)
    landscape = sum(w >= h for h, w in sizes) / len(sizes)
    assert 0.6 < landscape < 0.9


def test_paper_input_size_keeps_aspect_and_aligns():
    assert paper_input_size((512, 683), 512, 32) == (512, 704)  # 683 -> next multiple of 32
    assert paper_input_size((683, 512), 512, 32) == (704, 512)
    assert paper_input_size((384, 500), 512, 32) == (512, 672)  # 666.67 -> 667 -> 672
    assert paper_input_size((100, 1000), 512, 32) == (224, 2048)  # long side capped at 4 x 512


@pytest.mark.parametrize("size", [(37, 50), (128, 171), (9, 7)])
def test_resize_matches_torch(size):
    scores = np.random.default_rng(0).standard_normal((1, 5, 16, 23)).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(scores), size=size, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(resize_bilinear(scores, size), expected.numpy(), atol=1e-5)
    labels = np.arange(16 * 23, dtype=np.int32).reshape(1, 16, 23)
    nearest = F.interpolate(torch.from_numpy(labels[None].astype(np.float32)), size=size, mode="nearest")
    np.testing.assert_array_equal(resize_nearest(labels, size), nearest[0].numpy().astype(np.int32))


def test_complexity_without_manifest_entry_is_counted_or_null(classifier):
    manifest = json.loads((classifier / "manifest.json").read_text())
    recorded = manifest.pop("complexity")
    assert complexity_for(manifest) == recorded  # torch is here: counted again, same numbers
    assert complexity_for(None) == {"params": None, "macs": None, "flops": None, "counter": None}


def test_write_bench_json_round_trip(tmp_path, fake_runner):
    model, _ = fake_runner
    doc = run_benchmark(model, warmup=0, iterations=2, **QUIET)
    out = write_bench_json(doc, tmp_path / "runs" / "run.json")
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))
    assert [p.name for p in out.parent.iterdir()] == ["run.json"]  # no temporary file left
    with pytest.raises(LitevitError, match="schema"):
        write_bench_json({"schema": "other"}, tmp_path / "x.json")
