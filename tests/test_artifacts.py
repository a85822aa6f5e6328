"""Every command that reads an artefact folder verifies what it reads against the manifest (size
and SHA-256) in one place, ``litevit.artifacts``, hashing each file once per process; a truncated
or modified graph is refused in one sentence (exit 2) and nothing is written. Torch-free artefacts
written by hand."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from litevit import artifacts
from litevit.artifacts import graph_file, read_manifest, verified_file
from litevit.cli import main
from litevit.errors import LitevitError


def write_artifact(folder: Path) -> Path:
    """A classifier artefact: logits = input averaged over H, W (N, 3) with a fixed batch of 1."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input"], ["logits"], axes=[2, 3], keepdims=0)],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder.mkdir(parents=True)
    path = folder / "tiny.onnx"
    onnx.save(model, path)
    manifest = {
        "manifest_version": 1,
        "model": "tiny",
        "task": "classification",
        "inputs": [{"name": "input", "dtype": "float32", "shape": [1, 3, 8, 8]}],
        "outputs": [{"name": "logits", "dtype": "float32", "shape": [1, 3]}],
        "dynamic_axes": {"input": {}},
        "img_size": [8, 8],
        "batch": 1,
        "data_config": {
            "input_size": [3, 8, 8],
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "pixel_scale": 1.0,
            "num_classes": 3,
            "label_set": None,
            "size_divisor": 1,
        },
        "ops_mode": "function",
        "custom_ops": {},
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


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, said", [(truncate, "bytes but the manifest records"), (flip_a_byte, "SHA-256")]
)
def test_triton_repo_refuses_a_damaged_graph_and_writes_nothing(tmp_path, capsys, damage, said):
    artifact = write_artifact(tmp_path / "art")
    damage(artifact / "tiny.onnx")
    repo = tmp_path / "repo"
    code = main(["triton-repo", str(artifact), "--backend", "onnx", "--out", str(repo)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and said in err and "tiny.onnx" in err, err
    assert not repo.exists()


def _labelled_images(root: Path) -> Path:
    for label in ("0", "1"):
        (root / label).mkdir(parents=True)
        Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(root / label / "a.png")
    return root


@pytest.mark.parametrize(
    "command",
    [
        ["check", "{art}"],
        ["serve", "{art}", "--port", "0"],
        ["bench", "{art}", "--iters", "100", "--json", "{tmp}/run.json"],
        ["val", "{art}", "--data", "{images}"],
        ["quant-report", "{art}", "--data", "{images}"],
    ],
    ids=lambda command: command[0],
)
def test_every_command_reading_an_artefact_refuses_a_truncated_graph(tmp_path, capsys, command):
    artifact = write_artifact(tmp_path / "art")
    truncate(artifact / "tiny.onnx")
    images = _labelled_images(tmp_path / "images")
    argv = [a.format(art=artifact, tmp=tmp_path, images=images) for a in command]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.count("\n") == 0 and "bytes but the manifest records" in err, err
    assert not (tmp_path / "run.json").exists()


def test_each_file_is_hashed_once_per_process_until_it_changes(tmp_path, monkeypatch):
    artifact = write_artifact(tmp_path / "art")
    manifest = read_manifest(artifact)
    hashed: list[str] = []
    real = artifacts.sha256_file

    def counting(path):
        hashed.append(str(path))
        return real(path)

    monkeypatch.setattr(artifacts, "sha256_file", counting)
    for _ in range(3):
        graph_file(artifact, manifest, "fp32")
    assert len(hashed) == 1
    # Same size, other content, newer mtime: hashed again, and refused.
    flip_a_byte(artifact / "tiny.onnx")
    stat = (artifact / "tiny.onnx").stat()
    os.utime(artifact / "tiny.onnx", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(LitevitError, match="does not match its SHA-256 in the manifest"):
        graph_file(artifact, manifest, "fp32")
    assert len(hashed) == 2


def test_unlisted_and_missing_files_are_one_sentence(tmp_path):
    artifact = write_artifact(tmp_path / "art")
    manifest = read_manifest(artifact)
    with pytest.raises(LitevitError, match="is not listed in the manifest"):
        verified_file(artifact, manifest, "other.onnx")
    (artifact / "tiny.onnx").unlink()
    with pytest.raises(LitevitError, match="listed in the manifest but missing"):
        graph_file(artifact, manifest, "fp32")
