"""Parser coverage ahead of the build: would the ONNX parser of a TensorRT release import every
node of this graph?

The answer comes from a table kept as data, ``onnx_parser_support.json`` next to this file: per
release, every operator of onnx-tensorrt's ``docs/operators.md`` with its tensor types and
restrictions, and the restrictions litevit checks (a build-time constant ``K`` for TopK on 8.5,
Resize modes, Pad modes, Q/DQ zero points and inputs, ...). Each release row names the document
it comes from (``tests/runtime/onnx_parser_tables.py`` writes the table and says how).

litevit's own nodes (CSA, RASA, GhostHead) are routed exactly as the build routes them
(:func:`~litevit.runtime.trt_build.routing.route_custom_ops`, the version facts of
:class:`~litevit.runtime.trt_build.features.TrtFeatures`): a node that reaches a plugin is
covered; a node whose ONNX function body the parser inlines is covered when every node of the
body is. Graphs of other nodes without an importer (TensorRT's own plugins, e.g. ``ROIAlign_TRT``)
name those op types in ``extra_plugins``.

The API, for every exported graph (classifiers, and the detectors and segmenters to come)::

    problems = unsupported_nodes(model, "8.5")              # [] when TensorRT 8.5 parses it all
    require_parser_support(model, "10.3.0.26", graph="lvt.onnx")   # or one sentence, raised
    release_support("10.8.0").name                         # "10.4": the row a version is checked with

``version`` is a release row ("8.5", "8.6", "10.1", "10.3", "10.4", "10.13", "11") or any TensorRT
version, which is checked with the newest row not newer than it (11.x with "11"). What is checked
per node: the operator is imported by that release, the declared opset is in its range, the
tensor type the table lists (the first input; the output for Constant-like ops) is one of the
supported types (8.x casts INT64 down to INT32, every release DOUBLE to FLOAT), and the
restrictions of that release; nodes of ``If``/``Loop``/``Scan`` subgraphs are checked too. The
check reads the graph only: it does not prove that TensorRT builds it (shapes, precisions and
tactics are the builder's business).
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.inliner
from onnx import numpy_helper

from litevit.errors import LitevitError
from litevit.onnx_graphs import BUILTIN_ONNX_DOMAINS, attribute_subgraphs, value_types_and_ranks
from litevit.plugins.kernels import OP_PACKAGES
from litevit.runtime.trt_build.features import TrtFeatures
from litevit.runtime.trt_build.plugins import PLUGIN_LIBRARY
from litevit.runtime.trt_build.routing import OpRoute, route_custom_ops

SUPPORT_TABLE = Path(__file__).resolve().with_name("onnx_parser_support.json")
TABLE_FORMAT = "litevit.onnx-parser-support/1"
# The releases litevit builds for, as rows of the table (11: every 11.x).
TARGET_RELEASES = ("8.5", "8.6", "10.3", "10.4", "10.13", "11")
# Graph metadata (and the manifest's ``trt_target``): the release ``litevit-export --trt`` wrote for.
TRT_TARGET_KEY = "litevit.trt_target"
# Standard ops that ``litevit-export --trt RELEASE`` writes in other standard ops when that
# release's parser lacks them (export/trt_target.py has the rewrites; a test keeps the two equal).
REWRITTEN_AT_EXPORT = frozenset({"LayerNormalization", "CastLike"})
# litevit's plugin library and Python plugins register these (namespace litevit, version 1).
LITEVIT_PLUGIN_OPS = frozenset(OP_PACKAGES)
LITEVIT_NAMESPACE = "litevit"
LITEVIT_PLUGIN_VERSION = "1"

_STANDARD_DOMAINS = ("", "ai.onnx")
_BODY_KEY = "litevit.function_body"
_TYPE_NAMES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "FP32",
    onnx.TensorProto.FLOAT16: "FP16",
    onnx.TensorProto.BFLOAT16: "BF16",
    onnx.TensorProto.DOUBLE: "DOUBLE",
    onnx.TensorProto.INT32: "INT32",
    onnx.TensorProto.INT64: "INT64",
    onnx.TensorProto.INT8: "INT8",
    onnx.TensorProto.UINT8: "UINT8",
    onnx.TensorProto.BOOL: "BOOL",
    onnx.TensorProto.FLOAT8E4M3FN: "FP8",
    onnx.TensorProto.INT4: "INT4",
}
# Ops whose table types describe their output (they have no data input), and ops whose data
# input is not the first (Where's first input is its BOOL condition).
_OUTPUT_TYPED = frozenset(
    {
        "Constant",
        "ConstantOfShape",
        "RandomNormal",
        "RandomUniform",
        "EyeLike",
        "Range",
        "BlackmanWindow",
        "HammingWindow",
        "HannWindow",
    }
)
_DATA_INPUT = {"Where": 1}
# Control flow: the types column describes the subgraph outputs, which are checked node by node.
_UNTYPED = frozenset({"If", "Loop", "Scan"})


@functools.lru_cache(maxsize=None)
def support_table() -> dict[str, Any]:
    """The parsed ``onnx_parser_support.json``."""
    table = json.loads(SUPPORT_TABLE.read_text(encoding="utf-8"))
    if table.get("format") != TABLE_FORMAT:
        raise LitevitError(f"{SUPPORT_TABLE} is not a {TABLE_FORMAT} table.")
    return dict(table)


@dataclass(frozen=True)
class ReleaseSupport:
    """One release row: its operators (source document plus the recorded changes) and checks."""

    name: str
    versions: str
    source: str
    opset: tuple[int, int]
    ops: Mapping[str, Mapping[str, Any]]
    checks: Mapping[str, Sequence[Mapping[str, Any]]]
    casts: Mapping[str, str]

    @property
    def label(self) -> str:
        return f"TensorRT {self.name}" + (".x" if "." not in self.name else "")


def _row_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split("."))


def _version_key(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)(?:\.(\d+))?", version)
    if match is None:
        raise LitevitError(f"cannot read the TensorRT version {version!r}.")
    return int(match.group(1)), int(match.group(2) or 0)


@functools.lru_cache(maxsize=None)
def release_support(version: str) -> ReleaseSupport:
    """The row ``version`` is checked with: the row of that name, else the newest row not newer
    than the version (8.5 for anything older, which TrtFeatures refuses anyway)."""
    table = support_table()
    rows: dict[str, Any] = table["releases"]
    if version in rows:
        name = version
    else:
        # Each row covers the versions from its "from" release up to the next row's.
        wanted = _version_key(version)
        starts = {row: _row_key(rows[row]["from"]) for row in rows}
        older = [row for row in rows if starts[row] <= wanted]
        name = max(older, key=starts.__getitem__) if older else min(rows, key=starts.__getitem__)
    row = rows[name]
    source = table["sources"][row["source"]]
    ops = {**source["ops"], **row["changes"]}
    where = f"{source['repository']} {source['branch'] or 'docs (' + row['source'] + ')'} {source['path']}"
    eight = _row_key(name) < (9,)
    casts = {"DOUBLE": "FP32", **({"INT64": "INT32"} if eight else {})}
    return ReleaseSupport(
        name=name,
        versions=str(row["versions"]),
        source=where,
        opset=(int(source["opset"][0]), int(source["opset"][1])),
        ops=ops,
        checks=row.get("checks", {}),
        casts=casts,
    )


def target_notice(target: str | None, version: str, graph: str) -> str | None:
    """A line for a build whose graph was exported for another release than the installed one
    (the coverage check decides whether it parses; this says what it costs or risks)."""
    if target is None:
        return None
    here = release_support(version)
    if here.name == target:
        return None
    if _row_key(target) < _row_key(here.name):
        return (
            f"{graph} was exported for TensorRT {target} (--trt {target}), with the operators its parser "
            f"lacks written out; TensorRT {version} parses the plain graph: re-export without --trt for "
            f"its own kernels."
        )
    return f"{graph} was exported for TensorRT {target} (--trt {target}); checking it against {version}."


def _features(version: str) -> TrtFeatures:
    """The version facts of ``version`` (a row "11" is read as 11.0)."""
    return TrtFeatures.from_version(version if "." in version else f"{version}.0")


@dataclass(frozen=True)
class UnsupportedNode:
    """One node a release's parser would refuse, and why."""

    node: str
    op_type: str
    domain: str
    release: str
    reason: str
    body: str | None = None  # "litevit::CSA" for a node of a function body the parser inlines

    @property
    def op(self) -> str:
        return self.op_type if self.domain in _STANDARD_DOMAINS else f"{self.domain}::{self.op_type}"

    def describe(self) -> str:
        where = f" in the function body of {self.body}" if self.body else ""
        name = f"node {self.node!r}" if self.node else "a node"
        return f"{name} ({self.op}){where}: {self.reason}"


