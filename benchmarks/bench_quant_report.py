"""How long `litevit quant-report` takes, against the whole-graph sensitivity method it replaced.

    python benchmarks/bench_quant_report.py [--model lvt] [--images 32] [--before-groups N]
                                            [--repeats 1] [--artifact DIR --data DIR]

Without ``--artifact``, exports MODEL (default export: fixed batch 1, ``--ops function``) with
``--int8``, calibrated on 64 of the trained fixture's digits (32 more held out), into a temporary
folder, and writes ``--images`` other digits as the data folder. Then, alternating ``--repeats``
times in this one process:

* **after**: ``quant_report(...)`` end to end on ``--images`` images, as the command runs it (the
  INT8/FP16 figures on every image, the per-layer ranking on the default 16 of them), and the
  ranking alone on all the images (``sensitivity_images=0``);
* **before**: the method litevit used until now, for every group: quantize the whole graph with the
  group in FP32, open an ONNX Runtime session (default threads) and run every image through it.
  ``--before-groups N`` times N groups spread over the graph and scales to all groups (said so).

Prints the medians of wall time and of this process's CPU time (user + system, all threads: on a
shared machine the wall time measures the other jobs too, the CPU time much less so; on an idle
2-core machine the wall time lies between half the CPU time and all of it), the ratios, and how
the figures and the ranking compare with the whole-graph method's. Say whether the machine was
shared when you quote the figures. A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from litevit.artifacts import graph_file, read_manifest
from litevit.calibration.diagnose import (
    HeldOutSet,
    compare,
    groups_of,
    ort_session,
    rank_layers,
)
from litevit.calibration.diagnose import Outputs
from litevit.calibration.images import Preprocessing, evenly_spaced, list_images, load_images
from litevit.calibration.int8 import Int8Options, graph_batch, stack_batches
from litevit.calibration.qdq import fold_weight_transposes, quant_sites, quantize
from litevit.calibration.quant_report import _cached_thresholds, quant_report

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "fixtures" / "trained"))
import digits  # noqa: E402  (the fixture's torch-free image writer)


def _prepare(model: str, images: int, work: Path) -> tuple[Path, Path]:
    from litevit.export import export_model

    calib = digits.write_digit_images(work / "calib", "train", layout="flat", limit=96)
    data = digits.write_digit_images(work / "data", "test", layout="flat", limit=images)
    out = work / model
    print(f"exporting {model} with --int8 into {out} ...", flush=True)
    export_model(
        model,
        int8=True,
        calib=calib,
        int8_options=Int8Options(samples=64, holdout=32),
        out_dir=out,
        progress=False,
        log=lambda line: None,
    )
    return out, data


def _whole_graph(
    folded: onnx.ModelProto, sites: Any, amax: dict[str, float], held: HeldOutSet, group: str
) -> Any:
    """The previous method for one group: whole graph, default ONNX Runtime threads, one run at a time."""
    candidate = quantize(folded, sites, amax, keep_fp32={group})
    session = ort_session(candidate, None)
    name = candidate.graph.input[0].name
    scores = [session.run(None, {name: batch})[0].astype(np.float32) for batch in held.batches]
    return compare(held.reference, Outputs(scores, None))


def _clock() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime


def _since(start: tuple[float, float]) -> tuple[float, float]:
    now = _clock()
    return now[0] - start[0], now[1] - start[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lvt")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument(
        "--before-groups", type=int, metavar="N", help="time N groups and scale (default: all)"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--artifact", type=Path)
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.artifact is None:
            artifact, data = _prepare(args.model, args.images, Path(tmp))
        else:
            artifact, data = args.artifact, args.data
        manifest = read_manifest(artifact)
        if manifest["task"] != "classification":
            raise SystemExit("the before method here reads classifier logits; use a classifier artefact.")
        fp32 = onnx.load(graph_file(artifact, manifest, "fp32"))
        amax = _cached_thresholds(
            artifact, manifest, manifest["files"][f"{manifest['model']}.onnx"]["sha256"]
        )
        prep = Preprocessing.from_manifest(manifest)
        paths = evenly_spaced(list_images(data), args.images)
        batches = stack_batches(load_images(paths, prep).arrays, graph_batch(fp32))
        folded = fold_weight_transposes(fp32)
        sites = quant_sites(folded)
        held = HeldOutSet.from_batches(folded, batches, None)
        groups = list(groups_of(sites, "module"))
        timed_groups = evenly_spaced(groups, args.before_groups) if args.before_groups else groups

        after: list[tuple[float, float]] = []
        ranking_all: list[tuple[float, float]] = []
        before: list[tuple[float, float]] = []
        slow: dict[str, Any] = {}
        fast_all = None
        scale = len(groups) / len(timed_groups)
        for _ in range(args.repeats):
            start = _clock()
            quant_report(artifact, data, limit=args.images, progress=False)
            after.append(_since(start))
            start = _clock()
            fast_all = rank_layers(folded, sites, amax, held, max_images=0)
            ranking_all.append(_since(start))
            start = _clock()
            for group in timed_groups:
                slow[group] = _whole_graph(folded, sites, amax, held, group)
            wall, cpu = _since(start)
            before.append((wall * scale, cpu * scale))

    assert fast_all is not None
    images = sum(len(b) for b in batches)
    scaled = "" if len(timed_groups) == len(groups) else f", scaled from {len(timed_groups)} groups"
    medians = {
        name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in (("after", after), ("all", ranking_all), ("before", before))
    }
    print(
        f"{manifest['model']}: {len(groups)} groups, {images} images, {args.repeats} repeat(s); "
        f"medians, wall / CPU:"
    )
    for name, what in (
        ("after", "after:  quant-report end to end (ranking on <= 16 images)"),
        ("all", f"after:  the ranking alone on all {images} images"),
        ("before", f"before: the ranking alone on all {images} images{scaled}"),
    ):
        print(f"  {what}: {medians[name][0]:.1f} s / {medians[name][1]:.1f} s")
    for name, what in (("all", "the ranking on all images"), ("after", "quant-report end to end")):
        wall, cpu = (medians["before"][k] / medians[name][k] for k in (0, 1))
        print(f"  before ranking / {what}: {wall:.1f}x wall, {cpu:.1f}x CPU")
    fast = {e.group: e.result for e in fast_all.entries}
    cosine = max(abs(fast[g].cosine_mean - slow[g].cosine_mean) for g in slow)
    agreement = max(abs(fast[g].agreement - slow[g].agreement) for g in slow)
    order_fast = [g for g in (e.group for e in fast_all.entries) if g in slow]
    order_slow = sorted(slow, key=lambda g: (slow[g].cosine_mean, slow[g].agreement), reverse=True)
    top = min(5, len(order_slow))
    print(
        f"  against the whole-graph method: largest cosine-mean difference {cosine:.2e}, agreement "
        f"{agreement:.2e}; same order of the timed groups: {order_fast == order_slow}; top {top} shared: "
        f"{len(set(order_fast[:top]) & set(order_slow[:top]))}"
    )
    print(json.dumps({"after": after, "ranking_all": ranking_all, "before": before}))


if __name__ == "__main__":
    main()
