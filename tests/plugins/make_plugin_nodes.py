"""Write trt_harness/plugin_nodes.json: the litevit nodes of real exported graphs, for the C++ plugin
harness.

    python tests/plugins/make_plugin_nodes.py     # about 5 minutes on 2 cores

Exports the shipped LVT (CSA, RASA) and ELSA-Swin-T (GhostHead) configurations as ``litevit-export
MODEL --ops plugin --dynamic-batch --dynamic-hw`` does (opset 17, random weights: the nodes do not
depend on them) and keeps one node per distinct (op, attributes, input shapes), with the ONNX type of
each attribute and the symbolic input and output shapes the exporter's shape inference wrote. The
``refusals`` are shapes the kernels cannot take, made from those nodes; the harness expects each to
be refused while the engine is built, at the stage named (``network``: the dims the network fixes;
``profile``: the optimisation profile's shapes), with a sentence containing ``expect``.
``tests/plugins/test_trt_harness.py`` keeps this file in step with the ops and the exporter.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import onnx
from onnx import helper

FIXTURE = Path(__file__).resolve().parent / "trt_harness" / "plugin_nodes.json"
MODELS = ("lvt", "elsa_swin_tiny")
OPSET = 17


def _dim(dim: onnx.TensorShapeProto.Dimension) -> int | str:
    return dim.dim_param if dim.HasField("dim_param") else int(dim.dim_value)


def _attribute(attribute: onnx.AttributeProto) -> dict[str, Any]:
    value = helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        value = value.decode()
    elif isinstance(value, list):
        value = [int(v) for v in value]
    return {
        "name": attribute.name,
        "type": onnx.AttributeProto.AttributeType.Name(attribute.type),
        "value": value,
    }


def litevit_nodes(model: onnx.ModelProto, model_name: str) -> list[dict[str, Any]]:
    """One entry per distinct litevit node of ``model`` (the first of its kind, with a count)."""
    shapes: dict[str, list[int | str]] = {}
    for info in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        shapes[info.name] = [_dim(d) for d in info.type.tensor_type.shape.dim]
    for initializer in model.graph.initializer:
        shapes[initializer.name] = [int(d) for d in initializer.dims]
    found: dict[str, dict[str, Any]] = {}
    for node in model.graph.node:
        if node.domain != "litevit":
            continue
        entry = {
            "model": model_name,
            "name": node.name,
            "op_type": node.op_type,
            "domain": node.domain,
            "attributes": sorted((_attribute(a) for a in node.attribute), key=lambda a: a["name"]),
            "inputs": [shapes[name] for name in node.input],
            "outputs": [shapes[name] for name in node.output],
        }
        key = json.dumps([entry["op_type"], entry["attributes"], entry["inputs"]])
        if key in found:
            found[key]["count"] += 1
        else:
            found[key] = {**entry, "count": 1}
    return list(found.values())


def export(model_name: str) -> onnx.ModelProto:
    from litevit.export.onnx_export import GraphSpec, apply_ops_mode, output_names, torch_to_onnx
    from litevit.models import create_model

    model = create_model(model_name)
    spec = GraphSpec(tuple(model.cfg.input_size), 1, True, True, OPSET, "plugin")
    return apply_ops_mode(torch_to_onnx(model.eval(), spec, output_names(model.cfg.task, "labels")), "plugin")


def refusals(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shapes the kernels cannot take, made from the first exported node of each op."""
    first: dict[str, dict[str, Any]] = {}
    for node in nodes:
        first.setdefault(node["op_type"], node)
    csa, rasa, ghost = first["CSA"], first["RASA"], first["GhostHead"]
    attn, values = csa["inputs"]
    q, weight = rasa["inputs"]
    v, ghost_attn, ghost_mul, ghost_add = ghost["inputs"]
    wrong_channels = v[1] + 4
    return [
        {
            "node": csa["name"],
            "why": "values lack k^2*channels channels",
            "inputs": [attn, [values[0], values[1] - 1, *values[2:]]],
            "stage": "network",
            "expect": f"CSA values need k²·channels = {values[1]} channels",
        },
        {
            "node": csa["name"],
            "why": "attn's window width is one more than values' (only the profile's shapes show it)",
            "inputs": [[*attn[:3], f"{attn[3]} + 1"], values],
            "stage": "profile",
            "expect": "CSA attn must have shape",
        },
        {
            "node": rasa["name"],
            "why": "the shared weight is 5x5 for a kernel_size 3 node",
            "inputs": [q, [weight[0], 1, 5, 5]],
            "stage": "network",
            "expect": f"RASA weight must have shape ({weight[0]}, 1, 3, 3)",
        },
        {
            "node": rasa["name"],
            "why": "more channels than the CUDA grid takes (a launch limit: the profile's shapes show it)",
            "inputs": [[q[0], 70000, *q[2:]], [70000, *weight[1:]]],
            "stage": "profile",
            "expect": "RASA's launch takes at most 65535 batches and 65535 channels",
        },
        {
            "node": ghost["name"],
            "why": "heads do not divide the channels",
            "inputs": [
                [v[0], wrong_channels, *v[2:]],
                ghost_attn,
                [wrong_channels, *ghost_mul[1:]],
                [wrong_channels, *ghost_add[1:]],
            ],
            "stage": "network",
            "expect": f"must divide the {wrong_channels} channels of v",
        },
        {
            "node": ghost["name"],
            "why": "attn's height is twice v's (only the profile's shapes show it)",
            "inputs": [v, [*ghost_attn[:2], f"2*{ghost_attn[2]}", ghost_attn[3]], ghost_mul, ghost_add],
            "stage": "profile",
            "expect": "GhostHead: attn must be",
        },
    ]


def main() -> int:
    import litevit
    import torch

    nodes = [node for name in MODELS for node in litevit_nodes(export(name), name)]
    fixture = {
        "about": (
            "litevit nodes of real exported graphs for tests/plugins/trt_harness (written by "
            "make_plugin_nodes.py: --ops plugin --dynamic-batch --dynamic-hw, opset 17)"
        ),
        "exported_with": {
            "litevit": litevit.__version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
        },
        "nodes": nodes,
        "refusals": refusals(nodes),
    }
    FIXTURE.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE} ({len(nodes)} nodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
