"""Evaluating INT8 candidates by running only the part of the graph they change.

A sensitivity candidate is the all-INT8 graph with some groups of layers left in FP32. Every node
before the first layer of those groups (the **cut**) computes exactly what it computes in the
all-INT8 graph, so a candidate is evaluated on its **tail** alone: the FP32 graph's nodes from the
cut on, quantized like the full candidate, fed with the tensors the all-INT8 graph computed at the
cut (the **boundary**). The all-INT8 graph runs once per chunk of candidates, up to the chunk's
last cut, and its boundary tensors (all images) are kept for the chunk; the FP32 reference outputs
are computed once, by :class:`~litevit.calibration.diagnose.HeldOutSet`. On LVT the average tail
holds about half of the graph's nodes.

Exactness. A tail holds the candidate's own nodes from the cut on (a Q/DQ pair the full graph
would share with a layer before the cut is recreated in the tail with the same scale), and with
the boundary of its own cut alone, a tail's outputs equal the whole candidate graph's bit for bit.
Reading many boundary tensors out of one all-INT8 run, as the chunks do, keeps ONNX Runtime from
fusing some kernels around them (which ones is ONNX Runtime's choice), and that changes the last
float bits of the tensors computed after them. On a trained model this is invisible (the test on
the trained fixture holds every figure to 1e-6 of the whole-graph method and the ranking to the
same order). On a random-weight model, whose INT8 activations sit on rounding steps, such bits
flip INT8 roundings and figures move by as much as one group's gain: the ranking of groups with
nearly equal gains can differ from a whole-graph run, as it would under any other equally valid
kernel choice.

Memory: at most :data:`BOUNDARY_BUDGET_BYTES` of boundary tensors are held at a time (candidates
are evaluated in chunks, in graph order, each chunk paying one partial all-INT8 run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper

from litevit._compat import strict_zip
from litevit.calibration.diagnose import Agreement, HeldOutSet, compare, ort_session, run_outputs_on
from litevit.calibration.qdq import QuantSite, _node_key, quantize

BOUNDARY_BUDGET_BYTES = 256 << 20


class TailEvaluator:
    """Evaluates "all-INT8 except ``keep``" candidates of ``model`` (the folded FP32 graph the
    ``sites`` were read from) against FP32 on ``held_out``, running each candidate's tail only."""

    def __init__(
        self,
        model: onnx.ModelProto,
        sites: Sequence[QuantSite],
        amax: dict[str, float],
        held_out: HeldOutSet,
        *,
        runnable: Callable[[onnx.ModelProto], onnx.ModelProto] = lambda m: m,
        budget_bytes: int = BOUNDARY_BUDGET_BYTES,
    ) -> None:
        self.model, self.sites, self.amax, self.held_out = model, list(sites), amax, held_out
        self.runnable, self.budget_bytes = runnable, budget_bytes
        self.nodes = list(model.graph.node)
        keys = {_node_key(node, index): index for index, node in enumerate(self.nodes)}
        self.position = {site.node: keys[site.node] for site in self.sites}
        # quantize() finds sites by node name; an unnamed node is found by its index, which a tail
        # shifts: then every candidate is evaluated whole (cut 0), as the slow method did.
        self.cuts_allowed = all(site.node == self.nodes[self.position[site.node]].name for site in self.sites)
        self.initializers = {init.name: init for init in model.graph.initializer}
        self.graph_inputs = [value.name for value in model.graph.input]
        self.all_int8 = runnable(quantize(model, self.sites, amax))
        self._types: dict[str, int] | None = None
        self._cached: dict[int, list[dict[str, np.ndarray]]] = {}

    # ----------------------------------------------------------------------------------------
    # Public

    def evaluate(self, keep: set[str]) -> Agreement:
        """The candidate with the layers or modules named in ``keep`` left in FP32."""
        cut = self.cut_of(keep)
        if cut not in self._cached:
            self._cached = self._boundary_values([cut])  # one cut at a time outside evaluate_each
        return self._run_tail(keep, cut, self._cached[cut])

    def evaluate_each(
        self, keeps: Sequence[set[str]], on_done: Callable[[], None] | None = None
    ) -> list[Agreement]:
        """Each candidate of ``keeps``, in graph order of their cuts and in chunks that fit the
        memory budget; results in the order of ``keeps``."""
        cuts = [self.cut_of(keep) for keep in keeps]
        order = sorted(range(len(keeps)), key=lambda i: cuts[i])
        results: dict[int, Agreement] = {}
        for chunk in self._chunks(sorted(set(cuts))):
            values = self._boundary_values(chunk)
            for index in order:
                if cuts[index] in values:
                    results[index] = self._run_tail(keeps[index], cuts[index], values[cuts[index]])
                    if on_done is not None:
                        on_done()
        return [results[index] for index in range(len(keeps))]

    def cut_of(self, keep: set[str]) -> int:
        """Index (in the FP32 graph) of the first layer left in FP32; 0 when cuts are not allowed."""
        kept = [self.position[s.node] for s in self.sites if s.layer in keep or s.module in keep]
        if not kept:
            raise ValueError(f"no quantized layer is named by {sorted(keep)}")
        return min(kept) if self.cuts_allowed else 0

    # ----------------------------------------------------------------------------------------
    # Tails

    def _tail_nodes(self, cut: int) -> list[onnx.NodeProto]:
        """Nodes from ``cut`` on, plus the earlier Constant nodes they read (constants are
        recomputed, not carried as boundary tensors)."""
        tail = self.nodes[cut:]
        consumed = {name for node in tail for name in node.input}
        constants = [n for n in self.nodes[:cut] if n.op_type == "Constant" and n.output[0] in consumed]
        return constants + tail

    def boundary(self, cut: int) -> list[str]:
        """The tensors a tail reads that earlier nodes (or the graph's inputs) produce."""
        tail = self._tail_nodes(cut)
        produced = {name for node in tail for name in node.output}
        names = dict.fromkeys(
            name
            for node in tail
            for name in node.input
            if name and name not in produced and name not in self.initializers
        )
        return list(names)

    def _tail_model(self, cut: int, feeds: list[dict[str, np.ndarray]]) -> onnx.ModelProto:
        nodes = self._tail_nodes(cut)
        used = {name for node in nodes for name in node.input}
        inputs = [_value_info(name, [feed[name] for feed in feeds]) for name in self.boundary(cut)]
        graph = helper.make_graph(
            nodes,
            f"{self.model.graph.name}_tail_{cut}",
            inputs,
            list(self.model.graph.output),
            [init for name, init in self.initializers.items() if name in used],
        )
        tail = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        tail.ir_version = self.model.ir_version
        tail.functions.extend(self.model.functions)
        return tail

    def _run_tail(self, keep: set[str], cut: int, feeds: list[dict[str, np.ndarray]]) -> Agreement:
        tail = self._tail_model(cut, feeds)
        sites = [site for site in self.sites if self.position[site.node] >= cut]
        candidate = self.runnable(quantize(tail, sites, self.amax, keep_fp32=keep))
        outputs = run_outputs_on(candidate, feeds, self.held_out.threads)
        return compare(self.held_out.reference, outputs)

    # ----------------------------------------------------------------------------------------
    # Boundary tensors from the all-INT8 graph

    def _boundary_values(self, cuts: Sequence[int]) -> dict[int, list[dict[str, np.ndarray]]]:
        """cut -> one feed per held-out batch, from one run of the all-INT8 graph."""
        names = list(dict.fromkeys(name for cut in cuts for name in self.boundary(cut)))
        values = self._run_all_int8(names, self.held_out.batches)
        return {cut: [{name: batch[name] for name in self.boundary(cut)} for batch in values] for cut in cuts}

    def _run_all_int8(
        self, names: Sequence[str], batches: Sequence[np.ndarray]
    ) -> list[dict[str, np.ndarray]]:
        """``names`` computed by the all-INT8 graph on each batch (graph inputs are the batch)."""
        input_name = self.graph_inputs[0]
        computed = [name for name in names if name not in self.graph_inputs]
        results: list[dict[str, np.ndarray]] = [{input_name: batch} for batch in batches]
        if computed:
            session = ort_session(self._prefix_model(computed), self.held_out.threads)
            for result, batch in strict_zip(results, batches):
                result.update(strict_zip(computed, session.run(computed, {input_name: batch})))
        return [{name: result[name] for name in names} for result in results]

    def _prefix_model(self, outputs: Sequence[str]) -> onnx.ModelProto:
        """The all-INT8 graph cut down to the nodes ``outputs`` need, with those as its outputs."""
        graph = self.all_int8.graph
        needed, kept = set(outputs), []
        for node in reversed(graph.node):
            if needed.intersection(node.output):
                kept.append(node)
                needed.update(name for name in node.input if name)
        types = self._elem_types()
        prefix = onnx.ModelProto()
        prefix.CopyFrom(self.all_int8)
        del prefix.graph.node[:]
        prefix.graph.node.extend(reversed(kept))
        del prefix.graph.output[:]
        prefix.graph.output.extend(
            helper.make_tensor_value_info(name, types.get(name, onnx.TensorProto.FLOAT), None)
            for name in outputs
        )
        used = {name for node in prefix.graph.node for name in node.input}
        kept_initializers = [init for init in prefix.graph.initializer if init.name in used]
        del prefix.graph.initializer[:]
        prefix.graph.initializer.extend(kept_initializers)
        return prefix

    def _elem_types(self) -> dict[str, int]:
        if self._types is None:
            inferred = onnx.shape_inference.infer_shapes(self.model)
            self._types = {
                value.name: value.type.tensor_type.elem_type
                for value in inferred.graph.value_info
                if value.type.tensor_type.elem_type
            }
        return self._types

    def _chunks(self, cuts: Sequence[int]) -> list[list[int]]:
        """Consecutive cuts whose boundary tensors, over all batches, fit the budget together
        (sizes measured on the first batch; a cut over budget on its own gets a chunk alone)."""
        names = list(dict.fromkeys(name for cut in cuts for name in self.boundary(cut)))
        first = self._run_all_int8(names, self.held_out.batches[:1])[0]
        per_batch = {name: first[name].nbytes for name in names}
        batches = len(self.held_out.batches)
        chunks: list[list[int]] = []
        held: set[str] = set()
        for cut in cuts:
            wanted = held | set(self.boundary(cut))
            if chunks and sum(per_batch[name] for name in wanted) * batches > self.budget_bytes:
                chunks.append([cut])
                held = set(self.boundary(cut))
            else:
                if not chunks:
                    chunks.append([])
                chunks[-1].append(cut)
                held = wanted
        return chunks


def _value_info(name: str, arrays: Sequence[np.ndarray]) -> onnx.ValueInfoProto:
    """A graph input for ``arrays`` (one per batch): their type, and their shape with any axis
    whose size differs between batches left symbolic."""
    first = arrays[0]
    dims: list[Any] = [
        size if all(a.shape[axis] == size for a in arrays) else f"{name}_dim{axis}"
        for axis, size in enumerate(first.shape)
    ]
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(first.dtype), dims)


__all__ = ["BOUNDARY_BUDGET_BYTES", "TailEvaluator"]
