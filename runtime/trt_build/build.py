"""The build itself: ONNX graph -> TensorRT plan + sidecar, for one file or an artefact folder."""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from litevit._compat import remove_suffix
from litevit._deps import require
from litevit._io import ensure_writable_dir, sha256_file, write_bytes, write_json
from litevit.artifacts import MANIFEST, file_sha256, graph_file, read_manifest, verified_file
from litevit.errors import LitevitError
from litevit.runtime import environment, runners
from litevit.runtime.trt_build.calibration import (
    CalibrationCache,
    ImplicitCalibration,
    calibration_record,
    implicit_calibration_batches,
)
from litevit.runtime.trt_build.features import TrtFeatures
from litevit.runtime.trt_build.parity import engine_parity, format_parity, parity_reference
from litevit.runtime.trt_build.parser_coverage import TRT_TARGET_KEY, require_parser_support, target_notice
from litevit.runtime.trt_build.plugins import (
    load_plugin_library,
    plugin_library_path,
    plugin_registered,
    plugins_record,
)
from litevit.runtime.trt_build.profiles import ShapeRange, graph_inputs, optimisation_profiles
from litevit.runtime.trt_build.routing import (
    GraphKind,
    ParserInput,
    graph_kind,
    graph_metadata,
    route_custom_ops,
)
from litevit.runtime.trt_build.sidecar import ENGINE_FORMAT, sidecar_path
from litevit.runtime.trt_build.tensorrt_log import CapturedLog, capturing_logger, tensorrt_failure

if TYPE_CHECKING:
    import tensorrt as trt


PRECISIONS = ("fp32", "fp16", "int8")
INT8_MODES = ("qdq", "implicit")


@dataclass
class EngineBuild:
    """What a build wrote: the engine, its sidecar (also as a dict) and whether parity held."""

    engine: Path
    sidecar_path: Path
    sidecar: dict[str, Any]

    @property
    def parity_status(self) -> str:
        return str(self.sidecar["parity"]["status"])


def _check_request(
    features: TrtFeatures,
    precision: str,
    int8_mode: str,
    strongly_typed: bool | None,
    kind: GraphKind,
    onnx_name: str,
    dla_core: int | None,
) -> bool:
    """Refuse what this TensorRT or this graph cannot build, one sentence each; return whether
    the network is strongly typed."""
    if precision not in PRECISIONS:
        raise LitevitError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if int8_mode not in INT8_MODES:
        raise LitevitError(f"unknown INT8 mode {int8_mode!r}; choose one of {', '.join(INT8_MODES)}.")
    strong = features.strongly_typed(strongly_typed)
    implicit = precision == "int8" and int8_mode == "implicit"
    if implicit and not features.int8_calibrators:
        raise LitevitError(
            f"TensorRT {features.version} removed implicit INT8 calibration; build the Q/DQ INT8 graph "
            f"with --int8-mode qdq."
        )
    if implicit and strongly_typed:
        raise LitevitError(
            "implicit INT8 calibration needs a weakly typed network; leave out --strongly-typed."
        )
    # What each (precision, typing) builds from: the graph's own types decide a strong build.
    accepted: dict[tuple[str, bool], tuple[GraphKind, ...]] = {
        ("fp32", False): ("fp32",),
        ("fp32", True): ("fp32",),
        ("fp16", False): ("fp32", "fp16"),
        ("fp16", True): ("fp16",),
        ("int8", False): ("int8-qdq",) if not implicit else ("fp32",),
        ("int8", True): ("int8-qdq",),
    }
    wanted = accepted[(precision, strong)]
    if kind not in wanted:
        typing = "strongly typed" if strong else "weakly typed"
        what = "implicit INT8" if implicit else f"a {typing} {precision} engine"
        graphs = {"fp32": "an FP32 graph", "fp16": "an FP16 graph", "int8-qdq": "a Q/DQ INT8 graph"}
        raise LitevitError(
            f"{onnx_name} is {graphs[kind]}, but {what} builds from {' or '.join(graphs[k] for k in wanted)}."
        )
    if dla_core is not None and precision == "fp32":
        raise LitevitError("DLA runs FP16 and INT8 only; build --precision fp16 or int8 for --dla.")
    return strong


def _builder_flag_names(precision: str, strong: bool) -> list[str]:
    """Weakly typed builds choose precision with flags; INT8 adds FP16 so that layers without an
    INT8 implementation run in FP16 rather than FP32. Strongly typed builds take none."""
    if strong or precision == "fp32":
        return []
    return ["FP16"] if precision == "fp16" else ["INT8", "FP16"]


