"""``litevit serve`` runs on the deployment side: a hand-built artefact (onnx.helper, no torch) is
served with torch blocked, answers one inference and stops with 0 on SIGTERM.

In CI's second venv (``litevit[ort,serve,test]``) torch is really absent; here it is blocked.
"""

import hashlib
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

BLOCK_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['onnxscript'] = None\n"
SERVE = (
    "import argparse\n"
    "from litevit.serve import configure_serve_parser, run_serve\n"
    "parser = argparse.ArgumentParser()\n"
    "configure_serve_parser(parser)\n"
    "code = run_serve(parser.parse_args(sys.argv[1:]))\n"
    "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    "sys.exit(code)\n"
)


def write_tiny_artifact(folder: Path) -> Path:
    """``y = 2 x + 1`` on (batch, 4) float32, with the manifest fields the server reads."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "two"], ["doubled"]),
            helper.make_node("Add", ["doubled", "one"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
            helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder.mkdir()
    data = model.SerializeToString()
    (folder / "tiny.onnx").write_bytes(data)
    manifest = {
        "manifest_version": 1,
        "model": "tiny",
        "task": "regression",
        "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 4]}],
        "dynamic_axes": {"x": {"0": "batch"}},
        "batch": 1,
        "files": {"tiny.onnx": {"precision": "fp32", "sha256": hashlib.sha256(data).hexdigest()}},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_serve_a_hand_built_artifact_without_torch(tmp_path):
    folder = write_tiny_artifact(tmp_path / "tiny")
    # Outside the checkout: `python -c` puts the working directory first on sys.path, where the
    # source tree would shadow the installed package.
    with tempfile.TemporaryDirectory() as cwd:
        process = subprocess.Popen(
            [sys.executable, "-c", BLOCK_TORCH + SERVE, str(folder), "--port", "0"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert process.stdout is not None
            lines = []
            for line in process.stdout:
                lines.append(line)
                if "listening on" in line:
                    break
            found = re.search(r"http://127\.0\.0\.1:(\d+)", "".join(lines))
            assert found, "".join(lines) + process.stdout.read()
            base = f"http://127.0.0.1:{found.group(1)}"
            deadline = time.monotonic() + 30
            while _get(f"{base}/v2/health/ready") != 200:
                assert time.monotonic() < deadline
                time.sleep(0.05)

            x = np.arange(8, dtype=np.float32).reshape(2, 4)
            request = {
                "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": x.ravel().tolist()}]
            }
            with urllib.request.urlopen(
                urllib.request.Request(f"{base}/v2/models/tiny/infer", data=json.dumps(request).encode()),
                timeout=10,
            ) as response:
                body = json.loads(response.read())
            assert body["outputs"] == [
                {"name": "y", "datatype": "FP32", "shape": [2, 4], "data": (2 * x + 1).ravel().tolist()}
            ]
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, "".join(lines) + output
