"""A detector's whole pipeline on the CPU, ONNX Runtime against PyTorch eager, interleaved.

    python benchmarks/bench_detection.py ARTEFACT [--iterations 5] [--threads 2]

The artefact folder (``litevit-export MODEL --dynamic-hw``, e.g. ``lvt_panoptic_fpn`` at its
800 x 1344 canvas) is run the way ``litevit bench --protocol paper`` runs it (COCO-like picture
sizes, keep-ratio resize to the test scale, post-processing to the original size), with the two
backends taking turns on the same picture, so that a shared machine's load falls on both alike.
Prints per backend the median of each stage (pre-processing, graph, post-processing), the paper's
FPS (graph + post-processing) and the pipeline's FPS (all three), and the ORT / torch ratio of the
median graph times. A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from litevit.artifacts import read_manifest
from litevit.runtime.bench_detection import PAPER_SEED, coco_like_sizes
from litevit.runtime.detection import DetectionPreprocessing, model_categories, postprocess
from litevit.runtime.runners import open_runner
from litevit.synthetic_shapes import shapes_scene


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    manifest = read_manifest(args.artifact)
    prep = DetectionPreprocessing.from_manifest(manifest)
    categories = model_categories(manifest)
    sizes = coco_like_sizes(args.iterations + 1)
    pictures = [shapes_scene(i, PAPER_SEED, size).image for i, size in enumerate(sizes)]
    runners = {
        backend: open_runner(args.artifact, backend, threads=args.threads) for backend in ("ort", "torch")
    }
    stages: dict[str, dict[str, list[float]]] = {
        backend: {"pre": [], "graph": [], "post": []} for backend in runners
    }
    detections: dict[str, list[int]] = {backend: [] for backend in runners}
    for i, picture in enumerate(pictures):
        for backend, runner in runners.items():
            start = time.perf_counter()
            feeds, (geometry,) = prep.batch([picture])
            prepared = time.perf_counter()
            outputs = runner.infer(feeds)
            inferred = time.perf_counter()
            result = postprocess(outputs, 0, geometry, categories)
            done = time.perf_counter()
            if i == 0:
                continue  # warm-up
            stages[backend]["pre"].append(1000 * (prepared - start))
            stages[backend]["graph"].append(1000 * (inferred - prepared))
            stages[backend]["post"].append(1000 * (done - inferred))
            detections[backend].append(len(result.scores))
            print(
                f"picture {i} {sizes[i]} {backend}: graph {1000 * (inferred - prepared):.0f} ms", flush=True
            )
    print(f"{manifest['model']}, test scale {prep.scale}, {args.iterations} pictures, {args.threads} threads")
    medians = {}
    for backend, times in stages.items():
        median = {name: statistics.median(values) for name, values in times.items()}
        medians[backend] = median
        paper = 1000 / (median["graph"] + median["post"])
        pipeline = 1000 / sum(median.values())
        print(
            f"{backend:5s} median ms: pre {median['pre']:.0f}, graph {median['graph']:.0f}, post "
            f"{median['post']:.0f}; FPS graph+post {paper:.3f}, pre+graph+post {pipeline:.3f}; "
            f"detections per picture {statistics.mean(detections[backend]):.1f}"
        )
    print(f"graph time ORT / torch: {medians['ort']['graph'] / medians['torch']['graph']:.2f}")
    for runner in runners.values():
        runner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
