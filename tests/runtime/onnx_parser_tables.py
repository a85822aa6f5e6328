"""Writes ``runtime/trt_build/onnx_parser_support.json``: what the ONNX parser of each TensorRT
release litevit targets imports, from onnx-tensorrt's ``docs/operators.md``.

Sources (the JSON records each one, and each release row names its source):

* the onnx-tensorrt release branches 8.5-GA, 8.6-GA and 10.1-GA (``git show BRANCH:docs/operators.md``
  in a clone; ``main`` there is the 10.0 document), read from ``--mirror`` when given;
* the newest copy of ``docs/operators.md`` found (headed "TensorRT 10.15"; no release branch after
  10.1 was available), given as ``--newest FILE`` or, without it, kept from the JSON already written.

The releases between two documents (10.3, 10.4 after the 10.1 one; 10.13 before the 10.15 one; 11.x
after it) are the document plus the operator changes onnx-tensorrt's ``docs/Changelog.md`` lists
for the releases in between, each recorded with its reason. The machine-checked restrictions
(``checks``) are written here by hand from the documents' Restrictions column and, where the
column is silent or wrong, from the importer source of that branch (``builtin_op_importers.cpp``
on 8.5-GA/8.6-GA, ``onnxOpImporters.cpp`` on 10.1-GA); each says which.

``python tests/runtime/onnx_parser_tables.py --mirror /path/to/onnx-tensorrt.git [--newest FILE]``
rewrites the JSON; ``tests/runtime/test_parser_coverage.py`` checks that the JSON's branch rows
still match the mirror when one is present.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "runtime" / "trt_build" / "onnx_parser_support.json"
FORMAT = "litevit.onnx-parser-support/1"
REPOSITORY = "onnx/onnx-tensorrt"

BRANCHES = ("8.5-GA", "8.6-GA", "10.1-GA")
NEWEST = "10.15"

_HEADER_RANGE = re.compile(r"inclusive range of opset (\d+) to opset (\d+)", re.IGNORECASE)
_HEADER_UP_TO = re.compile(r"supports operators up to Opset (\d+)", re.IGNORECASE)
_ROW = re.compile(r"^\|\s*([A-Za-z][A-Za-z0-9]*)\s*\|\s*(Y|N)\b[^|]*(?:\|(.*))?$")


def parse_operators_md(text: str) -> dict[str, Any]:
    """The opset range and one entry per operator row of an operators.md document:
    ``{"supported": bool, "types": [...], "restrictions": str}``."""
    match = _HEADER_RANGE.search(text)
    if match is not None:
        opset = [int(match.group(1)), int(match.group(2))]
    else:
        up_to = _HEADER_UP_TO.search(text)
        if up_to is None:
            raise ValueError("operators.md names no opset range")
        # "up to Opset N": the lower end is not stated; the parser rejects nothing below 7 that
        # litevit could write, so 1 is recorded.
        opset = [1, int(up_to.group(1))]
    ops: dict[str, Any] = {}
    for line in text.splitlines():
        row = _ROW.match(line.strip())
        if row is None or row.group(1) == "Operator":
            continue
        name, flag, rest = row.group(1), row.group(2), row.group(3) or ""
        cells = [cell.strip() for cell in rest.split("|")]
        types = [t.strip() for t in cells[0].split(",") if t.strip()] if cells and cells[0] else []
        # One document spells INT64 "INF64".
        types = ["INT64" if t == "INF64" else t for t in types]
        restrictions = " ".join(c for c in cells[1:] if c).replace("<br />", " ").strip()
        entry: dict[str, Any] = {"supported": flag == "Y"}
        if flag == "Y":
            entry["types"] = types
        if restrictions:
            entry["restrictions"] = " ".join(restrictions.split())
        ops[name] = entry
    if not ops:
        raise ValueError("operators.md has no operator rows")
    return {"opset": opset, "ops": ops}


def _git(mirror: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(mirror), *args], check=True, capture_output=True, text=True
    ).stdout


def branch_source(mirror: Path, branch: str) -> dict[str, Any]:
    parsed = parse_operators_md(_git(mirror, "show", f"{branch}:docs/operators.md"))
    commit = _git(mirror, "rev-parse", branch).strip()
    return {
        "repository": REPOSITORY,
        "branch": branch,
        "commit": commit,
        "path": "docs/operators.md",
        **parsed,
    }


def newest_source(path: Path) -> dict[str, Any]:
    return {
        "repository": REPOSITORY,
        "branch": None,
        "commit": None,
        "path": "docs/operators.md",
        "note": "the newest copy found, headed 'TensorRT 10.15' (no release branch after 10.1-GA was "
        "available; its commit was not recorded by the index it came from)",
        **parse_operators_md(path.read_text()),
    }


# ---------------------------------------------------------------------------------------------
# Machine-checked restrictions (litevit.runtime.trt_build.parser_coverage implements each kind)

_DOC = "operators.md Restrictions"


def _const(index: int, why: str) -> dict[str, Any]:
    return {"check": "constant_input", "input": index, "why": why}


_RESIZE_TRANSFORMS = [
    "half_pixel",
    "pytorch_half_pixel",
    "tf_half_pixel_for_nn",
    "asymmetric",
    "align_corners",
]
_RESIZE_NEAREST = ["floor", "ceil", "round_prefer_floor", "round_prefer_ceil"]
_RESIZE_MODE_WHY = (
    "operators.md lists nearest and linear; the Resize importer also maps cubic (ResizeMode::kCUBIC) on "
    "8.5-GA, 8.6-GA and 10.1-GA, so cubic is accepted"
)
_QDQ_ZERO = {"check": "zero_point_zero", "input": 2, "why": f"{_DOC}: the zero point must be 0"}
_QDQ_8X = [
    _QDQ_ZERO,
    {
        "check": "min_inputs",
        "count": 3,
        "why": "QuantDequantLinearHelper on 8.5-GA/8.6-GA requires 3 inputs (the zero point must be given)",
    },
    {
        "check": "input_types",
        "input": 2,
        "allowed": ["INT8"],
        "why": "QuantDequantLinearHelper on 8.5-GA/8.6-GA refuses a UINT8 zero point",
    },
]
_POOL_DILATIONS = {"check": "attribute_all_ones", "attribute": "dilations", "why": f"{_DOC}: dilations"}
_POOL_RANK = {"check": "input_rank_in", "input": 0, "ranks": [4, 5], "why": f"{_DOC}: 2D or 3D pooling only"}
_FIRST_OUTPUT = {"check": "first_output_only", "why": f"{_DOC}: only the first output is supported"}
_EINSUM = {
    "check": "einsum_equation",
    "why": f"{_DOC}: ellipsis and diagonal operations are not supported (before 10.12)",
}


def _checks(release: str) -> dict[str, list[dict[str, Any]]]:
    """The checks per op for ``release`` (one of the row names)."""
    v = tuple(int(p) for p in release.split("."))
    eight = v < (9,)
    checks: dict[str, list[dict[str, Any]]] = {
        "QuantizeLinear": _QDQ_8X if eight else [_QDQ_ZERO],
        "DequantizeLinear": _QDQ_8X if eight else [_QDQ_ZERO],
        "MaxPool": [_POOL_RANK, _FIRST_OUTPUT] + ([] if eight else [_POOL_DILATIONS]),
        "AveragePool": [_POOL_RANK] + ([] if eight else [_POOL_DILATIONS]),
        "CumSum": [_const(1, f"{_DOC}: `axis` must be an initializer (a build-time constant)")],
        "Squeeze": [_const(1, f"{_DOC}: `axes` must be an initializer (resolvable to a constant from 10.7)")],
        "Unsqueeze": [_const(1, f"{_DOC}: `axes` must be a constant tensor")],
    }
    resize = [
        {
            "check": "attribute_in",
            "attribute": "mode",
            "allowed": ["nearest", "linear", "cubic"],
            "default": "nearest",
            "why": _RESIZE_MODE_WHY,
        },
        {
            "check": "attribute_in",
            "attribute": "coordinate_transformation_mode",
            "allowed": _RESIZE_TRANSFORMS,
            "default": "half_pixel",
            "why": f"{_DOC}: supported transformation modes",
        },
        {
            "check": "attribute_in",
            "attribute": "nearest_mode",
            "allowed": _RESIZE_NEAREST,
            "default": "round_prefer_floor",
            "why": f"{_DOC}: supported nearest modes",
        },
    ]
    if not eight:
        resize += [
            {
                "check": "attribute_in",
                "attribute": "keep_aspect_ratio_policy",
                "allowed": ["stretch"],
                "default": "stretch",
                "why": f"{_DOC}: supported aspect ratio policy",
            },
            {
                "check": "attribute_in",
                "attribute": "antialias",
                "allowed": [0],
                "default": 0,
                "why": f"{_DOC}: antialiasing is not supported",
            },
        ]
    checks["Resize"] = resize
    if eight:
        checks["Pad"] = [
            {
                "check": "attribute_in",
                "attribute": "mode",
                "allowed": ["constant", "reflect", "edge"],
                "default": "constant",
                "why": "Pad importer on 8.5-GA/8.6-GA: constant, reflect, edge",
            },
            {
                "check": "no_input",
                "input": 3,
                "why": "Pad importer on 8.5-GA/8.6-GA: 'TensorRT does not support dynamic axes for pad!' "
                "(any axes input)",
            },
        ]
        checks["TopK"] = (
            [_const(1, f"{_DOC} (8.5-GA): `K` input must be an initializer (dynamic K arrived in 8.6)")]
            if v < (8, 6)
            else []
        )
        checks["InstanceNormalization"] = [
            _const(
                1,
                "operators.md (8.4-GA and earlier) and the 8.5/8.6 importer: `scale` must be an initializer",
            ),
            _const(
                2, "operators.md (8.4-GA and earlier) and the 8.5/8.6 importer: `B` must be an initializer"
            ),
        ]
        checks["Slice"] = [_const(3, f"{_DOC}: `axes` must be an initializer")]
        checks["Einsum"] = [_EINSUM]
    else:
        pad_modes = {
            "check": "attribute_in",
            "attribute": "mode",
            "allowed": ["constant", "reflect", "edge", "wrap"],
            "default": "constant",
            "why": "Pad importer from 10.0 (Changelog 10.0 EA: 'wrap' added)",
        }
        checks["Pad"] = [pad_modes] + (
            [_const(3, f"{_DOC}: `axes` must be an initializer (tensor axes from 10.4)")]
            if v < (10, 4)
            else []
        )
        checks["TopK"] = [
            {
                "check": "attribute_in",
                "attribute": "sorted",
                "allowed": [1],
                "default": 1,
                "why": f"{_DOC}: `sorted` must be 1",
            },
            {
                "check": "max_constant",
                "input": 1,
                "below": 3840,
                "why": f"{_DOC}: `K` must be less than 3840",
            },
        ]
        checks["LayerNormalization"] = [_FIRST_OUTPUT]
        checks["OneHot"] = [_const(1, f"{_DOC}: `depth` must be a build-time constant")]
        checks["ScatterND"] = [
            {
                "check": "attribute_in",
                "attribute": "reduction",
                "allowed": ["none"],
                "default": "none",
                "why": f"{_DOC}: `reduction` other than none is not supported",
            }
        ]
        checks["LSTM"] = [
            {
                "check": "attribute_in",
                "attribute": name,
                "allowed": [0],
                "default": 0,
                "why": f"{_DOC}: `{name}` must be 0",
            }
            for name in ("input_forget", "layout")
        ]
        checks["LpPool"] = [_POOL_DILATIONS]
        if v < (10, 3):
            checks["Slice"] = [_const(3, f"{_DOC}: `axes` must be an initializer (tensor axes from 10.3)")]
        if v < (10, 12):
            checks["Einsum"] = [_EINSUM]
        reduce_axes = _const(1, f"{_DOC}: `axes` must be an initializer")
        for name in (
            "ReduceL1",
            "ReduceL2",
            "ReduceLogSum",
            "ReduceLogSumExp",
            "ReduceMax",
            "ReduceMean",
            "ReduceMin",
            "ReduceProd",
            "ReduceSum",
            "ReduceSumSquare",
        ):
            checks[name] = [reduce_axes]
    return {op: rules for op, rules in checks.items() if rules}


# ---------------------------------------------------------------------------------------------
# Release rows: a source document plus the Changelog's operator changes in between

_CHANGELOG = "onnx-tensorrt docs/Changelog.md"


def _supported(types: list[str], why: str) -> dict[str, Any]:
    return {"supported": True, "types": types, "why": why}


def _unsupported(why: str) -> dict[str, Any]:
    return {"supported": False, "why": why}


def _relaxed(source_entry: dict[str, Any], why: str) -> dict[str, Any]:
    """The source's entry for an op whose documented restriction a later release lifted."""
    entry = {k: v for k, v in source_entry.items() if k != "restrictions"}
    return {**entry, "why": why}


