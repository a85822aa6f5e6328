"""``litevit quant-report ARTIFACT --data DIR``: what INT8 and FP16 cost an exported model, on the
user's images, and which layers are to blame. Torch-free: everything runs on ONNX Runtime.

It compares the artefact's INT8 graph (as written, with any layers kept in FP32) and its FP16
graph with the FP32 graph on images from ``DIR``, then, from the calibration cache's thresholds,
ranks the layers by how much leaving each in FP32 would recover (see
:mod:`litevit.calibration.diagnose`). The export's own report used held-out images from the
calibration folder; this command checks on any other set.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import onnx

from litevit._io import write_json
from litevit._progress import Progress
from litevit.artifacts import graph_file, has_graph, read_manifest, verified_file
from litevit.calibration.diagnose import (
    DEFAULT_SENSITIVITY_IMAGES,
    GRANULARITIES,
    HeldOutSet,
    format_sensitivity,
    rank_layers,
)
from litevit.calibration.images import (
    Preprocessing,
    describe_unreadable,
    evenly_spaced,
    list_images,
    load_images,
)
from litevit.calibration.int8 import CACHE_FORMAT, REPORT_FORMAT, graph_batch, stack_batches
from litevit.calibration.qdq import fold_weight_transposes, quant_sites, quantize
from litevit.errors import DataError, LitevitError

DEFAULT_LIMIT = 64


def _cached_thresholds(folder: Path, manifest: dict[str, Any], fp32_sha256: str) -> dict[str, float]:
    calibration = manifest.get("calibration") or {}
    name = calibration.get("cache", "")
    if not calibration or not (folder / name).is_file():
        raise LitevitError(
            f"the artefact {str(folder)!r} has no calibration cache; export it with --int8 --calib DIR first."
        )
    # Exports before the cache was listed in the manifest are checked by its key below only.
    path = verified_file(folder, manifest, name) if name in manifest["files"] else folder / name
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LitevitError(
            f"the calibration cache {str(path)!r} is unreadable ({exc}); re-export it."
        ) from None
    if doc.get("format") != CACHE_FORMAT or doc.get("components", {}).get("model") != fp32_sha256:
        raise LitevitError(
            f"the calibration cache {str(path)!r} was not made for this artefact's FP32 graph; "
            f"re-export with --int8 --recalibrate."
        )
    return {str(k): float(v) for k, v in doc["amax"].items()}


def quant_report(
    artifact: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    limit: int = DEFAULT_LIMIT,
    granularity: str = "module",
    with_sensitivity: bool = True,
    sensitivity_images: int = DEFAULT_SENSITIVITY_IMAGES,
    threads: int | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """The report (JSON-able) and its printed lines. The per-layer ranking uses at most
    ``sensitivity_images`` of the images (0: all of them)."""
    if granularity not in GRANULARITIES:
        raise LitevitError(f"unknown granularity {granularity!r}; choose one of {', '.join(GRANULARITIES)}.")
    if limit < 1:
        raise LitevitError(f"--limit must be at least 1; got {limit}.")
    if sensitivity_images < 0:
        raise LitevitError(f"--sensitivity-images must be 0 (all) or more; got {sensitivity_images}.")
    folder = Path(artifact)
    manifest = read_manifest(folder)
    if manifest.get("ops_mode") == "plugin":
        raise LitevitError(
            "quant-report runs the graphs on ONNX Runtime, which needs the custom ops' function bodies; "
            "export with --ops function (the default)."
        )
    fp32_path = graph_file(folder, manifest, "fp32")
    fp32 = onnx.load(fp32_path)
    int8 = onnx.load(graph_file(folder, manifest, "int8"))
    amax = _cached_thresholds(folder, manifest, manifest["files"][fp32_path.name]["sha256"])

    root = Path(data)
    paths = evenly_spaced(list_images(root, what="data folder"), limit)
    prep = Preprocessing.from_manifest(manifest)
    bar = Progress(progress, len(paths), "images", unit="images")
    try:
        loaded = load_images(paths, prep, on_image=bar.update)
    finally:
        bar.close()
    batches = stack_batches(loaded.arrays, graph_batch(fp32))
    if not batches:
        raise DataError(
            f"none of the images in {str(root)!r} could be read (or fewer than the graph's batch)."
        )

    folded = fold_weight_transposes(fp32)
    sites = quant_sites(folded)
    held_out = HeldOutSet.from_batches(folded, batches, threads)
    written = held_out.evaluate(int8)
    all_int8 = held_out.evaluate(quantize(folded, sites, amax))
    task = manifest["task"]
    images = sum(len(b) for b in batches)
    lines = [f"{manifest['model']}: {images} images from {root} against the FP32 graph (ONNX Runtime CPU)"]
    if loaded.unreadable:
        lines.append(f"  skipped {describe_unreadable(loaded.unreadable, root)}")
    kept = (manifest.get("calibration") or {}).get("fp32_layers") or []
    lines.append(f"  INT8 as written ({len(kept)} group(s) in FP32): {written.describe(task)}")
    if kept:
        lines.append(f"  INT8, all {len(sites)} layers: {all_int8.describe(task)}")
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "model": manifest["model"],
        "data": str(root.resolve()),
        "images": images,
        "unreadable": [[p.relative_to(root).as_posix(), why] for p, why in loaded.unreadable],
        "int8_written": asdict(written),
        "int8_all_layers": asdict(all_int8),
        "fp32_layers": kept,
    }
    if has_graph(manifest, "fp16"):
        fp16_result = held_out.evaluate(onnx.load(graph_file(folder, manifest, "fp16")))
        report["fp16"] = asdict(fp16_result)
        lines.append(f"  FP16: {fp16_result.describe(task)}")
    if with_sensitivity:
        ranking = rank_layers(
            folded,
            sites,
            amax,
            held_out,
            granularity=granularity,
            max_images=sensitivity_images,
            baseline=all_int8,
            progress=progress,
        )
        report["sensitivity_images"] = ranking.images
        report["sensitivity_int8_all_layers"] = asdict(ranking.baseline)
        report["sensitivity"] = [
            {"group": e.group, "layers": e.layers, **asdict(e.result)} for e in ranking.entries
        ]
        lines.append(format_sensitivity(ranking, task))
    return report, lines


def configure_quant_report_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", metavar="ARTIFACT", help="artefact folder exported with --int8 --calib")
    parser.add_argument("--data", required=True, metavar="DIR", help="images to compare on (JPEG/PNG)")
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N images (default: {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--granularity",
        choices=GRANULARITIES,
        help="sensitivity per module (default; e.g. backbone.1.1.0.attn) or per layer",
    )
    parser.add_argument(
        "--sensitivity-images",
        type=int,
        metavar="N",
        help=f"rank the layers on at most N of the images, spread evenly (default: "
        f"{DEFAULT_SENSITIVITY_IMAGES}; 0: all); the INT8/FP16 figures use every image",
    )
    parser.add_argument("--no-sensitivity", action="store_true", help="skip the per-layer ranking")
    parser.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime threads")
    parser.add_argument("--json", metavar="OUT", help="also write the report as JSON")


def run_quant_report(args: argparse.Namespace) -> int:
    from litevit._deps import require

    require("onnxruntime")
    ranking_options = [
        option
        for option, value in (
            ("--granularity", args.granularity),
            ("--sensitivity-images", args.sensitivity_images),
        )
        if value is not None
    ]
    if args.no_sensitivity and ranking_options:
        raise LitevitError(
            f"{' and '.join(ranking_options)} shape the per-layer ranking, which --no-sensitivity skips: "
            f"drop one or the other."
        )
    report, lines = quant_report(
        args.artifact,
        args.data,
        limit=args.limit,
        granularity=args.granularity or "module",
        with_sensitivity=not args.no_sensitivity,
        sensitivity_images=(
            DEFAULT_SENSITIVITY_IMAGES if args.sensitivity_images is None else args.sensitivity_images
        ),
        threads=args.threads,
    )
    print("\n".join(lines))
    if args.json:
        write_json(Path(args.json), report)
        print(f"wrote {args.json}")
    return 0
