"""``litevit triton-repo``: turn artefact folders into a Triton Inference Server model repository.

For each artefact it writes ``REPO/<model>/config.pbtxt`` (Triton's ``ModelConfig`` in protobuf
text format) and ``REPO/<model>/1/model.plan`` (the TensorRT engine, platform ``tensorrt_plan``)
or ``1/model.onnx`` (the ONNX graph, platform ``onnxruntime_onnx``)::

    name: "lvt"
    platform: "tensorrt_plan"
    max_batch_size: 8
    input [ { name: "input" data_type: TYPE_FP32 dims: [ 3, 224, 224 ] } ]
    output [ { name: "logits" data_type: TYPE_FP32 dims: [ 1000 ] } ]
    dynamic_batching { max_queue_delay_microseconds: 1000 }
    instance_group [ { count: 1 kind: KIND_GPU } ]

A graph exported with a dynamic batch axis gets ``max_batch_size`` > 0, dims without the batch
axis and a ``dynamic_batching`` block; a fixed-batch graph gets ``max_batch_size: 0`` and its full
dims (Triton then passes each request through as it is). Symbolic dims (a dynamic height or width)
are written as -1. Field names follow Triton's ``model_config.proto`` (``ModelConfig``,
``ModelInput``, ``ModelOutput``, ``ModelDynamicBatching``, ``ModelInstanceGroup``).

TensorRT engines that run litevit's custom ops as plugins need ``liblitevit_plugins.so`` inside
``tritonserver``: :func:`plugin_instructions` says how (``LD_PRELOAD`` or the TensorRT backend's
``plugins=`` option). Both only dlopen the library, which registers its plugins when it is loaded
on every TensorRT release (8.5 on; ``plugins/common/register.cpp``), so the same lines serve all.
Triton's ONNX Runtime backend runs litevit's ops through the model-local function bodies of an
``--ops function`` (or ``--ops inline``) export; a plugin-mode graph is refused.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litevit._io import atomic_open, ensure_writable_dir
from litevit.artifacts import graph_file, read_manifest
from litevit.errors import LitevitError
from litevit.runtime.trt_build import (
    DEFAULT_MAX_BATCH,
    PLUGIN_LIBRARY,
    PLUGINS_ENV,
    PRECISIONS,
    PYTHON_PLUGINS,
    engine_max_batch,
    read_engine_sidecar,
)

TRITON_BACKENDS = ("trt", "onnx")
PLATFORMS = {"trt": "tensorrt_plan", "onnx": "onnxruntime_onnx"}
# The file names Triton looks for in a version folder when config.pbtxt names none.
MODEL_FILES = {"trt": "model.plan", "onnx": "model.onnx"}
MODEL_VERSION = "1"
INSTANCE_KINDS = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}
# Long enough for a few requests to meet on an embedded CPU, short against a model's latency.
DEFAULT_QUEUE_DELAY_US = 1000
# numpy dtype names (the manifest's) -> Triton's DataType enum.
TRITON_DTYPES = {
    "bool": "TYPE_BOOL",
    "uint8": "TYPE_UINT8",
    "uint16": "TYPE_UINT16",
    "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64",
    "int8": "TYPE_INT8",
    "int16": "TYPE_INT16",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "float16": "TYPE_FP16",
    "float32": "TYPE_FP32",
    "float64": "TYPE_FP64",
}


@dataclass(frozen=True)
class TritonModel:
    """One model written into the repository."""

    name: str
    artifact: Path
    directory: Path
    model_file: Path
    backend: str
    max_batch_size: int
    # The plugin library the engine was built against (its sidecar's record), or PLUGIN_LIBRARY
    # when an engine without a sidecar may need it; None when no plugins are needed.
    plugin_library: str | None


def _triton_dtype(dtype: str, tensor: str, artifact: Path) -> str:
    if dtype not in TRITON_DTYPES:
        raise LitevitError(
            f"{tensor!r} of the artefact {str(artifact)!r} has dtype {dtype}, which Triton lacks."
        )
    return TRITON_DTYPES[dtype]


def _batches(manifest: dict[str, Any]) -> bool:
    """Whether the graph takes a dynamic batch: every input and output has a symbolic first dim."""
    tensors = [*manifest["inputs"], *manifest["outputs"]]
    return all(t["shape"] and isinstance(t["shape"][0], str) for t in tensors)


def _dims(shape: Sequence[int | str], batching: bool) -> list[int]:
    """Triton dims: without the batch axis when Triton batches; symbolic dims as -1."""
    return [-1 if isinstance(d, str) else int(d) for d in (shape[1:] if batching else shape)]


def _tensor_block(field: str, tensors: Sequence[dict[str, Any]], batching: bool, artifact: Path) -> list[str]:
    lines = [f"{field} ["]
    for index, tensor in enumerate(tensors):
        dims = ", ".join(str(d) for d in _dims(tensor["shape"], batching))
        lines += [
            "  {",
            f"    name: {_quote(tensor['name'])}",
            f"    data_type: {_triton_dtype(tensor['dtype'], tensor['name'], artifact)}",
            f"    dims: [ {dims} ]",
            "  }" + ("," if index < len(tensors) - 1 else ""),
        ]
    return [*lines, "]"]


def _quote(text: str) -> str:
    # Protobuf text format strings: C-style escapes for quote and backslash are enough for tensor
    # and model names, which the manifest took from an ONNX graph.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def model_config(
    manifest: dict[str, Any],
    backend: str,
    *,
    artifact: Path,
    max_batch_size: int,
    preferred_batch_sizes: Sequence[int] = (),
    max_queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
    instances: int = 1,
    instance_kind: str = "KIND_GPU",
) -> str:
    """``config.pbtxt`` for one artefact. ``max_batch_size`` 0 means Triton does not batch: the
    dims are then the graph's full shapes and there is no ``dynamic_batching`` block."""
    batching = max_batch_size > 0
    lines = [
        f"# Written by litevit triton-repo from {artifact.resolve()}",
        f"name: {_quote(manifest['model'])}",
        f"platform: {_quote(PLATFORMS[backend])}",
        f"max_batch_size: {max_batch_size}",
        *_tensor_block("input", manifest["inputs"], batching, artifact),
        *_tensor_block("output", manifest["outputs"], batching, artifact),
    ]
    if batching:
        lines.append("dynamic_batching {")
        if preferred_batch_sizes:
            lines.append(f"  preferred_batch_size: [ {', '.join(str(b) for b in preferred_batch_sizes)} ]")
        lines += [f"  max_queue_delay_microseconds: {max_queue_delay_us}", "}"]
    lines += ["instance_group [", "  {", f"    count: {instances}", f"    kind: {instance_kind}", "  }", "]"]
    return "\n".join(lines) + "\n"


