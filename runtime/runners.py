"""Runners: one small interface over ONNX Runtime, PyTorch eager and TensorRT.

A runner is opened on an artefact folder (its ``manifest.json`` says which file holds which
precision and how the model was built) or on a single ``.onnx``/``.engine`` file, and offers::

    runner.inputs() / runner.outputs()   names, numpy dtypes, shapes (str for a dynamic dim)
    runner.infer({name: array})          host arrays in, host arrays out
    runner.timed_region(feeds)           what a benchmark times per iteration, and what that is
    runner.close()                       (or use it as a context manager)

This module imports neither torch nor TensorRT nor a CUDA binding at import time: each backend
imports its library when it is opened, and a missing one is one sentence naming what to install.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from litevit._deps import has, missing, require
from litevit._compat import strict_zip
from litevit.artifacts import graph_file, read_manifest
from litevit.errors import LitevitError
from litevit.onnx_graphs import BUILTIN_ONNX_DOMAINS

if TYPE_CHECKING:
    import onnx

BACKENDS = ("ort", "torch", "trt")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output: name, numpy dtype name, shape (a str for a dynamic dim)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]


@dataclass
class TimedRegion:
    """What the benchmark times, per iteration: `run()` does one inference; `scope` says in words
    what is inside (e.g. "compute only: inputs already on the device, outputs left there" or
    "host->device copy + compute + device->host copy"); `gpu_timer` is None on CPU (time with
    perf_counter_ns) or a callable returning the elapsed ms of the last `run()` measured with CUDA
    events after synchronisation."""

    run: Callable[[], None]
    scope: str
    gpu_timer: Callable[[], float] | None = None


class Runner(ABC):
    """One loaded model on one backend and device."""

    backend: str
    device: str

    @abstractmethod
    def inputs(self) -> list[TensorInfo]: ...

    @abstractmethod
    def outputs(self) -> list[TensorInfo]: ...

    @abstractmethod
    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference: host arrays in (keyed by input name), host arrays out."""

    @abstractmethod
    def timed_region(self, feeds: dict[str, np.ndarray], *, with_copies: bool = False) -> TimedRegion:
        """Prepare ``feeds`` outside the timed region and return what to time per iteration.

        On a GPU, the default region is compute only (inputs already on the device, outputs left
        there); ``with_copies=True`` times host->device copy + compute + device->host copy. On the
        CPU there are no copies and both are the same region.
        """

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Runner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _check_feeds(self, feeds: dict[str, np.ndarray]) -> None:
        expected = [info.name for info in self.inputs()]
        missing = [name for name in expected if name not in feeds]
        unknown = [name for name in feeds if name not in expected]
        if missing or unknown:
            raise LitevitError(
                f"the {self.backend} runner takes inputs {expected}; got {sorted(feeds)}"
                f"{' (missing ' + ', '.join(missing) + ')' if missing else ''}."
            )


# --------------------------------------------------------------------------------------------
# Opening: artefact folder or single file -> which file, which backend.


