"""TensorRT engine builds for TensorRT 8.5 through 11: what ``litevit build`` does and writes.

``build_engine(ONNX, ENGINE, precision=...)`` parses an ONNX graph with TensorRT's ONNX parser,
builds a serialized engine (a plain TensorRT plan) and writes next to it a sidecar
``ENGINE.json`` (:data:`ENGINE_FORMAT`): which TensorRT, GPU, plugin library, precision, typing,
profiles and source graph made it, which path each litevit custom op took, and how the engine
compares with ONNX Runtime on the same input. ``build_artifact(FOLDER, precision)`` picks the
graph from an artefact folder's manifest. :class:`~litevit.runtime.runners.TrtRunner` reads the
sidecar before loading an engine and refuses one built for another TensorRT or GPU.

Every difference between TensorRT versions is decided in one place, :class:`TrtFeatures`, from
the installed ``tensorrt.__version__``. This module imports without TensorRT: ``tensorrt`` is
imported inside the functions that talk to it.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import onnx

from litevit._deps import has, require
from litevit._io import ensure_writable_dir, sha256_file, write_bytes, write_json
from litevit.artifacts import MANIFEST, graph_file, read_manifest
from litevit import synthetic
from litevit.errors import LitevitError
from litevit.onnx_graphs import custom_nodes
from litevit.runtime import environment, runners

if TYPE_CHECKING:
    import tensorrt as trt

ENGINE_FORMAT = "litevit.engine/1"
CALIBRATION_KEY_FORMAT = "litevit.calibration-cache/1"
PLUGIN_LIBRARY = "liblitevit_plugins.so"
PLUGINS_ENV = "LITEVIT_PLUGINS"
# The plugin "library" value (--plugins, $LITEVIT_PLUGINS, the sidecar) that means litevit's
# Python IPluginV3 plugins (litevit.plugins.python_plugin), registered in this process.
PYTHON_PLUGINS: Final = "python"
PRECISIONS = ("fp32", "fp16", "int8")
INT8_MODES = ("qdq", "implicit")
MIN_TENSORRT = (8, 5)
# Dynamic batch profiles span 1..max(exported batch, 8), as litevit-export's trtexec hint does.
DEFAULT_MAX_BATCH = 8
# Implicit INT8: this many images of the --calib folder, evenly spread over it.
IMPLICIT_CALIBRATION_IMAGES = 512

Route = Literal["plugin", "function", "inline"]
# Where plugins come from: a shared library, or litevit's Python plugins.
PluginSource = Path | Literal["python"]
PluginPrecedence = Literal["no-functions", "function", "plugin-if-registered", "plugin-if-namespaced"]


# ---------------------------------------------------------------------------------------------
# Version facts


@dataclass(frozen=True)
class TrtFeatures:
    """What the installed TensorRT can do, decided from its version alone.

    ================================  ===========================  ==============================
    fact                              versions                     source
    ================================  ===========================  ==============================
    weak typing: BuilderFlag.FP16 /   < 11                         TRT 11 migration guide (removed
    INT8, precision by builder flags                               in 11.0; deprecated 10.12)
    NetworkDefinitionCreationFlag.    9.0 <= v < 11 (opt-in)       NvInfer.h on release/9.0 (first
    STRONGLY_TYPED                                                 with kSTRONGLY_TYPED); 11.0:
                                                                   always strong, flag deprecated
    implicit INT8 calibrators         < 11                         IInt8Calibrator removed in 11.0
    (IInt8EntropyCalibrator2)                                      (support policy; 10.1 deprecated)
    parser runs model-local ONNX      >= 9.0                       onnx-tensorrt LocalFunction-
    function bodies                                                Importer; 8.5/8.6 have none
    plugin over function body         10.7-10.14: if registered;   CHANGELOG 10.7 ("prioritizes
                                      >= 10.15: if registered and  plugins over local functions");
                                      the node has plugin_namespace ModelImporter.cpp >= 10.15,
                                      or ENABLE_PLUGIN_OVERRIDE    CHANGELOG 10.15 (flag added)
    IPluginRegistry.load_library      >= 8.6 (8.5: ctypes.CDLL)    python/src/infer/pyPlugin.cpp
                                                                   release/8.6 vs release/8.5
    registry lookup get_creator       >= 10.0 (get_plugin_creator  pyPlugin.cpp release/10.0
    (finds V3 creators too)           before)
    explicit-batch creation flag      < 10 (ignored in 10.x,       Python API docs ("always
                                      absent from 11.0)            explicit batch in 10.0");
                                                                   NvInfer.h release/11.0
    ================================  ===========================  ==============================

    The memory-pool API (``IBuilderConfig.set_memory_pool_limit``) exists from 8.4, and
    ``max_workspace_size`` is gone from 10.0, so every supported version (>= 8.5) sets the
    workspace one way: no flag is needed for it.
    """

    version: str
    weak_typing: bool
    strongly_typed_flag: bool
    always_strongly_typed: bool
    int8_calibrators: bool
    plugin_precedence: PluginPrecedence
    registry_load_library: bool
    registry_get_creator: bool
    explicit_batch_flag: bool

    @classmethod
    def from_version(cls, version: str) -> TrtFeatures:
        match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
        if match is None:
            raise LitevitError(f"cannot read the TensorRT version {version!r}.")
        v = (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))
        if v[:2] < MIN_TENSORRT:
            raise LitevitError(
                f"TensorRT {version} is too old; litevit builds engines with TensorRT "
                f"{MIN_TENSORRT[0]}.{MIN_TENSORRT[1]} or newer (JetPack 5.1+)."
            )
        precedence: PluginPrecedence
        if v < (9, 0):
            precedence = "no-functions"
        elif v < (10, 7):
            precedence = "function"
        elif v < (10, 15):
            precedence = "plugin-if-registered"
        else:
            precedence = "plugin-if-namespaced"
        return cls(
            version=version,
            weak_typing=v < (11, 0),
            strongly_typed_flag=(9, 0) <= v < (11, 0),
            always_strongly_typed=v >= (11, 0),
            int8_calibrators=v < (11, 0),
            plugin_precedence=precedence,
            registry_load_library=v >= (8, 6),
            registry_get_creator=v >= (10, 0),
            explicit_batch_flag=v < (10, 0),
        )

    @property
    def parses_local_functions(self) -> bool:
        return self.plugin_precedence != "no-functions"

    def strongly_typed(self, requested: bool | None) -> bool:
        """Whether a build is strongly typed: ``requested`` (None: what this version requires,
        i.e. strong on 11 and weak before), or one sentence when this version cannot."""
        if requested and not (self.strongly_typed_flag or self.always_strongly_typed):
            raise LitevitError(
                f"TensorRT {self.version} has no strongly typed networks (9.0+); build weakly typed "
                f"(leave out --strongly-typed)."
            )
        if requested is False and not self.weak_typing:
            raise LitevitError(
                f"TensorRT {self.version} builds strongly typed networks only; leave out --weakly-typed."
            )
        return bool(requested) or self.always_strongly_typed


def installed_features() -> TrtFeatures:
    import tensorrt as trt

    return TrtFeatures.from_version(trt.__version__)


# ---------------------------------------------------------------------------------------------
# Plugin library

# Libraries loaded into this process's plugin registry: TensorRT refuses to load one twice.
_LOADED_PLUGIN_LIBRARIES: set[Path] = set()


def plugin_library_path(explicit: str | os.PathLike[str] | None) -> PluginSource | None:
    """The plugin library to use: ``explicit`` (``--plugins``), else ``$LITEVIT_PLUGINS``, else none;
    the value ``python`` means litevit's Python plugins."""
    chosen = explicit if explicit is not None else os.environ.get(PLUGINS_ENV) or None
    if chosen is None:
        return None
    if chosen == PYTHON_PLUGINS:
        return PYTHON_PLUGINS
    path = Path(chosen).expanduser().resolve()
    if not path.is_file():
        origin = "--plugins" if explicit is not None else f"${PLUGINS_ENV}"
        raise LitevitError(f"the plugin library {str(path)!r} ({origin}) does not exist.")
    return path


def plugin_source_name(source: PluginSource) -> str:
    """How build lines and errors name a plugin source."""
    return "litevit.plugins.python_plugin" if source == PYTHON_PLUGINS else Path(source).name


def load_plugin_library(path: PluginSource) -> None:
    """Register the plugin creators of the library at ``path`` (or litevit's Python plugins)
    with TensorRT, once per process."""
    if path == PYTHON_PLUGINS:
        from litevit.plugins import python_plugin

        python_plugin.register()
        return
    import tensorrt as trt

    if path in _LOADED_PLUGIN_LIBRARIES:
        return
    features = TrtFeatures.from_version(trt.__version__)
    if features.registry_load_library:
        if trt.get_plugin_registry().load_library(str(path)) is None:
            raise LitevitError(
                f"TensorRT {trt.__version__} could not load the plugin library {str(path)!r} (it must "
                f"export getCreators or getPluginCreators, and none of its plugins may be registered "
                f"already)."
            )
    else:
        # TensorRT 8.5 has no load_library: the library's static initialisers register its creators.
        try:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            raise LitevitError(f"the plugin library {str(path)!r} does not load: {exc}.") from None
    _LOADED_PLUGIN_LIBRARIES.add(path)


def plugin_registered(name: str, version: str, namespace: str) -> bool:
    """Whether a creator for plugin ``namespace::name`` version ``version`` is registered."""
    import tensorrt as trt

    registry = trt.get_plugin_registry()
    if TrtFeatures.from_version(trt.__version__).registry_get_creator:
        return registry.get_creator(name, version, namespace) is not None
    return registry.get_plugin_creator(name, version, namespace) is not None


# ---------------------------------------------------------------------------------------------
# The graph: custom ops, precision, shapes


@dataclass(frozen=True)
class OpRoute:
    """How the nodes of one litevit op reach TensorRT, and the line that says so."""

    op_type: str
    count: int
    route: Route
    line: str


@dataclass
class ParserInput:
    """The graph handed to the parser (function bodies stripped where plugins must win), each
    op's route, and the OnnxParserFlag names to set."""

    model: onnx.ModelProto
    routes: list[OpRoute]
    parser_flags: list[str] = field(default_factory=list)


def _string_attribute(node: onnx.NodeProto, name: str) -> str | None:
    for attribute in node.attribute:
        if attribute.name == name:
            value = onnx.helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def _metadata(model: onnx.ModelProto, key: str) -> str | None:
    return next((p.value for p in model.metadata_props if p.key == key), None)


def route_custom_ops(
    model: onnx.ModelProto,
    features: TrtFeatures,
    plugin_library: PluginSource | None,
    registered: Callable[[str, str, str], bool],
) -> ParserInput:
    """Decide, per litevit op, whether TensorRT runs it as a plugin, as its ONNX function body,
    or (inline export) as the standard ops it was exported as; strip the function bodies that
    would otherwise win over a loaded plugin. ``registered(name, version, namespace)`` says
    whether the plugin registry has a creator (only asked when a plugin library is loaded)."""
    nodes = custom_nodes(model)
    if not nodes:
        if _metadata(model, "litevit.ops_mode") == "inline":
            return ParserInput(
                model, [OpRoute("litevit ops", 0, "inline", "litevit ops: standard ops (inline export)")]
            )
        return ParserInput(model, [])
    # The parser reads plugin_version (default "1") and plugin_namespace (default "") from each node.
    groups: dict[tuple[str, str, str, str | None], list[onnx.NodeProto]] = {}
    for node in nodes:
        key = (
            node.domain,
            node.op_type,
            _string_attribute(node, "plugin_version") or "1",
            _string_attribute(node, "plugin_namespace"),
        )
        groups.setdefault(key, []).append(node)
    bodies = {(f.domain, f.name) for f in model.functions}
    library = plugin_source_name(plugin_library) if plugin_library is not None else None

    if not features.parses_local_functions and plugin_library is None:
        names = ", ".join(sorted({f"{domain}::{op}" for domain, op, _, _ in groups}))
        raise LitevitError(
            f"TensorRT {features.version} cannot run ONNX function bodies ({names}): build with the "
            f"plugin library (--plugins {PLUGIN_LIBRARY}) or from a graph exported with --ops inline."
        )

    routes: list[OpRoute] = []
    strip: set[tuple[str, str]] = set()
    flags: list[str] = []
    for (domain, op_type, version, namespace_attr), group in groups.items():
        namespace = namespace_attr or ""
        label = f"{op_type} x{len(group)}"
        plugin = f"{namespace}::{op_type} v{version}" if namespace else f"{op_type} v{version}"
        if plugin_library is not None and registered(op_type, version, namespace):
            if features.plugin_precedence in ("no-functions", "function"):
                # 8.5/8.6 ignore bodies anyway; 9.0-10.6 would inline a body and never ask the registry.
                strip.add((domain, op_type))
            elif features.plugin_precedence == "plugin-if-namespaced" and namespace_attr is None:
                # >= 10.15 prefers a body unless the node names a namespace or this flag is set.
                flags.append("ENABLE_PLUGIN_OVERRIDE")
            routes.append(
                OpRoute(op_type, len(group), "plugin", f"{label}: TensorRT plugin {plugin} from {library}")
            )
            continue
        lacking = f"{library} registers no {plugin}"
        if not features.parses_local_functions:
            raise LitevitError(
                f"TensorRT {features.version} cannot run ONNX function bodies and {lacking}: use a plugin "
                f"library that has it or a graph exported with --ops inline."
            )
        if (domain, op_type) not in bodies:
            raise LitevitError(
                f"{domain}::{op_type} has no ONNX function body (an --ops plugin export) and "
                f"{lacking if library else 'no plugin library was given'}: pass --plugins {PLUGIN_LIBRARY} "
                f"or use a graph exported with --ops function or --ops inline."
            )
        why = f" ({lacking})" if library else ""
        routes.append(
            OpRoute(
                op_type, len(group), "function", f"{label}: ONNX function body, inlined by the parser{why}"
            )
        )
    if not strip:
        return ParserInput(model, routes, sorted(set(flags)))
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    kept = [f for f in stripped.functions if (f.domain, f.name) not in strip]
    del stripped.functions[:]
    stripped.functions.extend(kept)
    return ParserInput(stripped, routes, sorted(set(flags)))


GraphKind = Literal["fp32", "fp16", "int8-qdq"]


def graph_kind(model: onnx.ModelProto) -> GraphKind:
    """``int8-qdq`` when the graph has Q/DQ nodes, ``fp16`` when its float weights are mostly
    float16 (litevit's strongly typed FP16 graph), else ``fp32``."""
    op_types = {n.op_type for n in model.graph.node} | {n.op_type for f in model.functions for n in f.node}
    if op_types & {"QuantizeLinear", "DequantizeLinear"}:
        return "int8-qdq"
    half = sum(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    single = sum(t.data_type == onnx.TensorProto.FLOAT for t in model.graph.initializer)
    return "fp16" if half > single else "fp32"


@dataclass(frozen=True)
class ShapeRange:
    """One input's optimisation-profile shapes."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def _dims(text: str, spec: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise LitevitError(f"cannot read the shape {text!r} in --shapes {spec!r}; write dims as 1x3x224x224.")
    return dims


def parse_shapes(specs: Sequence[str]) -> dict[str, ShapeRange]:
    """``[NAME=]MIN[:OPT:MAX]`` per input (dims as 1x3x224x224; one shape fixes min = opt = max;
    NAME may be left out for a single-input graph) -> {name or "": range}."""
    ranges: dict[str, ShapeRange] = {}
    for spec in specs:
        name, _, shapes = spec.rpartition("=")
        parts = shapes.split(":")
        if len(parts) not in (1, 3):
            raise LitevitError(f"--shapes {spec!r} must be [NAME=]SHAPE or [NAME=]MIN:OPT:MAX.")
        dims = [_dims(part, spec) for part in parts]
        low, opt, high = (dims[0], dims[0], dims[0]) if len(dims) == 1 else dims
        if not len(low) == len(opt) == len(high) or not all(
            a <= b <= c for a, b, c in zip(low, opt, high, strict=True)
        ):
            raise LitevitError(f"--shapes {spec!r} needs min <= opt <= max in every dim, with one rank.")
        if name in ranges:
            raise LitevitError(f"--shapes names input {name or '(unnamed)'!r} twice.")
        ranges[name] = ShapeRange(low, opt, high)
    return ranges


def _graph_inputs(model: onnx.ModelProto) -> list[tuple[str, list[int | None]]]:
    initializers = {t.name for t in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        inputs.append((value.name, dims))
    return inputs


def optimisation_profiles(
    model: onnx.ModelProto, manifest: Mapping[str, Any] | None, overrides: Mapping[str, ShapeRange]
) -> dict[str, ShapeRange]:
    """min/opt/max per input: ``overrides`` first; else a dynamic batch spans 1..max(batch, 8) at
    opt = the exported batch, and dynamic height/width stay at the exported size. A static input
    keeps its shape. Every input is listed (static ones with min = opt = max)."""
    inputs = _graph_inputs(model)
    overrides = dict(overrides)
    if "" in overrides:
        if len(inputs) != 1:
            raise LitevitError(
                f"--shapes without an input name needs a one-input graph; name one of "
                f"{', '.join(name for name, _ in inputs)} (NAME=MIN:OPT:MAX)."
            )
        overrides[inputs[0][0]] = overrides.pop("")
    unknown = sorted(set(overrides) - {name for name, _ in inputs})
    if unknown:
        raise LitevitError(
            f"--shapes names {', '.join(unknown)}, which the graph does not take; its inputs are "
            f"{', '.join(name for name, _ in inputs)}."
        )
    exported_batch = int(manifest["batch"]) if manifest else 1
    exported_hw = tuple(manifest["img_size"]) if manifest else None
    profiles: dict[str, ShapeRange] = {}
    for name, dims in inputs:
        if name in overrides:
            chosen = overrides[name]
            fits = len(chosen.min) == len(dims) and all(
                d is None or lo == hi == d for d, lo, hi in zip(dims, chosen.min, chosen.max, strict=True)
            )
            if not fits:
                raise LitevitError(
                    f"--shapes for {name!r} must have rank {len(dims)} and keep its static dims "
                    f"({'x'.join('?' if d is None else str(d) for d in dims)})."
                )
            profiles[name] = chosen
            continue
        per_axis: list[tuple[int, int, int]] = []
        for axis, dim in enumerate(dims):
            if dim is not None:
                per_axis.append((dim, dim, dim))
            elif axis == 0:
                per_axis.append((1, exported_batch, max(exported_batch, DEFAULT_MAX_BATCH)))
            elif exported_hw is not None and len(dims) == 4 and axis in (2, 3):
                size = int(exported_hw[axis - 2])
                per_axis.append((size, size, size))
            else:
                raise LitevitError(
                    f"input {name!r} has a dynamic dim {axis} whose range litevit cannot infer here; "
                    f"give it with --shapes {name}=MIN:OPT:MAX."
                )
        low, opt, high = (tuple(column) for column in zip(*per_axis, strict=True))
        profiles[name] = ShapeRange(low, opt, high)
    return profiles


def artifact_manifest_for(onnx_path: Path) -> dict[str, Any] | None:
    """The manifest of the artefact folder holding ``onnx_path``, when it lists that file."""
    if not (onnx_path.parent / MANIFEST).is_file():
        return None
    manifest = read_manifest(onnx_path.parent)
    return manifest if onnx_path.name in manifest["files"] else None


# ---------------------------------------------------------------------------------------------
# TensorRT's log, kept


@dataclass
class CapturedLog:
    """What TensorRT logged (INFO and above), as (severity name, message)."""

    messages: list[tuple[str, str]] = field(default_factory=list)

    def first_error(self) -> str | None:
        return next(
            (text for severity, text in self.messages if severity in ("ERROR", "INTERNAL_ERROR")), None
        )

    def text(self) -> str:
        return "".join(f"[{severity}] {text}\n" for severity, text in self.messages)


def _capturing_logger(captured: CapturedLog) -> trt.ILogger:
    import tensorrt as trt

    severity_names = {member: name for name, member in trt.ILogger.Severity.__members__.items()}

    class CapturingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            # VERBOSE is thousands of lines per build and never what explains a failure.
            name = severity_names.get(severity, str(severity))
            if name != "VERBOSE":
                captured.messages.append((name, msg))

    return CapturingLogger()


def _one_line(message: str) -> str:
    first = " ".join(message.strip().split())
    return first.rstrip(".")


def _tensorrt_failure(
    what: str, captured: CapturedLog, extra_errors: Sequence[str], log_path: Path
) -> LitevitError:
    """The first ERROR line as one sentence, after writing the whole log to ``log_path``."""
    lines = captured.text() + "".join(f"[PARSER] {e}\n" for e in extra_errors)
    write_bytes(log_path, lines.encode())
    first = captured.first_error() or (extra_errors[0] if extra_errors else None)
    reason = _one_line(first) if first else "TensorRT logged no error message"
    return LitevitError(f"TensorRT could not {what}: {reason} (full log: {log_path}).")


# ---------------------------------------------------------------------------------------------
# Implicit INT8: calibration cache and calibrator


@dataclass(frozen=True)
class CalibrationCache:
    """TensorRT's calibration cache file plus litevit's key file beside it.

    The key file records the calibration key (what data, preprocessing and graph the cache
    was computed from) and the cache's SHA-256. A cache without a key file, with another key,
    or changed since litevit wrote it is refused: TensorRT would reuse it silently.
    """

    path: Path
    key: str

    @property
    def key_path(self) -> Path:
        return self.path.with_name(self.path.name + ".key.json")

    def read(self) -> bytes | None:
        """The cache to reuse, None when there is none, or one sentence why it cannot be used."""
        if not self.path.exists():
            return None
        remedy = "delete it to recalibrate, or pass another --calib-cache"
        try:
            recorded = json.loads(self.key_path.read_text())
        except FileNotFoundError:
            raise LitevitError(
                f"the calibration cache {str(self.path)!r} was not written by litevit (no "
                f"{self.key_path.name}), so its data is unknown: {remedy}."
            ) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise LitevitError(f"cannot read {str(self.key_path)!r}: {exc}; {remedy}.") from None
        if not isinstance(recorded, dict) or recorded.get("format") != CALIBRATION_KEY_FORMAT:
            raise LitevitError(f"{str(self.key_path)!r} is not a litevit calibration key file; {remedy}.")
        if recorded.get("key") != self.key:
            raise LitevitError(
                f"the calibration cache {str(self.path)!r} was computed for calibration key "
                f"{str(recorded.get('key'))[:16]}..., not this build's {self.key[:16]}... (other images, "
                f"preprocessing or graph): {remedy}."
            )
        data = self.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != recorded.get("sha256"):
            raise LitevitError(
                f"the calibration cache {str(self.path)!r} changed since litevit wrote it: {remedy}."
            )
        return data

    def write(self, data: bytes, tensorrt_version: str) -> None:
        write_bytes(self.path, data)
        write_json(
            self.key_path,
            {
                "format": CALIBRATION_KEY_FORMAT,
                "key": self.key,
                "sha256": hashlib.sha256(data).hexdigest(),
                "tensorrt": tensorrt_version,
                "cache": self.path.name,
            },
        )


@dataclass
class _CalibrationState:
    """What the calibrator callbacks saw; TensorRT swallows exceptions raised inside them."""

    batches: int = 0
    error: str | None = None


def _entropy_calibrator(
    input_name: str,
    shape: tuple[int, ...],
    batches: Iterator[np.ndarray],
    cache: CalibrationCache,
    cached: bytes | None,
    cuda: runners._CudaApi,
    buffer: int,
    state: _CalibrationState,
) -> trt.IInt8EntropyCalibrator2:
    """An entropy calibrator (the one DLA also takes) copying each batch into ``buffer``."""
    import tensorrt as trt

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self) -> int:
            # Explicit-batch networks: the batch is a dim of the input tensor itself.
            return 1

        def get_batch(self, names: list[str]) -> list[int]:
            # An empty list tells TensorRT that the calibration data is exhausted.
            if state.error is not None:
                return []
            try:
                batch = next(batches, None)
            except Exception as exc:  # an exception raised inside a TensorRT callback is lost
                state.error = _one_line(str(exc)) or type(exc).__name__
                return []
            if batch is None:
                return []
            if names != [input_name] or batch.shape != shape or batch.dtype != np.float32:
                state.error = (
                    f"calibration batch {state.batches + 1} is {batch.dtype}{list(batch.shape)} for "
                    f"{names}; the calibration profile takes float32{list(shape)} for [{input_name!r}]"
                )
                return []
            cuda.copy_to_device(buffer, np.ascontiguousarray(batch))
            cuda.synchronize()
            state.batches += 1
            return [buffer]

        def read_calibration_cache(self) -> bytes | None:
            return cached

        def write_calibration_cache(self, cache_data: Any) -> None:
            try:
                cache.write(bytes(memoryview(cache_data)), trt.__version__)
            except LitevitError as exc:  # raised inside a TensorRT callback it would be lost
                state.error = _one_line(str(exc))

    return EntropyCalibrator()


# ---------------------------------------------------------------------------------------------
# Parity of the engine against ONNX Runtime


@dataclass(frozen=True)
class ParityTolerance:
    """Pass criteria of an engine against ONNX Runtime FP32 on the same input. scale =
    max |reference| (at least 1e-3)."""

    max_abs_over_scale: float | None
    min_cosine: float | None
    min_label_agreement: float


PARITY_TOLERANCES = {
    "fp32": ParityTolerance(max_abs_over_scale=1e-3, min_cosine=None, min_label_agreement=0.999),
    "fp16": ParityTolerance(max_abs_over_scale=2e-2, min_cosine=None, min_label_agreement=0.99),
    "int8": ParityTolerance(max_abs_over_scale=None, min_cosine=0.99, min_label_agreement=0.95),
}


def parity_input(shape: Sequence[int], data_config: Mapping[str, Any] | None) -> np.ndarray:
    """An image-like NCHW input, or seeded N(0, 1) noise for an input that is not an image."""
    if len(shape) == 4:
        if data_config is None:  # a bare .onnx: centre the pictures on 0
            return (synthetic.smooth_pictures(shape) - 0.5) / 0.25
        return synthetic.image_like(
            shape, data_config["mean"], data_config["std"], float(data_config.get("pixel_scale", 1.0))
        )
    return np.random.default_rng(0).standard_normal(tuple(shape)).astype(np.float32)


def compare_outputs(
    name: str, reference: np.ndarray, candidate: np.ndarray, tolerance: ParityTolerance
) -> dict[str, Any]:
    """One output of the engine against the reference: the figures and whether they pass."""
    result: dict[str, Any] = {"output": name, "shape": list(reference.shape)}
    reasons: list[str] = []
    if reference.shape != candidate.shape:
        return {
            **result,
            "passed": False,
            "reasons": [f"shape {list(candidate.shape)} != {list(reference.shape)}"],
        }
    if np.issubdtype(reference.dtype, np.integer):
        agreement = float(np.mean(reference == candidate)) if reference.size else 1.0
        if agreement < tolerance.min_label_agreement:
            reasons.append(f"label agreement {agreement:.4%} < {tolerance.min_label_agreement:.1%}")
        return {**result, "label_agreement": agreement, "passed": not reasons, "reasons": reasons}
    ref = reference.astype(np.float64).ravel()
    got = candidate.astype(np.float64).ravel()
    max_abs = float(np.abs(ref - got).max()) if ref.size else 0.0
    scale = max(float(np.abs(ref).max()) if ref.size else 0.0, 1e-3)
    norms = float(np.linalg.norm(ref) * np.linalg.norm(got))
    cosine = float(ref @ got / norms) if norms > 0 else 1.0
    if not np.isfinite(got).all():
        reasons.append("non-finite values")
    if tolerance.max_abs_over_scale is not None and max_abs > tolerance.max_abs_over_scale * scale:
        reasons.append(f"max abs {max_abs:.3g} > {tolerance.max_abs_over_scale:g} x scale {scale:.3g}")
    if tolerance.min_cosine is not None and cosine < tolerance.min_cosine:
        reasons.append(f"cosine {cosine:.6f} < {tolerance.min_cosine}")
    return {
        **result,
        "max_abs": max_abs,
        "scale": scale,
        "cosine": cosine,
        "passed": not reasons,
        "reasons": reasons,
    }


def _skipped(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason}


def engine_parity(
    engine_path: Path,
    reference_onnx: Path,
    profiles: Mapping[str, ShapeRange],
    precision: str,
    data_config: Mapping[str, Any] | None,
    plugin_library: PluginSource | None,
) -> dict[str, Any]:
    """Run the engine and ONNX Runtime (CPU) on the same image-like input at each input's opt
    shape and compare every output with :data:`PARITY_TOLERANCES`."""
    tolerance = PARITY_TOLERANCES[precision]
    reference_text = f"ONNX Runtime CPU on {reference_onnx.name}"
    header = {"reference": reference_text, "tolerance": asdict(tolerance)}
    if not has("onnxruntime"):
        return {**header, **_skipped("onnxruntime is not installed (pip install 'litevit[ort]')")}
    if not (has("cuda.bindings") or has("cuda.cudart") or has("pycuda")):
        return {**header, **_skipped("no CUDA binding to run the engine (pip install cuda-python)")}
    try:
        reference_runner = runners.OrtRunner(reference_onnx)
    except LitevitError as exc:
        return {**header, **_skipped(f"ONNX Runtime cannot run {reference_onnx.name}: {_one_line(str(exc))}")}
    feeds = {
        info.name: parity_input(profiles[info.name].opt, data_config).astype(info.dtype)
        for info in reference_runner.inputs()
    }
    with reference_runner:
        expected = reference_runner.infer(feeds)
    try:
        with runners.TrtRunner(engine_path, plugins=plugin_library) as engine_runner:
            actual = engine_runner.infer(feeds)
    except LitevitError as exc:
        return {**header, "status": "failed", "reason": f"the engine did not run: {_one_line(str(exc))}"}
    results = [compare_outputs(name, expected[name], actual[name], tolerance) for name in expected]
    return {
        **header,
        "status": "passed" if all(r["passed"] for r in results) else "failed",
        "inputs": {
            name: {
                "shape": list(array.shape),
                "kind": "image-like" if array.ndim == 4 else "noise",
                "seed": 0,
            }
            for name, array in feeds.items()
        },
        "results": results,
    }


# ---------------------------------------------------------------------------------------------
# Engine sidecar: written by the build, checked before every load


def sidecar_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def read_engine_sidecar(engine: Path) -> dict[str, Any] | None:
    """The engine's sidecar, None when there is none, or one sentence when it is not litevit's."""
    path = sidecar_path(engine)
    if not path.is_file():
        return None
    try:
        sidecar = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LitevitError(f"the engine sidecar {str(path)!r} is not readable JSON: {exc}.") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != ENGINE_FORMAT:
        raise LitevitError(f"{str(path)!r} is not a litevit engine sidecar ({ENGINE_FORMAT}).")
    return sidecar


def describe_target(tensorrt: str | None, gpu: Mapping[str, Any]) -> str:
    """E.g. "TensorRT 10.3.0 on Orin (compute capability 8.7)"; unknown parts are said so."""
    name = gpu.get("name") or gpu.get("gpu_name") or "an unknown GPU"
    capability = gpu.get("compute_capability")
    return f"TensorRT {tensorrt or '(unknown)'} on {name}" + (
        f" (compute capability {capability})" if capability else ""
    )


def rebuild_command(engine: Path, sidecar: Mapping[str, Any]) -> str:
    source = sidecar.get("source") or {}
    target = source.get("artifact") or source.get("path") or str(engine.parent)
    command = f"litevit build {target} --precision {sidecar.get('precision', 'fp32')}"
    if sidecar.get("int8_mode") == "implicit":
        command += " --int8-mode implicit --calib DIR"
    return command


def engine_mismatch(
    engine: Path, sidecar: Mapping[str, Any], tensorrt: str | None, gpu: Mapping[str, Any]
) -> str | None:
    """One sentence when the engine was built for another TensorRT version or GPU (name or
    compute capability) than ``tensorrt`` and ``gpu`` here, or when the sidecar describes
    another file; None when everything that can be compared matches. Unknown facts (None on
    either side) are not compared."""
    built_gpu = sidecar.get("gpu") or {}
    here = {"name": gpu.get("gpu_name"), "compute_capability": gpu.get("compute_capability")}
    engine_sha = sidecar.get("engine_sha256")
    if engine_sha and engine.is_file() and sha256_file(engine) != engine_sha:
        return (
            f"{engine.name} is not the engine its sidecar {sidecar_path(engine).name} describes (SHA-256 "
            f"differs): rebuild it with `{rebuild_command(engine, sidecar)}` or delete the stale sidecar."
        )
    differs = [
        built is not None and current is not None and built != current
        for built, current in (
            (sidecar.get("tensorrt"), tensorrt),
            (built_gpu.get("name"), here["name"]),
            (built_gpu.get("compute_capability"), here["compute_capability"]),
        )
    ]
    if not any(differs):
        return None
    return (
        f"{engine.name} was built for {describe_target(sidecar.get('tensorrt'), built_gpu)}, but this "
        f"machine has {describe_target(tensorrt, here)}: rebuild it here with "
        f"`{rebuild_command(engine, sidecar)}`."
    )


def plugin_library_to_load(
    sidecar: Mapping[str, Any] | None, explicit: str | os.PathLike[str] | None
) -> PluginSource | None:
    """The plugin library to load before deserialising an engine: ``explicit``; else, for an
    engine without a sidecar, ``$LITEVIT_PLUGINS``; else, when the sidecar says the engine uses
    plugins, ``$LITEVIT_PLUGINS`` or the library it was built with (litevit's Python plugins for
    an engine built with them). None when none is needed."""
    if explicit is not None or sidecar is None:
        return plugin_library_path(explicit)
    plugins = sidecar.get("plugins")
    if not plugins:
        return None
    from_environment = plugin_library_path(None)
    if from_environment is not None:
        return from_environment
    if plugins["library"] == PYTHON_PLUGINS:
        return PYTHON_PLUGINS
    recorded = Path(plugins["library"])
    if not recorded.is_file():
        raise LitevitError(
            f"the engine uses TensorRT plugins from {str(recorded)!r}, which does not exist here: pass the "
            f"library with plugins=... or ${PLUGINS_ENV}."
        )
    return recorded


def _plugins_record(source: PluginSource) -> dict[str, Any]:
    """The sidecar's ``plugins``: the library and its SHA-256, or ``python`` (no file to hash)."""
    if source == PYTHON_PLUGINS:
        return {"library": PYTHON_PLUGINS, "sha256": None}
    return {"library": str(source), "sha256": sha256_file(Path(source))}


# ---------------------------------------------------------------------------------------------
# The build


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
            else engine_path.with_name(engine_path.name.removesuffix(".engine") + ".calibration.cache")
        )
        cache = CalibrationCache(cache_path, calibration_key)
        calibration = _Calibration(cache, calibrator_batches, cache.read())
    shape_ranges = optimisation_profiles(model, manifest, profiles or {})
    library = plugin_library_path(plugin_library)
    if library is not None:
        load_plugin_library(library)
    parser_input = route_custom_ops(model, features, library, plugin_registered)
    for route in parser_input.routes:
        log(route.line)

    captured = CapturedLog()
    logger = _capturing_logger(captured)
    # TensorRT's own plugins: the 8.x parser implements some standard ops with them.
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
        raise _tensorrt_failure(f"build {engine_path.name}", captured, [], log_path)
    write_bytes(engine_path, bytes(memoryview(serialized)))
    log_path.unlink(missing_ok=True)
    if timing is not None:
        write_bytes(timing, bytes(memoryview(config.get_timing_cache().serialize())))

    gpu = environment.gpu_facts()
    reference = _parity_reference(source, manifest)
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
        "plugins": _plugins_record(library)
        if library is not None and any(r.route == "plugin" for r in parser_input.routes)
        else None,
        "precision": precision,
        "typing": "strong" if strong else "weak",
        "int8_mode": int8_mode if precision == "int8" else None,
        "builder_flags": flag_names,
        "parser_flags": parser_input.parser_flags,
        "profiles": [{name: shapes.as_dict() for name, shapes in shape_ranges.items()}],
        "workspace_mb": workspace_mb,
        "dla_core": dla_core,
        "timing_cache": str(timing) if timing is not None else None,
        "calibration": _calibration_record(manifest, precision, calibration),
        "source": {
            "onnx": source.name,
            "path": str(source.resolve()),
            "sha256": sha256_file(source),
            "graph": kind,
            "model": manifest["model"] if manifest else _metadata(model, "litevit.model"),
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
        raise _tensorrt_failure(f"parse {source.name}", captured, errors, log_path)
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


@dataclass
class _Calibration:
    """Implicit INT8: TensorRT's entropy calibrator fed from ``batches``, its cache kept keyed."""

    cache: CalibrationCache
    batches: Callable[[], Iterable[np.ndarray]]
    cached: bytes | None  # a cache litevit wrote for this key: TensorRT then reads no batches
    state: _CalibrationState = field(default_factory=lambda: _CalibrationState())

    def build(
        self,
        builder: trt.Builder,
        network: trt.INetworkDefinition,
        config: trt.IBuilderConfig,
        shape_ranges: Mapping[str, ShapeRange],
        log: Callable[[str], None],
    ) -> trt.IHostMemory | None:
        import tensorrt as trt

        if network.num_inputs != 1:
            raise LitevitError("implicit INT8 calibration takes one-input graphs; this one has several.")
        name = network.get_input(0).name
        shape = shape_ranges[name].opt
        cached = self.cached
        if config.num_optimization_profiles:
            # A dynamic-shape network is calibrated at one shape: the build profile's opt shape.
            profile = builder.create_optimization_profile()
            profile.set_shape(name, trt.Dims(list(shape)), trt.Dims(list(shape)), trt.Dims(list(shape)))
            config.set_calibration_profile(profile)
        log(
            f"calibration: reusing {self.cache.path.name} (its key matches)"
            if cached is not None
            else f"calibration: TensorRT entropy calibrator 2 at {'x'.join(map(str, shape))}"
        )
        cuda = runners._open_cuda(0)
        buffer = cuda.malloc(int(np.prod(shape)) * 4)
        try:
            config.int8_calibrator = _entropy_calibrator(
                name,
                shape,
                iter(self.batches()) if cached is None else iter(()),
                self.cache,
                cached,
                cuda,
                buffer,
                self.state,
            )
            serialized = builder.build_serialized_network(network, config)
        finally:
            cuda.free(buffer)
            cuda.close()
        if self.state.error is not None:
            raise LitevitError(f"calibration stopped: {self.state.error}.")
        if serialized is not None and cached is None and self.state.batches == 0:
            raise LitevitError("implicit INT8 calibration got no batches: the --calib folder gave no images.")
        return serialized


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


def _parity_reference(source: Path, manifest: Mapping[str, Any] | None) -> Path:
    """The FP32 graph of the artefact when there is one (every precision is held to the FP32
    model), else the graph that was built."""
    if manifest is not None:
        for name, entry in manifest["files"].items():
            if (
                entry.get("precision") == "fp32"
                and name.endswith(".onnx")
                and (source.parent / name).is_file()
            ):
                return source.parent / name
    return source


def _calibration_record(
    manifest: Mapping[str, Any] | None, precision: str, calibration: _Calibration | None
) -> dict[str, Any] | None:
    """Implicit: the key, cache and batch count; Q/DQ: the key of the calibration that wrote
    the graph (from the artefact's manifest)."""
    if precision != "int8":
        return None
    if calibration is not None:
        return {
            "mode": "implicit",
            "key": calibration.cache.key,
            "cache": str(calibration.cache.path),
            "reused_cache": calibration.cached is not None,
            "batches": calibration.state.batches,
        }
    recorded = (manifest or {}).get("calibration") or {}
    return {"mode": "qdq", "key": recorded.get("key")}


def format_parity(parity: Mapping[str, Any]) -> str:
    """One line: the status and the worst figures."""
    if "results" not in parity:
        return f"parity {parity['status']}: {parity['reason']}"
    parts = []
    for result in parity["results"]:
        if "label_agreement" in result:
            parts.append(f"{result['output']}: labels agree {result['label_agreement']:.2%}")
        elif "max_abs" in result:
            parts.append(
                f"{result['output']}: max abs {result['max_abs']:.3g}, cosine {result['cosine']:.6f}"
            )
        else:
            parts.append(f"{result['output']}: {'; '.join(result['reasons'])}")
    return f"parity {parity['status']} vs {parity['reference']}: " + "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Artefact folders


def artifact_graph(
    folder: Path, manifest: Mapping[str, Any], precision: str, int8_mode: str, strong: bool
) -> Path:
    """Which of the artefact's graphs a build needs: FP32 for fp32, weakly typed fp16 (+ FP16
    flag) and implicit INT8; the FP16 graph for strongly typed fp16; the Q/DQ graph for INT8."""
    if precision == "fp16" and strong:
        return graph_file(folder, dict(manifest), "fp16", verify=True)
    if precision == "int8" and int8_mode == "qdq":
        return graph_file(folder, dict(manifest), "int8", verify=True)
    return graph_file(folder, dict(manifest), "fp32", verify=True)


def implicit_calibration_batches(
    manifest: Mapping[str, Any], images: str | os.PathLike[str], shape: Sequence[int], onnx_sha256: str
) -> tuple[Callable[[], Iterator[np.ndarray]], str]:
    """Batches of the --calib folder's images, preprocessed as the manifest says, at ``shape``
    (N, 3, H, W), and the calibration key: graph, preprocessing and every image's bytes."""
    from litevit.calibration.images import Preprocessing, evenly_spaced, load_images
    from litevit.calibration.int8 import calibration_images

    folder = Path(images)
    paths = evenly_spaced(calibration_images(folder), IMPLICIT_CALIBRATION_IMAGES)
    batch, _, height, width = shape
    prep = Preprocessing.from_manifest(dict(manifest), (height, width))
    digest = hashlib.sha256()
    digest.update(f"{onnx_sha256}\n{prep.fingerprint()}\n{list(shape)}\n".encode())
    for path in paths:
        digest.update(f"{path.relative_to(folder).as_posix()}\n{sha256_file(path)}\n".encode())

    def batches() -> Iterator[np.ndarray]:
        loaded = load_images(paths, prep)
        if loaded.unreadable:
            from litevit.calibration.images import describe_unreadable

            raise LitevitError(
                f"the calibration folder has {describe_unreadable(loaded.unreadable, folder)}."
            )
        # Whole batches only: the calibration profile takes exactly the opt shape.
        for start in range(0, len(loaded.arrays) - batch + 1, batch):
            yield np.ascontiguousarray(loaded.arrays[start : start + batch], dtype=np.float32)

    return batches, digest.hexdigest()


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
        shape = optimisation_profiles(model, manifest, profiles or {})[_graph_inputs(model)[0][0]].opt
        if calib is None:
            raise LitevitError("implicit INT8 needs calibration images: pass --calib DIR.")
        batches, key = implicit_calibration_batches(manifest, calib, shape, sha256_file(source))
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


# ---------------------------------------------------------------------------------------------
# CLI: `litevit build`


BUILD_DESCRIPTION = (
    "Build a TensorRT engine on this machine from an artefact folder (the graph this TensorRT version "
    "needs for --precision is picked from its manifest) or an .onnx file, and write ENGINE.json next to "
    "it: TensorRT, GPU, plugins, precision, typing, profiles, source, custom-op paths, build time, and "
    "parity against ONNX Runtime. Exit 1 when parity fails."
)


def configure_build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="ONNX|ARTIFACT", help="an artefact folder or an .onnx file")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="default: fp32")
    parser.add_argument(
        "--int8-mode",
        choices=INT8_MODES,
        default="qdq",
        help="qdq (default): the Q/DQ graph of litevit's calibration; implicit: TensorRT's entropy "
        "calibrator on --calib images (TensorRT < 11)",
    )
    parser.add_argument("--calib", metavar="DIR", help="calibration images for --int8-mode implicit")
    parser.add_argument(
        "--calib-cache",
        metavar="FILE",
        help="implicit INT8 calibration cache (default: next to the engine); reused only when litevit "
        "wrote it for the same images, preprocessing and graph",
    )
    parser.add_argument(
        "--plugins",
        metavar="LIB",
        help=f"TensorRT plugin library, or '{PYTHON_PLUGINS}' for litevit's Python plugins (TensorRT >= 10; "
        f"the engine then runs only from Python with litevit) (default: ${PLUGINS_ENV})",
    )
    parser.add_argument(
        "--shapes",
        nargs="+",
        metavar="[NAME=]MIN:OPT:MAX",
        help="optimisation profile per input, dims as 1x3x224x224 (default: from the manifest's dynamic "
        f"axes: batch 1..max(batch, {DEFAULT_MAX_BATCH}), exported height and width)",
    )
    parser.add_argument(
        "--workspace", type=int, metavar="MB", help="builder workspace limit (default: TensorRT's)"
    )
    parser.add_argument("--timing-cache", metavar="FILE", help="read and update this timing cache")
    parser.add_argument("--dla", type=int, metavar="N", help="build for DLA core N (Jetson), GPU fallback on")
    parser.add_argument(
        "--out", metavar="ENGINE", help="engine path for an .onnx target (default: next to it)"
    )
    typing_group = parser.add_mutually_exclusive_group()
    typing_group.add_argument(
        "--strongly-typed",
        dest="strongly_typed",
        action="store_const",
        const=True,
        help="strongly typed network (TensorRT 9+; always on 11)",
    )
    typing_group.add_argument(
        "--weakly-typed",
        dest="strongly_typed",
        action="store_const",
        const=False,
        help="precision by builder flags (TensorRT < 11; the default there)",
    )


def _engine_path_for(onnx_path: Path, precision: str) -> Path:
    stem = onnx_path.name.removesuffix(".onnx")
    for suffix in (".fp16", ".int8"):
        stem = stem.removesuffix(suffix)
    return onnx_path.with_name(f"{stem}.{precision}.engine")


def run_build(args: argparse.Namespace) -> int:
    require("tensorrt")
    implicit = args.precision == "int8" and args.int8_mode == "implicit"
    if (args.calib is not None or args.calib_cache is not None) and not implicit:
        raise LitevitError(
            "--calib and --calib-cache apply to --precision int8 --int8-mode implicit; the Q/DQ graph was "
            "calibrated when it was written."
        )
    target = Path(args.target)
    profiles = parse_shapes(args.shapes or [])
    common: dict[str, Any] = {
        "precision": args.precision,
        "int8_mode": args.int8_mode,
        "strongly_typed": args.strongly_typed,
        "plugin_library": args.plugins,
        "profiles": profiles,
        "workspace_mb": args.workspace,
        "timing_cache": args.timing_cache,
        "dla_core": args.dla,
        "calibration_cache": args.calib_cache,
    }
    if target.is_dir():
        if args.out is not None:
            raise LitevitError("--out applies to an .onnx target; an artefact's engine goes into its folder.")
        result = build_artifact(target, calib=args.calib, **common)
    elif target.suffix == ".onnx" and target.is_file():
        batches = key = None
        if implicit and args.calib is not None:
            manifest = artifact_manifest_for(target)
            if manifest is None:
                raise LitevitError(
                    "implicit INT8 from --calib images needs the model's preprocessing: pass the artefact "
                    "folder instead of a loose .onnx file."
                )
            model = onnx.load(str(target), load_external_data=False)
            shape = optimisation_profiles(model, manifest, profiles)[_graph_inputs(model)[0][0]].opt
            batches, key = implicit_calibration_batches(manifest, args.calib, shape, sha256_file(target))
        out = Path(args.out) if args.out is not None else _engine_path_for(target, args.precision)
        result = build_engine(target, out, calibrator_batches=batches, calibration_key=key, **common)
    else:
        raise LitevitError(f"{str(target)!r} is not an artefact folder or an .onnx file.")
    print(f"wrote {result.engine} and {result.sidecar_path.name}")
    return 1 if result.parity_status == "failed" else 0


__all__ = [
    "ENGINE_FORMAT",
    "EngineBuild",
    "ShapeRange",
    "TrtFeatures",
    "build_artifact",
    "build_engine",
    "configure_build_parser",
    "engine_mismatch",
    "read_engine_sidecar",
    "run_build",
]
