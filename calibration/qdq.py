"""Explicit INT8: QuantizeLinear/DequantizeLinear pairs around weighted ops, in two forms derived
from one calibration: :func:`quantize` for TensorRT, :func:`quantize_for_onnxruntime` for ONNX
Runtime on a CPU.

TensorRT form. Placement follows TensorRT's guidance for explicit quantization: Q/DQ on the inputs of the ops
that have weights (Conv, MatMul, Gemm; a MatMul of two activations, e.g. attention, gets both
inputs quantized) and nowhere else. TensorRT fuses each DQ -> op -> (next Q) into an INT8 kernel
and keeps the rest (softmax, LayerNorm, GELU, residual adds, litevit's custom ops) in FP16/FP32.
Measured on LVT with random weights, Q/DQ around every op (onnxruntime.quantization's default)
drops logits cosine to 0.976 while this placement keeps 0.9996.

Scheme (what TensorRT's ONNX parser accepts on every version from 8.5): symmetric, zero point 0;
activations per tensor (scale = amax / 127 from calibration); weights per output channel
(scale = max |w| / 127), stored as INT8 initializers feeding a DequantizeLinear.

Custom nodes (CSA, RASA, GhostHead) keep FP32 inputs and outputs, which their function bodies and
the TensorRT plugins both take; the ops inside their function bodies are not quantized.

ONNX Runtime form. ONNX Runtime's CPU provider turns a Q/DQ group into an integer kernel only in
the shapes its QDQ selectors accept (``qdq_selectors.cc`` / ``qdq_selector_action_transformer.cc``
of onnxruntime); on the TensorRT form it fuses almost nothing: a ``Conv`` is fused into
``QLinearConv`` only with a ``Q`` on its output and, when it has a bias, an INT32 bias behind a
``DequantizeLinear``; a ``MatMul`` followed by its bias ``Add`` is first turned into an FP32
``Gemm`` (MatMulAddFusion), whose FP32 bias then blocks ``QGemm``; and weight DQs are not
constant-folded. So that graph runs FP32 kernels plus a dequantization of every weight per
inference, 0.5-0.8x FP32 speed. The ONNX Runtime form therefore has:

* activations UINT8 with zero point 128 and the same per-tensor scale amax / 127 (ONNX Runtime
  on x86 converts INT8 activations to UINT8 anyway; its U8S8 kernels use AVX2/AVX512-VNNI);
* weights INT8 per output channel, the same values as the TensorRT form;
* Conv/Gemm biases INT32 with scale s_x * s_w per channel, zero point 0;
* a Q/DQ pair on every quantized op's output too, with that output's calibrated threshold, so
  ONNX Runtime fuses ``QLinearConv``, ``QLinearMatMul`` and ``QGemm`` (the output's consumers
  read the dequantized value; residual adds, norms and activations stay FP32);
* grouped and depthwise convolutions left in FP32: ONNX Runtime's ``QLinearConv`` runs them
  slower than its FP32 kernels (measured on ELSA's 7x7 group-width-4 convolutions).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from litevit.onnx_graphs import UniqueNames

QUANTIZED_OP_TYPES = ("Conv", "MatMul", "Gemm")
INT8_MAX = 127
METADATA_KEY = "litevit.quantization"


@dataclass(frozen=True)
class QuantSite:
    """One weighted op whose inputs get Q/DQ.

    ``layer`` names it for people (the PyTorch module path, plus the op when the module has
    several); ``module`` is the module holding it (e.g. ``backbone.1.1.0.attn``), the unit of
    module-level sensitivity and ``--keep-fp32``.
    """

    node: str
    op_type: str
    layer: str
    module: str
    activations: tuple[str, ...]
    weight: str | None
    weight_axis: int
    output: str = ""  # the op's output (its threshold serves the ONNX Runtime form)


def _name_scopes(node: onnx.NodeProto) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return []
            return [s for s in scopes if isinstance(s, str) and s]
    return []


def fold_weight_transposes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace ``Transpose(initializer)`` with a transposed initializer, so that every weight a
    MatMul reads is an initializer the quantizer can scale per output channel (torch's exporter
    leaves some ``nn.Linear`` weights as a Transpose of the stored matrix)."""
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    graph = folded.graph
    initializers = {init.name: init for init in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    keep = []
    for node in graph.node:
        if (
            node.op_type == "Transpose"
            and node.input[0] in initializers
            and node.output[0] not in graph_outputs
        ):
            array = numpy_helper.to_array(initializers[node.input[0]])
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
            transposed = np.ascontiguousarray(np.transpose(array, perm))
            graph.initializer.append(numpy_helper.from_array(transposed, node.output[0]))
            continue
        keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)
    _drop_unused_initializers(graph)
    return folded


