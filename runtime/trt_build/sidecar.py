"""The engine sidecar ``ENGINE.json``: written by the build, checked before every load (another
TensorRT version or GPU is refused in one sentence)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from litevit._io import sha256_file
from litevit.errors import LitevitError


ENGINE_FORMAT = "litevit.engine/1"


def sidecar_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def read_engine_sidecar(engine: Path) -> dict[str, Any] | None:
    """The engine's sidecar, None when there is none, or one sentence when it is not litevit's."""
    path = sidecar_path(engine)
    if not path.is_file():
        return None
    try:
        sidecar = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LitevitError(f"the engine sidecar {str(path)!r} is not readable JSON: {exc}.") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != ENGINE_FORMAT:
        raise LitevitError(f"{str(path)!r} is not a litevit engine sidecar ({ENGINE_FORMAT}).")
    return sidecar


def engine_max_batch(sidecar: Mapping[str, Any] | None, inputs: Sequence[str]) -> int | None:
    """The largest batch every one of ``inputs`` takes in the engine's optimisation profile (axis
    0 of each profile's max shape), or None without a sidecar or a profile."""
    if sidecar is None or not sidecar.get("profiles"):
        return None
    profile = sidecar["profiles"][0]
    limits = [int(profile[name]["max"][0]) for name in inputs if name in profile and profile[name]["max"]]
    return min(limits) if limits else None


def describe_target(tensorrt: str | None, gpu: Mapping[str, Any]) -> str:
    """E.g. "TensorRT 10.3.0 on Orin (compute capability 8.7)"; unknown parts are said so."""
    name = gpu.get("name") or gpu.get("gpu_name") or "an unknown GPU"
    capability = gpu.get("compute_capability")
    return f"TensorRT {tensorrt or '(unknown)'} on {name}" + (
        f" (compute capability {capability})" if capability else ""
    )


def rebuild_command(engine: Path, sidecar: Mapping[str, Any]) -> str:
    source = sidecar.get("source") or {}
    target = source.get("artifact") or source.get("path") or str(engine.parent)
    command = f"litevit build {target} --precision {sidecar.get('precision', 'fp32')}"
    if sidecar.get("int8_mode") == "implicit":
        command += " --int8-mode implicit --calib DIR"
    return command


def engine_mismatch(
    engine: Path, sidecar: Mapping[str, Any], tensorrt: str | None, gpu: Mapping[str, Any]
) -> str | None:
    """One sentence when the engine was built for another TensorRT version or GPU (name or
    compute capability) than ``tensorrt`` and ``gpu`` here, or when the sidecar describes
    another file; None when everything that can be compared matches. Unknown facts (None on
    either side) are not compared."""
    built_gpu = sidecar.get("gpu") or {}
    here = {"name": gpu.get("gpu_name"), "compute_capability": gpu.get("compute_capability")}
    engine_sha = sidecar.get("engine_sha256")
    if engine_sha and engine.is_file() and sha256_file(engine) != engine_sha:
        return (
            f"{engine.name} is not the engine its sidecar {sidecar_path(engine).name} describes (SHA-256 "
            f"differs): rebuild it with `{rebuild_command(engine, sidecar)}` or delete the stale sidecar."
        )
    differs = [
        built is not None and current is not None and built != current
        for built, current in (
            (sidecar.get("tensorrt"), tensorrt),
            (built_gpu.get("name"), here["name"]),
            (built_gpu.get("compute_capability"), here["compute_capability"]),
        )
    ]
    if not any(differs):
        return None
    return (
        f"{engine.name} was built for {describe_target(sidecar.get('tensorrt'), built_gpu)}, but this "
        f"machine has {describe_target(tensorrt, here)}: rebuild it here with "
        f"`{rebuild_command(engine, sidecar)}`."
    )
