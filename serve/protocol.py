"""The KServe v2 inference protocol: a request (JSON tensors, or the binary tensor extension) ->
validated feeds; outputs -> the response."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from litevit._compat import strict_zip
from litevit.runtime.runners import TensorInfo
from litevit.serve.models import VERSION, ApiError, ServedModel, kserve_datatype


# The binary tensor extension: length of the JSON part that precedes the raw tensor bytes.
BINARY_HEADER = "Inference-Header-Content-Length"


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
        datatype = kserve_datatype(info.dtype)
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
        d < 0 or (want != -1 and d != want) for d, want in strict_zip(shape, public)
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
            f"{kserve_datatype(dtype)} takes {expected}.",
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
            400, f"input {name!r}: 'data' is not a list of {kserve_datatype(dtype)} values ({exc})."
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
            "datatype": kserve_datatype(array.dtype.name),
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