def build_engine(
    onnx_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    precision: str = "fp32",
    int8_mode: str = "qdq",
    strongly_typed: bool | None = None,
    plugin_library: str | os.PathLike[str] | None = None,
    profiles: Mapping[str, ShapeRange] | None = None,
    workspace_mb: int | None = None,
    timing_cache: str | os.PathLike[str] | None = None,
    dla_core: int | None = None,
    calibrator_batches: Callable[[], Iterable[np.ndarray]] | None = None,
    calibration_cache: str | os.PathLike[str] | None = None,
    calibration_key: str | None = None,
    log: Callable[[str], None] = print,
) -> EngineBuild:
    """Build ``onnx_path`` into the TensorRT plan ``out_path`` and its sidecar ``out_path.json``.

    ``strongly_typed=None`` builds what the installed TensorRT requires (strong on 11, weak
    before); ``profiles`` overrides min/opt/max per input (see :func:`optimisation_profiles`);
    ``plugin_library`` defaults to ``$LITEVIT_PLUGINS``. Implicit INT8 (``int8_mode="implicit"``,
    TensorRT < 11) calibrates with ``calibrator_batches()`` (float32 NCHW arrays at the profile's
    opt shape; ``calibration_key`` names them, their preprocessing and the graph) unless
    ``calibration_cache`` (default: next to the engine) holds a cache litevit wrote for that key.
    When the ONNX sits in an artefact folder, its manifest supplies the exported batch and size,
    the preprocessing of the parity input and the FP32 graph that parity compares with.
    """
    require("tensorrt")
    import tensorrt as trt

    source = Path(onnx_path)
    engine_path = Path(out_path)
    if not source.is_file():
        raise LitevitError(f"the ONNX graph {str(source)!r} does not exist.")
    ensure_writable_dir(engine_path.parent)
    if workspace_mb is not None and workspace_mb < 1:
        raise LitevitError(f"--workspace must be at least 1 MB; got {workspace_mb}.")
    features = TrtFeatures.from_version(trt.__version__)
    try:
        # External data (if any) stays on disk: the parser reads it relative to the path given.
        model = onnx.load(str(source), load_external_data=False)
    except Exception as exc:  # protobuf decode errors have many types
        raise LitevitError(f"{str(source)!r} is not a readable ONNX file: {exc}.") from None
    manifest = artifact_manifest_for(source)
    kind = graph_kind(model)
    strong = _check_request(features, precision, int8_mode, strongly_typed, kind, source.name, dla_core)
    calibration = None
    if precision == "int8" and int8_mode == "implicit":
        if calibrator_batches is None or calibration_key is None:
            raise LitevitError("implicit INT8 needs calibration images: pass --calib DIR.")
        cache_path = (
            Path(calibration_cache)
            if calibration_cache is not None
            else engine_path.with_name(remove_suffix(engine_path.name, ".engine") + ".calibration.cache")
        )
        cache = CalibrationCache(cache_path, calibration_key)
        calibration = ImplicitCalibration(cache, calibrator_batches, cache.read())
        if features.int8_calibrators_deprecated:
            log(
                f"note: TensorRT {features.version} deprecates implicit INT8 calibration (removed in 11); "
                f"the Q/DQ graph (--int8-mode qdq) builds on every release"
            )
    shape_ranges = optimisation_profiles(model, manifest, profiles or {})
    library = plugin_library_path(plugin_library)
    if library is not None:
        load_plugin_library(library)
    parser_input = route_custom_ops(model, features, library, plugin_registered)
    for route in parser_input.routes:
        log(route.line)
    target = (manifest or {}).get("trt_target") or graph_metadata(model, TRT_TARGET_KEY)
    notice = target_notice(target, trt.__version__, source.name)
    if notice is not None:
        log(notice)
    # Every node against this release's parser, before TensorRT sees the graph.
    require_parser_support(parser_input.model, trt.__version__, graph=source.name, routes=parser_input.routes)

    captured = CapturedLog()
    logger = capturing_logger(captured)
    # TensorRT's own plugins, before the parser looks for any: the 8.x parser implements some
    # standard ops with them, and graphs may name one (ROIAlign_TRT).
    trt.init_libnvinfer_plugins(logger, "")
    builder = trt.Builder(logger)
    log_path = engine_path.with_name(engine_path.name + ".log")
    # The parser owns the weights the network points into: it lives until the build is done.
    network, _parser = _parse(builder, logger, features, strong, parser_input, source, captured, log_path)
    config = builder.create_builder_config()
    flag_names = _configure(builder, network, config, precision, strong, shape_ranges, workspace_mb, dla_core)
    timing = _attach_timing_cache(config, Path(timing_cache) if timing_cache is not None else None, log)

    typing = "strongly typed" if strong else "weakly typed"
    log(f"building {engine_path.name} with TensorRT {trt.__version__} ({typing})")
    start = time.perf_counter()
    serialized: trt.IHostMemory | None
    if calibration is None:
        serialized = builder.build_serialized_network(network, config)
    else:
        serialized = calibration.build(builder, network, config, shape_ranges, log)
    build_seconds = time.perf_counter() - start
    if serialized is None:
        raise tensorrt_failure(f"build {engine_path.name}", captured, [], log_path)
    write_bytes(engine_path, bytes(memoryview(serialized)))
    log_path.unlink(missing_ok=True)
    if timing is not None:
        write_bytes(timing, bytes(memoryview(config.get_timing_cache().serialize())))

    gpu = environment.gpu_facts()
    reference = parity_reference(source, manifest)
    sidecar: dict[str, Any] = {
        "format": ENGINE_FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "engine": engine_path.name,
        "engine_sha256": sha256_file(engine_path),
        "engine_bytes": engine_path.stat().st_size,
        "tensorrt": trt.__version__,
        "gpu": {
            "name": gpu.get("gpu_name"),
            "compute_capability": gpu.get("compute_capability"),
            "driver": gpu.get("driver"),
            "cuda": environment.cuda_version(),
        },
        "plugins": plugins_record(library)
        if library is not None and any(r.route == "plugin" for r in parser_input.routes)
        else None,
        "precision": precision,
        "typing": "strong" if strong else "weak",
        "int8_mode": int8_mode if precision == "int8" else None,
        "builder_flags": flag_names,
        "parser_flags": parser_input.parser_flags,
        "trt_target": target,
        "profiles": [{name: shapes.as_dict() for name, shapes in shape_ranges.items()}],
        "workspace_mb": workspace_mb,
        "dla_core": dla_core,
        "timing_cache": str(timing) if timing is not None else None,
        "calibration": calibration_record(manifest, precision, calibration),
        "source": {
            "onnx": source.name,
            "path": str(source.resolve()),
            "sha256": file_sha256(source),
            "graph": kind,
            "model": manifest["model"] if manifest else graph_metadata(model, "litevit.model"),
            "artifact": str(source.parent.resolve()) if manifest else None,
        },
        "custom_ops": [asdict(route) for route in parser_input.routes],
        "build_seconds": round(build_seconds, 2),
        "parity": {"status": "not run", "reason": "the build stopped before the parity check"},
    }
    sidecar_file = sidecar_path(engine_path)
    # Written before parity, so that the runner's own checks (sidecar, plugin library) load the engine.
    write_json(sidecar_file, sidecar)
    log(f"wrote {engine_path} ({build_seconds:.1f} s); comparing with {reference.name} on ONNX Runtime")
    sidecar["parity"] = engine_parity(
        engine_path,
        reference,
        shape_ranges,
        precision,
        manifest.get("data_config") if manifest else None,
        library,
    )
    write_json(sidecar_file, sidecar)
    log(format_parity(sidecar["parity"]))
    return EngineBuild(engine_path, sidecar_file, sidecar)