def open_runner(
    target: str | os.PathLike[str],
    backend: str = "ort",
    *,
    precision: str = "fp32",
    threads: int | None = None,
    device: str | None = None,
    compile: bool = False,
) -> Runner:
    """Open ``target`` (an artefact folder, a ``.onnx`` file or a ``.engine`` file) on ``backend``.

    ``threads`` sets the CPU intra-op threads (ORT, torch); ``device`` is "cpu" or "cuda[:N]"
    (default: cpu for ort/torch, cuda:0 for trt); ``compile`` wraps the torch model in
    ``torch.compile``.
    """
    if backend not in BACKENDS:
        raise LitevitError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if precision not in PRECISIONS:
        raise LitevitError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if threads is not None and threads < 1:
        raise LitevitError(f"threads must be at least 1; got {threads}.")
    if compile and backend != "torch":
        raise LitevitError("compile=True (torch.compile) applies to the torch backend only.")
    if threads is not None and backend == "trt":
        raise LitevitError(
            "--threads sets the CPU threads of the ort and torch backends; a TensorRT engine runs on the "
            "GPU: drop --threads."
        )
    path = Path(target)
    if not path.exists():
        raise LitevitError(f"{str(path)!r} does not exist.")
    manifest = read_manifest(path) if path.is_dir() else None

    if backend == "ort":
        resolved_device = _parse_device(device or "cpu")
        onnx_path = (
            graph_file(path, manifest, precision, runtime="onnxruntime")
            if manifest is not None
            else _expect_suffix(path, ".onnx")
        )
        return OrtRunner(onnx_path, threads=threads, device=resolved_device)
    if backend == "torch":
        if manifest is None:
            raise LitevitError(
                f"the torch backend rebuilds the model from an artefact folder's manifest; "
                f"{str(path)!r} is a file, so pass its folder."
            )
        if precision != "fp32":
            raise LitevitError("the torch backend runs the FP32 reference only; use ort or trt for fp16.")
        return TorchRunner(
            path, manifest, threads=threads, device=_parse_device(device or "cpu"), compile=compile
        )
    resolved_device = _parse_device(device or "cuda:0")
    if not resolved_device.startswith("cuda"):
        raise LitevitError(f"the trt backend runs on a CUDA device; got device {resolved_device!r}.")
    if manifest is not None:
        engine_path = path / f"{manifest['model']}.{precision}.engine"
        if not engine_path.is_file():
            raise LitevitError(
                f"the artefact {str(path)!r} has no {engine_path.name}; build it on this machine: "
                f"litevit build {path} --precision {precision}."
            )
    else:
        engine_path = _expect_suffix(path, ".engine")
    return TrtRunner(engine_path, device=resolved_device, manifest=manifest)


def _expect_suffix(path: Path, suffix: str) -> Path:
    if path.suffix != suffix:
        raise LitevitError(f"{str(path)!r} is not a {suffix} file or an artefact folder.")
    return path


def _parse_device(device: str) -> str:
    """'cpu', 'cuda' or 'cuda:N' -> 'cpu' or 'cuda:N'."""
    if device == "cpu":
        return device
    if device == "cuda":
        return "cuda:0"
    if device.startswith("cuda:") and device[5:].isdigit():
        return device
    raise LitevitError(f"unknown device {device!r}; use cpu, cuda or cuda:N.")


def _device_index(device: str) -> int:
    return int(device.split(":", 1)[1])


def _dims(values: Sequence[int | str | None]) -> tuple[int | str, ...]:
    # An unnamed dynamic dim has no name to show; call it by its position.
    return tuple(f"dim{i}" if d is None or d == -1 else d for i, d in enumerate(values))


# --------------------------------------------------------------------------------------------
# ONNX Runtime


def _bodyless_custom_ops(model: onnx.ModelProto) -> list[str]:
    """Custom-domain op types that have no model-local function body (a plugin-mode graph)."""
    functions = {(f.domain, f.name) for f in model.functions}
    return sorted(
        {
            f"{node.domain}::{node.op_type}"
            for node in model.graph.node
            if node.domain not in BUILTIN_ONNX_DOMAINS and (node.domain, node.op_type) not in functions
        }
    )


def _onnx_tensor_infos(values: Any, initializers: set[str]) -> list[TensorInfo]:
    from onnx import helper

    infos = []
    for value in values:
        if value.name in initializers:  # old-style graphs list weights as inputs
            continue
        tensor = value.type.tensor_type
        dims = [d.dim_param or (d.dim_value if d.HasField("dim_value") else None) for d in tensor.shape.dim]
        infos.append(
            TensorInfo(value.name, helper.tensor_dtype_to_np_dtype(tensor.elem_type).name, _dims(dims))
        )
    return infos