def require_parser_support(
    model: onnx.ModelProto,
    version: str,
    *,
    graph: str = "the graph",
    routes: Sequence[OpRoute] | None = None,
    litevit_plugins: bool | None = None,
    extra_plugins: Collection[str] = (),
) -> None:
    """Raise one sentence naming the first node ``version``'s parser would refuse (its op, the
    release and what to do), with a count of the others; nothing when every node is covered."""
    problems = unsupported_nodes(
        model, version, routes=routes, litevit_plugins=litevit_plugins, extra_plugins=extra_plugins
    )
    if problems:
        raise LitevitError(refusal(problems, graph))


def refusal(problems: Sequence[UnsupportedNode], graph: str = "the graph") -> str:
    """The one-line refusal for ``problems`` (at least one)."""
    first = problems[0]
    text = f"{first.release}'s ONNX parser cannot take {graph}: {first.describe()}".rstrip(".")
    others = Counter(p.op for p in problems[1:])
    if others:
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(others.items()))
        text += f"; {len(problems) - 1} more: {listed}"
    hints = sorted({_hint(p) for p in problems} - {""})
    return text + "." + "".join(f" {h}" for h in hints)


def _hint(problem: UnsupportedNode) -> str:
    if problem.op_type in REWRITTEN_AT_EXPORT and problem.domain in _STANDARD_DOMAINS:
        release = problem.release.replace("TensorRT ", "").replace(".x", "")
        return (
            f"Re-export for that release (litevit-export MODEL --trt {release}), which writes "
            f"{problem.op_type} in operators it parses."
        )
    return ""