def _parse(
    builder: trt.Builder,
    logger: trt.ILogger,
    features: TrtFeatures,
    strong: bool,
    parser_input: ParserInput,
    source: Path,
    captured: CapturedLog,
    log_path: Path,
) -> tuple[trt.INetworkDefinition, trt.OnnxParser]:
    import tensorrt as trt

    flags = 0
    if features.explicit_batch_flag:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strong and features.strongly_typed_flag:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    for flag in parser_input.parser_flags:
        # By name: ENABLE_PLUGIN_OVERRIDE (10.15+) postdates the type stubs litevit checks against.
        parser.set_flag(trt.OnnxParserFlag.__members__[flag])
    # The source path lets the parser find external data files, should a graph have them.
    if not parser.parse(parser_input.model.SerializeToString(), str(source)):
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
        raise tensorrt_failure(f"parse {source.name}", captured, errors, log_path)
    return network, parser


def _configure(
    builder: trt.Builder,
    network: trt.INetworkDefinition,
    config: trt.IBuilderConfig,
    precision: str,
    strong: bool,
    shape_ranges: Mapping[str, ShapeRange],
    workspace_mb: int | None,
    dla_core: int | None,
) -> list[str]:
    """Workspace, precision flags, the optimisation profile and DLA; returns the flags set."""
    import tensorrt as trt

    if workspace_mb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    flag_names = _builder_flag_names(precision, strong)
    for name in flag_names:
        config.set_flag(trt.BuilderFlag.__members__[name])
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    if any(-1 in runners._shape_tuple(tensor.shape) for tensor in inputs):
        profile = builder.create_optimization_profile()
        for tensor in inputs:
            shapes = shape_ranges[tensor.name]
            profile.set_shape(
                tensor.name,
                trt.Dims(list(shapes.min)),
                trt.Dims(list(shapes.opt)),
                trt.Dims(list(shapes.max)),
            )
        config.add_optimization_profile(profile)
    if dla_core is not None:
        if not 0 <= dla_core < builder.num_DLA_cores:
            raise LitevitError(
                f"--dla {dla_core} names no DLA core here; this device has {builder.num_DLA_cores} "
                f"(Jetson AGX Orin has 2, numbered 0 and 1)."
            )
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        # Layers DLA cannot run go to the GPU instead of failing the build.
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        flag_names = [*flag_names, "GPU_FALLBACK"]
    return flag_names