class OrtRunner(Runner):
    """ONNX Runtime: CPUExecutionProvider, or CUDAExecutionProvider for a cuda device."""

    backend = "ort"

    def __init__(self, path: Path, *, threads: int | None = None, device: str = "cpu") -> None:
        require("onnxruntime")
        import onnx
        import onnxruntime as ort

        self.device = device
        self.path = path
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # protobuf decode errors have many types
            raise LitevitError(f"{str(path)!r} is not a readable ONNX file: {exc}.") from None
        bodyless = _bodyless_custom_ops(model)
        source: str | bytes = str(path)
        if bodyless:
            if not (has("torch") and has("onnxscript")):
                raise LitevitError(
                    f"{str(path)!r} is a plugin-mode graph ({', '.join(bodyless)} have no function "
                    f"bodies), which ONNX Runtime cannot run: export it with --ops function or --ops "
                    f"inline, or install pip install 'litevit[author]' so the bodies are attached here."
                )
            # The export side owns the op bodies; it needs torch and onnxscript.
            from litevit.export.onnx_export import for_onnxruntime

            model = for_onnxruntime(model)
            source = model.SerializeToString()
        initializers = {t.name for t in model.graph.initializer}
        self._inputs = _onnx_tensor_infos(model.graph.input, initializers)
        self._outputs = _onnx_tensor_infos(model.graph.output, initializers)

        options = ort.SessionOptions()
        # Errors only: ORT's graph-optimiser warnings are not the user's to act on.
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = threads
        providers: list[Any] = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise LitevitError(
                    f"device {device} needs ONNX Runtime's CUDAExecutionProvider, which this onnxruntime "
                    f"lacks: pip uninstall onnxruntime && pip install onnxruntime-gpu."
                )
            providers = [
                ("CUDAExecutionProvider", {"device_id": _device_index(device)}),
                "CPUExecutionProvider",
            ]
        self.session = ort.InferenceSession(source, options, providers=providers)
        # ORT falls back to the CPU silently when the CUDA provider cannot start (no GPU, no CUDA
        # libraries): a CPU run must never be reported as a GPU one.
        if device.startswith("cuda") and "CUDAExecutionProvider" not in self.session.get_providers():
            raise LitevitError(
                f"ONNX Runtime could not start its CUDAExecutionProvider on {device} (no GPU, or CUDA/cuDNN "
                f"libraries missing); see `litevit doctor`."
            )
        self._output_names = [info.name for info in self._outputs]

    def inputs(self) -> list[TensorInfo]:
        return list(self._inputs)

    def outputs(self) -> list[TensorInfo]:
        return list(self._outputs)

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check_feeds(feeds)
        results = self.session.run(self._output_names, feeds)
        return dict(strict_zip(self._output_names, results))

    def timed_region(self, feeds: dict[str, np.ndarray], *, with_copies: bool = False) -> TimedRegion:
        self._check_feeds(feeds)
        if self.device == "cpu" or with_copies:
            names = self._output_names

            def run() -> None:
                self.session.run(names, feeds)

            scope = (
                "compute on the host: ONNX Runtime CPU session.run, inputs and outputs in host memory"
                if self.device == "cpu"
                else "host->device copy + compute + device->host copy: ONNX Runtime CUDA session.run "
                "on host arrays"
            )
            return TimedRegion(run, scope)
        # Compute only: inputs copied to the device once, outputs bound on the device. ORT's CUDA
        # provider synchronises its stream at the end of each run, so host wall-clock time is the
        # device time of the run plus the launch overhead.
        import onnxruntime as ort

        index = _device_index(self.device)
        binding = self.session.io_binding()
        on_device = {
            name: ort.OrtValue.ortvalue_from_numpy(array, "cuda", index) for name, array in feeds.items()
        }
        for name, value in on_device.items():
            binding.bind_ortvalue_input(name, value)
        for name in self._output_names:
            binding.bind_output(name, "cuda", index)

        def run_bound() -> None:
            self.session.run_with_iobinding(binding)

        return TimedRegion(
            run_bound,
            "compute only: ONNX Runtime CUDA with I/O binding, inputs already on the device, outputs "
            "left there (host wall clock; the run synchronises its stream)",
        )

    def close(self) -> None:
        # An InferenceSession has no close(); dropping the reference frees it.
        self.__dict__.pop("session", None)


# --------------------------------------------------------------------------------------------
# PyTorch eager (the reference)


