"""The served models: one artefact folder each, its batcher and runners, its KServe v2 metadata."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litevit._compat import strict_zip
from litevit.artifacts import read_manifest
from litevit.errors import LitevitError
from litevit.runtime.runners import TensorInfo, open_runner
from litevit.runtime.trt_build.sidecar import engine_max_batch, read_engine_sidecar
from litevit.serve.batching import BatchAxis, DynamicBatcher
from litevit.serve.metrics import Metrics


VERSION = "1"
# Rows per run for a dynamic batch axis when neither --max-batch nor an engine profile says.
DEFAULT_MAX_BATCH = 8


# numpy dtype names (the manifest's) -> KServe v2 tensor datatypes.
KSERVE_DATATYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}
# The binary tensor extension: length of the JSON part that precedes the raw tensor bytes.
BINARY_HEADER = "Inference-Header-Content-Length"
_PLATFORMS = {"ort": "onnxruntime_onnx", "trt": "tensorrt_plan", "torch": "litevit_torch_eager"}


class ApiError(Exception):
    """A request the server refuses: HTTP ``status`` and one sentence for ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------------------------
# Models


@dataclass
class ServedModel:
    """One artefact: its manifest, its batcher (and through it the runners), what it accepts."""

    name: str
    folder: Path
    manifest: dict[str, Any]
    backend: str
    batcher: DynamicBatcher

    @property
    def inputs(self) -> list[TensorInfo]:
        return self.batcher.runner_inputs

    @property
    def outputs(self) -> list[TensorInfo]:
        return self.batcher.runner_outputs

    @property
    def axis(self) -> BatchAxis:
        return self.batcher.axis

    def public_shape(self, info: TensorInfo) -> list[int]:
        """The shape a client sends or gets: -1 for a dynamic dim, and for axis 0 of a fixed batch
        B > 1, which takes 1..B rows (padded to B)."""
        shape = [-1 if isinstance(dim, str) else int(dim) for dim in info.shape]
        if self.axis.kind == "fixed" and (self.axis.size or 0) > 1:
            shape[0] = -1
        return shape

    def metadata(self) -> dict[str, Any]:
        def describe(info: TensorInfo) -> dict[str, Any]:
            return {
                "name": info.name,
                "datatype": kserve_datatype(info.dtype),
                "shape": self.public_shape(info),
            }

        return {
            "name": self.name,
            "versions": [VERSION],
            "platform": _PLATFORMS[self.backend],
            "inputs": [describe(info) for info in self.inputs],
            "outputs": [describe(info) for info in self.outputs],
        }


def kserve_datatype(numpy_dtype: str) -> str:
    return KSERVE_DATATYPES.get(numpy_dtype, numpy_dtype.upper())


def model_names(folders: Sequence[Path], manifests: Sequence[dict[str, Any]]) -> list[str]:
    """Each artefact's manifest model name; artefacts that share one are named by their folders."""
    models = [str(manifest["model"]) for manifest in manifests]
    names = [
        folder.name if models.count(model) > 1 else model for folder, model in strict_zip(folders, models)
    ]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise LitevitError(
            f"two artefacts would both be served as {clashes[0]!r}: put them in folders with different names."
        )
    return names


def model_max_batch(
    folder: Path, manifest: dict[str, Any], backend: str, precision: str, requested: int | None
) -> int:
    """Rows per run: ``requested`` (--max-batch), else for a TensorRT engine the largest batch of
    its optimisation profile (from its sidecar), else :data:`DEFAULT_MAX_BATCH`. A request above
    the engine's profile is one sentence: the engine could not run such a batch."""
    limit = None
    if backend == "trt":
        engine = folder / f"{manifest['model']}.{precision}.engine"
        sidecar = read_engine_sidecar(engine) if engine.is_file() else None
        limit = engine_max_batch(sidecar, [str(t["name"]) for t in manifest.get("inputs", [])])
    if requested is None:
        return limit if limit is not None else DEFAULT_MAX_BATCH
    if limit is not None and requested > limit:
        raise LitevitError(
            f"--max-batch {requested} is more than the largest batch ({limit}) of the optimisation profile "
            f"of the engine in {str(folder)!r}: leave --max-batch out (it defaults to {limit}) or rebuild "
            f"the engine with a larger --shapes range."
        )
    return requested


def unused_batching_options(
    models: Sequence[ServedModel], max_batch: int | None, max_queue_delay_ms: float | None
) -> list[str]:
    """One warning per model on which a batching option the user gave (not None) cannot take
    effect: ``--max-batch`` acts on a dynamic batch axis only; ``--max-queue-delay-ms`` on a
    dynamic axis or a fixed batch larger than 1 (which is packed within that delay)."""
    warnings = []
    for model in models:
        axis = model.axis
        if axis.kind == "dynamic":
            continue
        packs = axis.kind == "fixed" and (axis.size or 0) > 1
        ignored = []
        if max_batch is not None and max_batch != axis.max_rows(max_batch):
            ignored.append(f"--max-batch {max_batch}")
        if max_queue_delay_ms is not None and not packs:
            ignored.append(f"--max-queue-delay-ms {max_queue_delay_ms:g}")
        if not ignored:
            continue
        if packs:
            shape = f"takes a fixed batch of {axis.size} (requests are packed and zero-padded to it)"
        elif axis.kind == "fixed":
            shape = "takes a fixed batch of 1, so it runs one request at a time"
        else:
            shape = "has no batch axis shared by its inputs and outputs, so it runs one request at a time"
        warnings.append(
            f"warning: {' and '.join(ignored)} cannot take effect on {model.name}: its graph {shape}; "
            f"export it with --dynamic-batch to batch requests."
        )
    return warnings


def load_models(
    artifacts: Sequence[str | os.PathLike[str]],
    *,
    backend: str,
    precision: str,
    threads: int | None,
    instances: int,
    max_batch: int | None,
    max_queue_delay_ms: float,
) -> tuple[list[ServedModel], Metrics]:
    """Read every manifest first (a bad folder fails before any runner opens), then start each
    model's workers; on a failure the models already started are stopped. ``max_batch`` None:
    see :func:`model_max_batch`."""
    if not artifacts:
        raise LitevitError("litevit serve needs at least one artefact folder.")
    folders = [Path(artifact) for artifact in artifacts]
    manifests = [read_manifest(folder) for folder in folders]
    names = model_names(folders, manifests)
    limits = [
        model_max_batch(folder, manifest, backend, precision, max_batch)
        for folder, manifest in strict_zip(folders, manifests)
    ]
    metrics = Metrics(names)
    served: list[ServedModel] = []
    try:
        for name, folder, manifest, limit in strict_zip(names, folders, manifests, limits):

            def opener(folder: Path = folder) -> Any:
                return open_runner(folder, backend, precision=precision, threads=threads)

            batcher = DynamicBatcher(
                name,
                opener,
                instances=instances,
                max_batch=limit,
                max_queue_delay_s=max_queue_delay_ms / 1000.0,
                on_batch=functools.partial(metrics.batch, name),
            )
            batcher.start()
            served.append(ServedModel(name, folder, manifest, backend, batcher))
    except BaseException:
        for model in served:
            model.batcher.stop()
        raise
    return served, metrics