def unsupported_nodes(
    model: onnx.ModelProto,
    version: str,
    *,
    routes: Sequence[OpRoute] | None = None,
    litevit_plugins: bool | None = None,
    extra_plugins: Collection[str] = (),
) -> list[UnsupportedNode]:
    """Every node of ``model`` that the ONNX parser of ``version`` would not import, in graph order.

    ``routes`` are the build's routes of the litevit ops (``ParserInput.routes``). Without them
    the ops are routed as a build routes them with (``litevit_plugins=True``) or without
    (``False``) litevit's plugin library; ``None`` checks every route the release offers: the
    plugins, and also the function bodies where the graph has them and the release reads them
    (the problems of the first route that has any). ``extra_plugins``: op types a registered
    plugin serves (TensorRT's own, e.g. ``ROIAlign_TRT``), which need no importer.
    """
    if routes is None and litevit_plugins is None:
        variants = [True]
        if model.functions and _features(version).parses_local_functions:
            variants.append(False)
        for variant in variants:
            found = unsupported_nodes(model, version, litevit_plugins=variant, extra_plugins=extra_plugins)
            if found:
                return found
        return []
    release = release_support(version)
    features = _features(version)
    problems: list[UnsupportedNode] = []
    opset = next((int(o.version) for o in model.opset_import if o.domain in _STANDARD_DOMAINS), None)
    if opset is not None and not release.opset[0] <= opset <= release.opset[1]:
        problems.append(
            UnsupportedNode(
                "",
                f"opset {opset}",
                "",
                release.label,
                f"the graph declares opset {opset}; this parser reads opsets {release.opset[0]} - "
                f"{release.opset[1]} ({release.source})",
            )
        )
    extra = set(extra_plugins)
    route_of, routing_problem = _litevit_routes(
        model, features, routes, bool(litevit_plugins), extra, release
    )
    if routing_problem is not None:
        problems.append(routing_problem)
    analysis = _analysis_model(model, route_of, extra, features)
    facts = _value_facts(analysis)
    for node, constants in _walk(analysis.graph, {}):
        if node.domain in _STANDARD_DOMAINS:
            reason = _node_problem(node, release, facts, constants)
        elif node.op_type in extra or route_of.get(node.op_type) is not None or routing_problem:
            continue  # a plugin takes it (function-routed nodes were inlined above), or said above
        else:
            reason = (
                f"{node.domain}::{node.op_type} has no importer and no plugin serves it here "
                f"(name it in extra_plugins if a registered plugin does)"
            )
        if reason is not None:
            body = next((p.value for p in node.metadata_props if p.key == _BODY_KEY), None)
            # The inliner suffixes a body node's name with its call's number (``__1``).
            name = re.sub(r"__\d+$", "", node.name) if body else node.name
            problems.append(UnsupportedNode(name, node.op_type, node.domain, release.label, reason, body))
    return problems