def _max_batch_size(
    folder: Path, manifest: dict[str, Any], requested: int | None, engine_limit: int | None
) -> int:
    if not _batches(manifest):
        return 0
    limit = (
        engine_limit if engine_limit is not None else max(int(manifest.get("batch", 1)), DEFAULT_MAX_BATCH)
    )
    if requested is None:
        return limit
    if engine_limit is not None and requested > engine_limit:
        raise LitevitError(
            f"--max-batch {requested} exceeds the largest batch ({engine_limit}) of the engine's "
            f"optimisation profile in {str(folder)!r}: lower --max-batch or rebuild the engine with a "
            f"larger --shapes range."
        )
    return requested


def _trt_source(folder: Path, manifest: dict[str, Any], precision: str) -> tuple[Path, dict[str, Any] | None]:
    engine = folder / f"{manifest['model']}.{precision}.engine"
    if not engine.is_file():
        raise LitevitError(
            f"the artefact {str(folder)!r} has no {engine.name}; build it on the machine that runs Triton, "
            f"with the TensorRT version of its tensorrt backend: "
            f"`litevit build {folder} --precision {precision}`."
        )
    return engine, read_engine_sidecar(engine)


def _plugin_library(folder: Path, manifest: dict[str, Any], sidecar: dict[str, Any] | None) -> str | None:
    if sidecar is None:
        # Unknown how the engine was built: plugins may be needed unless no litevit op can be one.
        plugin_ops = manifest.get("custom_ops") and manifest.get("ops_mode") != "inline"
        return PLUGIN_LIBRARY if plugin_ops else None
    plugins = sidecar.get("plugins")
    if not plugins:
        return None
    if plugins["library"] == PYTHON_PLUGINS:
        raise LitevitError(
            f"the engine of {str(folder)!r} was built with litevit's Python plugins, which run only "
            f"inside litevit; rebuild it with --plugins {PLUGIN_LIBRARY} (or from an --ops inline export) "
            f"for Triton."
        )
    return str(plugins["library"])


def _onnx_source(folder: Path, manifest: dict[str, Any], precision: str) -> Path:
    graph = graph_file(folder, manifest, precision)
    if manifest.get("custom_ops") and manifest.get("ops_mode") == "plugin":
        raise LitevitError(
            f"{str(graph)!r} is a plugin-mode graph (its litevit ops have no function bodies), which "
            f"Triton's ONNX Runtime backend cannot run: export it with --ops function or --ops inline."
        )
    return graph


def _copy_atomically(source: Path, target: Path) -> None:
    with open(source, "rb") as reader, atomic_open(target, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)


