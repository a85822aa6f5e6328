"""``litevit doctor``: one screen on what this machine can run, and what each missing piece costs.

Each line is one component: found (with its version and the detail that matters), or missing
with one sentence on what that disables and how to get it. The verdict is whether the embedded
default, ONNX Runtime on the CPU, runs a graph here: that is what every artefact needs.
Torch is never imported (a version is read from package metadata); TensorRT and cuda-python are
imported only to ask what they see.
"""

from __future__ import annotations

import ctypes
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Tuple

import litevit
from litevit._deps import has
from litevit.errors import LitevitError
from litevit.runtime import environment as env
from litevit.runtime.trt_build import (
    describe_target,
    engine_mismatch,
    load_plugin_library,
    plugin_library_to_load,
    read_engine_sidecar,
    sidecar_path,
)

_LABEL_WIDTH = 14

Line = Tuple[str, str]


def _python() -> Line:
    return "Python", f"{platform.python_version()} ({sys.executable})"


def _numpy_onnx() -> list[Line]:
    import numpy
    import onnx

    return [
        ("numpy", numpy.__version__),
        ("onnx", f"{onnx.__version__} (opset <= {onnx.defs.onnx_opset_version()})"),
    ]


def _onnxruntime() -> Line:
    if not has("onnxruntime"):
        return (
            "onnxruntime",
            "missing: no backend can run an ONNX artefact (ort is the default); pip install 'litevit[ort]'.",
        )
    import onnxruntime as ort

    providers = ort.get_available_providers()
    line = f"{ort.__version__}, providers: {', '.join(providers)}"
    if "CUDAExecutionProvider" not in providers:
        line += " (CPU build: for ORT on a GPU, pip install onnxruntime-gpu instead)"
    return "onnxruntime", line


def _torch() -> Line:
    version = env.package_version("torch")
    if version is None:
        return (
            "torch",
            "missing: the torch backend, export and FLOP counting are disabled; "
            "pip install 'litevit[author]'.",
        )
    cuda = env.cuda_from_torch_version(version)
    return "torch", f"{version} ({'CUDA ' + cuda + ' build' if cuda else 'CPU build'})"


def _onnxscript() -> Line:
    version = env.package_version("onnxscript")
    if version is None:
        return "onnxscript", "missing: ONNX export is disabled; pip install 'litevit[author]'."
    return "onnxscript", version


def _tensorrt() -> Line:
    if not has("tensorrt"):
        return (
            "TensorRT",
            "missing: the trt backend and engine builds are disabled; pip install tensorrt "
            "(on a Jetson it comes with JetPack: sudo apt install python3-libnvinfer).",
        )
    try:
        import tensorrt as trt
    except Exception as exc:  # a wheel without its CUDA libraries fails in several ways
        return "TensorRT", f"installed but does not import ({type(exc).__name__}: {exc}); reinstall it."
    return "TensorRT", trt.__version__


def _cuda_binding() -> Line:
    versions = [
        f"{name} {version}"
        for name, version in (
            ("cuda-python", env.package_version("cuda-python", "cuda-bindings")),
            ("pycuda", env.package_version("pycuda")),
        )
        if version
    ]
    if versions:
        return "CUDA binding", ", ".join(versions)
    return (
        "CUDA binding",
        "missing: the trt backend cannot allocate device buffers or streams; pip install cuda-python "
        "(cuda-bindings 12.x for CUDA 12 drivers) or pycuda.",
    )


def _cuda(gpu: dict[str, str | None]) -> Line:
    runtime = env.cuda_version()
    driver = gpu.get("driver")
    if runtime is None and driver is None:
        return (
            "CUDA",
            "none found: GPU backends are disabled; install the NVIDIA driver and CUDA (or JetPack).",
        )
    return "CUDA", f"driver {driver or 'unknown'}, runtime {runtime or 'not found'}"


def _gpu(gpu: dict[str, str | None]) -> Line:
    if gpu.get("gpu_name") is None:
        return "GPU", "none found (no nvidia-smi answer, no CUDA device): ort and torch run on the CPU."
    return "GPU", f"{gpu['gpu_name']}, compute capability {gpu.get('compute_capability') or 'unknown'}"


def _jetson() -> Line:
    facts = env.jetson_facts()
    if facts is None:
        return "Jetson", f"not a Jetson ({env.JETSON_RELEASE_FILE} absent)"
    clocks = facts["jetson_clocks"] or "unknown (jetson_clocks --show needs root)"
    return (
        "Jetson",
        f"{env.jetson_model() or 'unknown module'}, L4T {facts['l4t'] or 'unknown'}, JetPack "
        f"{facts['jetpack'] or 'unknown'}, power mode {facts['nvpmodel_mode'] or 'unknown'}, "
        f"jetson_clocks {clocks}",
    )


def _plugin_library() -> Line:
    from litevit.plugins.build import built_library

    try:
        path = built_library()
    except LitevitError as exc:
        return (
            "plugins",
            f"{exc} Without it TensorRT runs --ops function graphs from their bodies (TensorRT >= 9) "
            f"and --ops inline graphs; --ops plugin graphs need it.",
        )
    try:
        ctypes.CDLL(str(path))
    except OSError as exc:
        return "plugins", f"{path} found but does not load: {exc}."
    return "plugins", f"{path} (loads)"