def _weight_axis(node: onnx.NodeProto, rank: int) -> int:
    """The output-channel axis of a weight: Conv O of OIHW; MatMul N of (K, N); Gemm per transB."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return rank - 1


def _node_key(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def quant_sites(model: onnx.ModelProto) -> list[QuantSite]:
    """The weighted ops of the main graph, in graph order, with human-readable layer names."""
    initializers = {init.name: init for init in model.graph.initializer}
    found: list[tuple[onnx.NodeProto, str, str, str]] = []
    for index, node in enumerate(model.graph.node):
        if node.op_type not in QUANTIZED_OP_TYPES or node.domain not in ("", "ai.onnx"):
            continue
        scopes = _name_scopes(node)
        module = scopes[-2] if len(scopes) >= 2 else ""
        key = _node_key(node, index)
        found.append((node, key, module, scopes[-1] if scopes else key))
    per_module: dict[str, int] = {}
    for _, _, module, _ in found:
        per_module[module] = per_module.get(module, 0) + 1
    sites = []
    for node, key, module, op_name in found:
        layer = module if module and per_module[module] == 1 else f"{module or 'graph'}:{op_name}"
        weight = node.input[1] if len(node.input) > 1 and node.input[1] in initializers else None
        activations = tuple(name for name in node.input[:2] if name and name not in initializers)
        axis = _weight_axis(node, len(initializers[weight].dims)) if weight is not None else 0
        sites.append(
            QuantSite(key, node.op_type, layer, module or layer, activations, weight, axis, node.output[0])
        )
    return sites


def activation_tensors(sites: Iterable[QuantSite]) -> list[str]:
    """The tensors calibration must measure, each once, in first-use order: every site's inputs
    (both forms) and outputs (the ONNX Runtime form)."""
    return list(dict.fromkeys(name for site in sites for name in (*site.activations, site.output) if name))


def _scalar(name: str, value: float | int, data_type: int) -> onnx.TensorProto:
    return helper.make_tensor(name, data_type, [], [value])


def quantize(
    model: onnx.ModelProto,
    sites: list[QuantSite],
    amax: dict[str, float],
    *,
    keep_fp32: Collection[str] = (),
) -> onnx.ModelProto:
    """The TensorRT form: Q/DQ on the inputs of every site whose ``layer`` and ``module`` are not
    in ``keep_fp32``.

    ``model`` must be the graph ``sites`` were read from (after :func:`fold_weight_transposes`);
    ``amax`` gives each activation's calibrated threshold (0 = never non-zero: left unquantized).
    """
    writer = _QdqWriter(model, TensorProto.INT8, 0)
    chosen = _chosen(sites, keep_fp32)
    for index, node in enumerate(writer.nodes):
        site = chosen.get(_node_key(node, index))
        if site is not None:
            writer.quantize_inputs(node, site, amax)
        writer.emit(node)
    return writer.finish(
        sites,
        chosen,
        {
            "scheme": "symmetric INT8, zero point 0; activations per tensor, weights per output channel",
            "placement": "inputs of Conv, MatMul, Gemm",
        },
    )


def quantize_for_onnxruntime(
    model: onnx.ModelProto,
    sites: list[QuantSite],
    amax: dict[str, float],
    *,
    keep_fp32: Collection[str] = (),
) -> onnx.ModelProto:
    """The ONNX Runtime form (module docstring) from the same sites and thresholds, ``amax``
    holding the sites' outputs too; a site whose output has no threshold gets none on it."""
    writer = _QdqWriter(model, TensorProto.UINT8, UINT8_ZERO_POINT)
    chosen = {
        key: site
        for key, site in _chosen(sites, keep_fp32).items()
        if not (site.op_type == "Conv" and _group(writer.node_by_key[key]) > 1)
    }
    for index, node in enumerate(writer.nodes):
        site = chosen.get(_node_key(node, index))
        if site is None:
            writer.emit(node)
            continue
        writer.quantize_inputs(node, site, amax)
        if node.op_type in ("Conv", "Gemm") and len(node.input) > 2 and node.input[2]:
            writer.quantize_bias(node, site, amax)
        writer.emit(node)
        writer.quantize_output(node, amax.get(site.output, 0.0))
    return writer.finish(
        sites,
        chosen,
        {
            "scheme": (
                "ONNX Runtime: UINT8 activations (zero point 128, scale amax / 127), INT8 weights per "
                "output channel, INT32 biases"
            ),
            "placement": "inputs and outputs of Conv (not grouped), MatMul, Gemm",
        },
    )


