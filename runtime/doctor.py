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

import litevit
from litevit._deps import has
from litevit.runtime import environment as env

PLUGIN_LIBRARY = "liblitevit_plugins.so"
_LABEL_WIDTH = 14

Line = tuple[str, str]


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
    import litevit.plugins

    path = Path(litevit.plugins.__file__).parent / PLUGIN_LIBRARY
    if not path.is_file():
        return (
            "plugins",
            f"{PLUGIN_LIBRARY} not built yet (arrives with the plugins release): TensorRT engines of "
            f"--ops plugin graphs cannot be built; --ops function/inline graphs do not need it.",
        )
    try:
        ctypes.CDLL(str(path))
    except OSError as exc:
        return "plugins", f"{path} found but does not load: {exc}."
    return "plugins", f"{path} (loads)"


def _engine(engine: str) -> Line:
    path = Path(engine)
    if not path.is_file():
        return "engine", f"{engine} does not exist."
    sidecar = path.with_name(path.name + ".json")
    notes = [
        f"no sidecar {sidecar.name}: engine sidecars (which TensorRT and GPU built it) arrive with "
        f"`litevit build`"
        if not sidecar.is_file()
        else f"sidecar {sidecar.name} found (read by `litevit build`)"
    ]
    if has("tensorrt"):
        notes.append(_engine_loads(path))
    else:
        notes.append("TensorRT is missing, so whether it loads here cannot be checked")
    return "engine", f"{engine}: " + "; ".join(notes) + "."


def _engine_loads(path: Path) -> str:
    """Deserialise the engine: the one check of 'same TensorRT version and GPU' that cannot lie."""
    try:
        import tensorrt as trt

        runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        loaded = runtime.deserialize_cuda_engine(path.read_bytes())
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
        lines.append(_engine(engine))
    works, verdict = default_backend_works()
    lines.append(("default", ("OK: " if works else "BROKEN: ") + verdict))
    text = "\n".join(f"{label:<{_LABEL_WIDTH}}{detail}" for label, detail in lines)
    return text + "\n", works


__all__ = ["doctor_report"]
