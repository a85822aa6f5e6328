"""``litevit serve``: the real server in a subprocess, spoken to with the official Triton HTTP client
(``tritonclient.http``) and with raw HTTP (``http.client``).

One server serves three artefacts for most tests: the smoke Mobile-Former (classifier, dynamic
batch), the smoke LVT segmenter (``labels`` output) and a hand-built ``toy`` graph whose second
output is a GatherElements that fails on an out-of-range index (the 500 case). A second server,
with a slow toy graph, is shut down with SIGTERM in the middle of a request.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
tritonhttp = pytest.importorskip("tritonclient.http")

from litevit._io import sha256_file, write_json  # noqa: E402
from litevit.artifacts import read_manifest  # noqa: E402
from litevit.calibration.images import Preprocessing  # noqa: E402
from litevit.export import export_model  # noqa: E402
from litevit.labels import class_names  # noqa: E402
from litevit.models import get_model_cfg  # noqa: E402
from litevit.runtime.bench import resize_nearest  # noqa: E402
from litevit.runtime.runners import open_runner  # noqa: E402

MAX_REQUEST_BYTES = 1_000_000
_DATATYPES = {"float32": "FP32", "int64": "INT64", "int32": "INT32"}
SERVE = (
    "import argparse, sys\n"
    "from litevit.serve import configure_serve_parser, run_serve\n"
    "parser = argparse.ArgumentParser()\n"
    "configure_serve_parser(parser)\n"
    "sys.exit(run_serve(parser.parse_args(sys.argv[1:])))\n"
)


# --------------------------------------------------------------------------------------------
# Artefacts


def _export(name: str, folder: Path) -> Path:
    export_model(
        name,
        model_kwargs=get_model_cfg(name).smoke_arch,
        img_size=(64, 64),
        dynamic_batch=True,
        out_dir=folder,
        check=False,
        log=lambda s: None,
        threads=1,
    )
    return folder


def write_toy_artifact(folder: Path, *, width: int, depth: int) -> Path:
    """``y = x @ W @ W ...`` (``depth`` MatMuls of ``width`` x ``width``: its cost grows with the rows
    sent) and ``picked = GatherElements(x, index)`` (ONNX Runtime fails on an index >= width)."""
    weight = (np.random.default_rng(0).standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
    nodes = [
        helper.make_node(
            "MatMul", ["x" if i == 0 else f"h{i}", "w"], ["y" if i == depth - 1 else f"h{i + 1}"]
        )
        for i in range(depth)
    ]
    nodes.append(helper.make_node("GatherElements", ["x", "index"], ["picked"], axis=1))
    graph = helper.make_graph(
        nodes,
        "toy",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width]),
            helper.make_tensor_value_info("index", TensorProto.INT64, ["batch", 1]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width]),
            helper.make_tensor_value_info("picked", TensorProto.FLOAT, ["batch", 1]),
        ],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "toy.onnx")
    write_json(
        folder / "manifest.json",
        {
            "manifest_version": 1,
            "model": "toy",
            "task": "regression",
            "inputs": [
                {"name": "x", "dtype": "float32", "shape": ["batch", width]},
                {"name": "index", "dtype": "int64", "shape": ["batch", 1]},
            ],
            "outputs": [
                {"name": "y", "dtype": "float32", "shape": ["batch", width]},
                {"name": "picked", "dtype": "float32", "shape": ["batch", 1]},
            ],
            "dynamic_axes": {"x": {"0": "batch"}, "index": {"0": "batch"}},
            "batch": 1,
            "files": {"toy.onnx": {"precision": "fp32", "sha256": sha256_file(folder / "toy.onnx")}},
        },
    )
    return folder


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve")
    return {
        "mobile_former_26m": _export("mobile_former_26m", root / "classifier"),
        "lvt_seg": _export("lvt_seg", root / "segmenter"),
        "toy": write_toy_artifact(root / "toy", width=8, depth=1),
    }


# --------------------------------------------------------------------------------------------
# The server process


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    lines: list[str]

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def infer_json(self, model: str, inputs: dict[str, np.ndarray]) -> tuple[int, dict[str, Any]]:
        payload = {
            "inputs": [
                {
                    "name": n,
                    "shape": list(a.shape),
                    "datatype": _DATATYPES[a.dtype.name],
                    "data": a.ravel().tolist(),
                }
                for n, a in inputs.items()
            ]
        }
        status, _, body = self.request("POST", f"/v2/models/{model}/infer", json.dumps(payload).encode())
        return status, json.loads(body)

    def infer_binary(self, model: str, inputs: dict[str, np.ndarray]) -> tuple[int, dict[str, Any]]:
        """The binary tensor extension both ways; returns the status and the outputs as arrays (or
        the error body)."""
        header = json.dumps(
            {
                "inputs": [
                    {
                        "name": name,
                        "shape": list(array.shape),
                        "datatype": _DATATYPES[array.dtype.name],
                        "parameters": {"binary_data_size": array.nbytes},
                    }
                    for name, array in inputs.items()
                ],
                "parameters": {"binary_data_output": True},
            }
        ).encode()
        body = header + b"".join(array.tobytes() for array in inputs.values())
        status, headers, raw = self.request(
            "POST", f"/v2/models/{model}/infer", body, {"Inference-Header-Content-Length": str(len(header))}
        )
        if status != 200:
            return status, json.loads(raw)
        json_length = int(headers["inference-header-content-length"])
        arrays, offset = {}, json_length
        for output in json.loads(raw[:json_length])["outputs"]:
            size = output["parameters"]["binary_data_size"]
            dtype = {v: k for k, v in _DATATYPES.items()}[output["datatype"]]
            arrays[output["name"]] = np.frombuffer(raw[offset : offset + size], dtype).reshape(
                output["shape"]
            )
            offset += size
        return status, arrays

    def metrics(self) -> str:
        status, headers, body = self.request("GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        return body.decode()


def _read_stdout(process: subprocess.Popen[str], lines: list[str], port_found: threading.Event) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if "listening on" in line:
            port_found.set()
    port_found.set()


@contextlib.contextmanager
def running_server(*args: str) -> Iterator[Server]:
    """``litevit serve ARGS --port 0`` in a subprocess (outside the checkout, whose source tree would
    shadow the installed package), once ``/v2/health/ready`` answers 200; SIGTERM at the end."""
    with tempfile.TemporaryDirectory() as cwd:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, *args, "--port", "0"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        port_found = threading.Event()
        threading.Thread(target=_read_stdout, args=(process, lines, port_found), daemon=True).start()
        try:
            assert port_found.wait(60), "the server did not start"
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", "".join(lines))
            assert found, "".join(lines)
            server = Server(process, int(found.group(1)), lines)
            deadline = time.monotonic() + 30
            while server.request("GET", "/v2/health/ready")[0] != 200:
                assert time.monotonic() < deadline, "".join(lines)
                time.sleep(0.05)
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)


@pytest.fixture(scope="module")
def server(artifacts) -> Iterator[Server]:
    # A wide queue-delay window so that concurrent requests certainly meet in one batch.
    with running_server(
        *map(str, artifacts.values()),
        "--max-batch", "8",
        "--max-queue-delay-ms", "50",
        "--max-request-bytes", str(MAX_REQUEST_BYTES),
        "--threads", "1",
    ) as running:  # fmt: skip
        yield running


def _images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, 3, 64, 64)).astype(np.float32)


def _reference(folder: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    runner = open_runner(folder, "ort", threads=1)
    try:
        return runner.infer(feeds)
    finally:
        runner.close()


def _close(actual: np.ndarray, expected: np.ndarray) -> None:
    # Rows run in a batch with other requests can differ from a separate run in the last bits.
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Protocol: health, metadata, infer


def test_health_and_metadata_through_tritonclient(server):
    client = tritonhttp.InferenceServerClient(server.url)
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data", "statistics"]
    assert client.is_model_ready("mobile_former_26m") and client.is_model_ready("lvt_seg", "1")
    assert client.get_model_metadata("mobile_former_26m") == {
        "name": "mobile_former_26m",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 64, 64]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 1000]}],
    }
    seg = client.get_model_metadata("lvt_seg", "1")
    assert seg["outputs"] == [{"name": "labels", "datatype": "INT32", "shape": [-1, 64, 64]}]
    assert not client.is_model_ready("mobile_former_26m", "2")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer_equals_the_runner(server, artifacts, binary):
    client = tritonhttp.InferenceServerClient(server.url)
    images = _images(3, seed=1)
    tensor = tritonhttp.InferInput("input", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images, binary_data=binary)
    wanted = [tritonhttp.InferRequestedOutput("logits", binary_data=binary)]
    result = client.infer("mobile_former_26m", [tensor], outputs=wanted, request_id="r1")
    assert result.get_response()["id"] == "r1"
    _close(result.as_numpy("logits"), _reference(artifacts["mobile_former_26m"], {"input": images})["logits"])

    labels = client.infer("lvt_seg", [tensor]).as_numpy("labels")  # no outputs named: all, binary
    np.testing.assert_array_equal(labels, _reference(artifacts["lvt_seg"], {"input": images})["labels"])


def test_raw_http_json_and_binary_tensors(server, artifacts):
    x = np.arange(16, dtype=np.float32).reshape(2, 8) / 16
    index = np.array([[3], [7]], dtype=np.int64)
    expected = _reference(artifacts["toy"], {"x": x, "index": index})

    status, body = server.infer_json("toy", {"x": x, "index": index})
    assert status == 200, body
    outputs = {o["name"]: o for o in body["outputs"]}
    assert body["model_name"] == "toy" and body["model_version"] == "1"
    assert outputs["y"]["datatype"] == "FP32" and outputs["y"]["shape"] == [2, 8]
    _close(np.asarray(outputs["y"]["data"], np.float32).reshape(2, 8), expected["y"])
    assert outputs["picked"]["data"] == [3 / 16, 15 / 16]

    # The binary tensor extension by hand: a JSON header, then x's bytes; index stays JSON; picked
    # comes back binary (binary_data_output), y as JSON (its own parameter wins).
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 8],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                },
                {"name": "index", "shape": [2, 1], "datatype": "INT64", "data": [3, 7]},
            ],
            "outputs": [{"name": "picked"}, {"name": "y", "parameters": {"binary_data": False}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    status, headers, raw = server.request(
        "POST",
        "/v2/models/toy/versions/1/infer",
        header + x.tobytes(),
        {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
    )
    assert status == 200, raw
    json_length = int(headers["inference-header-content-length"])
    response = json.loads(raw[:json_length])
    assert [o["name"] for o in response["outputs"]] == ["picked", "y"]
    assert response["outputs"][0]["parameters"] == {"binary_data_size": 8}
    np.testing.assert_array_equal(np.frombuffer(raw[json_length:], np.float32), [3 / 16, 15 / 16])
    _close(np.asarray(response["outputs"][1]["data"], np.float32).reshape(2, 8), expected["y"])


def _batch_counts(metrics: str, model: str) -> tuple[int, int]:
    """(executions, executions of one row) from the batch-size histogram."""
    count = re.search(rf'litevit_batch_size_count{{model="{model}"}} (\d+)', metrics)
    ones = re.search(rf'litevit_batch_size_bucket{{model="{model}",le="1"}} (\d+)', metrics)
    assert count and ones, metrics
    return int(count.group(1)), int(ones.group(1))


def test_concurrent_requests_are_batched_and_split_back(server, artifacts):
    images = _images(12, seed=2)
    expected = _reference(artifacts["mobile_former_26m"], {"input": images})["logits"]
    runs_before, single_before = _batch_counts(server.metrics(), "mobile_former_26m")

    def one(row: int) -> np.ndarray:
        status, body = server.infer_json("mobile_former_26m", {"input": images[row : row + 1]})
        assert status == 200, body
        return np.asarray(body["outputs"][0]["data"], np.float32).reshape(1, 1000)

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(one, range(12)))
    for row, logits in enumerate(results):
        _close(logits, expected[row : row + 1])
    runs_after, single_after = _batch_counts(server.metrics(), "mobile_former_26m")
    runs = runs_after - runs_before
    # 12 one-row requests within a 50 ms window: fewer runs than requests, some of several rows.
    assert runs < 12 and runs - (single_after - single_before) > 0


# --------------------------------------------------------------------------------------------
# The image endpoint


def _encode(image: Image.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


def _photo(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_image_endpoint_top_k_for_a_classifier(server, artifacts):
    jpeg = _encode(_photo(96, 80), "JPEG")
    status, headers, body = server.request("POST", "/v2/models/mobile_former_26m/image?top_k=3", jpeg)
    assert status == 200 and headers["content-type"] == "application/json", body
    classes = json.loads(body)["classes"]

    folder = artifacts["mobile_former_26m"]
    with Image.open(io.BytesIO(jpeg)) as decoded:
        pixels = Preprocessing.from_manifest(read_manifest(folder))(decoded)[None]
    logits = _reference(folder, {"input": pixels})["logits"][0].astype(np.float64)
    top = np.argsort(-logits)[:3]
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    names = class_names("imagenet1k")
    assert [c["index"] for c in classes] == top.tolist()
    assert [c["label"] for c in classes] == [names[i] for i in top]
    np.testing.assert_allclose([c["score"] for c in classes], probabilities[top], rtol=1e-4)


def test_image_endpoint_png_mask_for_a_segmenter(server, artifacts):
    photo = _photo(90, 70, seed=3)
    status, headers, body = server.request("POST", "/v2/models/lvt_seg/image", _encode(photo, "PNG"))
    assert status == 200 and headers["content-type"] == "image/png", body
    mask = Image.open(io.BytesIO(body))
    assert mask.mode == "L" and mask.size == (90, 70)

    folder = artifacts["lvt_seg"]
    pixels = Preprocessing.from_manifest(read_manifest(folder))(photo)[None]
    labels = _reference(folder, {"input": pixels})["labels"][0]
    np.testing.assert_array_equal(np.asarray(mask), resize_nearest(labels, (70, 90)))

    status, _, body = server.request("POST", "/v2/models/lvt_seg/image?palette=true", _encode(photo, "PNG"))
    coloured = Image.open(io.BytesIO(body))
    assert status == 200 and coloured.mode == "P"
    np.testing.assert_array_equal(np.asarray(coloured), np.asarray(mask))


# --------------------------------------------------------------------------------------------
# Metrics


def test_metrics_prometheus_text(server):
    server.request("POST", "/v2/models/toy/infer", b"{not json")  # one counted failure
    text = server.metrics()
    for model in ("mobile_former_26m", "lvt_seg", "toy"):
        assert re.search(rf'^litevit_requests_total{{model="{model}"}} \d+$', text, re.M)
        assert f'litevit_queue_depth{{model="{model}"}} 0' in text
        count = re.search(rf'litevit_request_duration_seconds_count{{model="{model}"}} (\d+)', text)
        infinity = re.search(
            rf'litevit_request_duration_seconds_bucket{{model="{model}",le="\+Inf"}} (\d+)', text
        )
        assert count and infinity and count.group(1) == infinity.group(1)
    assert re.search(r'^litevit_request_failures_total\{model="toy",code="400"\} [1-9]\d*$', text, re.M)
    assert "litevit_inflight_requests 0" in text
    for kind in ("counter", "histogram", "gauge"):
        assert f" {kind}\n" in text
    # Every sample line is NAME{LABELS} VALUE or NAME VALUE (the text exposition format).
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert all(
        re.fullmatch(r'[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+', s) for s in samples
    )


# --------------------------------------------------------------------------------------------
# Bad requests


def _toy_request(**changes: Any) -> bytes:
    request: dict[str, Any] = {
        "inputs": [
            {"name": "x", "shape": [1, 8], "datatype": "FP32", "data": [0.5] * 8},
            {"name": "index", "shape": [1, 1], "datatype": "INT64", "data": [1]},
        ]
    }
    for index, tensor in changes.pop("inputs", {}).items():
        request["inputs"][index].update(tensor)
    request.update(changes)
    return json.dumps(request).encode()


BAD_REQUESTS = [
    ("malformed JSON", "POST", "/v2/models/toy/infer", b'{"inputs": [', 400, "not valid JSON"),
    ("no inputs", "POST", "/v2/models/toy/infer", b"{}", 400, "needs 'inputs'"),
    ("unknown model", "POST", "/v2/models/nope/infer", _toy_request(), 404, "unknown model 'nope'"),
    ("unknown model metadata", "GET", "/v2/models/nope", None, 404, "unknown model 'nope'"),
    ("unknown version", "POST", "/v2/models/toy/versions/7/infer", _toy_request(), 404, "no version '7'"),
    (
        "wrong name",
        "POST",
        "/v2/models/toy/infer",
        _toy_request(inputs={0: {"name": "X"}}),
        400,
        "no input 'X'",
    ),
    (
        "missing input",
        "POST",
        "/v2/models/toy/infer",
        json.dumps({"inputs": [json.loads(_toy_request())["inputs"][0]]}).encode(),
        400,
        "lacks them",
    ),
    (
        "wrong shape",
        "POST",
        "/v2/models/toy/infer",
        _toy_request(inputs={0: {"shape": [1, 9], "data": [0.5] * 9}}),
        400,
        "has shape [-1, 8] (-1: any); got [1, 9]",
    ),
    (
        "wrong dtype",
        "POST",
        "/v2/models/toy/infer",
        _toy_request(inputs={0: {"datatype": "FP64"}}),
        400,
        "is FP32; got datatype 'FP64'",
    ),
    (
        "data count",
        "POST",
        "/v2/models/toy/infer",
        _toy_request(inputs={0: {"data": [0.5] * 7}}),
        400,
        "holds 7 values",
    ),
    (
        "batch disagreement",
        "POST",
        "/v2/models/toy/infer",
        _toy_request(inputs={1: {"shape": [2, 1], "data": [1, 2]}}),
        400,
        "disagree on the batch size",
    ),
    (
        "unknown output",
        "POST",
        "/v2/models/toy/infer",
        _toy_request(outputs=[{"name": "z"}]),
        400,
        "no output 'z'",
    ),
    (
        "bad header length",
        "POST",
        "/v2/models/toy/infer",
        _toy_request(),
        400,
        "Inference-Header-Content-Length",
    ),
    (
        "body over the limit",
        "POST",
        "/v2/models/toy/infer",
        b" " * (MAX_REQUEST_BYTES + 1),
        413,
        f"limit of {MAX_REQUEST_BYTES} bytes",
    ),
    (
        "undecodable image",
        "POST",
        "/v2/models/mobile_former_26m/image",
        b"GIF89a not really",
        400,
        "not a decodable JPEG or PNG",
    ),
    (
        "text file as an image",
        "POST",
        "/v2/models/mobile_former_26m/image",
        b"name,score\ncat,0.9\n",
        400,
        "(its bytes are not any image format); send the bytes of a JPEG or PNG file",
    ),
    (
        "image for a non-image model",
        "POST",
        "/v2/models/toy/image",
        b"",
        400,
        "does not take one (N, 3, H, W) image",
    ),
    ("unknown route", "GET", "/v2/nothing/here", None, 404, "no route /v2/nothing/here"),
    ("wrong method", "GET", "/v2/models/toy/infer", None, 405, "GET is not allowed"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_requests_get_4xx_naming_the_problem(server, method, path, body, status, message):
    headers = (
        {"Inference-Header-Content-Length": "999999"} if message == "Inference-Header-Content-Length" else {}
    )
    got, response_headers, raw = server.request(method, path, body, headers)
    assert got == status, raw
    assert response_headers["content-type"] == "application/json"
    error = json.loads(raw)["error"]
    assert message in error and " at 0x" not in error  # no Python object reprs
    assert server.request("GET", "/v2/health/ready")[0] == 200


def test_inference_failure_is_500_for_that_request_only(server, artifacts):
    x = np.full((1, 8), 0.25, np.float32)
    good_index, bad_index = np.array([[2]], np.int64), np.array([[99]], np.int64)

    def send(index: np.ndarray) -> tuple[int, dict[str, Any]]:
        return server.infer_json("toy", {"x": x, "index": index})

    # Good and bad requests together: they meet in one batch, which fails; each is then rerun alone.
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(send, [good_index, bad_index] * 3))
    for (status, body), index in zip(results, [good_index, bad_index] * 3, strict=True):
        if index is bad_index:
            assert status == 500 and "inference failed on model 'toy'" in body["error"]
        else:
            assert status == 200 and body["outputs"][1]["data"] == [0.25]
    assert send(good_index)[0] == 200
    assert re.search(r'litevit_request_failures_total\{model="toy",code="500"\} 3\n', server.metrics())


# --------------------------------------------------------------------------------------------
# Graceful shutdown


def test_sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_0(tmp_path):
    # Slow on purpose: 64 MatMuls of 1024 x 1024 on 2048 rows take a second or two on one thread.
    folder = write_toy_artifact(tmp_path / "slow", width=1024, depth=64)
    rows = 2048
    x = np.random.default_rng(4).standard_normal((rows, 1024)).astype(np.float32) / 32
    index = np.zeros((rows, 1), np.int64)
    args = ("--instances", "2", "--threads", "1", "--max-request-bytes", str(16 << 20))
    with running_server(str(folder), *args) as server:
        slow: dict[str, Any] = {}

        def send_slow() -> None:
            slow["status"], slow["outputs"] = server.infer_binary("toy", {"x": x, "index": index})

        sender = threading.Thread(target=send_slow)
        sender.start()
        deadline = time.monotonic() + 20
        while "litevit_inflight_requests 1" not in server.metrics():
            assert time.monotonic() < deadline and sender.is_alive()
            time.sleep(0.01)
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while (refused := server.infer_json("toy", {"x": x[:1], "index": index[:1]}))[0] != 503:
            assert time.monotonic() < deadline, refused
            time.sleep(0.01)
        assert "shutting down" in refused[1]["error"]
        assert server.request("GET", "/v2/health/ready")[0] == 503
        assert sender.is_alive(), "the slow request ended before the signal: make it slower"
        sender.join(30)
        assert server.process.wait(30) == 0, "".join(server.lines)
    assert slow["status"] == 200, slow
    _close(slow["outputs"]["y"], _reference(folder, {"x": x, "index": index})["y"])
    assert "SIGTERM: finishing 1 request(s) in flight" in "".join(server.lines)


# --------------------------------------------------------------------------------------------
# Triton's repository index and statistics extensions


def test_repository_index_through_tritonclient(server):
    client = tritonhttp.InferenceServerClient(server.url)
    expected = [
        {"name": name, "version": "1", "state": "READY", "reason": ""}
        for name in ("lvt_seg", "mobile_former_26m", "toy")
    ]
    assert client.get_model_repository_index() == expected
    status, _, body = server.request("POST", "/v2/repository/index", b'{"ready": true}')
    assert status == 200 and json.loads(body) == expected
    status, _, body = server.request("POST", "/v2/repository/index", b'{"ready": "yes"}')
    assert status == 400 and '{"ready": true|false}' in json.loads(body)["error"]


def test_statistics_through_tritonclient(server):
    client = tritonhttp.InferenceServerClient(server.url)

    def toy_stats() -> dict[str, Any]:
        (stats,) = client.get_inference_statistics("toy")["model_stats"]
        return stats

    before = toy_stats()
    for rows in (1, 3):  # one after the other: two runs, of 1 and 3 rows
        x = np.full((rows, 8), 0.5, np.float32)
        assert server.infer_json("toy", {"x": x, "index": np.zeros((rows, 1), np.int64)})[0] == 200
    assert server.request("POST", "/v2/models/toy/infer", b"{not json")[0] == 400
    after = toy_stats()
    assert (after["name"], after["version"]) == ("toy", "1")
    assert after["inference_count"] - before["inference_count"] == 4
    assert after["execution_count"] - before["execution_count"] == 2
    assert after["last_inference"] >= before["last_inference"] > 0
    counts = {
        key: after["inference_stats"][key]["count"] - before["inference_stats"][key]["count"]
        for key in ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")
    }
    assert counts == {
        "success": 2,
        "fail": 1,
        "queue": 2,
        "compute_input": 2,
        "compute_infer": 2,
        "compute_output": 2,
    }
    assert after["inference_stats"]["compute_infer"]["ns"] > before["inference_stats"]["compute_infer"]["ns"]
    # Each request waited for the 50 ms queue-delay window before running alone.
    queue_ns = after["inference_stats"]["queue"]["ns"] - before["inference_stats"]["queue"]["ns"]
    assert queue_ns >= 2 * 40_000_000
    sizes = {entry["batch_size"]: entry for entry in after["batch_stats"]}
    assert {1, 3} <= set(sizes) and sizes[3]["compute_infer"]["count"] >= 1
    every = client.get_inference_statistics()["model_stats"]
    assert [stats["name"] for stats in every] == ["lvt_seg", "mobile_former_26m", "toy"]
    status, _, body = server.request("GET", "/v2/models/toy/versions/1/stats")
    assert status == 200 and json.loads(body)["model_stats"][0]["name"] == "toy"
    status, _, body = server.request("GET", "/v2/models/nope/stats")
    assert status == 404 and "unknown model 'nope'" in json.loads(body)["error"]


# --------------------------------------------------------------------------------------------
# --max-batch for a TensorRT engine


def test_max_batch_defaults_to_the_engines_profile(tmp_path, monkeypatch):
    from test_triton_repo import _profile, write_artifact, write_engine

    from litevit.errors import LitevitError
    from litevit.serve.models import DEFAULT_MAX_BATCH, model_max_batch

    artifact = write_artifact(tmp_path / "art")
    manifest = read_manifest(artifact)
    write_engine(artifact, "fp16", {"profiles": _profile(16)})
    assert model_max_batch(artifact, manifest, "trt", "fp16", None) == 16
    assert model_max_batch(artifact, manifest, "trt", "fp16", 4) == 4
    with pytest.raises(LitevitError, match=r"--max-batch 32 is more than the largest batch \(16\)"):
        model_max_batch(artifact, manifest, "trt", "fp16", 32)
    assert model_max_batch(artifact, manifest, "ort", "fp16", None) == DEFAULT_MAX_BATCH
    # Without a sidecar (an engine litevit did not build) the profile is unknown.
    write_engine(artifact, "fp32")
    assert model_max_batch(artifact, manifest, "trt", "fp32", None) == DEFAULT_MAX_BATCH


def test_a_served_tensorrt_engine_batches_up_to_its_profile(tmp_path, monkeypatch):
    # In-process with the FAKE TensorRT of tests/runtime (TensorRT cannot be installed here): the
    # model's batcher takes the engine profile's max batch when --max-batch is left out.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "runtime"))
    import fake_tensorrt
    from test_triton_repo import write_artifact

    import litevit._deps as deps
    from litevit.runtime import environment, runners
    from litevit.serve.models import load_models

    trt = fake_tensorrt.make_tensorrt("10.3.0.26")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    for module in (deps, runners):
        monkeypatch.setattr(module, "has", lambda name: name in {"tensorrt", "cuda.bindings"})
    monkeypatch.setattr(runners, "_open_cuda", lambda index: fake_tensorrt.FakeCuda(index))
    monkeypatch.setattr(environment, "gpu_facts", lambda: {})
    artifact = write_artifact(tmp_path / "art")
    graph = onnx.load(next(artifact.glob("*.onnx")))
    engine = artifact / f"{read_manifest(artifact)['model']}.fp16.engine"
    name = graph.graph.input[0].name
    shape = [d.dim_value or 1 for d in graph.graph.input[0].type.tensor_type.shape.dim]
    profile = {name: ([1, *shape[1:]], [2, *shape[1:]], [6, *shape[1:]])}
    engine.write_bytes(fake_tensorrt.engine_bytes(graph, "10.3.0.26", profile))
    sidecar = {
        "format": "litevit.engine/1",
        "tensorrt": "10.3.0.26",
        "profiles": [{name: {"min": profile[name][0], "opt": profile[name][1], "max": profile[name][2]}}],
    }
    (artifact / f"{engine.name}.json").write_text(json.dumps(sidecar))
    models, _ = load_models(
        [artifact],
        backend="trt",
        precision="fp16",
        threads=None,
        instances=1,
        max_batch=None,
        max_queue_delay_ms=1.0,
    )
    try:
        (model,) = models
        assert model.batcher.max_batch == 6 and model.axis.kind == "dynamic"
    finally:
        models[0].batcher.stop()
