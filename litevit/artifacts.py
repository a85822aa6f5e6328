"""The artefact folder contract, torch-free: what ``litevit-export`` writes and every later stage
(check, bench, report, serve) reads instead of re-deriving shapes, preprocessing or precision."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from litevit._io import sha256_file
from litevit.errors import LitevitError

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
# Tasks whose graphs are detectors: inputs ``input`` and ``image_shapes``, outputs per image
# (litevit.runtime.detection).
DETECTION_TASKS = ("detection", "panoptic")


def read_manifest(artifact_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The folder's ``manifest.json``, or one sentence saying why it is not a litevit artefact."""
    path = Path(artifact_dir) / MANIFEST
    if not path.is_file():
        raise LitevitError(f"{str(artifact_dir)!r} is not a litevit artefact folder: it has no {MANIFEST}.")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LitevitError(f"{str(path)!r} is not valid JSON: {exc}.") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("manifest_version") != MANIFEST_VERSION
        or "model" not in manifest
        or "files" not in manifest
    ):
        raise LitevitError(f"{str(path)!r} is not a litevit manifest (version {MANIFEST_VERSION}).")
    return manifest


_HOW_TO_EXPORT = {"fp16": "export with --fp16", "int8": "export with --int8 --calib DIR"}


def has_graph(manifest: dict[str, Any], precision: str) -> bool:
    return any(e.get("precision") == precision and n.endswith(".onnx") for n, e in manifest["files"].items())


def graph_file(folder: Path, manifest: dict[str, Any], precision: str, *, verify: bool = False) -> Path:
    """The artefact's ONNX graph of ``precision`` (fp32, fp16, int8); ``verify`` also checks its
    SHA-256 against the manifest. One sentence when it is absent, missing or modified."""
    for name, entry in manifest["files"].items():
        if entry.get("precision") == precision and name.endswith(".onnx"):
            path = folder / name
            if not path.is_file():
                raise LitevitError(f"{str(path)!r} is listed in the manifest but missing.")
            if verify and entry.get("sha256") and sha256_file(path) != entry["sha256"]:
                raise LitevitError(
                    f"{str(path)!r} does not match its SHA-256 in the manifest: it was modified or corrupted."
                )
            return path
    available = sorted({str(entry.get("precision")) for entry in manifest["files"].values()})
    how = _HOW_TO_EXPORT.get(precision, "re-export")
    raise LitevitError(
        f"the artefact {str(folder)!r} has no {precision} ONNX graph ({how}); it has {', '.join(available)}."
    )