def _litevit_routes(
    model: onnx.ModelProto,
    features: TrtFeatures,
    routes: Sequence[OpRoute] | None,
    litevit_plugins: bool,
    extra: Collection[str],
    release: ReleaseSupport,
) -> tuple[dict[str, str], UnsupportedNode | None]:
    """op_type -> "plugin" | "function" for the custom nodes, as the build routes them; a routing
    refusal (no plugin and no body the release can run) becomes the first node's problem."""
    if routes is None:
        view = onnx.ModelProto()
        view.CopyFrom(model)
        # Only litevit's nodes are routed; other custom nodes need a plugin named in extra_plugins.
        kept = [
            n for n in view.graph.node if n.domain in BUILTIN_ONNX_DOMAINS or n.domain == LITEVIT_NAMESPACE
        ]
        del view.graph.node[:]
        view.graph.node.extend(kept)

        def registered(name: str, plugin_version: str, namespace: str) -> bool:
            return (
                name in LITEVIT_PLUGIN_OPS
                and plugin_version == LITEVIT_PLUGIN_VERSION
                and namespace == LITEVIT_NAMESPACE
            )

        library = Path(PLUGIN_LIBRARY) if litevit_plugins else None
        try:
            routes = route_custom_ops(view, features, library, registered).routes
        except LitevitError as exc:
            first = next(n for n in model.graph.node if n.domain == LITEVIT_NAMESPACE)
            return {}, UnsupportedNode(
                first.name, first.op_type, first.domain, release.label, str(exc).rstrip(".")
            )
    return {r.op_type: r.route for r in routes if r.route in ("plugin", "function")}, None


def _analysis_model(
    model: onnx.ModelProto, route_of: Mapping[str, str], extra: Collection[str], features: TrtFeatures
) -> onnx.ModelProto:
    """A copy to check: bodies of function-routed ops inlined (each of their nodes tagged with
    the op), nodes a plugin takes replaced by Identity stand-ins for type inference (a plugin's
    outputs take its first input's type, as litevit's do)."""
    analysis = onnx.ModelProto()
    analysis.CopyFrom(model)
    inlined = []
    for function in analysis.functions:
        if route_of.get(function.name) == "function" and features.parses_local_functions:
            inlined.append((function.domain, function.name))
            for node in function.node:
                tag = node.metadata_props.add()
                tag.key, tag.value = _BODY_KEY, f"{function.domain}::{function.name}"
    if inlined:
        analysis = onnx.inliner.inline_selected_functions(analysis, inlined, exclude=False)
    kept = [f for f in analysis.functions if (f.domain, f.name) not in inlined]
    del analysis.functions[:]
    analysis.functions.extend(kept)
    return analysis


