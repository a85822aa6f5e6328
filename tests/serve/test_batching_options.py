"""Batching options that cannot take effect on a fixed-batch graph (the default export) are warned
about in one sentence saying what to do, by `litevit serve` and `litevit triton-repo`; a text file
posted to the image endpoint gets a clean sentence. Torch-free artefacts written by hand."""

from __future__ import annotations

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

import pytest
from onnx import TensorProto, helper, save

from litevit.cli import main
from litevit.serve.images import decode_image
from litevit.serve.models import ApiError

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


def write_artifact(folder: Path, model: str, batch: int | str) -> Path:
    """``y = relu(x)`` on (batch, 4): a fixed batch when ``batch`` is an int, else dynamic."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        model,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])],
    )
    folder.mkdir(parents=True)
    path = folder / f"{model}.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    manifest = {
        "manifest_version": 1,
        "model": model,
        "task": "regression",
        "inputs": [{"name": "x", "dtype": "float32", "shape": [batch, 4]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": [batch, 4]}],
        "dynamic_axes": {"x": {"0": batch} if isinstance(batch, str) else {}},
        "batch": batch if isinstance(batch, int) else 1,
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


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _startup_lines(*argv: str) -> list[str]:
    """What `litevit serve ARGV --port 0` prints up to "listening on"; then SIGTERM, exit 0."""
    with tempfile.TemporaryDirectory() as cwd:  # outside the checkout (see tests/deploy)
        process = subprocess.Popen(
            [sys.executable, "-m", "litevit.cli", "serve", *argv, "--port", "0"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                if "listening on" in line:
                    break
            port = re.search(r"http://127\.0\.0\.1:(\d+)", lines[-1])
            assert port, "\n".join(lines)
            deadline = time.monotonic() + 30  # SIGTERM drains once the server runs
            while _status(f"http://127.0.0.1:{port.group(1)}/v2/health/ready") != 200:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            process.send_signal(signal.SIGTERM)
            rest, _ = process.communicate(timeout=30)
        assert process.returncode == 0, "\n".join(lines) + rest
    return lines


def test_serve_warns_when_max_batch_cannot_batch_a_fixed_batch_graph(tmp_path):
    fixed = write_artifact(tmp_path / "fixed", "fixed", 1)
    dynamic = write_artifact(tmp_path / "dynamic", "dynamic", "batch")
    lines = _startup_lines(str(fixed), str(dynamic), "--max-batch", "8")
    warnings = [line for line in lines if line.startswith("warning:")]
    assert warnings == [
        "warning: --max-batch 8 cannot take effect on fixed: its graph takes a fixed batch of 1, so it runs "
        "one request at a time; export it with --dynamic-batch to batch requests."
    ]
    assert any(re.search(r"model dynamic .* batches of up to 8 rows", line) for line in lines)
    # Not given: nothing to warn about (the default export is served one request at a time).
    assert not [line for line in _startup_lines(str(fixed)) if line.startswith("warning:")]


def test_triton_repo_warns_about_batching_options_on_a_fixed_batch_graph(tmp_path, capsys):
    fixed = write_artifact(tmp_path / "fixed", "fixed", 1)
    dynamic = write_artifact(tmp_path / "dynamic", "dynamic", "batch")
    repo = tmp_path / "repo"
    argv = ["triton-repo", str(fixed), str(dynamic), "--backend", "onnx", "--out", str(repo)]
    assert main([*argv, "--max-batch", "8", "--preferred-batch-sizes", "4"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "warning: --max-batch and --preferred-batch-sizes cannot take effect on fixed: its graph takes a "
        "fixed batch, so Triton runs it unbatched (max_batch_size 0); export it with --dynamic-batch to "
        "batch requests."
    ]
    assert "max_batch_size: 0" in (repo / "fixed" / "config.pbtxt").read_text()
    assert "max_batch_size: 8" in (repo / "dynamic" / "config.pbtxt").read_text()
    assert main(argv) == 0
    assert capsys.readouterr().err == ""


def test_a_text_file_posted_as_an_image_gets_one_clean_sentence():
    with pytest.raises(ApiError) as refused:
        decode_image(b"name,score\ncat,0.9\n")
    assert refused.value.status == 400
    assert refused.value.message == (
        "the body is not a decodable JPEG or PNG image (its bytes are not any image format); send the bytes "
        "of a JPEG or PNG file."
    )
    assert "0x" not in refused.value.message and "BytesIO" not in refused.value.message
