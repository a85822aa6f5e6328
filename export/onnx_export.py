"""PyTorch -> ONNX: one litevit model to one ONNX graph, custom ops as ``litevit`` nodes.

The flow: the torch.export-based exporter (``torch.onnx.export(dynamo=True)``) translates each
``torch.ops.litevit.*`` call to one node of domain ``litevit`` carrying the op's attributes and
the TensorRT plugin attributes; the graph, written at opset 18, is brought to the requested
opset; then, per ``ops`` mode, the op's ONNX function body is attached (``function``), left out
(``plugin``), or inlined as standard ops (``inline``).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import onnx
import onnx.inliner
import onnxscript
import torch
from torch import nn

from litevit.errors import LitevitError
from litevit.onnx_graphs import custom_nodes
from litevit.models import model_cfg
from litevit.models.segmentation import resize_logits
from litevit.export.graph_passes import fold_static_shapes, optimize_graph
from litevit.export.opset import EXPORTER_MIN_OPSET, MIN_OPSET, convert_opset, default_opset
from litevit.ops import DOMAIN, OP_VERSION, OPS, OpDef
from litevit.ops._define import PLUGIN_ATTRS
from litevit.ops._standard import translation_table as standard_translation_table

OPS_MODES = ("function", "plugin", "inline")
SEG_OUTPUTS = ("labels", "logits")
INPUT_NAME = "input"
# Ops TensorRT's ONNX parser lacks; an export containing one is refused.
FORBIDDEN_OPS = {"Col2Im"}


class SegmentationLabels(nn.Module):
    """Segmentation model + in-graph post-processing: logits resized to the input, argmax, int32.

    Saves the device->host copy of full-resolution class scores on a Jetson: only the label map
    leaves the engine.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.cfg = model.cfg

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores at the input resolution (what the in-graph ArgMax reads)."""
        return resize_logits(self.model(x), x.shape[-2:])

    @staticmethod
    def labels(scores: torch.Tensor) -> torch.Tensor:
        return scores.argmax(dim=1).to(torch.int32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.labels(self.scores(x))


def output_names(task: str, seg_output: str) -> list[str]:
    if task == "segmentation":
        return [seg_output]
    return ["logits"]


@dataclass(frozen=True)
class GraphSpec:
    """What the exported graph looks like: sizes, dynamic axes, opset, custom-op mode."""

    img_size: tuple[int, int]
    batch: int
    dynamic_batch: bool
    dynamic_hw: bool
    opset: int
    ops: str

    def dynamic_axes(self) -> dict[int, str]:
        axes = {}
        if self.dynamic_batch:
            axes[0] = "batch"
        if self.dynamic_hw:
            axes.update({2: "height", 3: "width"})
        return axes


def _translation(opdef: OpDef) -> Any:
    """onnxscript translation of ``torch.ops.litevit.<op>``: one ``litevit`` node, attributes kept."""
    opset = onnxscript.values.Opset(DOMAIN, OP_VERSION)
    node_builder = getattr(opset, opdef.onnx_name)
    n_tensors = len(opdef.tensor_args)

    def translate(*args: Any) -> Any:
        attrs = {
            name: (list(v) if isinstance(v, (list, tuple)) else v)
            for name, v in zip(opdef.attr_args, args[n_tensors:], strict=True)
        }
        derived = {}
        if opdef.onnx_attrs is not None:
            shapes = [tuple(d if isinstance(d, int) else -1 for d in t.shape) for t in args[:n_tensors]]
            derived = opdef.onnx_attrs(*shapes, **attrs)
        return node_builder(*args[:n_tensors], **attrs, **derived, **PLUGIN_ATTRS)

    # The exporter reads the signature to tell tensor inputs (unannotated) from attributes.
    params = inspect.signature(opdef.reference).parameters
    translate.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in opdef.tensor_args]
        + [
            inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=params[n].annotation)
            for n in opdef.attr_args
        ]
    )
    return translate


@dataclass(frozen=True)
class ExportInputs:
    """What the graph is traced with: example tensors, their graph input names and the dynamic
    dims of each (``torch.export`` form; one ``Dim`` object shared by inputs means one axis)."""

    args: tuple[torch.Tensor, ...]
    names: tuple[str, ...]
    dynamic_shapes: tuple[dict[int, Any], ...] | None


def image_dynamic_shapes(module: nn.Module, spec: GraphSpec) -> dict[int, Any]:
    """The dynamic dims of the (B, 3, H, W) image input, per ``spec``."""
    shapes: dict[int, Any] = {}
    if spec.dynamic_batch:
        shapes[0] = torch.export.Dim("batch", min=1, max=1024)
    if spec.dynamic_hw:
        cfg = model_cfg(module)
        divisor = cfg.size_divisor
        if divisor == 1:
            # Any size (the model pads itself, e.g. ELSA UPerNet): torch.export guards on whether
            # each padding is zero cannot be proved for a named range and would fail the export;
            # Dim.DYNAMIC keeps them as runtime checks of the exported program, which the ONNX
            # graph drops (its Pad/Slice are generic; the parity gate runs a second size).
            shapes[2] = shapes[3] = torch.export.Dim.DYNAMIC
            return shapes
        min_h, min_w = cfg.min_size or (divisor, divisor)
        # H and W are multiples of the model's divisor: express them as divisor * block count.
        blocks_h = torch.export.Dim("height_blocks", min=max(1, -(-min_h // divisor)), max=8192 // divisor)
        blocks_w = torch.export.Dim("width_blocks", min=max(1, -(-min_w // divisor)), max=8192 // divisor)
        shapes[2] = divisor * blocks_h
        shapes[3] = divisor * blocks_w
    return shapes


def image_inputs(module: nn.Module, spec: GraphSpec) -> ExportInputs:
    """The one-input graphs (classifiers, segmenters): the image as ``input``."""
    x = example_input(spec, model_cfg(module).size_divisor)
    return ExportInputs(
        (x,), (INPUT_NAME,), (image_dynamic_shapes(module, spec),) if spec.dynamic_axes() else None
    )


# Dynamic H x W is traced at no less than this, non-square: every size derived from it (down to
# the number of 7x7 windows of a 1/32 map) is then at least 2, so torch.export does not specialise
# a size-1 case. The example's size does not change the graph, only the tracing cost.
DYNAMIC_TRACE_MIN = (256, 288)


def example_input(spec: GraphSpec, divisor: int) -> torch.Tensor:
    """Example input for tracing. Dynamic dims must not be 1 (torch.export specialises 0/1 sizes)."""
    batch = max(spec.batch, 2) if spec.dynamic_batch else spec.batch
    h, w = spec.img_size
    if spec.dynamic_hw:
        h = -(-max(h, DYNAMIC_TRACE_MIN[0]) // divisor) * divisor
        w = -(-max(w, DYNAMIC_TRACE_MIN[1]) // divisor) * divisor
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(0))


def torch_to_onnx(
    module: nn.Module, spec: GraphSpec, names: Sequence[str], inputs: ExportInputs | None = None
) -> onnx.ModelProto:
    """Export ``module`` with litevit nodes (no function bodies yet) at opset ``spec.opset``;
    ``inputs`` defaults to the one image input of :func:`image_inputs`."""
    if spec.opset < MIN_OPSET:
        raise LitevitError(
            f"opset {spec.opset} is not supported; litevit exports opset {MIN_OPSET} or newer "
            f"(LayerNormalization needs 17; 17 is also the newest opset TensorRT 8.5/8.6 read)."
        )
    if inputs is None:
        inputs = image_inputs(module, spec)
    table = {opdef.torch_op: _translation(opdef) for opdef in OPS.values()}
    table.update(standard_translation_table())  # RoIAlign, NMS -> standard ONNX nodes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # torch.export first, on its own: torch.onnx would silently fall back to a graph whose
        # "dynamic" axes were specialised to the example size when the model code forbids them.
        try:
            exported = torch.export.export(
                module, inputs.args, dynamic_shapes=inputs.dynamic_shapes, strict=False
            )
        except torch._dynamo.exc.UserError as exc:
            reason = str(exc).strip().splitlines()[0]
            axes = ", ".join(spec.dynamic_axes().values())
            raise LitevitError(
                f"{model_cfg(module).name} cannot be exported with dynamic {axes}: {reason}"
            ) from None
        program = torch.onnx.export(
            exported,
            inputs.args,
            dynamo=True,
            opset_version=max(spec.opset, EXPORTER_MIN_OPSET),
            input_names=list(inputs.names),
            output_names=list(names),
            custom_translation_table=table,
            optimize=True,
            verbose=False,
        )
    if program is None:
        raise LitevitError(f"torch.onnx returned no program for {model_cfg(module).name}.")
    model = canonicalize_gelu(program.model_proto)
    return optimize_graph(convert_opset(model, spec.opset))


def canonicalize_gelu(model: onnx.ModelProto) -> onnx.ModelProto:
    """Reorder torch's exact-GELU decomposition into the form ONNX Runtime fuses into one Gelu.

    Below opset 20 torch writes ``x * (0.5 * (1 + erf(x / sqrt 2)))``; ONNX Runtime's GeluFusion
    matches ``(x * (1 + erf(x / sqrt 2))) * 0.5``. Same arithmetic up to rounding order (about 1e-7);
    on LVT at 224 the fused form saves about 1.4 ms of 20 on 2 CPU threads.
    """
    nodes = list(model.graph.node)
    producer = {out: node for node in nodes for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def only_consumer(node: onnx.NodeProto, op_type: str) -> onnx.NodeProto | None:
        users = consumers.get(node.output[0], [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    for erf in (n for n in nodes if n.op_type == "Erf"):
        div = producer.get(erf.input[0])
        add = only_consumer(erf, "Add")
        half = only_consumer(add, "Mul") if add is not None else None
        final = only_consumer(half, "Mul") if half is not None else None
        if div is None or div.op_type != "Div" or add is None or half is None or final is None:
            continue
        x = div.input[0]
        if x not in final.input:
            continue
        half_constant = next(name for name in half.input if name != add.output[0])
        half.input[:] = [x, add.output[0]]
        final.input[:] = [half.output[0], half_constant]
    return model


def custom_op_usage(model: onnx.ModelProto) -> dict[str, dict[str, Any]]:
    """Per litevit op: node count and the distinct attribute sets (for the manifest)."""
    usage: dict[str, dict[str, Any]] = {}
    for node in custom_nodes(model):
        entry = usage.setdefault(
            node.op_type, {"domain": DOMAIN, "version": OP_VERSION, "count": 0, "attribute_sets": []}
        )
        entry["count"] += 1
        attrs = {a.name: _jsonable(onnx.helper.get_attribute_value(a)) for a in node.attribute}
        if attrs not in entry["attribute_sets"]:
            entry["attribute_sets"].append(attrs)
    return usage


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def attach_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """Attach each used op's ONNX function body (standard ops) at the model's opset."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    opset = default_opset(out)
    for op_type, nodes in _nodes_by_op(out).items():
        opdef = OPS[op_type]
        if opdef.onnx_function is None:
            raise LitevitError(f"the {op_type} op has no ONNX function body; export with --ops plugin.")
        baked = {
            tuple(
                (a.name, repr(_jsonable(onnx.helper.get_attribute_value(a))))
                for a in node.attribute
                if a.name in opdef.baked_attrs
            )
            for node in nodes
        }
        if len(baked) > 1:
            raise LitevitError(
                f"{op_type} nodes in this model differ in {', '.join(opdef.baked_attrs)} "
                f"({sorted(baked)}); one function body cannot serve them: export with --ops plugin."
            )
        attrs = {a.name: _jsonable(onnx.helper.get_attribute_value(a)) for a in nodes[0].attribute}
        out.functions.append(opdef.onnx_function(attrs, opset))
    return out


