"""``litevit serve``: artefact folders behind the KServe v2 / Triton HTTP inference protocol.

Endpoints (``{name}`` is the model's name, ``/versions/1`` may follow it; the one version is "1"):

    GET  /v2/health/live, /v2/health/ready       200, or 503 for ready while shutting down
    GET  /v2                                     server metadata
    GET  /v2/models/{name}, .../ready            model metadata (datatypes, shapes, -1 = any)
    POST /v2/models/{name}/infer                 JSON tensors, or the binary tensor extension
    POST /v2/models/{name}/image                 a JPEG/PNG body -> top-k classes (classifiers,
                                                 ``?top_k=5``) or a PNG label mask at the image's
                                                 size, pixel = 0-based class index (segmenters;
                                                 ``?palette=true`` adds the ADE20K colours)
    GET  /metrics                                Prometheus text: requests, failures, latency,
                                                 batch sizes, queue depth, per model

A model is named after its manifest's model, or after its folder when two served artefacts hold
the same model. Errors are ``{"error": "one sentence"}`` with 400 (bad request), 404 (unknown model or route),
413 (body over ``--max-request-bytes``), 503 (shutting down) or 500 (the inference itself failed;
other requests carry on). Requests are batched per model (``runtime.batching``). SIGTERM/SIGINT
drain the server: new requests get 503, requests in flight finish, then it exits with 0; a second
signal stops it at once.

The serving stack (Starlette on uvicorn) is the ``serve`` extra; like the rest of the runtime this
module never imports torch.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np

import litevit
from litevit._deps import has
from litevit.artifacts import read_manifest
from litevit.calibration.images import Preprocessing
from litevit.errors import LitevitError, MissingDependencyError
from litevit.labels import LABEL_SETS, ade20k_palette, class_names
from litevit.runtime.batching import BatchAxis, DynamicBatcher, InferenceFailed
from litevit.runtime.bench import resize_bilinear, resize_nearest
from litevit.runtime.runners import BACKENDS, PRECISIONS, TensorInfo, open_runner

if TYPE_CHECKING:
    from PIL import Image
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

VERSION = "1"
DEFAULT_PORT = 8000  # Triton's HTTP port: clients configured for Triton find the server there
DEFAULT_MAX_BATCH = 8
DEFAULT_MAX_QUEUE_DELAY_MS = 2.0
DEFAULT_MAX_REQUEST_BYTES = 64 << 20
DEFAULT_TOP_K = 5
# Class scores are resized to the image size this many classes at a time (bounded memory for
# large images with many classes).
_RESIZE_CLASSES_PER_STEP = 16

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

SERVE_DESCRIPTION = (
    "Serve artefact folders over HTTP with the KServe v2 / Triton inference protocol (tritonclient works "
    "unchanged), plus POST /v2/models/NAME/image (a JPEG/PNG -> top-k classes or a PNG mask) and GET "
    "/metrics (Prometheus). Concurrent requests are batched per model. SIGTERM/SIGINT finish the "
    "requests in flight, refuse new ones with 503 and exit 0."
)


SHUTTING_DOWN = "the server is shutting down and takes no new requests."


class ApiError(Exception):
    """A request the server refuses: HTTP ``status`` and one sentence for ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------------------------
