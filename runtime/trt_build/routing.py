"""How each litevit custom op reaches TensorRT's ONNX parser (plugin, function body, or the
standard ops of an inline export), and which kind of graph (FP32, FP16, Q/DQ) a build gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import onnx

from litevit.errors import LitevitError
from litevit.onnx_graphs import custom_nodes
from litevit.runtime.trt_build.features import TrtFeatures
from litevit.runtime.trt_build.plugins import PLUGIN_LIBRARY, PluginSource, plugin_source_name


Route = Literal["plugin", "function", "inline"]


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


def graph_metadata(model: onnx.ModelProto, key: str) -> str | None:
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
        if graph_metadata(model, "litevit.ops_mode") == "inline":
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
