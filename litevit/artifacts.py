"""The artefact folder contract, torch-free: what ``litevit-export`` writes and every later stage
(check, bench, report, serve) reads instead of re-deriving shapes, preprocessing or precision.

Every file a command reads from an artefact folder is read through :func:`verified_file` (or
:func:`graph_file`, which uses it): its size and SHA-256 must be what the manifest records."""

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


# (real path, device, inode, size, mtime in ns) -> SHA-256, for this process.
_HASHES: dict[tuple[str, int, int, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of ``path``, read once per process while the file is unchanged (same device, inode,
    size and modification time): several commands, runners and server instances open the same
    artefact, and a 100 MB graph takes a noticeable time to hash."""
    stat = path.stat()
    key = (os.path.realpath(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    digest = _HASHES.get(key)
    if digest is None:
        digest = _HASHES[key] = sha256_file(path)
    return digest


def verified_file(folder: Path, manifest: dict[str, Any], name: str) -> Path:
    """``folder / name`` after checking it against the manifest: listed, present, the recorded
    size (a truncated copy fails here without hashing) and the recorded SHA-256. Every command that
    reads a file of an artefact folder reads it through this check (or :func:`graph_file`)."""
    path = Path(folder) / name
    entry = manifest["files"].get(name)
    if entry is None:
        raise LitevitError(f"{str(path)!r} is not listed in the manifest of {str(folder)!r}; re-export it.")
    if not path.is_file():
        raise LitevitError(f"{str(path)!r} is listed in the manifest but missing.")
    size = path.stat().st_size
    if entry.get("bytes") is not None and size != entry["bytes"]:
        raise LitevitError(
            f"{str(path)!r} has {size} bytes but the manifest records {entry['bytes']}: it was truncated "
            f"or modified after export; re-export it."
        )
    if not entry.get("sha256") or file_sha256(path) != entry["sha256"]:
        raise LitevitError(
            f"{str(path)!r} does not match its SHA-256 in the manifest: it was modified or corrupted "
            f"after export; re-export it."
        )
    return path


def verify_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists, as :func:`verified_file` checks one."""
    for name in manifest["files"]:
        verified_file(folder, manifest, name)


def graph_file(folder: Path, manifest: dict[str, Any], precision: str, *, runtime: str | None = None) -> Path:
    """The artefact's ONNX graph of ``precision`` (fp32, fp16, int8), verified against the
    manifest (:func:`verified_file`). One sentence when it is absent, missing or modified.

    A graph made for one runtime carries ``runtime`` in its entry (``MODEL.int8.ort.onnx``:
    onnxruntime); it is returned for that ``runtime`` only, in preference to the general graph of
    the precision, which every other caller (TensorRT builds, reports) gets.
    """
    entries = [
        (name, entry)
        for name, entry in manifest["files"].items()
        if entry.get("precision") == precision and name.endswith(".onnx")
    ]
    specific = [name for name, entry in entries if runtime is not None and entry.get("runtime") == runtime]
    general = [name for name, entry in entries if "runtime" not in entry]
    if specific or general:
        return verified_file(folder, manifest, (specific + general)[0])
    available = sorted({str(entry.get("precision")) for entry in manifest["files"].values()})
    how = _HOW_TO_EXPORT.get(precision, "re-export")
    raise LitevitError(
        f"the artefact {str(folder)!r} has no {precision} ONNX graph ({how}); it has {', '.join(available)}."
    )
