"""Load test for ``litevit serve``: N concurrent clients for a fixed time over the KServe v2 protocol.

    python benchmarks/load_test.py --artifact DIR [--backend ort] [--max-batch 8] [--max-queue-delay-ms 2]
    python benchmarks/load_test.py --url http://HOST:PORT [--model NAME] [--server-pid PID]
        [--clients 16] [--seconds 20] [--warmup-seconds 2] [--batch 1] [--protocol json|binary]
        [--compare-batching] [--json OUT]

With ``--artifact`` the script starts ``litevit serve`` itself in a subprocess (on a free port),
waits for ``GET /v2/health/ready``, and stops it with SIGTERM afterwards; with ``--url`` it drives a
server that is already running. Each client is a thread with one keep-alive HTTP connection that
sends ``POST /v2/models/{model}/infer`` back to back: a JSON tensor body, or the binary-tensor
extension (a JSON header, its length in ``Inference-Header-Content-Length``, then the raw bytes).
The request body is built once per client from synthetic data of the manifest's input shape, so the
client's own cost is the HTTP round trip. A request counts as failed when the connection breaks or
the answer is not 200 with the requested outputs.

Reported: requests, failures, throughput (requests/s and images/s over the measured time), latency
p50/p90/p99 (send to last byte of the answer), and the server's resident memory (VmRSS from
/proc/PID/status, sampled every second: start, max, end) when its PID is known.
``--compare-batching`` runs the whole test twice, with ``--max-batch 1`` and ``--max-batch 8``,
and prints the dynamic-batching gain (throughput with 8 over throughput with 1). Exit status 1
when any request failed. A script, not a test: tests/runtime/test_load_test.py covers its arithmetic
and its request building.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from litevit._io import write_json
from litevit.artifacts import read_manifest
from litevit.serve.models import KSERVE_DATATYPES
from litevit.serve.protocol import BINARY_HEADER
from litevit.runtime.stats import latency_stats

COMPARED_MAX_BATCHES = (1, 8)
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class InferRequest:
    """One ready-to-send ``POST /v2/models/{model}/infer``."""

    path: str
    body: bytes
    headers: dict[str, str]
    outputs: tuple[str, ...]
    images: int  # the batch the request carries (a fixed-batch model's own batch)


def input_shape(tensor: dict[str, Any], batch: int, img_size: Sequence[int] | None) -> list[int]:
    """The manifest shape of ``tensor`` made concrete: a symbolic batch axis becomes ``batch``
    (a fixed one stays), a symbolic height and width the exported image size."""
    shape = list(tensor["shape"])
    concrete = []
    for axis, dim in enumerate(shape):
        if not isinstance(dim, str):
            concrete.append(int(dim))
        elif axis == 0:
            concrete.append(batch)
        elif img_size is not None and len(shape) == 4 and axis in (2, 3):
            concrete.append(int(img_size[axis - 2]))
        else:
            raise ValueError(f"input {tensor['name']!r} has a dynamic dim {axis} ({dim}) of unknown size")
    return concrete


def build_infer_request(
    model: str,
    inputs: Sequence[dict[str, Any]],
    outputs: Sequence[dict[str, Any]],
    *,
    batch: int,
    img_size: Sequence[int] | None,
    protocol: str,
    seed: int = 0,
) -> InferRequest:
    """The request a client repeats: synthetic data in [0, 1) for every input (values do not
    matter for load, shapes and dtypes do), outputs asked for by name, as JSON or binary tensors."""
    rng = np.random.default_rng(seed)
    arrays = {t["name"]: rng.random(input_shape(t, batch, img_size)).astype(t["dtype"]) for t in inputs}
    output_names = tuple(t["name"] for t in outputs)
    images = next(iter(arrays.values())).shape[0]
    path = f"/v2/models/{urllib.parse.quote(model, safe='')}/infer"
    if protocol == "json":
        document = {
            "inputs": [
                {
                    "name": name,
                    "shape": list(array.shape),
                    "datatype": KSERVE_DATATYPES[array.dtype.name],
                    "data": array.ravel().tolist(),
                }
                for name, array in arrays.items()
            ],
            "outputs": [{"name": name} for name in output_names],
        }
        body = json.dumps(document, separators=(",", ":")).encode()
        return InferRequest(path, body, {"Content-Type": "application/json"}, output_names, images)
    if protocol != "binary":
        raise ValueError(f"unknown protocol {protocol!r}; choose json or binary")
    header = {
        "inputs": [
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": KSERVE_DATATYPES[array.dtype.name],
                "parameters": {"binary_data_size": array.nbytes},
            }
            for name, array in arrays.items()
        ],
        "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in output_names],
    }
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    # Tensors follow the JSON header in the order the header lists them, row-major, little-endian.
    raw = [array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes() for array in arrays.values()]
    body = header_bytes + b"".join(raw)
    headers = {"Content-Type": "application/octet-stream", BINARY_HEADER: str(len(header_bytes))}
    return InferRequest(path, body, headers, output_names, images)


def response_has_outputs(body: bytes, headers: dict[str, str], outputs: Sequence[str]) -> bool:
    """Whether an infer answer names every requested output (its JSON part, for binary answers)."""
    json_length = headers.get(BINARY_HEADER.lower())
    try:
        document = json.loads(body[: int(json_length)] if json_length is not None else body)
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(document, dict) or not isinstance(document.get("outputs"), list):
        return False
    returned = {o.get("name") for o in document["outputs"] if isinstance(o, dict)}
    return set(outputs) <= returned


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class ClientLog:
    """What one client saw: per successful request its latency, and the failures with a reason."""

    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def summarize(
    logs: Sequence[ClientLog], elapsed_s: float, images_per_request: int, rss_kib: Sequence[int]
) -> dict[str, Any]:
    """Requests, failures, throughput and latency percentiles of one run, and the server's
    memory (KiB) at the start and the end of the run and at its largest."""
    if elapsed_s <= 0:
        raise ValueError(f"the measured time must be positive, not {elapsed_s}")
    latencies = [ms for log in logs for ms in log.latencies_ms]
    failures = [reason for log in logs for reason in log.failures]
    succeeded = len(latencies)
    result: dict[str, Any] = {
        "requests": succeeded + len(failures),
        "failures": len(failures),
        "failure_examples": sorted(set(failures))[:5],
        "seconds": elapsed_s,
        "requests_per_s": succeeded / elapsed_s,
        "images_per_s": succeeded * images_per_request / elapsed_s,
        "latency_ms": {
            k: v for k, v in latency_stats(latencies).items() if k in ("p50", "p90", "p99", "mean", "max")
        }
        if latencies
        else None,
        "rss_mib": {
            "start": rss_kib[0] / 1024,
            "max": max(rss_kib) / 1024,
            "end": rss_kib[-1] / 1024,
        }
        if rss_kib
        else None,
    }
    return result


def batching_gain(unbatched: dict[str, Any], batched: dict[str, Any]) -> float | None:
    """Throughput with dynamic batching over throughput without (None when the first did nothing)."""
    if unbatched["images_per_s"] <= 0:
        return None
    return float(batched["images_per_s"] / unbatched["images_per_s"])


def format_summary(label: str, summary: dict[str, Any]) -> str:
    lines = [
        f"{label}: {summary['requests']} requests, {summary['failures']} failed, "
        f"{summary['requests_per_s']:.1f} req/s, {summary['images_per_s']:.1f} images/s "
        f"over {summary['seconds']:.1f} s"
    ]
    if summary["latency_ms"]:
        lat = summary["latency_ms"]
        lines.append(f"  latency ms: p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}")
    if summary["rss_mib"]:
        rss = summary["rss_mib"]
        lines.append(
            f"  server RSS MiB: start {rss['start']:.1f}  max {rss['max']:.1f}  end {rss['end']:.1f}"
        )
    lines += [f"  failure: {reason}" for reason in summary["failure_examples"]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Clients, memory sampling, the server


def read_rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB from /proc (None once the process is gone or off Linux)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every ``interval_s`` until stopped (and once more on stop)."""

    def __init__(self, pid: int, interval_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval_s = interval_s
        self.samples: list[int] = []
        self._stop_event = threading.Event()

    def _sample(self) -> None:
        rss = read_rss_kib(self.pid)
        if rss is not None:
            self.samples.append(rss)

    def run(self) -> None:
        while not self._stop_event.is_set():
            self._sample()
            self._stop_event.wait(self.interval_s)

    def stop(self) -> list[int]:
        self._stop_event.set()
        self.join()
        self._sample()
        return self.samples


def run_client(host: str, port: int, request: InferRequest, deadline: float, log: ClientLog) -> None:
    """Send ``request`` back to back on one keep-alive connection until ``deadline``."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                connection.request("POST", request.path, body=request.body, headers=request.headers)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()  # reconnects on the next request
                log.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            latency_ms = (time.perf_counter() - start) * 1000.0
            headers = {k.lower(): v for k, v in response.getheaders()}
            if response.status == 200 and response_has_outputs(body, headers, request.outputs):
                log.latencies_ms.append(latency_ms)
            else:
                log.failures.append(f"HTTP {response.status}: {body[:200].decode(errors='replace')}")
    finally:
        connection.close()


def drive(
    host: str, port: int, requests: Sequence[InferRequest], seconds: float
) -> tuple[list[ClientLog], float]:
    """One client thread per request for ``seconds``: their logs and the measured time (until the
    last client's last answer, so requests in flight at the deadline count in full)."""
    logs = [ClientLog() for _ in requests]
    start = time.perf_counter()
    threads = [
        threading.Thread(target=run_client, args=(host, port, request, start + seconds, log), daemon=True)
        for request, log in zip(requests, logs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return logs, time.perf_counter() - start


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_command(
    artifact: str, port: int, backend: str, max_batch: int, max_queue_delay_ms: float, extra: Sequence[str]
) -> list[str]:
    """``litevit serve`` through this interpreter, so that it runs in the same environment."""
    return [
        sys.executable,
        "-c",
        "import sys; from litevit.cli import main; sys.exit(main())",
        "serve",
        artifact,
        "--backend",
        backend,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-batch",
        str(max_batch),
        "--max-queue-delay-ms",
        str(max_queue_delay_ms),
        *extra,
    ]


def wait_until_ready(host: str, port: int, process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before it was ready")
        connection = http.client.HTTPConnection(host, port, timeout=2)
        try:
            connection.request("GET", "/v2/health/ready")
            if connection.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        time.sleep(0.2)
    raise RuntimeError(f"the server at {host}:{port} was not ready after {timeout_s:.0f} s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (graceful shutdown), then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def load_run(
    args: argparse.Namespace, model: str, requests: Sequence[InferRequest], max_batch: int | None
) -> dict[str, Any]:
    """One measured run: against --url, or against a server started here with ``max_batch``."""
    process = None
    if args.url:
        target = urllib.parse.urlsplit(args.url)
        host, port = target.hostname or "127.0.0.1", target.port or 80
        pid = args.server_pid
    else:
        host, port = "127.0.0.1", args.port or free_port()
        command = serve_command(
            args.artifact,
            port,
            args.backend,
            max_batch or args.max_batch,
            args.max_queue_delay_ms,
            shlex.split(args.serve_args),
        )
        # The server's own log (one access line per request) would drown the report: it goes to a file.
        server_log = open(args.server_log, "ab")  # closed with the server, in the finally below
        process = subprocess.Popen(command, stdout=server_log, stderr=subprocess.STDOUT)
        pid = process.pid
    try:
        wait_until_ready(host, port, process, READY_TIMEOUT_S)
        if args.warmup_seconds > 0:
            drive(host, port, requests, args.warmup_seconds)
        sampler = RssSampler(pid) if pid is not None else None
        if sampler is not None:
            sampler.start()
        logs, elapsed = drive(host, port, requests, args.seconds)
        rss = sampler.stop() if sampler is not None else []
    except RuntimeError as exc:
        raise SystemExit(f"load test: {exc} (server log: {args.server_log})") from None
    finally:
        if process is not None:
            stop_server(process)
            server_log.close()
    images = requests[0].images
    summary = summarize(logs, elapsed, images, rss)
    summary.update({"model": model, "clients": args.clients, "batch": images, "protocol": args.protocol})
    summary["server_max_batch"] = None if args.url else (max_batch or args.max_batch)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--artifact", metavar="DIR", help="start `litevit serve DIR` here and test it")
    target.add_argument("--url", help="test the server already running at this base URL")
    parser.add_argument(
        "--model", help="model name (default: the manifest's model; required with --url alone)"
    )
    parser.add_argument(
        "--manifest", metavar="DIR", help="artefact folder for shapes with --url (default: none)"
    )
    parser.add_argument("--server-pid", type=int, metavar="PID", help="with --url: sample this process's RSS")
    parser.add_argument("--backend", default="ort", help="litevit serve --backend (default: ort)")
    parser.add_argument("--max-batch", type=int, default=8, help="litevit serve --max-batch (default: 8)")
    parser.add_argument(
        "--max-queue-delay-ms",
        type=float,
        default=2.0,
        help="litevit serve --max-queue-delay-ms (default: 2)",
    )
    parser.add_argument("--port", type=int, help="port for the server started here (default: a free one)")
    parser.add_argument(
        "--serve-args", default="", help="more arguments for litevit serve, one shell-quoted string"
    )
    parser.add_argument(
        "--server-log",
        default=os.path.join(tempfile.gettempdir(), "litevit-load-test-server.log"),
        help="where the started server's output goes (default: in the temp folder)",
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default: 16)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per run (default: 20)")
    parser.add_argument(
        "--warmup-seconds", type=float, default=2.0, help="unmeasured load first (default: 2)"
    )
    parser.add_argument("--batch", type=int, default=1, help="images per request (default: 1)")
    parser.add_argument("--protocol", choices=("json", "binary"), default="binary", help="default: binary")
    parser.add_argument(
        "--compare-batching",
        action="store_true",
        help=f"run with --max-batch {COMPARED_MAX_BATCHES[0]} and {COMPARED_MAX_BATCHES[1]}, print the gain",
    )
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.compare_batching and args.url:
        parser.error("--compare-batching restarts the server, so it needs --artifact")
    if args.clients < 1 or args.batch < 1 or args.seconds <= 0:
        parser.error("--clients and --batch must be at least 1 and --seconds positive")

    manifest_dir = args.artifact or args.manifest
    if manifest_dir is None:
        parser.error("--url needs --manifest DIR for the model's input shapes")
    manifest = read_manifest(manifest_dir)
    model = args.model or manifest["model"]
    requests = [
        build_infer_request(
            model,
            manifest["inputs"],
            manifest["outputs"],
            batch=args.batch,
            img_size=manifest.get("img_size"),
            protocol=args.protocol,
            seed=client,
        )
        for client in range(args.clients)
    ]
    print(
        f"load test: {model}, {args.clients} clients x {args.seconds:g} s, "
        f"batch {requests[0].images} per request, {args.protocol} tensors"
    )
    runs: dict[str, dict[str, Any]] = {}
    for max_batch in COMPARED_MAX_BATCHES if args.compare_batching else (None,):
        label = f"max-batch {max_batch or args.max_batch}" if not args.url else args.url
        runs[label] = load_run(args, model, requests, max_batch)
        print(format_summary(label, runs[label]))
    document: dict[str, Any] = {"runs": runs}
    if args.compare_batching:
        first, second = (runs[f"max-batch {b}"] for b in COMPARED_MAX_BATCHES)
        gain = batching_gain(first, second)
        document["batching_gain"] = gain
        shown = f"{gain:.2f}x" if gain is not None else "n/a (no request succeeded without batching)"
        low, high = COMPARED_MAX_BATCHES
        print(f"dynamic-batching gain (images/s with max-batch {high} over {low}): {shown}")
    if args.json:
        write_json(Path(args.json), document)
    return 1 if any(run["failures"] for run in runs.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