def write_triton_repo(
    artifacts: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    backend: str = "trt",
    precision: str = "fp32",
    max_batch: int | None = None,
    preferred_batch_sizes: Sequence[int] = (),
    max_queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
    instances: int = 1,
    device: str | None = None,
) -> list[TritonModel]:
    """Write one Triton model per artefact folder into the repository ``out``.

    ``max_batch`` (default: the engine profile's largest batch, else max(exported batch, 8)) applies
    to graphs with a dynamic batch axis; ``device`` is where the instances run (default: gpu for
    TensorRT, cpu for ONNX Runtime). Every check runs before anything is written, and each file is
    written atomically, so an existing model folder is only ever replaced by a complete one."""
    if backend not in TRITON_BACKENDS:
        raise LitevitError(f"unknown backend {backend!r}; choose one of {', '.join(TRITON_BACKENDS)}.")
    if precision not in PRECISIONS:
        raise LitevitError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    device = device or ("gpu" if backend == "trt" else "cpu")
    if device not in INSTANCE_KINDS:
        raise LitevitError(f"unknown device {device!r}; choose one of {', '.join(INSTANCE_KINDS)}.")
    if backend == "trt" and device == "cpu":
        raise LitevitError("TensorRT engines run on a GPU only; use --backend onnx for CPU instances.")
    if instances < 1:
        raise LitevitError(f"--instances must be at least 1, not {instances}.")
    if max_batch is not None and max_batch < 1:
        raise LitevitError(f"--max-batch must be at least 1, not {max_batch}.")
    if max_queue_delay_us < 0:
        raise LitevitError(f"--max-queue-delay-us must be at least 0, not {max_queue_delay_us}.")
    if not artifacts:
        raise LitevitError("name at least one artefact folder.")

    planned: list[tuple[TritonModel, Path, str]] = []
    for artifact in artifacts:
        folder = Path(artifact)
        manifest = read_manifest(folder)
        name = manifest["model"]
        if any(model.name == name for model, _, _ in planned):
            raise LitevitError(
                f"two artefacts are both model {name!r}; a Triton repository holds one model per name."
            )
        if backend == "trt":
            source, sidecar = _trt_source(folder, manifest, precision)
            plugin_library = _plugin_library(folder, manifest, sidecar)
            engine_limit = engine_max_batch(sidecar, [t["name"] for t in manifest["inputs"]])
        else:
            source, plugin_library, engine_limit = _onnx_source(folder, manifest, precision), None, None
        max_batch_size = _max_batch_size(folder, manifest, max_batch, engine_limit)
        outside = [b for b in preferred_batch_sizes if not 1 <= b <= max_batch_size]
        if outside and max_batch_size > 0:
            raise LitevitError(
                f"preferred batch sizes must lie in 1..{max_batch_size} (the max batch of {name}); "
                f"{', '.join(map(str, outside))} do not."
            )
        config = model_config(
            manifest,
            backend,
            artifact=folder,
            max_batch_size=max_batch_size,
            preferred_batch_sizes=preferred_batch_sizes,
            max_queue_delay_us=max_queue_delay_us,
            instances=instances,
            instance_kind=INSTANCE_KINDS[device],
        )
        directory = Path(out) / name
        model = TritonModel(
            name,
            folder,
            directory,
            directory / MODEL_VERSION / MODEL_FILES[backend],
            backend,
            max_batch_size,
            plugin_library,
        )
        planned.append((model, source, config))

    for model, source, config in planned:
        ensure_writable_dir(model.model_file.parent)
        _copy_atomically(source, model.model_file)
        with atomic_open(model.directory / "config.pbtxt", "w") as handle:
            handle.write(config)
    return [model for model, _, _ in planned]


def unused_batching_options(
    models: Sequence[TritonModel],
    max_batch: int | None,
    preferred_batch_sizes: Sequence[int],
    max_queue_delay_us: int | None,
) -> list[str]:
    """One warning per model written without batching (a fixed-batch graph: max_batch_size 0, no
    dynamic_batching block) for the batching options the user gave, which then cannot take effect."""
    given = [
        option
        for option, value in (
            ("--max-batch", max_batch),
            ("--preferred-batch-sizes", list(preferred_batch_sizes) or None),
            ("--max-queue-delay-us", max_queue_delay_us),
        )
        if value is not None
    ]
    return [
        f"warning: {' and '.join(given)} cannot take effect on {model.name}: its graph takes a fixed batch, "
        f"so Triton runs it unbatched (max_batch_size 0); export it with --dynamic-batch to batch requests."
        for model in models
        if given and model.max_batch_size == 0
    ]


