"""Exporting into a folder that already holds an export: what is kept, what is removed.

The rule, so that a folder's files and its manifest always agree:

* **Kept** from the previous export, with their manifest entries and parity records: its FP16
  graph and its INT8 graph (with the calibration cache, the accuracy report and the manifest's
  calibration section) when this export did not write that precision again **and** its FP32 graph
  has the same SHA-256 as the one just written. Both are derived from the FP32 graph alone (plus,
  for INT8, the images recorded in the cache), so they are still exactly what they were.
* **Removed**: every other file the previous manifest listed (or litevit names after the model:
  ``MODEL.fp16.onnx``, ``MODEL.int8.onnx``, ``MODEL.int8.calib.json``, ``MODEL.int8.report.json``)
  that the new manifest does not list, and every TensorRT engine ``MODEL.PRECISION.engine`` whose
  sidecar says it was built from a graph the new manifest does not hold (engine and sidecar both).
  An engine without a sidecar is left alone: nothing says where it came from.

Files the export does not know (your own notes, images) are never touched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litevit._io import sha256_file
from litevit.artifacts import read_manifest, verified_file
from litevit.errors import LitevitError

_DERIVED = ("fp16", "int8")


def previous_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest already in ``folder``, or None (none there, or not a readable litevit one)."""
    try:
        return read_manifest(folder)
    except LitevitError:
        return None


def _fp32_sha(manifest: dict[str, Any]) -> str | None:
    for name, entry in manifest["files"].items():
        if entry.get("precision") == "fp32" and name.endswith(".onnx"):
            return str(entry.get("sha256"))
    return None


def _graph_name(manifest: dict[str, Any], precision: str) -> str | None:
    for name, entry in manifest["files"].items():
        if entry.get("precision") == precision and name.endswith(".onnx"):
            return name
    return None


def carry_over(folder: Path, previous: dict[str, Any] | None, manifest: dict[str, Any]) -> list[str]:
    """Add to ``manifest`` the previous export's FP16/INT8 files that are still valid (module
    docstring); returns their names. A file that no longer matches its old entry is not kept."""
    if previous is None or previous.get("model") != manifest["model"]:
        return []
    if _fp32_sha(previous) is None or _fp32_sha(previous) != _fp32_sha(manifest):
        return []
    kept: list[str] = []
    for precision in _DERIVED:
        name = _graph_name(previous, precision)
        if name is None or _graph_name(manifest, precision) is not None:
            continue
        names = [name]
        calibration = previous.get("calibration") if precision == "int8" else None
        if calibration:
            names += [calibration[key] for key in ("cache", "report") if calibration.get(key)]
        entries = {}
        try:
            for listed in names:
                if listed in previous["files"]:
                    verified_file(folder, previous, listed)
                    entries[listed] = previous["files"][listed]
                elif (folder / listed).is_file():
                    # An export made before litevit listed the cache and the report: list them now.
                    entries[listed] = _entry(folder / listed, precision)
                else:
                    raise LitevitError(f"{listed} is missing")
        except LitevitError:
            continue  # changed or missing since: not kept, and removed as stale
        manifest["files"].update(entries)
        if name in previous.get("parity", {}):
            manifest.setdefault("parity", {})[name] = previous["parity"][name]
        if calibration:
            manifest["calibration"] = calibration
        kept += list(entries)
    return kept


def _entry(path: Path, precision: str) -> dict[str, Any]:
    return {"precision": precision, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def remove_stale(folder: Path, previous: dict[str, Any] | None, manifest: dict[str, Any]) -> list[str]:
    """Delete what the previous export left that ``manifest`` (already written) does not cover
    (module docstring); returns the names removed."""
    models = {manifest["model"]} | ({previous["model"]} if previous else set())
    candidates = set(previous["files"]) if previous else set()
    calibration = (previous or {}).get("calibration") or {}
    candidates |= {calibration[key] for key in ("cache", "report") if calibration.get(key)}
    for model in models:
        candidates |= {
            f"{model}.fp16.onnx",
            f"{model}.int8.onnx",
            f"{model}.int8.calib.json",
            f"{model}.int8.report.json",
        }
    removed = []
    for name in sorted(candidates - set(manifest["files"])):
        if _unlink(folder / name):
            removed.append(name)
    hashes = {entry.get("sha256") for entry in manifest["files"].values()}
    for model in sorted(models):
        for precision in ("fp32", "fp16", "int8"):
            engine = folder / f"{model}.{precision}.engine"
            sidecar = engine.with_name(engine.name + ".json")
            source = _engine_source_sha(sidecar)
            if source is None or source in hashes:
                continue
            removed += [path.name for path in (engine, sidecar) if _unlink(path)]
    return removed


def _engine_source_sha(sidecar: Path) -> str | None:
    """The SHA-256 of the graph an engine was built from, per its sidecar (None when unknown)."""
    try:
        doc = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    source = doc.get("source") if isinstance(doc, dict) else None
    return str(source["sha256"]) if isinstance(source, dict) and source.get("sha256") else None


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise LitevitError(f"cannot remove the stale file {str(path)!r}: {exc.strerror}.") from None
    return True