UINT8_ZERO_POINT = 128


def _chosen(sites: list[QuantSite], keep_fp32: Collection[str]) -> dict[str, QuantSite]:
    return {site.node: site for site in sites if site.layer not in keep_fp32 and site.module not in keep_fp32}


def _group(node: onnx.NodeProto) -> int:
    return next((int(a.i) for a in node.attribute if a.name == "group"), 1)


class _QdqWriter:
    """Rebuilds a graph's node list with Q/DQ pairs; one pair per tensor, reused by all readers."""

    def __init__(self, model: onnx.ModelProto, activation_type: int, zero_point: int) -> None:
        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)
        self.graph = self.model.graph
        self.nodes = list(self.graph.node)
        self.node_by_key = {_node_key(node, index): node for index, node in enumerate(self.nodes)}
        self.names = UniqueNames(self.graph)
        self.initializers = {init.name: init for init in self.graph.initializer}
        self.activation_type = activation_type
        self.zero_point = zero_point
        self.rebuilt: list[onnx.NodeProto] = []
        self.dequantized: dict[str, str] = {}  # tensor (or weight@axis) -> its DequantizeLinear output
        self.scales: dict[str, np.ndarray] = {}  # DequantizeLinear output -> its scale(s)
        self.graph_outputs = {o.name for o in self.graph.output}

    def emit(self, node: onnx.NodeProto) -> None:
        self.rebuilt.append(node)

    def _activation_params(self, tensor: str, threshold: float) -> tuple[str, str]:
        scale, zero = self.names(f"{tensor}_scale"), self.names(f"{tensor}_zero_point")
        self.graph.initializer.extend(
            [
                _scalar(scale, threshold / INT8_MAX, TensorProto.FLOAT),
                _scalar(zero, self.zero_point, self.activation_type),
            ]
        )
        return scale, zero

    def activation_pair(self, tensor: str, threshold: float) -> str | None:
        if tensor in self.dequantized:
            return self.dequantized[tensor]
        if threshold <= 0.0:
            return None
        scale, zero = self._activation_params(tensor, threshold)
        q_out, dq_out = self.names(f"{tensor}_quantized"), self.names(f"{tensor}_dequantized")
        self.rebuilt.append(
            helper.make_node("QuantizeLinear", [tensor, scale, zero], [q_out], name=self.names(f"{tensor}_Q"))
        )
        self.rebuilt.append(
            helper.make_node(
                "DequantizeLinear", [q_out, scale, zero], [dq_out], name=self.names(f"{tensor}_DQ")
            )
        )
        self.dequantized[tensor] = dq_out
        self.scales[dq_out] = np.float32(threshold / INT8_MAX)
        return dq_out

    def weight_pair(self, weight: str, axis: int) -> str:
        key = f"{weight}@{axis}"
        if key in self.dequantized:
            return self.dequantized[key]
        values = numpy_helper.to_array(self.initializers[weight]).astype(np.float32)
        reduce_axes = tuple(i for i in range(values.ndim) if i != axis)
        channel_max = np.abs(values).max(axis=reduce_axes)
        scales = np.where(channel_max > 0, channel_max / INT8_MAX, 1.0).astype(np.float32)
        shape = [1] * values.ndim
        shape[axis] = -1
        q_values = np.clip(np.rint(values / scales.reshape(shape)), -INT8_MAX, INT8_MAX).astype(np.int8)
        dq_out = self._constant_dq(weight, q_values, scales, np.zeros_like(scales, dtype=np.int8), axis)
        self.dequantized[key] = dq_out
        self.scales[dq_out] = scales
        return dq_out

    def _constant_dq(
        self, name: str, q_values: np.ndarray, scales: np.ndarray, zeros: np.ndarray, axis: int
    ) -> str:
        q_name, scale, zero = (
            self.names(f"{name}_quantized"),
            self.names(f"{name}_scale"),
            self.names(f"{name}_zero_point"),
        )
        self.graph.initializer.extend(
            [
                numpy_helper.from_array(q_values, q_name),
                numpy_helper.from_array(scales, scale),
                numpy_helper.from_array(zeros, zero),
            ]
        )
        dq_out = self.names(f"{name}_dequantized")
        self.rebuilt.append(
            helper.make_node(
                "DequantizeLinear", [q_name, scale, zero], [dq_out], name=self.names(f"{name}_DQ"), axis=axis
            )
        )
        return dq_out

    def quantize_inputs(self, node: onnx.NodeProto, site: QuantSite, amax: dict[str, float]) -> None:
        for position, name in enumerate(node.input[:2]):
            replacement = None
            if name in site.activations:
                replacement = self.activation_pair(name, amax.get(name, 0.0))
            elif name == site.weight:
                replacement = self.weight_pair(name, site.weight_axis)
            if replacement is not None:
                node.input[position] = replacement

    def quantize_bias(self, node: onnx.NodeProto, site: QuantSite, amax: dict[str, float]) -> None:
        """An FP32 bias initializer -> INT32 with scale s_x * s_w (what QLinearConv / QGemm take),
        when both the input and the weight are quantized."""
        bias, x_dq, w_dq = node.input[2], node.input[0], node.input[1]
        if bias not in self.initializers or x_dq not in self.scales or w_dq not in self.scales:
            return
        values = numpy_helper.to_array(self.initializers[bias]).astype(np.float64).reshape(-1)
        scales = (self.scales[x_dq] * self.scales[w_dq] * np.ones_like(values)).astype(np.float32)
        q_values = np.clip(np.rint(values / scales), np.iinfo(np.int32).min, np.iinfo(np.int32).max)
        node.input[2] = self._constant_dq(
            bias, q_values.astype(np.int32), scales, np.zeros(scales.shape, dtype=np.int32), 0
        )

    def quantize_output(self, node: onnx.NodeProto, threshold: float) -> None:
        """Q/DQ on the node's output: the node writes a new tensor, the DQ takes the old name, so
        every reader (and a later site reading it) gets the dequantized value."""
        output = node.output[0]
        # A graph output (logits) keeps full precision: ONNX Runtime then runs the op with a float
        # output (QGemm / MatMulIntegerToFloat), or leaves that one op in FP32.
        if threshold <= 0.0 or output in self.dequantized or output in self.graph_outputs:
            return
        produced = self.names(f"{output}_before_quantization")
        node.output[0] = produced
        scale, zero = self._activation_params(output, threshold)
        q_out = self.names(f"{output}_quantized")
        self.rebuilt.append(
            helper.make_node(
                "QuantizeLinear", [produced, scale, zero], [q_out], name=self.names(f"{output}_Q")
            )
        )
        self.rebuilt.append(
            helper.make_node(
                "DequantizeLinear", [q_out, scale, zero], [output], name=self.names(f"{output}_DQ")
            )
        )
        self.dequantized[output] = output
        self.scales[output] = np.float32(threshold / INT8_MAX)

    def finish(
        self, sites: list[QuantSite], chosen: dict[str, QuantSite], description: dict[str, object]
    ) -> onnx.ModelProto:
        del self.graph.node[:]
        self.graph.node.extend(self.rebuilt)
        _drop_unused_initializers(self.graph)
        _set_metadata(
            self.model,
            {
                **description,
                "quantized_layers": len(chosen),
                "fp32_layers": [s.layer for s in sites if s.node not in chosen],
            },
        )
        return self.model


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """The FP32 weights the INT8 copies replaced (the graph must not carry both)."""
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)


def _set_metadata(model: onnx.ModelProto, value: dict[str, object]) -> None:
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = json.dumps(value)
            return
    model.metadata_props.append(onnx.StringStringEntryProto(key=METADATA_KEY, value=json.dumps(value)))


def quantization_metadata(model: onnx.ModelProto) -> dict[str, object] | None:
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return dict(json.loads(prop.value))
    return None