def releases(sources: dict[str, Any]) -> dict[str, Any]:
    ten_one = sources["10.1-GA"]["ops"]
    windows = {
        name: _supported(["FP32", "FP16"], f"{_CHANGELOG} 10.4: added")
        for name in ("BlackmanWindow", "HammingWindow", "HannWindow")
    }
    slice_axes = _relaxed(ten_one["Slice"], f"{_CHANGELOG} 10.3: tensor `axes` inputs for Slice")
    pad_axes = _relaxed(ten_one["Pad"], f"{_CHANGELOG} 10.4: tensor `axes` for Pad")
    later = f"{_CHANGELOG}: added after 10.13"
    rows: dict[str, dict[str, Any]] = {
        "8.5": {"source": "8.5-GA", "versions": "8.5", "from": "8.5", "changes": {}},
        "8.6": {"source": "8.6-GA", "versions": "8.6 (and 9.x)", "from": "8.6", "changes": {}},
        "10.1": {"source": "10.1-GA", "versions": "10.0 - 10.2", "from": "10.0", "changes": {}},
        "10.3": {"source": "10.1-GA", "versions": "10.3", "from": "10.3", "changes": {"Slice": slice_axes}},
        "10.4": {
            "source": "10.1-GA",
            "from": "10.4",
            "versions": "10.4 - 10.12",
            "changes": {"Slice": slice_axes, "Pad": pad_axes, **windows},
            "note": "the 10.1-GA document plus the operator changes the Changelog lists for 10.2 - 10.4; "
            "operators added in 10.5 - 10.12 are not credited",
        },
        "10.13": {
            "source": NEWEST,
            "from": "10.13",
            "versions": "10.13 and later 10.x",
            "changes": {
                "Attention": _unsupported(f"{later} (10.14)"),
                "RotaryEmbedding": _unsupported(f"{later} (10.15)"),
                "RMSNormalization": _unsupported(f"{later} (10.15)"),
                "TensorScatter": _unsupported(f"{later} (10.15)"),
            },
            "note": "the 10.15 document less the operators the Changelog adds in 10.14 and 10.15",
        },
        "11": {
            "source": NEWEST,
            "from": "11.0",
            "versions": "11.x",
            "changes": {
                "Swish": _supported(
                    [], "TensorRT CHANGELOG.md, 11.0 GA Parsers: 'Added support for Swish operator'"
                ),
            },
            "note": "no operators.md for 11 was available: the 10.15 document plus the parser changes "
            "TensorRT's CHANGELOG.md lists for 10.16 - 11.1",
        },
    }
    return {name: {**row, "checks": _checks(name)} for name, row in rows.items()}