@dataclass
class _ValueFacts:
    """Element type and rank per value name (main graph and subgraphs), where known."""

    types: dict[str, int]
    ranks: dict[str, int]


def _value_facts(model: onnx.ModelProto) -> _ValueFacts:
    """From ONNX shape inference on a copy whose plugin nodes are Identity stand-ins (a plugin's
    outputs take its first input's type, as litevit's do); unknown names are left out."""
    typed = onnx.ModelProto()
    typed.CopyFrom(model)
    standins = []
    for node in typed.graph.node:
        if node.domain in _STANDARD_DOMAINS or not node.input:
            standins.append(node)
            continue
        for output in node.output:
            if output:
                standins.append(onnx.helper.make_node("Identity", [node.input[0]], [output]))
    del typed.graph.node[:]
    typed.graph.node.extend(standins)
    del typed.functions[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(typed, strict_mode=False)
    except Exception:  # a graph shape inference cannot read: facts stay unknown, nothing else changes
        inferred = typed
    return _ValueFacts(*value_types_and_ranks(inferred.graph, subgraphs=True))


def _walk(
    graph: onnx.GraphProto, outer: Mapping[str, onnx.TensorProto | None]
) -> Iterator[tuple[onnx.NodeProto, dict[str, onnx.TensorProto | None]]]:
    """Every node, subgraphs included, with the build-time constants it can see: initializers
    and Constant outputs of its graph and the graphs around it (the value, where one is known)."""
    constants: dict[str, onnx.TensorProto | None] = dict(outer)
    constants.update({init.name: init for init in graph.initializer})
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in _STANDARD_DOMAINS:
            constants[node.output[0]] = next((a.t for a in node.attribute if a.name == "value"), None)
    for node in graph.node:
        yield node, constants
        for attribute in node.attribute:
            for sub in attribute_subgraphs(attribute):
                yield from _walk(sub, constants)


def _node_problem(
    node: onnx.NodeProto,
    release: ReleaseSupport,
    facts: _ValueFacts,
    constants: Mapping[str, onnx.TensorProto | None],
) -> str | None:
    entry = release.ops.get(node.op_type)
    if entry is None:
        return f"{node.op_type} is not in {release.source}, so this parser has no importer for it"
    if not entry["supported"]:
        why = entry.get("why") or f"{release.source}: {node.op_type} | N"
        return f"this parser has no {node.op_type} importer ({why})"
    problem = _type_problem(node, entry, release, facts.types)
    if problem is not None:
        return problem
    for check in release.checks.get(node.op_type, ()):
        failed = _CHECKS[check["check"]](node, check, facts, constants)
        if failed is not None:
            return f"{failed} ({check['why']})"
    return None


def _type_problem(
    node: onnx.NodeProto, entry: Mapping[str, Any], release: ReleaseSupport, types: Mapping[str, int]
) -> str | None:
    allowed = entry.get("types") or []
    if not allowed or node.op_type in _UNTYPED:
        return None
    if node.op_type in _OUTPUT_TYPED:
        tensor, what = (node.output[0] if node.output else ""), "its output"
    else:
        index = _DATA_INPUT.get(node.op_type, 0)
        tensor = node.input[index] if len(node.input) > index else ""
        what = "its input" if index == 0 else f"its input {index}"
    if not tensor or tensor not in types:
        return None
    name = _TYPE_NAMES.get(types[tensor], onnx.TensorProto.DataType.Name(types[tensor]))
    effective = release.casts.get(name, name)
    if name == "UINT8" and node.op_type == "DequantizeLinear" and _row_key(release.name) >= (10,):
        # QuantizeLinear without a zero point writes UINT8; the 10.x importer quantizes to INT8
        # instead (QuantDequantLinearHelper on 10.1-GA: "TRT will default to INT8").
        effective = "INT8"
    if effective in allowed:
        return None
    cast = f" (read as {effective})" if effective != name else ""
    return f"{what} is {name}{cast}; it takes {', '.join(allowed)} ({release.source})"


# ---------------------------------------------------------------------------------------------
# The restriction kinds the table's ``checks`` use: each returns what is wrong, or None


def _input(node: onnx.NodeProto, index: int) -> str:
    return node.input[index] if len(node.input) > index else ""


def _constant_input(node, check, facts, constants) -> str | None:
    name = _input(node, check["input"])
    if name and name not in constants:
        return f"input {check['input']} ({name!r}) is computed at run time, not a build-time constant"
    return None


def _no_input(node, check, facts, constants) -> str | None:
    name = _input(node, check["input"])
    return f"input {check['input']} ({name!r}) is given" if name else None


def _attribute(node: onnx.NodeProto, name: str) -> Any:
    for attribute in node.attribute:
        if attribute.name == name:
            value = onnx.helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return None


def _attribute_in(node, check, facts, constants) -> str | None:
    value = _attribute(node, check["attribute"])
    value = check["default"] if value is None else value
    if value in check["allowed"]:
        return None
    allowed = ", ".join(str(a) for a in check["allowed"])
    return f"{check['attribute']}={value!r}; it takes {allowed}"


def _attribute_all_ones(node, check, facts, constants) -> str | None:
    value = _attribute(node, check["attribute"])
    if value is None or all(int(v) == 1 for v in value):
        return None
    return f"{check['attribute']}={list(value)}; it takes all ones"


def _constant_array(constants: Mapping[str, onnx.TensorProto | None], name: str) -> np.ndarray | None:
    tensor = constants.get(name)
    return numpy_helper.to_array(tensor) if tensor is not None else None


def _zero_point_zero(node, check, facts, constants) -> str | None:
    values = _constant_array(constants, _input(node, check["input"]))
    if values is not None and np.any(values != 0):
        return "the zero point is not all zeros"
    return None


def _min_inputs(node, check, facts, constants) -> str | None:
    given = sum(1 for name in node.input if name)
    return f"it has {given} inputs; this parser needs {check['count']}" if given < check["count"] else None


def _input_types(node, check, facts, constants) -> str | None:
    name = _input(node, check["input"])
    if not name or name not in facts.types:
        return None
    type_name = _TYPE_NAMES.get(facts.types[name], str(facts.types[name]))
    if type_name in check["allowed"]:
        return None
    return f"input {check['input']} is {type_name}; it takes {', '.join(check['allowed'])}"


def _input_rank_in(node, check, facts, constants) -> str | None:
    rank = facts.ranks.get(_input(node, check["input"]))
    if rank is None or rank in check["ranks"]:
        return None
    return f"input {check['input']} has rank {rank}; it takes rank {' or '.join(map(str, check['ranks']))}"


def _first_output_only(node, check, facts, constants) -> str | None:
    extra = [name for name in node.output[1:] if name]
    return f"it has the optional outputs {extra}" if extra else None


def _max_constant(node, check, facts, constants) -> str | None:
    values = _constant_array(constants, _input(node, check["input"]))
    if values is not None and values.size and int(values.max()) >= check["below"]:
        return f"input {check['input']} is {int(values.max())}; it must be below {check['below']}"
    return None


def _einsum_equation(node, check, facts, constants) -> str | None:
    equation = str(_attribute(node, "equation") or "").replace(" ", "")
    if "..." in equation:
        return f"equation {equation!r} uses an ellipsis"
    for operand in equation.split("->")[0].split(","):
        if len(set(operand)) != len(operand):
            return f"equation {equation!r} takes a diagonal ({operand!r} repeats an index)"
    return None


_CHECKS: dict[str, Callable[[onnx.NodeProto, Mapping[str, Any], _ValueFacts, Any], str | None]] = {
    "constant_input": _constant_input,
    "no_input": _no_input,
    "attribute_in": _attribute_in,
    "attribute_all_ones": _attribute_all_ones,
    "zero_point_zero": _zero_point_zero,
    "min_inputs": _min_inputs,
    "input_types": _input_types,
    "input_rank_in": _input_rank_in,
    "first_output_only": _first_output_only,
    "max_constant": _max_constant,
    "einsum_equation": _einsum_equation,
}