class TorchRunner(Runner):
    """The model rebuilt from the manifest (same module the ONNX graph was exported from)."""

    backend = "torch"

    def __init__(
        self, folder: Path, manifest: dict[str, Any], *, threads: int | None, device: str, compile: bool
    ) -> None:
        require("torch")
        # The exported module is rebuilt by the export code, which imports onnxscript.
        require("onnxscript")
        import torch

        # _build_module applies the manifest's seg_output wrapper, i.e. the exported module.
        from litevit.export.api import _build_module

        self.device = device
        self.torch = torch
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise LitevitError(f"device {device} was asked for, but this torch sees no CUDA GPU.")
        if threads is not None:
            torch.set_num_threads(threads)
        weights = manifest.get("weights")
        if weights and not os.path.isfile(weights["path"]):
            raise LitevitError(
                f"the weights {weights['path']!r} this artefact was exported from are missing."
            )
        module = _build_module(
            manifest["model"],
            weights["path"] if weights else None,
            tuple(manifest["img_size"]) if manifest.get("img_size") else None,  # type: ignore[arg-type]
            bool(weights and weights.get("use_ema")),
            manifest.get("seg_output") or "logits",
            manifest.get("model_kwargs") or {},
            manifest.get("detection"),
        )
        module = module.eval().to(torch.device(device))
        self.module: Callable[..., Any] = torch.compile(module) if compile else module
        self._inputs = [TensorInfo(d["name"], d["dtype"], _dims(d["shape"])) for d in manifest["inputs"]]
        self._outputs = [TensorInfo(d["name"], d["dtype"], _dims(d["shape"])) for d in manifest["outputs"]]

    def inputs(self) -> list[TensorInfo]:
        return list(self._inputs)

    def outputs(self) -> list[TensorInfo]:
        return list(self._outputs)

    def _to_device(self, feeds: dict[str, np.ndarray]) -> list[Any]:
        torch = self.torch
        return [
            torch.from_numpy(np.ascontiguousarray(feeds[info.name])).to(self.device) for info in self._inputs
        ]

    def _forward(self, args: list[Any]) -> list[Any]:
        with self.torch.inference_mode():
            result = self.module(*args)
        return list(result) if isinstance(result, (tuple, list)) else [result]

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check_feeds(feeds)
        results = self._forward(self._to_device(feeds))
        return {info.name: r.cpu().numpy() for info, r in strict_zip(self._outputs, results)}

    def timed_region(self, feeds: dict[str, np.ndarray], *, with_copies: bool = False) -> TimedRegion:
        self._check_feeds(feeds)
        torch = self.torch
        if self.device == "cpu":
            args = self._to_device(feeds)

            def run_on_host() -> None:
                self._forward(args)

            return TimedRegion(
                run_on_host,
                "compute on the host: PyTorch eager forward under inference_mode, CPU tensors prepared "
                "before timing",
            )
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        prepared = None if with_copies else self._to_device(feeds)

        def run() -> None:
            start.record()
            if prepared is None:
                for result in self._forward(self._to_device(feeds)):
                    result.cpu()
            else:
                self._forward(prepared)
            end.record()
            # Synchronise so that host wall-clock time per iteration is also end-to-end.
            end.synchronize()

        scope = (
            "host->device copy + compute + device->host copy: PyTorch eager on CUDA"
            if with_copies
            else "compute only: PyTorch eager on CUDA, inputs already on the device, outputs left there"
        )
        return TimedRegion(run, scope, lambda: float(start.elapsed_time(end)))

    def close(self) -> None:
        self.__dict__.pop("module", None)
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------
# TensorRT (name-based tensor API, TensorRT 8.5 through 11)