def _attach_timing_cache(
    config: trt.IBuilderConfig, path: Path | None, log: Callable[[str], None]
) -> Path | None:
    """Start from the timing cache at ``path`` (when it exists and fits this GPU and TensorRT)."""
    if path is None:
        return None
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, False):
        log(f"the timing cache {path.name} is from another GPU or TensorRT; starting a new one")
        config.set_timing_cache(config.create_timing_cache(b""), False)
    return path


def artifact_manifest_for(onnx_path: Path) -> dict[str, Any] | None:
    """The manifest of the artefact folder holding ``onnx_path``, when it lists that file."""
    if not (onnx_path.parent / MANIFEST).is_file():
        return None
    manifest = read_manifest(onnx_path.parent)
    if onnx_path.name not in manifest["files"]:
        return None
    verified_file(onnx_path.parent, manifest, onnx_path.name)
    return manifest


def artifact_graph(
    folder: Path, manifest: Mapping[str, Any], precision: str, int8_mode: str, strong: bool
) -> Path:
    """Which of the artefact's graphs a build needs: FP32 for fp32, weakly typed fp16 (+ FP16
    flag) and implicit INT8; the FP16 graph for strongly typed fp16; the Q/DQ graph for INT8."""
    if precision == "fp16" and strong:
        return graph_file(folder, dict(manifest), "fp16")
    if precision == "int8" and int8_mode == "qdq":
        return graph_file(folder, dict(manifest), "int8")
    return graph_file(folder, dict(manifest), "fp32")


def build_artifact(
    folder: str | os.PathLike[str],
    precision: str,
    *,
    int8_mode: str = "qdq",
    strongly_typed: bool | None = None,
    plugin_library: str | os.PathLike[str] | None = None,
    profiles: Mapping[str, ShapeRange] | None = None,
    workspace_mb: int | None = None,
    timing_cache: str | os.PathLike[str] | None = None,
    dla_core: int | None = None,
    calib: str | os.PathLike[str] | None = None,
    calibration_cache: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] = print,
) -> EngineBuild:
    """Build ``MODEL.PRECISION.engine`` (into ``out_dir``, default the folder) from the graph of
    the artefact ``folder`` that this TensorRT version needs for ``precision``."""
    require("tensorrt")
    import tensorrt as trt

    root = Path(folder)
    manifest = read_manifest(root)
    features = TrtFeatures.from_version(trt.__version__)
    source = artifact_graph(root, manifest, precision, int8_mode, features.strongly_typed(strongly_typed))
    target = Path(out_dir) if out_dir is not None else root
    engine = target / f"{manifest['model']}.{precision}.engine"
    batches = None
    key = None
    if precision == "int8" and int8_mode == "implicit" and features.int8_calibrators:
        model = onnx.load(str(source), load_external_data=False)
        shape = optimisation_profiles(model, manifest, profiles or {})[graph_inputs(model)[0][0]].opt
        if calib is None:
            raise LitevitError("implicit INT8 needs calibration images: pass --calib DIR.")
        batches, key = implicit_calibration_batches(manifest, calib, shape, file_sha256(source))
    return build_engine(
        source,
        engine,
        precision=precision,
        int8_mode=int8_mode,
        strongly_typed=strongly_typed,
        plugin_library=plugin_library,
        profiles=profiles,
        workspace_mb=workspace_mb,
        timing_cache=timing_cache,
        dla_core=dla_core,
        calibrator_batches=batches,
        calibration_cache=calibration_cache,
        calibration_key=key,
        log=log,
    )