def plugin_instructions(repo: str | os.PathLike[str], models: Sequence[TritonModel]) -> list[str]:
    """How to start ``tritonserver`` on this repository, with the plugin library loaded where a
    TensorRT model needs it; and the ONNX Runtime note for ONNX models."""
    repository = shlex.quote(str(Path(repo).resolve()))
    libraries = sorted({m.plugin_library for m in models if m.plugin_library is not None})
    lines = []
    if not libraries:
        lines.append(f"start Triton with: tritonserver --model-repository={repository}")
    else:
        needing = ", ".join(m.name for m in models if m.plugin_library is not None)
        # A bare library name means "wherever `litevit plugins build` put it on the Triton machine".
        paths = [lib if "/" in lib else f"/path/to/{lib}" for lib in libraries]
        preload = ":".join(shlex.quote(p) for p in paths)
        lines += [
            f"{needing} run litevit's custom ops as TensorRT plugins: load {', '.join(libraries)} into "
            f"tritonserver (built against the same TensorRT as its tensorrt backend; `litevit plugins build` "
            f"on that machine, or ${PLUGINS_ENV} there; it registers its plugins when loaded, on every "
            f"TensorRT release) either with",
            f"  LD_PRELOAD={preload}:${{LD_PRELOAD}} tritonserver --model-repository={repository}",
            "or with the TensorRT backend's plugins option (several libraries separated by ';'):",
            f"  tritonserver --model-repository={repository} "
            f"--backend-config=tensorrt,plugins={shlex.quote(';'.join(paths))}",
        ]
    if any(m.backend == "onnx" for m in models):
        lines.append(
            "Triton's ONNX Runtime backend runs litevit's ops through the model-local function bodies "
            "of an --ops function export (or the standard ops of --ops inline); it needs no plugin library."
        )
    return lines


TRITON_REPO_DESCRIPTION = (
    "Write a Triton Inference Server model repository from artefact folders: per model config.pbtxt "
    "(inputs, outputs, dims, dynamic batching, instance group) and 1/model.plan (the TensorRT engine "
    "MODEL.PRECISION.engine) or 1/model.onnx, and say how tritonserver must load litevit's plugin library."
)


def configure_triton_repo_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifacts", nargs="+", metavar="ARTIFACT_DIR", help="artefact folders")
    parser.add_argument("--out", required=True, metavar="REPO", help="the model repository to write into")
    parser.add_argument(
        "--backend",
        choices=TRITON_BACKENDS,
        default="trt",
        help="trt: the engine, platform tensorrt_plan; onnx: the ONNX graph, platform onnxruntime_onnx "
        "(default: trt)",
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="default: fp32")
    parser.add_argument(
        "--max-batch",
        type=int,
        metavar="N",
        help=f"max_batch_size of dynamic-batch graphs (default: the engine profile's largest batch, else "
        f"max(exported batch, {DEFAULT_MAX_BATCH})); fixed-batch graphs get 0",
    )
    parser.add_argument(
        "--preferred-batch-sizes",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="dynamic_batching preferred_batch_size (default: none, Triton chooses)",
    )
    parser.add_argument(
        "--max-queue-delay-us",
        type=int,
        metavar="US",
        help=f"how long a request may wait for others to batch with (default: {DEFAULT_QUEUE_DELAY_US})",
    )
    parser.add_argument(
        "--instances", type=int, default=1, metavar="N", help="instances per device (default: 1)"
    )
    parser.add_argument(
        "--device",
        choices=sorted(INSTANCE_KINDS),
        help="instance_group kind (default: gpu for trt, cpu for onnx)",
    )


def run_triton_repo(args: argparse.Namespace) -> int:
    models = write_triton_repo(
        args.artifacts,
        args.out,
        backend=args.backend,
        precision=args.precision,
        max_batch=args.max_batch,
        preferred_batch_sizes=args.preferred_batch_sizes,
        max_queue_delay_us=DEFAULT_QUEUE_DELAY_US
        if args.max_queue_delay_us is None
        else args.max_queue_delay_us,
        instances=args.instances,
        device=args.device,
    )
    for warning in unused_batching_options(
        models, args.max_batch, args.preferred_batch_sizes, args.max_queue_delay_us
    ):
        print(warning, file=sys.stderr)
    for model in models:
        batching = f"max_batch_size {model.max_batch_size}" if model.max_batch_size else "fixed batch"
        print(f"wrote {model.directory}/config.pbtxt and {model.model_file} ({batching})")
    for line in plugin_instructions(args.out, models):
        print(line)
    return 0


__all__ = [
    "TRITON_REPO_DESCRIPTION",
    "TritonModel",
    "configure_triton_repo_parser",
    "model_config",
    "plugin_instructions",
    "run_triton_repo",
    "write_triton_repo",
]
