"""Running the server (uvicorn, with a first SIGTERM/SIGINT that drains) and ``litevit serve``."""

from __future__ import annotations

import argparse
import os
import signal
import socket
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from litevit._deps import has
from litevit.errors import LitevitError, MissingDependencyError
from litevit.runtime.runners import BACKENDS, PRECISIONS
from litevit.serve.app import Service, build_app
from litevit.serve.models import DEFAULT_MAX_BATCH, load_models, unused_batching_options


DEFAULT_PORT = 8000  # Triton's HTTP port: clients configured for Triton find the server there
DEFAULT_MAX_QUEUE_DELAY_MS = 2.0
DEFAULT_MAX_REQUEST_BYTES = 64 << 20


SERVE_DESCRIPTION = (
    "Serve artefact folders over HTTP with the KServe v2 / Triton inference protocol (tritonclient works "
    "unchanged), plus POST /v2/models/NAME/image (a JPEG/PNG -> top-k classes or a PNG mask) and GET "
    "/metrics (Prometheus). Concurrent requests are batched per model. SIGTERM/SIGINT finish the "
    "requests in flight, refuse new ones with 503 and exit 0."
)


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
    max_batch: int | None = None,
    max_queue_delay_ms: float | None = None,
    instances: int = 1,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    precision: str = "fp32",
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """Serve ``artifacts`` until SIGTERM/SIGINT, then drain and return. ``max_batch`` None: a
    TensorRT engine's profile max batch, else :data:`DEFAULT_MAX_BATCH`; ``max_queue_delay_ms``
    None: :data:`DEFAULT_MAX_QUEUE_DELAY_MS`. Given ones that cannot take effect on a model's graph
    are warned about."""
    _require_serving_stack()
    requested_batching = (max_batch, max_queue_delay_ms)
    max_queue_delay_ms = DEFAULT_MAX_QUEUE_DELAY_MS if max_queue_delay_ms is None else max_queue_delay_ms
    if backend not in BACKENDS:
        raise LitevitError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if precision not in PRECISIONS:
        raise LitevitError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    for option, value, least in (
        ("--max-batch", 1 if max_batch is None else max_batch, 1),
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
        for warning in unused_batching_options(models, *requested_batching):
            log(warning)
        sock = _listen(host, port)
        service = Service(models, metrics, max_request_bytes)
        config = uvicorn.Config(build_app(service), lifespan="off", log_level="warning", access_log=False)
        server = _draining_server(config, service)
        bound_port = sock.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        for model in models:
            batching = (
                f"batches of up to {model.axis.max_rows(model.batcher.max_batch)} rows within "
                f"{max_queue_delay_ms:g} ms"
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
        metavar="N",
        help="most rows one run takes when the graph's batch axis is dynamic (1 turns batching off); a "
        "fixed-batch graph, as exported by default, takes its own batch size, so export with --dynamic-batch "
        "to batch requests (default: for --backend trt the largest batch of the engine's optimisation "
        f"profile, from its sidecar; otherwise {DEFAULT_MAX_BATCH})",
    )
    parser.add_argument(
        "--max-queue-delay-ms",
        type=float,
        metavar="T",
        help=f"how long the oldest queued request may wait for others to join its batch (default "
        f"{DEFAULT_MAX_QUEUE_DELAY_MS:g})",
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