class _CudaApi(ABC):
    """The few CUDA runtime calls the TensorRT runner needs, over cuda-python or pycuda."""

    @abstractmethod
    def malloc(self, nbytes: int) -> int: ...

    @abstractmethod
    def free(self, pointer: int) -> None: ...

    @abstractmethod
    def copy_to_device(self, pointer: int, host: np.ndarray) -> None:
        """Asynchronous on the stream."""

    @abstractmethod
    def copy_to_host(self, host: np.ndarray, pointer: int) -> None:
        """Asynchronous on the stream."""

    @abstractmethod
    def stream_handle(self) -> int: ...

    @abstractmethod
    def synchronize(self) -> None: ...

    @abstractmethod
    def record_start(self) -> None: ...

    @abstractmethod
    def record_end(self) -> None: ...

    @abstractmethod
    def elapsed_ms(self) -> float:
        """Milliseconds between the last start and end events (waits for the end event)."""

    @abstractmethod
    def close(self) -> None: ...


class _CudaPython(_CudaApi):
    """NVIDIA's cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` before cuda-bindings 12.6).

    Host arrays are pageable numpy memory: the copies are then staged by the driver and return
    once the host side is read, which is what a caller handing numpy arrays pays anyway.
    """

    def __init__(self, device_index: int) -> None:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart  # type: ignore[no-redef]
        self.cudart = cudart
        self._check(cudart.cudaSetDevice(device_index), "cudaSetDevice")
        self.stream = self._check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.start = self._check(cudart.cudaEventCreate(), "cudaEventCreate")
        self.end = self._check(cudart.cudaEventCreate(), "cudaEventCreate")

    def _check(self, result: Any, call: str) -> Any:
        # Every cuda-python call returns (error, *values).
        error, *values = result if isinstance(result, tuple) else (result,)
        if error != self.cudart.cudaError_t.cudaSuccess:
            _, name = self.cudart.cudaGetErrorName(error)
            raise LitevitError(
                f"CUDA call {call} failed: {name.decode() if isinstance(name, bytes) else name}."
            )
        return values[0] if len(values) == 1 else None

    def malloc(self, nbytes: int) -> int:
        return int(self._check(self.cudart.cudaMalloc(nbytes), "cudaMalloc"))

    def free(self, pointer: int) -> None:
        self._check(self.cudart.cudaFree(pointer), "cudaFree")

    def copy_to_device(self, pointer: int, host: np.ndarray) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(
            self.cudart.cudaMemcpyAsync(pointer, host.ctypes.data, host.nbytes, kind, self.stream),
            "cudaMemcpyAsync",
        )

    def copy_to_host(self, host: np.ndarray, pointer: int) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(
            self.cudart.cudaMemcpyAsync(host.ctypes.data, pointer, host.nbytes, kind, self.stream),
            "cudaMemcpyAsync",
        )

    def stream_handle(self) -> int:
        return int(self.stream)

    def synchronize(self) -> None:
        self._check(self.cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def record_start(self) -> None:
        self._check(self.cudart.cudaEventRecord(self.start, self.stream), "cudaEventRecord")

    def record_end(self) -> None:
        self._check(self.cudart.cudaEventRecord(self.end, self.stream), "cudaEventRecord")

    def elapsed_ms(self) -> float:
        self._check(self.cudart.cudaEventSynchronize(self.end), "cudaEventSynchronize")
        return float(
            self._check(self.cudart.cudaEventElapsedTime(self.start, self.end), "cudaEventElapsedTime")
        )

    def close(self) -> None:
        self.cudart.cudaEventDestroy(self.start)
        self.cudart.cudaEventDestroy(self.end)
        self.cudart.cudaStreamDestroy(self.stream)


class _PyCuda(_CudaApi):
    """pycuda, on the device's primary context (shared with TensorRT and any other CUDA user)."""

    def __init__(self, device_index: int) -> None:
        import pycuda.driver as cuda

        self.cuda = cuda
        cuda.init()
        self.context = cuda.Device(device_index).retain_primary_context()
        self.context.push()
        self.stream = cuda.Stream()
        self.start = cuda.Event()
        self.end = cuda.Event()
        self.allocations: dict[int, Any] = {}

    def malloc(self, nbytes: int) -> int:
        allocation = self.cuda.mem_alloc(nbytes)
        self.allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, pointer: int) -> None:
        self.allocations.pop(pointer).free()

    def copy_to_device(self, pointer: int, host: np.ndarray) -> None:
        self.cuda.memcpy_htod_async(pointer, host, self.stream)

    def copy_to_host(self, host: np.ndarray, pointer: int) -> None:
        self.cuda.memcpy_dtoh_async(host, pointer, self.stream)

    def stream_handle(self) -> int:
        return int(self.stream.handle)

    def synchronize(self) -> None:
        self.stream.synchronize()

    def record_start(self) -> None:
        self.start.record(self.stream)

    def record_end(self) -> None:
        self.end.record(self.stream)

    def elapsed_ms(self) -> float:
        self.end.synchronize()
        return float(self.start.time_till(self.end))

    def close(self) -> None:
        for allocation in self.allocations.values():
            allocation.free()
        self.allocations.clear()
        self.context.pop()


