"""The host-side logic of benchmarks/load_test.py, the load generator for ``litevit serve``.

What runs here: the request bodies (JSON and binary tensors, checked against what the official
Triton client builds and parses where it is installed), the answer check, the percentile,
throughput and memory arithmetic, and the client loop and ``main`` against a stub KServe v2 server
in this process (``http.server``). What the script measures against the real server (its figures,
the batching gain) is not proven here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "load_test.py"
_spec = importlib.util.spec_from_file_location("load_test", SCRIPT)
assert _spec is not None and _spec.loader is not None
load_test = importlib.util.module_from_spec(_spec)
sys.modules["load_test"] = load_test  # dataclasses look their module up there
_spec.loader.exec_module(load_test)

INPUTS = [{"name": "input", "dtype": "float32", "shape": ["batch", 3, "height", "width"]}]
OUTPUTS = [{"name": "logits", "dtype": "float32", "shape": ["batch", 10]}]


def _request(protocol: str, batch: int = 2, seed: int = 0):
    return load_test.build_infer_request(
        "tiny net", INPUTS, OUTPUTS, batch=batch, img_size=(4, 6), protocol=protocol, seed=seed
    )


# ---------------------------------------------------------------------------------------------
# Requests and answers


def test_input_shape_fills_symbolic_dims():
    assert load_test.input_shape(INPUTS[0], 3, (4, 6)) == [3, 3, 4, 6]
    fixed = {"name": "input", "shape": [2, 3, 4, 6]}
    assert load_test.input_shape(fixed, 8, (4, 6)) == [2, 3, 4, 6]  # a fixed batch stays
    with pytest.raises(ValueError, match=r"dynamic dim 1 \(channels\)"):
        load_test.input_shape({"name": "x", "shape": ["batch", "channels"]}, 1, None)


def test_json_request_is_a_kserve_v2_tensor_document():
    request = _request("json")
    assert request.path == "/v2/models/tiny%20net/infer"
    assert request.headers == {"Content-Type": "application/json"}
    assert request.images == 2 and request.outputs == ("logits",)
    document = json.loads(request.body)
    (tensor,) = document["inputs"]
    assert tensor["name"] == "input" and tensor["datatype"] == "FP32" and tensor["shape"] == [2, 3, 4, 6]
    data = np.asarray(tensor["data"], dtype=np.float32)
    assert data.size == 2 * 3 * 4 * 6 and 0.0 <= data.min() and data.max() < 1.0
    assert document["outputs"] == [{"name": "logits"}]


def test_binary_request_carries_the_same_tensor_after_its_json_header():
    as_json, as_binary = _request("json"), _request("binary")
    length = int(as_binary.headers[load_test.BINARY_HEADER])
    header = json.loads(as_binary.body[:length])
    (tensor,) = header["inputs"]
    raw = as_binary.body[length:]
    assert tensor["parameters"] == {"binary_data_size": len(raw)} and tensor["shape"] == [2, 3, 4, 6]
    assert header["outputs"] == [{"name": "logits", "parameters": {"binary_data": True}}]
    expected = np.asarray(json.loads(as_json.body)["inputs"][0]["data"], dtype=np.float32)
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<f4"), expected)
    # Clients differ: each gets its own synthetic data.
    assert _request("binary", seed=1).body[length:] != raw


def test_requests_match_what_the_triton_client_builds():
    httpclient = pytest.importorskip("tritonclient.http")
    ours = _request("binary")
    length = int(ours.headers[load_test.BINARY_HEADER])
    array = np.frombuffer(ours.body[length:], dtype="<f4").reshape(2, 3, 4, 6)
    tensor = httpclient.InferInput("input", [2, 3, 4, 6], "FP32")
    tensor.set_data_from_numpy(array, binary_data=True)
    output = httpclient.InferRequestedOutput("logits", binary_data=True)
    body, json_size = httpclient.InferenceServerClient.generate_request_body([tensor], [output])
    assert json_size == length and json.loads(body[:json_size]) == json.loads(ours.body[:length])
    assert body[json_size:] == ours.body[length:]


def test_an_answer_counts_only_with_every_requested_output():
    httpclient = pytest.importorskip("tritonclient.http")
    answer = {"model_name": "tiny", "outputs": [{"name": "logits", "datatype": "FP32", "shape": [1, 10]}]}
    plain = json.dumps({**answer, "outputs": [{**answer["outputs"][0], "data": [0.0] * 10}]}).encode()
    assert load_test.response_has_outputs(plain, {}, ["logits"])
    # A binary answer: the JSON part, its length in the header, then the tensor bytes (which the
    # Triton client reads back the same way).
    binary_part = np.arange(10, dtype="<f4").tobytes()
    header = json.dumps(
        {**answer, "outputs": [{**answer["outputs"][0], "parameters": {"binary_data_size": 40}}]}
    ).encode()
    headers = {"inference-header-content-length": str(len(header))}
    assert load_test.response_has_outputs(header + binary_part, headers, ["logits"])
    parsed = httpclient.InferenceServerClient.parse_response_body(
        header + binary_part, header_length=len(header)
    )
    np.testing.assert_array_equal(parsed.as_numpy("logits"), np.arange(10, dtype=np.float32).reshape(1, 10))
    assert not load_test.response_has_outputs(plain, {}, ["logits", "probabilities"])
    assert not load_test.response_has_outputs(b"<html>busy</html>", {}, ["logits"])
    assert not load_test.response_has_outputs(b"[1, 2]", {}, ["logits"])


# ---------------------------------------------------------------------------------------------
# Arithmetic


def test_summary_percentiles_throughput_and_memory():
    logs = [
        load_test.ClientLog(latencies_ms=[float(ms) for ms in range(1, 51)]),
        load_test.ClientLog(latencies_ms=[float(ms) for ms in range(51, 101)], failures=["HTTP 500: boom"]),
    ]
    summary = load_test.summarize(logs, elapsed_s=4.0, images_per_request=2, rss_kib=[102400, 153600, 112640])
    assert summary["requests"] == 101 and summary["failures"] == 1
    assert summary["failure_examples"] == ["HTTP 500: boom"]
    assert summary["requests_per_s"] == pytest.approx(25.0)  # 100 answered in 4 s; failures do not count
    assert summary["images_per_s"] == pytest.approx(50.0)
    samples = np.arange(1, 101, dtype=np.float64)
    for p in (50, 90, 99):
        assert summary["latency_ms"][f"p{p}"] == pytest.approx(np.percentile(samples, p))
    assert summary["latency_ms"]["p50"] == pytest.approx(50.5) and summary["latency_ms"]["max"] == 100.0
    assert summary["rss_mib"] == {"start": 100.0, "max": 150.0, "end": 110.0}


def test_summary_of_a_run_without_answers_or_memory_samples():
    summary = load_test.summarize([load_test.ClientLog(failures=["x"])], 1.0, 1, [])
    assert summary["latency_ms"] is None and summary["rss_mib"] is None and summary["images_per_s"] == 0
    with pytest.raises(ValueError, match="positive"):
        load_test.summarize([], 0.0, 1, [])


def test_batching_gain():
    assert load_test.batching_gain({"images_per_s": 40.0}, {"images_per_s": 100.0}) == pytest.approx(2.5)
    assert load_test.batching_gain({"images_per_s": 0.0}, {"images_per_s": 100.0}) is None


def test_rss_of_this_process_and_of_a_missing_one():
    assert load_test.read_rss_kib(os.getpid()) > 1000
    assert load_test.read_rss_kib(2**22 + 12345) is None  # above Linux's pid_max
    sampler = load_test.RssSampler(os.getpid(), interval_s=0.01)
    sampler.start()
    threading.Event().wait(0.05)
    assert len(sampler.stop()) >= 2


def test_serve_command_passes_the_batching_settings():
    command = load_test.serve_command("/a/b", 8123, "ort", 8, 2.5, ["--instances", "2"])
    assert command[3:] == [
        "serve",
        "/a/b",
        "--backend",
        "ort",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--max-batch",
        "8",
        "--max-queue-delay-ms",
        "2.5",
        "--instances",
        "2",
    ]


# ---------------------------------------------------------------------------------------------
# The client loop and main, against a stub server


class _StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the load test's clients use it
    status = 200

    def do_GET(self) -> None:
        self._answer(200, b"")

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        json_length = self.headers.get(load_test.BINARY_HEADER)
        request = json.loads(body[: int(json_length)] if json_length else body)
        assert self.path == "/v2/models/tiny/infer" and request["inputs"][0]["shape"] == [1, 3, 4, 6]
        outputs = [
            {"name": o["name"], "datatype": "FP32", "shape": [1, 10], "data": [0.0] * 10}
            for o in request["outputs"]
        ]
        answer = {"model_name": "tiny", "outputs": outputs} if self.status == 200 else {"error": "no"}
        self._answer(self.status, json.dumps(answer).encode())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # the stub answers silently
        pass


@pytest.fixture
def stub_server() -> Iterator[tuple[ThreadingHTTPServer, type[_StubHandler]]]:
    handler = type("Handler", (_StubHandler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def _manifest(tmp_path: Path) -> Path:
    manifest = {
        "manifest_version": 1,
        "model": "tiny",
        "files": {},
        "inputs": INPUTS,
        "outputs": OUTPUTS,
        "img_size": [4, 6],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


@pytest.mark.parametrize("protocol", ["json", "binary"])
def test_main_against_a_stub_server(stub_server, tmp_path, protocol, capsys):
    server, _ = stub_server
    out = tmp_path / "run.json"
    argv = ["--url", f"http://127.0.0.1:{server.server_port}", "--manifest", str(_manifest(tmp_path))]
    argv += ["--clients", "3", "--seconds", "0.3", "--warmup-seconds", "0.1", "--protocol", protocol]
    argv += ["--server-pid", str(os.getpid()), "--json", str(out)]
    assert load_test.main(argv) == 0
    (run,) = json.loads(out.read_text())["runs"].values()
    assert run["requests"] > 3 and run["failures"] == 0 and run["batch"] == 1
    assert run["latency_ms"]["p50"] > 0 and run["rss_mib"]["max"] > 0
    assert "0 failed" in capsys.readouterr().out


def test_main_exits_1_when_requests_fail(stub_server, tmp_path, capsys):
    server, handler = stub_server
    handler.status = 500
    argv = ["--url", f"http://127.0.0.1:{server.server_port}", "--manifest", str(_manifest(tmp_path))]
    assert load_test.main([*argv, "--clients", "2", "--seconds", "0.2", "--warmup-seconds", "0"]) == 1
    assert 'failure: HTTP 500: {"error": "no"}' in capsys.readouterr().out


STUB_SERVER = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.answer(b"")

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        json_length = self.headers.get("Inference-Header-Content-Length")
        request = json.loads(body[: int(json_length)] if json_length else body)
        outputs = [{"name": o["name"], "datatype": "FP32", "shape": [1, 10]} for o in request["outputs"]]
        self.answer(json.dumps({"outputs": outputs}).encode())

    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def test_compare_batching_starts_and_stops_a_server_per_setting(tmp_path, monkeypatch, capsys):
    started = []

    def stub_command(artifact, port, backend, max_batch, max_queue_delay_ms, extra):
        started.append((artifact, backend, max_batch, max_queue_delay_ms, extra))
        return [sys.executable, "-c", STUB_SERVER, str(port)]

    monkeypatch.setattr(load_test, "serve_command", stub_command)
    artifact = _manifest(tmp_path)
    out = tmp_path / "compare.json"
    argv = ["--artifact", str(artifact), "--compare-batching", "--clients", "2", "--seconds", "0.3"]
    argv += ["--warmup-seconds", "0", "--serve-args", "--instances 2", "--server-log", str(tmp_path / "log")]
    assert load_test.main([*argv, "--json", str(out)]) == 0
    assert started == [
        (str(artifact), "ort", 1, 2.0, ["--instances", "2"]),
        (str(artifact), "ort", 8, 2.0, ["--instances", "2"]),
    ]
    document = json.loads(out.read_text())
    assert list(document["runs"]) == ["max-batch 1", "max-batch 8"]
    assert all(run["rss_mib"]["max"] > 0 for run in document["runs"].values())  # the started server's memory
    assert document["batching_gain"] > 0
    assert "dynamic-batching gain (images/s with max-batch 8 over 1)" in capsys.readouterr().out