def _nodes_by_op(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    grouped: dict[str, list[onnx.NodeProto]] = {}
    for node in custom_nodes(model):
        grouped.setdefault(node.op_type, []).append(node)
    return grouped


def inline_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace every litevit node by its body: a graph of standard ops only, with the bodies'
    shape computations folded to constants where the sizes are static."""
    inlined = onnx.inliner.inline_local_functions(attach_functions(model))
    del inlined.functions[:]
    kept = [o for o in inlined.opset_import if o.domain != DOMAIN]
    del inlined.opset_import[:]
    inlined.opset_import.extend(kept)
    return fold_static_shapes(inlined)


def apply_ops_mode(model: onnx.ModelProto, mode: str) -> onnx.ModelProto:
    """``function``: nodes + bodies; ``plugin``: nodes only; ``inline``: standard ops only."""
    if mode == "function":
        return attach_functions(model)
    if mode == "plugin":
        return model
    if mode == "inline":
        return inline_functions(model)
    raise LitevitError(f"unknown --ops mode {mode!r}; choose one of {', '.join(OPS_MODES)}.")


def for_onnxruntime(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph ONNX Runtime can run: a plugin-mode graph gets its bodies attached in memory."""
    return attach_functions(model) if custom_nodes(model) and not model.functions else model


def validate(model: onnx.ModelProto, opset: int) -> None:
    """The written graph declares the requested opset, has no op TensorRT cannot parse, and
    passes the full ONNX checker."""
    declared = default_opset(model)
    if declared != opset:
        raise LitevitError(f"the exported graph declares opset {declared}, not the requested {opset}.")
    op_types = {n.op_type for n in model.graph.node} | {n.op_type for f in model.functions for n in f.node}
    forbidden = op_types & FORBIDDEN_OPS
    if forbidden:
        raise LitevitError(
            f"the exported graph contains {', '.join(sorted(forbidden))}, which TensorRT cannot parse."
        )
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise LitevitError(f"the exported graph fails the ONNX checker: {first}") from None
