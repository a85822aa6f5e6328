"""The HTTP application (Starlette): KServe v2 routes, Triton's repository index and statistics,
the image endpoint and /metrics, and the draining state shutdown needs."""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

import litevit
from litevit.artifacts import DETECTION_TASKS
from litevit.calibration.images import Preprocessing
from litevit.labels import SEGMENTATION_LABEL_SETS, palette
from litevit.serve.batching import InferenceFailed
from litevit.serve.detection import DetectionImages, mask_format, min_score
from litevit.serve.images import (
    DEFAULT_TOP_K,
    decode_image,
    encode_mask_png,
    image_input,
    label_mask,
    top_k_classes,
)
from litevit.serve.metrics import Metrics
from litevit.serve.models import VERSION, ApiError, ServedModel
from litevit.serve.protocol import BINARY_HEADER, encode_infer_response, parse_infer_request

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    Handler = Callable[[Request], Awaitable[Response]]


SHUTTING_DOWN = "the server is shutting down and takes no new requests."


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
            {
                "name": "litevit",
                "version": litevit.__version__,
                "extensions": ["binary_tensor_data", "statistics"],
            }
        )

    async def repository_index(request: Request) -> Response:
        """Triton's model repository index: every served model, loaded and ready (litevit serve
        loads its models at start and never unloads one). ``{"ready": true}`` asks for the ready
        ones only, which are all of them."""
        body = await service.body(request)
        if body.strip():
            try:
                options = json.loads(body)
            except ValueError:
                raise ApiError(400, "the repository index request body is not JSON.") from None
            if not isinstance(options, dict) or not isinstance(options.get("ready", False), bool):
                raise ApiError(400, 'the repository index request body must be {} or {"ready": true|false}.')
        return JSONResponse(
            [
                {"name": name, "version": VERSION, "state": "READY", "reason": ""}
                for name in sorted(service.models)
            ]
        )

    async def all_statistics(request: Request) -> Response:
        return JSONResponse(service.metrics.statistics(sorted(service.models), VERSION))

    async def model_statistics(request: Request) -> Response:
        model = service.model(request)
        return JSONResponse(service.metrics.statistics([model.name], VERSION))

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

    detectors: dict[str, DetectionImages] = {}

    async def detection_image(request: Request, model: ServedModel) -> Response:
        """Detections and segments as JSON (litevit.serve.detection)."""
        masks = mask_format(request.query_params.get("masks"))
        threshold = min_score(request.query_params.get("min_score"))
        body = await service.body(request)
        if model.name not in detectors:
            detectors[model.name] = DetectionImages(model)
        images = detectors[model.name]

        def prepare() -> tuple[dict[str, np.ndarray], Any]:
            return images.feeds(np.asarray(decode_image(body)))

        feeds, geometry = await run_in_threadpool(prepare)
        results = await model.batcher.submit(feeds, 1)
        answer = await run_in_threadpool(images.render, results, geometry, masks, threshold)
        return JSONResponse(answer)

    async def image(request: Request, model: ServedModel) -> Response:
        if request.headers.get("content-type", "").startswith("multipart/"):
            raise ApiError(
                400,
                "send the image file's bytes as the request body (e.g. curl --data-binary @cat.jpg), "
                "not a form.",
            )
        if model.manifest.get("task") in DETECTION_TASKS:
            return await detection_image(request, model)
        info = image_input(model)
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
        Route("/v2/repository/index", refusing_while_draining(repository_index), methods=["POST"]),
        # Before /v2/models/{name}: "stats" here is the statistics of every model.
        Route("/v2/models/stats", refusing_while_draining(all_statistics), methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    for base in model_paths:
        routes += [
            Route(base, refusing_while_draining(model_metadata), methods=["GET"]),
            Route(f"{base}/stats", refusing_while_draining(model_statistics), methods=["GET"]),
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
    label_set = model.manifest.get("data_config", {}).get("label_set")
    if label_set not in SEGMENTATION_LABEL_SETS:
        raise ApiError(400, f"model {model.name!r} has no class palette; leave out palette=true.")
    return palette(label_set)