def build_table(mirror: Path | None, newest: Path | None) -> dict[str, Any]:
    previous = json.loads(TABLE.read_text()) if TABLE.is_file() else None
    sources: dict[str, Any] = {}
    for branch in BRANCHES:
        if mirror is not None:
            sources[branch] = branch_source(mirror, branch)
        elif previous is not None:
            sources[branch] = previous["sources"][branch]
        else:
            raise SystemExit(f"no mirror and no previous table to take {branch} from: pass --mirror")
    if newest is not None:
        sources[NEWEST] = newest_source(newest)
    elif previous is not None:
        sources[NEWEST] = previous["sources"][NEWEST]
    else:
        raise SystemExit("no previous table to take the 10.15 document from: pass --newest")
    return {
        "format": FORMAT,
        "about": "What the ONNX parser of each TensorRT release imports, per operator: supported or not, "
        "the tensor types and the restrictions of onnx-tensorrt's docs/operators.md, and the "
        "restrictions litevit checks before a build. Written by tests/runtime/onnx_parser_tables.py.",
        "sources": sources,
        "releases": releases(sources),
    }


def dumps(value: Any, indent: int = 0) -> str:
    """JSON with one line per operator entry and per check, so that a change reads as a line."""
    flat = not isinstance(value, dict) or all(
        not isinstance(v, dict) and not (isinstance(v, list) and any(isinstance(i, dict) for i in v))
        for v in value.values()
    )
    if flat:
        return json.dumps(value, ensure_ascii=False)
    pad = " " * (indent + 1)
    items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, help="a clone of onnx/onnx-tensorrt with the release branches")
    parser.add_argument("--newest", type=Path, help="the newest operators.md (the 10.15 document)")
    args = parser.parse_args()
    table = build_table(args.mirror, args.newest)
    TABLE.write_text(dumps(table) + "\n")
    print(f"wrote {TABLE} ({TABLE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