# Metrics, written in the Prometheus text exposition format (version 0.0.4)

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass
class _Histogram:
    bounds: Sequence[float]
    counts: list[int] = field(init=False)  # per bucket, not cumulative; the last one is +Inf
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        lines, cumulative = [], 0
        for bound, count in zip([*self.bounds, math.inf], self.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == math.inf else f"{bound:g}"
            lines.append(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}')
        lines.append(f"{name}_sum{{{labels}}} {self.total:.6g}")
        lines.append(f"{name}_count{{{labels}}} {self.count}")
        return lines


@dataclass
class _ModelMetrics:
    requests: int = 0
    failures: dict[int, int] = field(default_factory=dict)  # by HTTP status
    latency: _Histogram = field(default_factory=lambda: _Histogram(_LATENCY_BUCKETS_S))
    batch_rows: _Histogram = field(default_factory=lambda: _Histogram(_BATCH_BUCKETS))


class Metrics:
    """Per-model counters and histograms; inference requests update them on the event loop,
    batches from worker threads, hence the lock."""

    def __init__(self, models: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self._models = {name: _ModelMetrics() for name in models}

    def request(self, model: str, status: int, seconds: float) -> None:
        with self._lock:
            entry = self._models[model]
            entry.requests += 1
            if status >= 400:
                entry.failures[status] = entry.failures.get(status, 0) + 1
            entry.latency.observe(seconds)

    def batch(self, model: str, rows: int) -> None:
        with self._lock:
            self._models[model].batch_rows.observe(rows)

    def exposition(self, queue_depths: dict[str, int], in_flight: int) -> str:
        with self._lock:
            out = [
                "# HELP litevit_requests_total Inference requests (infer and image) received, per model.",
                "# TYPE litevit_requests_total counter",
            ]
            for model, entry in self._models.items():
                out.append(f"litevit_requests_total{{{_labels(model)}}} {entry.requests}")
            out += [
                "# HELP litevit_request_failures_total Inference requests answered with an error, per model "
                "and HTTP status.",
                "# TYPE litevit_request_failures_total counter",
            ]
            for model, entry in self._models.items():
                for status, count in sorted(entry.failures.items()):
                    out.append(f'litevit_request_failures_total{{{_labels(model)},code="{status}"}} {count}')
            out += [
                "# HELP litevit_request_duration_seconds Time from request received to response ready.",
                "# TYPE litevit_request_duration_seconds histogram",
            ]
            for model, entry in self._models.items():
                out += entry.latency.lines("litevit_request_duration_seconds", _labels(model))
            out += [
                "# HELP litevit_batch_size Rows per model execution (dynamic batching; padding excluded).",
                "# TYPE litevit_batch_size histogram",
            ]
            for model, entry in self._models.items():
                out += entry.batch_rows.lines("litevit_batch_size", _labels(model))
        out += [
            "# HELP litevit_queue_depth Requests waiting for a worker, per model.",
            "# TYPE litevit_queue_depth gauge",
        ]
        out += [f"litevit_queue_depth{{{_labels(model)}}} {depth}" for model, depth in queue_depths.items()]
        out += [
            "# HELP litevit_inflight_requests Inference requests received and not yet answered.",
            "# TYPE litevit_inflight_requests gauge",
            f"litevit_inflight_requests {in_flight}",
        ]
        return "\n".join(out) + "\n"


def _labels(model: str) -> str:
    escaped = model.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'model="{escaped}"'


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
            return {"name": info.name, "datatype": _datatype(info.dtype), "shape": self.public_shape(info)}

        return {
            "name": self.name,
            "versions": [VERSION],
            "platform": _PLATFORMS[self.backend],
            "inputs": [describe(info) for info in self.inputs],
            "outputs": [describe(info) for info in self.outputs],
        }


def _datatype(numpy_dtype: str) -> str:
    return KSERVE_DATATYPES.get(numpy_dtype, numpy_dtype.upper())


def model_names(folders: Sequence[Path], manifests: Sequence[dict[str, Any]]) -> list[str]:
    """Each artefact's manifest model name; artefacts that share one are named by their folders."""
    models = [str(manifest["model"]) for manifest in manifests]
    names = [
        folder.name if models.count(model) > 1 else model
        for folder, model in zip(folders, models, strict=True)
    ]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise LitevitError(
            f"two artefacts would both be served as {clashes[0]!r}: put them in folders with different names."
        )
    return names


def load_models(
    artifacts: Sequence[str | os.PathLike[str]],
    *,
    backend: str,
    precision: str,
    threads: int | None,
    instances: int,
    max_batch: int,
    max_queue_delay_ms: float,
) -> tuple[list[ServedModel], Metrics]:
    """Read every manifest first (a bad folder fails before any runner opens), then start each
    model's workers; on a failure the models already started are stopped."""
    if not artifacts:
        raise LitevitError("litevit serve needs at least one artefact folder.")
    folders = [Path(artifact) for artifact in artifacts]
    manifests = [read_manifest(folder) for folder in folders]
    names = model_names(folders, manifests)
    metrics = Metrics(names)
    served: list[ServedModel] = []
    try:
        for name, folder, manifest in zip(names, folders, manifests, strict=True):

            def opener(folder: Path = folder) -> Any:
                return open_runner(folder, backend, precision=precision, threads=threads)

            batcher = DynamicBatcher(
                name,
                opener,
                instances=instances,
                max_batch=max_batch,
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


# --------------------------------------------------------------------------------------------
# The inference protocol: request -> validated feeds, outputs -> response


@dataclass
class InferRequest:
    feeds: dict[str, np.ndarray]
    rows: int
    outputs: list[tuple[str, bool]]  # requested output name, binary or not
    request_id: str | None


def parse_infer_request(model: ServedModel, body: bytes, header_length: str | None) -> InferRequest:
    """A KServe v2 inference request (JSON, or JSON + binary tensors) -> validated feeds."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        try:
            length = int(header_length)
        except ValueError:
            raise ApiError(
                400, f"Inference-Header-Content-Length {header_length!r} is not an integer."
            ) from None
        if not 0 <= length <= len(body):
            raise ApiError(
                400,
                f"Inference-Header-Content-Length is {length}, outside the {len(body)}-byte request body.",
            )
        json_part, binary = body[:length], body[length:]
    try:
        payload = json.loads(json_part)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}.") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "the request body must be a JSON object with an 'inputs' list.")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(item, dict) for item in inputs):
        raise ApiError(400, "the request needs 'inputs': a list of tensors {name, shape, datatype, data}.")

    expected = {info.name: info for info in model.inputs}
    feeds: dict[str, np.ndarray] = {}
    offset = 0
    for item in inputs:
        name = item.get("name")
        if name not in expected:
            raise ApiError(
                400, f"model {model.name!r} has no input {name!r}; its inputs are {sorted(expected)}."
            )
        if name in feeds:
            raise ApiError(400, f"input {name!r} is given twice.")
        info = expected[name]
        shape = _checked_shape(model, info, item.get("shape"))
        datatype = _datatype(info.dtype)
        if item.get("datatype") != datatype:
            raise ApiError(
                400,
                f"input {name!r} of model {model.name!r} is {datatype}; "
                f"got datatype {item.get('datatype')!r}.",
            )
        binary_size = (item.get("parameters") or {}).get("binary_data_size")
        if binary_size is not None:
            if not isinstance(binary_size, int) or binary_size < 0:
                raise ApiError(400, f"input {name!r}: binary_data_size must be a non-negative integer.")
            if offset + binary_size > len(binary):
                raise ApiError(
                    400,
                    f"input {name!r}: binary_data_size {binary_size} runs past the {len(binary)} bytes of "
                    f"binary data after the JSON header.",
                )
            feeds[name] = _array_from_bytes(name, binary[offset : offset + binary_size], info.dtype, shape)
            offset += binary_size
        else:
            feeds[name] = _array_from_json(name, item.get("data"), info.dtype, shape)
    if offset != len(binary):
        raise ApiError(
            400,
            f"the request carries {len(binary)} bytes of binary data, but its inputs' binary_data_size "
            f"add up to {offset}.",
        )
    absent = [name for name in expected if name not in feeds]
    if absent:
        raise ApiError(400, f"model {model.name!r} needs input(s) {absent}; the request lacks them.")
    rows = _rows(model, feeds)
    return InferRequest(feeds, rows, _requested_outputs(model, payload), _request_id(payload))


def _checked_shape(model: ServedModel, info: TensorInfo, shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise ApiError(400, f"input {info.name!r}: 'shape' must be a list of integers; got {shape!r}.")
    public = model.public_shape(info)
    mismatch = len(shape) != len(public) or any(
        d < 0 or (want != -1 and d != want) for d, want in zip(shape, public, strict=True)
    )
    if mismatch:
        raise ApiError(
            400, f"input {info.name!r} of model {model.name!r} has shape {public} (-1: any); got {shape}."
        )
    if model.axis.kind != "none" and shape[0] == 0:
        raise ApiError(400, f"input {info.name!r} has no rows (shape {shape}).")
    if model.axis.kind == "fixed" and model.axis.size is not None and shape[0] > model.axis.size:
        raise ApiError(
            400,
            f"input {info.name!r}: model {model.name!r} runs batches of at most {model.axis.size} rows; "
            f"got {shape[0]}.",
        )
    return tuple(shape)


def _array_from_bytes(name: str, data: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if len(data) != expected:
        raise ApiError(
            400,
            f"input {name!r}: {len(data)} bytes of binary data, but shape {list(shape)} of "
            f"{_datatype(dtype)} takes {expected}.",
        )
    # The tensor extension sends little-endian, row-major data, which is numpy's layout here.
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _array_from_json(name: str, data: Any, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(data, list):
        raise ApiError(
            400, f"input {name!r} needs 'data' (a list) or parameters.binary_data_size (binary tensors)."
        )
    try:
        array = np.asarray(data, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ApiError(
            400, f"input {name!r}: 'data' is not a list of {_datatype(dtype)} values ({exc})."
        ) from None
    if array.size != math.prod(shape):
        raise ApiError(
            400,
            f"input {name!r}: 'data' holds {array.size} values, but shape {list(shape)} takes "
            f"{math.prod(shape)}.",
        )
    return array.reshape(shape)


def _rows(model: ServedModel, feeds: dict[str, np.ndarray]) -> int:
    if model.axis.kind == "none":
        return 1
    rows = {name: array.shape[0] for name, array in feeds.items()}
    if len(set(rows.values())) > 1:
        raise ApiError(400, f"the inputs disagree on the batch size (axis 0): {rows}.")
    return next(iter(rows.values()))


def _requested_outputs(model: ServedModel, payload: dict[str, Any]) -> list[tuple[str, bool]]:
    parameters = payload.get("parameters") or {}
    binary_default = (
        bool(parameters.get("binary_data_output", False)) if isinstance(parameters, dict) else False
    )
    known = [info.name for info in model.outputs]
    requested = payload.get("outputs")
    if requested is None:
        return [(name, binary_default) for name in known]
    if not isinstance(requested, list) or not all(isinstance(item, dict) for item in requested):
        raise ApiError(400, "'outputs' must be a list of {name, parameters} objects.")
    chosen = []
    for item in requested:
        name = item.get("name")
        if name not in known:
            raise ApiError(400, f"model {model.name!r} has no output {name!r}; its outputs are {known}.")
        output_parameters = item.get("parameters") or {}
        if "classification" in output_parameters:
            raise ApiError(
                400,
                "the classification extension is not supported; use POST /v2/models/NAME/image for "
                "top-k classes.",
            )
        chosen.append((name, bool(output_parameters.get("binary_data", binary_default))))
    return chosen


def _request_id(payload: dict[str, Any]) -> str | None:
    request_id = payload.get("id")
    return str(request_id) if request_id is not None else None


def encode_infer_response(
    model: ServedModel, request: InferRequest, results: dict[str, np.ndarray]
) -> tuple[bytes, int | None]:
    """The response body and, when it carries binary tensors, the length of its JSON header."""
    outputs, blobs = [], []
    for name, binary in request.outputs:
        array = np.ascontiguousarray(results[name])
        entry: dict[str, Any] = {
            "name": name,
            "datatype": _datatype(array.dtype.name),
            "shape": list(array.shape),
        }
        if binary:
            blob = array.tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = array.ravel().tolist()
        outputs.append(entry)
    response: dict[str, Any] = {"model_name": model.name, "model_version": VERSION, "outputs": outputs}
    if request.request_id is not None:
        response["id"] = request.request_id
    header = json.dumps(response, separators=(",", ":")).encode()
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


# --------------------------------------------------------------------------------------------
# The image endpoint


def decode_image(data: bytes) -> Image.Image:
    """A JPEG/PNG body -> RGB PIL image, or a 400 naming why not."""
    from PIL import Image as PILImage

    if not data:
        raise ApiError(400, "the request body is empty; send the JPEG or PNG file's bytes as the body.")
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            if image.format not in ("JPEG", "PNG"):
                raise ApiError(400, f"the body is a {image.format} image; send a JPEG or PNG.")
            image.load()
            return image.convert("RGB")
    except PILImage.DecompressionBombError as exc:
        raise ApiError(413, f"the image is too large to decode: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:  # PIL raises all three for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ApiError(400, f"the body is not a decodable JPEG or PNG image ({first}).") from None


def image_input(model: ServedModel) -> TensorInfo:
    """The model's one image input (N, 3, H, W), or a 400 saying the image endpoint does not apply."""
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4 or model.inputs[0].shape[1] != 3:
        raise ApiError(
            400,
            f"model {model.name!r} does not take one (N, 3, H, W) image; use /v2/models/{model.name}/infer.",
        )
    return model.inputs[0]


def top_k_classes(model: ServedModel, logits: np.ndarray, k: int) -> list[dict[str, Any]]:
    scores = logits.astype(np.float64).ravel()
    probabilities = np.exp(scores - scores.max())
    probabilities /= probabilities.sum()
    order = np.argsort(-scores, kind="stable")[:k]
    names = _class_names(model, scores.size)
    return [
        {
            "index": int(index),
            "label": names[index] if names is not None else None,
            "score": float(probabilities[index]),
        }
        for index in order
    ]


def _class_names(model: ServedModel, count: int) -> list[str] | None:
    label_set = model.manifest.get("data_config", {}).get("label_set")
    if label_set not in LABEL_SETS:
        return None
    names = class_names(label_set)
    return names if len(names) == count else None


def label_mask(output: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One image's segmentation output -> class index per pixel at ``size`` (height, width).

    A ``labels`` output (h, w) is resized nearest-neighbour; class scores (C, h, w) are resized
    bilinearly and then argmax-ed (the papers' order), a few classes at a time."""
    if output.ndim == 2:
        return resize_nearest(output, size)
    best = np.zeros(size, dtype=np.int64)
    best_score = np.full(size, -np.inf, dtype=np.float32)
    for start in range(0, output.shape[0], _RESIZE_CLASSES_PER_STEP):
        chunk = resize_bilinear(output[start : start + _RESIZE_CLASSES_PER_STEP].astype(np.float32), size)
        chunk_best = chunk.argmax(axis=0)
        chunk_score = np.take_along_axis(chunk, chunk_best[None], axis=0)[0]
        better = chunk_score > best_score
        best[better] = chunk_best[better] + start
        best_score[better] = chunk_score[better]
    return best


def encode_mask_png(mask: np.ndarray, num_classes: int, palette: list[tuple[int, int, int]] | None) -> bytes:
    """Class indices as a PNG: 8-bit grey (or palette) up to 256 classes, else 16-bit grey."""
    from PIL import Image as PILImage

    if num_classes <= 256:
        image = PILImage.fromarray(mask.astype(np.uint8))
        if palette is not None:  # turns the grey image into a palette image with the same indices
            image.putpalette([channel for colour in palette for channel in colour])
    else:
        image = PILImage.fromarray(mask.astype(np.uint16))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# The HTTP application


class Service:
    """What the routes share: the models, the metrics, the request count in flight and the
    draining flag (all touched on the event loop's thread only, except the metrics)."""

    def __init__(self, models: Sequence[ServedModel], metrics: Metrics, max_request_bytes: int) -> None:
        self.models = {model.name: model for model in models}
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes
        self.in_flight = 0
        self.draining = False
        self.on_drained: Callable[[], None] = lambda: None

    def start_draining(self) -> None:
        self.draining = True
        if self.in_flight == 0:
            self.on_drained()

    def model(self, request: Request) -> ServedModel:
        name = request.path_params["name"]
        model = self.models.get(name)
        if model is None:
            raise ApiError(404, f"unknown model {name!r}; this server serves {sorted(self.models)}.")
        version = request.path_params.get("version")
        if version is not None and version != VERSION:
            raise ApiError(404, f"model {name!r} has no version {version!r}; its one version is {VERSION!r}.")
        return model

    async def body(self, request: Request) -> bytes:
        """The request body, refused with 413 once it passes ``max_request_bytes``."""
        limit = self.max_request_bytes
        too_large = ApiError(413, f"the request body is larger than the server's limit of {limit} bytes.")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        if request.headers.get("content-encoding", "identity") != "identity":
            raise ApiError(
                400,
                f"Content-Encoding {request.headers['content-encoding']!r} is not supported; send the "
                f"body uncompressed.",
            )
        from starlette.requests import ClientDisconnect

        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
        except ClientDisconnect:
            raise ApiError(400, "the client disconnected before sending the whole body.") from None
        return b"".join(chunks)


def _error(status: int, message: str) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status)


def build_app(service: Service) -> Starlette:
    """The Starlette application: KServe v2 routes, the image endpoint and /metrics."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    Handler = Callable[["Request"], Awaitable["Response"]]

    def refusing_while_draining(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if service.draining:
                return _error(503, SHUTTING_DOWN)
            try:
                return await handler(request)
            except ApiError as exc:
                return _error(exc.status, exc.message)

        return endpoint

    def inference(handler: Callable[[Request, ServedModel], Awaitable[Response]]) -> Handler:
        """Counted in flight (shutdown waits for them) and in the model's metrics."""

        async def endpoint(request: Request) -> Response:
            if service.draining:
                return _error(503, SHUTTING_DOWN)
            try:
                model = service.model(request)
            except ApiError as exc:
                return _error(exc.status, exc.message)
            start = time.perf_counter()
            service.in_flight += 1
            try:
                response = await handler(request, model)
            except ApiError as exc:
                response = _error(exc.status, exc.message)
            except InferenceFailed as exc:
                print(f"litevit serve: inference failed on {model.name}: {exc}", file=sys.stderr, flush=True)
                response = _error(500, f"inference failed on model {model.name!r}: {exc}.")
            except Exception as exc:  # a bug: answer this request, keep serving the others
                traceback.print_exc()
                response = _error(
                    500, f"internal error on model {model.name!r}: {type(exc).__name__}: {exc}."
                )
            finally:
                service.in_flight -= 1
                if service.draining and service.in_flight == 0:
                    service.on_drained()
            service.metrics.request(model.name, response.status_code, time.perf_counter() - start)
            return response

        return endpoint

    async def live(request: Request) -> Response:
        return Response(status_code=200)

    async def ready(request: Request) -> Response:
        return Response(status_code=200)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse(
            {"name": "litevit", "version": litevit.__version__, "extensions": ["binary_tensor_data"]}
        )

    async def model_metadata(request: Request) -> Response:
        return JSONResponse(service.model(request).metadata())

    async def model_ready(request: Request) -> Response:
        service.model(request)
        return Response(status_code=200)

    async def infer(request: Request, model: ServedModel) -> Response:
        body = await service.body(request)
        header_length = request.headers.get(BINARY_HEADER)
        parsed = await run_in_threadpool(parse_infer_request, model, body, header_length)
        results = await model.batcher.submit(parsed.feeds, parsed.rows)
        content, json_length = await run_in_threadpool(encode_infer_response, model, parsed, results)
        if json_length is None:
            return Response(content, media_type="application/json")
        return Response(
            content,
            media_type="application/octet-stream",
            headers={BINARY_HEADER: str(json_length)},
        )

    async def image(request: Request, model: ServedModel) -> Response:
        info = image_input(model)
        if request.headers.get("content-type", "").startswith("multipart/"):
            raise ApiError(
                400,
                "send the image file's bytes as the request body (e.g. curl --data-binary @cat.jpg), "
                "not a form.",
            )
        top_k = _int_query(request, "top_k", DEFAULT_TOP_K)
        palette = request.query_params.get("palette", "false").lower() in ("1", "true", "yes")
        body = await service.body(request)
        prep = Preprocessing.from_manifest(model.manifest)

        def prepare() -> tuple[np.ndarray, tuple[int, int]]:
            picture = decode_image(body)
            return prep(picture)[None].astype(info.dtype), (picture.height, picture.width)

        pixels, size = await run_in_threadpool(prepare)
        results = await model.batcher.submit({info.name: pixels}, 1)
        output_name = model.outputs[0].name
        output = results[output_name][0]
        if model.manifest.get("task") == "segmentation":
            colours = _palette(model) if palette else None

            def render() -> bytes:
                num_classes = int(model.manifest["data_config"]["num_classes"])
                return encode_mask_png(label_mask(output, size), num_classes, colours)

            return Response(await run_in_threadpool(render), media_type="image/png")
        if not 1 <= top_k <= output.size:
            raise ApiError(400, f"top_k must be between 1 and {output.size}; got {top_k}.")
        return JSONResponse(
            {
                "model_name": model.name,
                "model_version": VERSION,
                "classes": top_k_classes(model, output, top_k),
            }
        )

    async def metrics(request: Request) -> Response:
        depths = {name: model.batcher.queue_depth for name, model in service.models.items()}
        return PlainTextResponse(
            service.metrics.exposition(depths, service.in_flight),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {
            404: f"no route {request.url.path}",
            405: f"{request.method} is not allowed on {request.url.path}",
        }
        return _error(exc.status_code, message.get(exc.status_code, str(exc.detail)) + ".")

    model_paths = ["/v2/models/{name}", "/v2/models/{name}/versions/{version}"]
    routes = [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", refusing_while_draining(ready), methods=["GET"]),
        Route("/v2", refusing_while_draining(server_metadata), methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    for base in model_paths:
        routes += [
            Route(base, refusing_while_draining(model_metadata), methods=["GET"]),
            Route(f"{base}/ready", refusing_while_draining(model_ready), methods=["GET"]),
            Route(f"{base}/infer", inference(infer), methods=["POST"]),
            Route(f"{base}/image", inference(image), methods=["POST"]),
        ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def _int_query(request: Request, key: str, default: int) -> int:
    value = request.query_params.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"query parameter {key} must be an integer; got {value!r}.") from None


def _palette(model: ServedModel) -> list[tuple[int, int, int]]:
    if model.manifest.get("data_config", {}).get("label_set") != "ade20k150":
        raise ApiError(400, f"model {model.name!r} has no class palette; leave out palette=true.")
    return ade20k_palette()


# --------------------------------------------------------------------------------------------
# Running it


def _require_serving_stack() -> None:
    absent = [module for module in ("starlette", "uvicorn") if not has(module)]
    if absent:
        raise MissingDependencyError(
            f"{' and '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed; litevit serve "
            f"needs them: pip install 'litevit[serve]'."
        )


def _listen(host: str, port: int) -> socket.socket:
    """Bind before the server starts, so that port 0 can be resolved and reported."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise LitevitError(f"cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    # Listening now (uvicorn's default backlog) means clients that connect from here on wait in the
    # backlog until the server accepts, rather than being refused.
    sock.listen(2048)
    return sock


def serve(
    artifacts: Sequence[str | os.PathLike[str]],
    backend: str = "ort",
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_queue_delay_ms: float = DEFAULT_MAX_QUEUE_DELAY_MS,
    instances: int = 1,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    precision: str = "fp32",
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """Serve ``artifacts`` until SIGTERM/SIGINT, then drain and return."""
    _require_serving_stack()
    if backend not in BACKENDS:
        raise LitevitError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if precision not in PRECISIONS:
        raise LitevitError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    for option, value, least in (
        ("--max-batch", max_batch, 1),
        ("--instances", instances, 1),
        ("--max-request-bytes", max_request_bytes, 1),
        ("--port", port, 0),
    ):
        if value < least:
            raise LitevitError(f"{option} must be at least {least}; got {value}.")
    if max_queue_delay_ms < 0:
        raise LitevitError(f"--max-queue-delay-ms must not be negative; got {max_queue_delay_ms}.")
    import uvicorn

    models, metrics = load_models(
        artifacts,
        backend=backend,
        precision=precision,
        threads=threads,
        instances=instances,
        max_batch=max_batch,
        max_queue_delay_ms=max_queue_delay_ms,
    )
    try:
        sock = _listen(host, port)
        service = Service(models, metrics, max_request_bytes)
        config = uvicorn.Config(build_app(service), lifespan="off", log_level="warning", access_log=False)
        server = _draining_server(config, service)
        bound_port = sock.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        for model in models:
            batching = (
                f"batches of up to {model.axis.max_rows(max_batch)} rows within {max_queue_delay_ms:g} ms"
                if model.axis.kind == "dynamic"
                else f"fixed batch {model.axis.size} (requests packed and padded)"
                if model.axis.kind == "fixed" and (model.axis.size or 0) > 1
                else "one request per run"
            )
            log(
                f"model {model.name} ({model.manifest.get('task')}): {backend} {precision}, {instances} "
                f"instance{'s' if instances != 1 else ''}, {batching}"
            )
        log(
            f"litevit serve: listening on http://{shown_host}:{bound_port} "
            f"(KServe v2; SIGTERM drains and stops)"
        )
        server.run(sockets=[sock])
        log("litevit serve: stopped")
    finally:
        for model in models:
            model.batcher.stop()


def _draining_server(config: Any, service: Service) -> Any:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn, but the first SIGTERM/SIGINT drains: the socket stays open and new requests get
        503 while those in flight finish; then uvicorn's own shutdown runs. A second signal is
        uvicorn's immediate exit. (uvicorn re-raises the signals it handled once it returns, which
        would end the process by the signal instead of with 0; the first one is handled here.)"""

        def _drained(self) -> None:
            self.should_exit = True

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if service.draining:
                super().handle_exit(sig, frame)
                self.force_exit = True
                return
            print(
                f"litevit serve: {signal.Signals(sig).name}: finishing {service.in_flight} request(s) in "
                f"flight, refusing new ones",
                flush=True,
            )
            service.start_draining()

    server = DrainingServer(config)
    service.on_drained = server._drained
    return server


# --------------------------------------------------------------------------------------------
# Command line


def configure_serve_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifacts", nargs="+", metavar="ARTIFACT_DIR", help="artefact folders to serve")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="ort",
        help="ort: ONNX Runtime on the CPU (default; the embedded choice); trt: the artefact's TensorRT "
        "engine (MODEL.PRECISION.engine, from `litevit build`) on the GPU; torch: PyTorch eager (reference)",
    )
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="which graph or engine to serve"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"TCP port (default {DEFAULT_PORT}, as Triton; 0: any free port)",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH,
        metavar="N",
        help="most rows one run takes when the graph's batch axis is dynamic (a fixed-batch graph takes "
        "its own batch size; 1 turns batching off)",
    )
    parser.add_argument(
        "--max-queue-delay-ms",
        type=float,
        default=DEFAULT_MAX_QUEUE_DELAY_MS,
        metavar="T",
        help="how long the oldest queued request may wait for others to join its batch",
    )
    parser.add_argument(
        "--instances", type=int, default=1, metavar="N", help="runners per model, each on its own thread"
    )
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        metavar="B",
        help="larger request bodies get 413",
    )
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads per runner (ort, torch)")


def run_serve(args: argparse.Namespace) -> int:
    serve(
        args.artifacts,
        backend=args.backend,
        host=args.host,
        port=args.port,
        max_batch=args.max_batch,
        max_queue_delay_ms=args.max_queue_delay_ms,
        instances=args.instances,
        max_request_bytes=args.max_request_bytes,
        precision=args.precision,
        threads=args.threads,
        log=lambda line: print(line, flush=True),
    )
    return 0


__all__ = ["SERVE_DESCRIPTION", "configure_serve_parser", "run_serve", "serve"]