def _installed_tensorrt_version() -> str | None:
    """The version TensorRT itself reports when it imports, else the one its package records."""
    if has("tensorrt"):
        try:
            import tensorrt as trt

            return str(trt.__version__)
        except Exception:  # a wheel without its CUDA libraries fails in several ways
            pass
    return env.tensorrt_version()


def _engine(engine: str, gpu: dict[str, str | None]) -> Line:
    path = Path(engine)
    if not path.is_file():
        return "engine", f"{engine} does not exist."
    try:
        sidecar = read_engine_sidecar(path)
    except LitevitError as exc:
        return "engine", f"{engine}: {str(exc).rstrip('.')}."
    if sidecar is None:
        notes = [
            f"no sidecar {sidecar_path(path).name} (not built by `litevit build`), so which TensorRT and GPU "
            f"built it is unknown"
        ]
    else:
        # The same check the trt runner makes before it loads an engine.
        here = _installed_tensorrt_version()
        mismatch = engine_mismatch(path, sidecar, here, gpu)
        built = f"built for {describe_target(sidecar.get('tensorrt'), sidecar.get('gpu') or {})}"
        if mismatch is not None:
            notes = [mismatch.rstrip(".")]
        elif here is not None and gpu.get("gpu_name") is not None:
            notes = [f"{built}, as this machine is"]
        else:
            notes = [f"{built}; this machine's TensorRT or GPU could not be read, so they were not compared"]
    if has("tensorrt"):
        notes.append(_engine_loads(path, sidecar))
    else:
        notes.append("TensorRT is missing, so whether it loads here cannot be checked")
    return "engine", f"{engine}: " + "; ".join(notes) + "."


def _engine_loads(path: Path, sidecar: dict[str, Any] | None) -> str:
    """Deserialise the engine: the one check of 'same TensorRT version and GPU' that cannot lie."""
    try:
        import tensorrt as trt

        library = plugin_library_to_load(sidecar, None)
        if library is not None:
            load_plugin_library(library)
        logger = trt.Logger(trt.Logger.ERROR)
        # TensorRT's own plugins first, as the trt runner registers them (an engine may use one).
        trt.init_libnvinfer_plugins(logger, "")
        runtime = trt.Runtime(logger)  # outlives the engine it deserializes
        loaded = runtime.deserialize_cuda_engine(path.read_bytes())
    except LitevitError as exc:
        return f"it cannot be tried: {str(exc).rstrip('.')}"
    except Exception as exc:  # no GPU or driver: TensorRT raises from the runtime
        return f"TensorRT could not try it ({type(exc).__name__}: {exc})"
    if loaded is None:
        return (
            f"it does NOT load with this TensorRT {trt.__version__} on this GPU (built by another "
            f"TensorRT version or GPU model, or it needs the plugin library): rebuild it here"
        )
    return f"it loads with this TensorRT {trt.__version__} on this GPU"


def default_backend_works() -> tuple[bool, str]:
    """Run a one-node graph on ONNX Runtime's CPU provider: the embedded default, end to end."""
    if not has("onnxruntime"):
        return False, "ONNX Runtime is not installed: pip install 'litevit[ort]'."
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        "doctor",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, onnx.IR_VERSION)
    try:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        (result,) = session.run(None, {"x": np.array([1.0, 2.5], dtype=np.float32)})
    except Exception as exc:  # ORT raises its own exception types
        return False, f"ONNX Runtime failed on a one-node graph: {type(exc).__name__}: {exc}"
    if not np.array_equal(result, np.array([2.0, 5.0], dtype=np.float32)):
        return False, f"ONNX Runtime computed 2 * [1, 2.5] = {result.tolist()}."
    return True, (
        "ONNX Runtime CPU runs graphs: artefacts exported with --ops function or inline run here "
        "with --backend ort."
    )


def doctor_report(engine: str | None = None) -> tuple[str, bool]:
    """The screen text and whether the embedded default (ONNX Runtime on the CPU) works."""
    gpu = env.gpu_facts()
    lines: list[Line] = [("litevit", f"{litevit.__version__}"), _python(), *_numpy_onnx()]
    checks: list[Callable[[], Line]] = [
        _onnxruntime,
        _torch,
        _onnxscript,
        _tensorrt,
        _cuda_binding,
        lambda: _cuda(gpu),
        lambda: _gpu(gpu),
        _jetson,
        _plugin_library,
    ]
    lines.extend(check() for check in checks)
    if engine is not None:
        lines.append(_engine(engine, gpu))
    works, verdict = default_backend_works()
    lines.append(("default", ("OK: " if works else "BROKEN: ") + verdict))
    text = "\n".join(f"{label:<{_LABEL_WIDTH}}{detail}" for label, detail in lines)
    return text + "\n", works


__all__ = ["doctor_report"]