def _open_cuda(device_index: int) -> _CudaApi:
    """cuda-python when installed (NVIDIA's samples moved to it in TensorRT 10.13), else pycuda."""
    if has("cuda.bindings") or has("cuda.cudart"):
        return _CudaPython(device_index)
    return _PyCuda(device_index)


class _DeviceBuffer:
    """A device allocation that grows to the largest size asked for (dynamic shapes)."""

    def __init__(self, cuda: _CudaApi) -> None:
        self.cuda = cuda
        self.pointer = 0
        self.capacity = 0

    def reserve(self, nbytes: int) -> int:
        if nbytes > self.capacity:
            if self.pointer:
                self.cuda.free(self.pointer)
            # TensorRT wants a non-null address even for an empty tensor.
            self.pointer = self.cuda.malloc(max(nbytes, 1))
            self.capacity = nbytes
        return self.pointer

    def release(self) -> None:
        if self.pointer:
            self.cuda.free(self.pointer)
        self.pointer, self.capacity = 0, 0


def _shape_tuple(dims: Any) -> tuple[int, ...]:
    # trt.Dims indexes like a tuple but is not typed as iterable.
    return tuple(int(dims[i]) for i in range(len(dims)))


class TrtRunner(Runner):
    """A serialized TensorRT engine, run with ``execute_async_v3`` on its own CUDA stream.

    When the engine has a ``litevit build`` sidecar (``ENGINE.json``), an engine built for
    another TensorRT version or GPU is refused before TensorRT sees it, and the plugin library
    it was built with is loaded first (``plugins``, else ``$LITEVIT_PLUGINS``, else the one the
    sidecar names). ``plugins`` also serves engines without a sidecar.
    """

    backend = "trt"

    def __init__(
        self,
        path: Path,
        *,
        device: str = "cuda:0",
        manifest: dict[str, Any] | None = None,
        plugins: str | os.PathLike[str] | None = None,
    ) -> None:
        require("tensorrt")
        if not (has("cuda.bindings") or has("cuda.cudart") or has("pycuda")):
            raise missing("cuda-python")
        import tensorrt as trt

        # trt_build imports this module, so it is imported here rather than at the top.
        from litevit.runtime import environment, trt_build

        sidecar = trt_build.read_engine_sidecar(path)
        if sidecar is not None:
            mismatch = trt_build.engine_mismatch(path, sidecar, trt.__version__, environment.gpu_facts())
            if mismatch is not None:
                raise LitevitError(mismatch)
        library = trt_build.plugin_library_to_load(sidecar, plugins)
        if library is not None:
            trt_build.load_plugin_library(library)
        self.trt = trt
        self.device = device
        self.cuda = _open_cuda(_device_index(device))
        self.logger = trt.Logger(trt.Logger.WARNING)
        # TensorRT's own plugins (ROIAlign_TRT, EfficientNMS_TRT, ...) must be registered before an
        # engine that uses one is deserialized, as Polygraphy does.
        trt.init_libnvinfer_plugins(self.logger, "")
        self.runtime = trt.Runtime(self.logger)
        engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            self.cuda.close()
            raise LitevitError(
                f"TensorRT {trt.__version__} could not load {str(path)!r}: an engine runs only on the "
                f"TensorRT version and GPU model it was built with (and needs any plugin library it "
                f"uses loaded); rebuild it here."
            )
        self.engine = engine
        self.context = engine.create_execution_context()
        # Names of dynamic dims come from the manifest when there is one (TensorRT says -1).
        named = {
            d["name"]: d["shape"]
            for d in (manifest or {}).get("inputs", []) + (manifest or {}).get("outputs", [])
        }
        self._inputs: list[TensorInfo] = []
        self._outputs: list[TensorInfo] = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            shape = _shape_tuple(engine.get_tensor_shape(name))
            manifest_shape = named.get(name)
            dims: tuple[int | str, ...] = tuple(
                (manifest_shape[i] if manifest_shape and len(manifest_shape) == len(shape) else f"dim{i}")
                if d == -1
                else int(d)
                for i, d in enumerate(shape)
            )
            info = TensorInfo(name, np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name, dims)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self._inputs.append(info)
            else:
                self._outputs.append(info)
        self._buffers = {info.name: _DeviceBuffer(self.cuda) for info in self._inputs + self._outputs}

    def inputs(self) -> list[TensorInfo]:
        return list(self._inputs)

    def outputs(self) -> list[TensorInfo]:
        return list(self._outputs)

    def _prepare(self, feeds: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Set input shapes and tensor addresses; return the contiguous inputs and empty host outputs."""
        self._check_feeds(feeds)
        host_inputs = {}
        for info in self._inputs:
            array = np.ascontiguousarray(feeds[info.name], dtype=info.dtype)
            if not self.context.set_input_shape(info.name, array.shape):
                raise LitevitError(
                    f"input {info.name!r} of shape {list(array.shape)} is outside the engine's "
                    f"optimisation profile (engine shape {list(info.shape)})."
                )
            self.context.set_tensor_address(info.name, self._buffers[info.name].reserve(array.nbytes))
            host_inputs[info.name] = array
        host_outputs = {}
        for info in self._outputs:
            shape = _shape_tuple(self.context.get_tensor_shape(info.name))
            host = np.empty(shape, dtype=info.dtype)
            self.context.set_tensor_address(info.name, self._buffers[info.name].reserve(host.nbytes))
            host_outputs[info.name] = host
        return host_inputs, host_outputs

    def _copy_in(self, host_inputs: dict[str, np.ndarray]) -> None:
        for name, array in host_inputs.items():
            self.cuda.copy_to_device(self._buffers[name].pointer, array)

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.cuda.stream_handle()):
            raise LitevitError("TensorRT failed to enqueue the inference (see its log above).")

    def _copy_out(self, host_outputs: dict[str, np.ndarray]) -> None:
        for name, array in host_outputs.items():
            self.cuda.copy_to_host(array, self._buffers[name].pointer)

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        host_inputs, host_outputs = self._prepare(feeds)
        self._copy_in(host_inputs)
        self._execute()
        self._copy_out(host_outputs)
        self.cuda.synchronize()
        return host_outputs

    def timed_region(self, feeds: dict[str, np.ndarray], *, with_copies: bool = False) -> TimedRegion:
        host_inputs, host_outputs = self._prepare(feeds)
        self._copy_in(host_inputs)
        self.cuda.synchronize()

        def run() -> None:
            self.cuda.record_start()
            if with_copies:
                self._copy_in(host_inputs)
            self._execute()
            if with_copies:
                self._copy_out(host_outputs)
            self.cuda.record_end()
            # Synchronise so that host wall-clock time per iteration is also end-to-end.
            self.cuda.synchronize()

        scope = (
            "host->device copy + compute + device->host copy: TensorRT execute_async_v3 on one CUDA stream, "
            "pageable host arrays"
            if with_copies
            else "compute only: TensorRT execute_async_v3, inputs already on the device, outputs left there"
        )
        return TimedRegion(run, scope, self.cuda.elapsed_ms)

    def close(self) -> None:
        if "context" not in self.__dict__:
            return
        self.cuda.synchronize()
        # Execution context before engine before the memory they point into.
        del self.context
        del self.engine
        for buffer in self._buffers.values():
            buffer.release()
        self.cuda.close()


__all__ = ["BACKENDS", "Runner", "TensorInfo", "TimedRegion", "open_runner"]
