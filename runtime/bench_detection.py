"""``litevit bench`` for detectors: the whole pipeline timed as the papers did, and its stages.

``--protocol paper`` reproduces how LVT's Panoptic FPN FPS (20.4 on one V100) was measured:
mmdet's ``tools/analysis_tools/benchmark.py`` times one image per iteration through
``model(return_loss=False, rescale=True)`` - the network and its post-processing back to the
original image (box rescale, mask paste at the original size, panoptic fusion) - while the data
pipeline (decode, keep-ratio resize to 1333 x 800, normalise, pad to 32) runs in the data loader,
outside the timed region. Here, per iteration, one real-size picture (a synthetic shapes scene of a
COCO-like size, fixed seed) goes through

1. pre-processing (:class:`litevit.runtime.detection.DetectionPreprocessing`), timed on its own;
2. the graph (``runner.infer``: host arrays in and out);
3. post-processing to the original size (:func:`litevit.runtime.detection.postprocess`: boxes,
   masks pasted at the original size, panoptic map resized and renumbered), timed on its own.

The run's latency and FPS are 2 + 3, the paper's scope; ``stages_ms`` holds each stage's
statistics and ``pipeline_ms`` those of 1 + 2 + 3 (what a deployed detector costs per picture).
Post-processing cost grows with the number of detections: a random-weight export finds none at
the official score threshold, so its post-processing time is a lower bound (the entry records the
mean detection count).

The synthetic protocol feeds N(0, 1) canvases at the export size with ``image_shapes`` saying each
image fills its canvas.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from litevit._progress import Progress
from litevit.runtime.bench import run_timed_loop
from litevit.runtime.detection import (
    IMAGE_SHAPES,
    INPUT_NAME,
    DetectionPreprocessing,
    model_categories,
    postprocess,
)
from litevit.runtime.runners import Runner, TensorInfo
from litevit.runtime.stats import latency_stats
from litevit.runtime.tegrastats import TegrastatsSampler, summarize_samples
from litevit.synthetic_shapes import shapes_scene

# COCO val2017 pictures are mostly 640 pixels on the long side, 425-480 on the short, landscape
# about three in four. This fixed-seed draw imitates that shape of distribution (NOT the data
# set's size histogram): long side 640, short side uniform in [400, 480], landscape 3 in 4.
PAPER_SEED = 0
_LONG_SIDE = 640
_SHORT_SIDE = (400, 480)
_LANDSCAPE = 0.75
_DISTINCT_PICTURES = 16  # drawn once and cycled: drawing a scene costs more than a small model


def coco_like_sizes(count: int, seed: int = PAPER_SEED) -> list[tuple[int, int]]:
    """``count`` (H, W) picture sizes drawn like COCO val photographs (module constants)."""
    rng = np.random.default_rng(seed)
    sizes = []
    for _ in range(count):
        short = int(rng.integers(_SHORT_SIDE[0], _SHORT_SIDE[1] + 1))
        sizes.append((short, _LONG_SIDE) if rng.random() < _LANDSCAPE else (_LONG_SIDE, short))
    return sizes


def synthetic_detection_feeds(inputs: list[TensorInfo], batch: int, img_size: Any) -> dict[str, np.ndarray]:
    """Fixed-seed N(0, 1) canvases (B, 3, H, W) at the export size and ``image_shapes`` saying each
    image fills its canvas and is its own original."""
    image = next(info for info in inputs if info.name == INPUT_NAME)
    height, width = (d if isinstance(d, int) else int(img_size[i]) for i, d in enumerate(image.shape[2:]))
    rng = np.random.default_rng(0)
    return {
        INPUT_NAME: rng.standard_normal((batch, 3, height, width), dtype=np.float32),
        IMAGE_SHAPES: np.tile(np.asarray([height, width, height, width], np.float32), (batch, 1)),
    }


def _scope(runner: Runner) -> str:
    inference = (
        "runner.infer with host arrays in and out (host->device copy + compute + device->host copy)"
        if runner.device.startswith("cuda")
        else "runner.infer on the host"
    )
    return (
        "one real-size picture per iteration, already pre-processed (keep-ratio resize, normalise, pad: "
        f"outside the region, timed as stage 'preprocess'): {inference} + post-processing to the original "
        "image size on the host (boxes rescaled, masks pasted at the original size, panoptic map resized)"
    )


def detection_paper_run(
    runner: Runner,
    manifest: dict[str, Any],
    warmup: int,
    iterations: int | None,
    seconds: float | None,
    sampler: TegrastatsSampler,
    progress: bool,
    label: str,
    run_entry: Callable[..., dict[str, Any]],
) -> dict[str, Any]:
    """One ``--protocol paper`` run of a detector artefact (module docstring); ``run_entry`` is the
    benchmark's entry builder."""
    prep = DetectionPreprocessing.from_manifest(manifest)
    categories = model_categories(manifest)
    sizes = coco_like_sizes(_DISTINCT_PICTURES)
    pictures = [shapes_scene(i, PAPER_SEED, size).image for i, size in enumerate(sizes)]

    def one(picture: np.ndarray) -> tuple[float, float, float, int]:
        start = time.perf_counter_ns()
        feeds, (geometry,) = prep.batch([picture])
        prepared = time.perf_counter_ns()
        outputs = runner.infer(feeds)
        inferred = time.perf_counter_ns()
        result = postprocess(outputs, 0, geometry, categories)
        done = time.perf_counter_ns()
        return (
            (prepared - start) / 1e6,
            (inferred - prepared) / 1e6,
            (done - inferred) / 1e6,
            len(result.scores),
        )

    for i in range(warmup):
        one(pictures[(i + 1) % len(pictures)])
    stages: dict[str, list[float]] = {"preprocess": [], "graph": [], "postprocess": []}
    detections: list[int] = []

    def step(i: int) -> None:
        pre, graph, post, found = one(pictures[i % len(pictures)])
        stages["preprocess"].append(pre)
        stages["graph"].append(graph)
        stages["postprocess"].append(post)
        detections.append(found)

    bar = Progress(progress, iterations, f"{label} (paper protocol)")
    try:
        _, window_start, window_end = run_timed_loop(step, iterations, seconds, bar)
    finally:
        bar.close()
    timed = [g + p for g, p in zip(stages["graph"], stages["postprocess"])]
    entry = run_entry(
        "paper_end_to_end",
        1,
        None,
        _scope(runner),
        warmup,
        timed,
        None,
        summarize_samples(sampler.samples_between(window_start, window_end), 100),
    )
    entry["stages_ms"] = {name: latency_stats(values) for name, values in stages.items()}
    entry["pipeline_ms"] = latency_stats([sum(parts) for parts in zip(*stages.values())])
    entry["paper_images"] = {
        "count": len(detections),
        "seed": PAPER_SEED,
        "sizes": "synthetic shapes scenes of COCO-like sizes: long side 640, short side uniform in "
        f"[{_SHORT_SIDE[0]}, {_SHORT_SIDE[1]}], landscape 3 in 4; {_DISTINCT_PICTURES} pictures cycled",
        "test_scale": list(prep.scale),
        "size_divisor": prep.size_divisor,
        "canvas": "per picture (dynamic H x W)" if prep.canvas is None else list(prep.canvas),
        "first_sizes_hw": [list(hw) for hw in sizes[:5]],
        "mean_detections": float(np.mean(detections)),
    }
    return entry
