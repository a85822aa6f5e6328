"""The artefact folder contract, torch-free: what ``litevit-export`` writes and every later stage
(check, bench, report, serve) reads instead of re-deriving shapes, preprocessing or precision."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from litevit.errors import LitevitError

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


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
