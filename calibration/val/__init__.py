"""``litevit val``: an artefact's accuracy on the user's own labelled images, per backend x precision.

This is how a user learns what FP16 or INT8 cost them: every requested runner sees the same
decoded images, preprocessed by the artefact's own rules, and is scored the same way; each row
shows its difference from FP32 on the same backend. One module a task, :func:`validate`
dispatching on the manifest's task:

- :mod:`.classification`: ImageFolder-style class folders, top-1 / top-5;
- :mod:`.segmentation`: image / label-PNG pairs, mIoU, by the published test protocol
  (:mod:`litevit.runtime.seg_protocols`) or by a plain resize to the graph's size;
- :mod:`.detection`: COCO instances / panoptic annotations, box and mask AP, PQ;
- :mod:`.common`: results, the table, runner helpers; :mod:`.cli`: the command line.

Files that cannot be decoded are counted, named and excluded, never replaced. Batches: the
artefact's batch when its batch axis is fixed (a short last batch is padded with zeros and the
padding's outputs dropped); ``batch`` (default 8) when it is dynamic (for the segmentation test
protocol: the windows of one image per graph call).

Torch-free: the artefact runs through :mod:`litevit.runtime.runners`. The paper's figure comes
from the manifest (the export writes it there), or from the model registry for older artefacts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from litevit.artifacts import DETECTION_TASKS, read_manifest
from litevit.calibration.images import describe_unreadable
from litevit.calibration.val.classification import ClassMapping, Scored, class_mapping, score_classifier
from litevit.calibration.val.cli import configure_val_parser, run_val
from litevit.calibration.val.common import ValResult, ValRow, batch_size, checked, format_val, paper_figure
from litevit.calibration.val.segmentation import (
    MASK_RULE,
    SEG_PROTOCOLS,
    Confusion,
    score_segmenter,
    segmentation_labels,
)
from litevit.errors import DataError, LitevitError
from litevit.runtime.runners import BACKENDS, PRECISIONS, Runner, open_runner
from litevit.runtime.seg_protocols import SegTestProtocol, check_artifact, protocol_for

TASKS = ("classification", "segmentation", *DETECTION_TASKS)


def validate(
    artifact: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    backends: Sequence[str] = ("ort",),
    precisions: Sequence[str] = ("fp32",),
    batch: int | None = None,
    limit: int | None = None,
    threads: int | None = None,
    progress: bool = True,
    protocol: str = "resize",
    aug: bool = False,
    reduce_zero_label: bool | None = None,
    split: str | None = None,
) -> ValResult:
    """Score the artefact folder ``artifact`` on the labelled folder ``data`` with every backend x
    precision (module docstrings: layouts, rules, metrics).

    ``limit`` takes that many images spread evenly over the sorted file list (every class
    represented); unreadable ones among them are excluded, not replaced. Segmentation:
    ``protocol`` is ``"test"`` (the model's published test protocol, scored at the original image
    size; ``aug`` adds its multi-scale + flip) or ``"resize"``; ``reduce_zero_label`` overrides the
    data set's label-PNG rule. Detectors: ``split`` picks the COCO split when the annotations
    folder holds several. Raises :class:`DataError` (one sentence) for data that cannot be scored.
    """
    if limit is not None and limit < 1:
        raise LitevitError(f"--limit must be at least 1; got {limit}.")
    if batch is not None and batch < 1:
        raise LitevitError(f"--batch must be at least 1; got {batch}.")
    if protocol not in SEG_PROTOCOLS:
        raise LitevitError(f"unknown --protocol {protocol!r}; choose from {', '.join(SEG_PROTOCOLS)}.")
    keys = [
        (backend, precision)
        for backend in checked(backends, BACKENDS, "backend")
        for precision in checked(precisions, PRECISIONS, "precision")
    ]
    folder = Path(artifact)
    manifest = read_manifest(folder)
    task = manifest["task"]
    if task not in TASKS:
        raise LitevitError(f"litevit val scores {', '.join(TASKS)} models; {manifest['model']} is {task}.")
    segmenter = task == "segmentation"
    if split is not None and task not in DETECTION_TASKS:
        raise LitevitError("--split applies to detection models only (the COCO split to score).")
    if not segmenter and (protocol != "resize" or aug or reduce_zero_label is not None):
        raise LitevitError("--protocol, --aug and --reduce-zero-label apply to segmentation models only.")
    if task in DETECTION_TASKS:  # COCO data, AP and PQ
        from litevit.calibration.val.detection import validate_detection

        return validate_detection(
            folder, manifest, Path(data), keys, split=split, limit=limit, threads=threads, progress=progress
        )
    if aug and protocol != "test":
        raise LitevitError(
            "--aug (multi-scale + flip) is part of the published protocol: add --protocol test."
        )
    test_protocol = protocol_for(manifest, aug) if segmenter and protocol == "test" else None
    if test_protocol is not None:
        check_artifact(manifest, test_protocol)
    chunk = batch_size(manifest, batch)
    root = Path(data)

    runners: dict[tuple[str, str], Runner] = {}
    try:
        # Open every runner first: a missing FP16 graph or engine is reported before any work.
        for backend, precision in keys:
            cpu_threads = None if backend == "trt" else threads  # an engine runs on the GPU
            runners[backend, precision] = open_runner(
                folder, backend, precision=precision, threads=cpu_threads
            )
        if segmenter:
            scored = score_segmenter(
                runners, manifest, root, chunk, limit, progress, test_protocol, reduce_zero_label
            )
        else:
            scored = score_classifier(runners, manifest, root, chunk, limit, progress)
    finally:
        for runner in runners.values():
            runner.close()
    if not scored.images:
        raise DataError(
            f"no readable image in {str(root)!r}: {describe_unreadable(scored.unreadable, root)}."
        )
    return _result(folder, root, manifest, scored, chunk, limit, test_protocol)


def _result(
    folder: Path,
    root: Path,
    manifest: dict[str, Any],
    scored: Scored,
    chunk: int,
    limit: int | None,
    test_protocol: SegTestProtocol | None,
) -> ValResult:
    paper, paper_note = paper_figure(manifest)
    result = ValResult(
        artifact=str(folder),
        model=manifest["model"],
        task=manifest["task"],
        data=str(root),
        metric=scored.columns[0],
        columns=scored.columns,
        batch=chunk,
        images=scored.images,
        unreadable=[(path.relative_to(root).as_posix(), reason) for path, reason in scored.unreadable],
        label_rule=scored.label_rule,
        paper=paper,
        paper_note=paper_note,
    )
    for (backend, precision), meter in scored.meters.items():
        per_class = None
        if isinstance(meter, Confusion):
            per_class = [None if np.isnan(iou) else 100.0 * float(iou) for iou in meter.per_class_iou()]
        result.rows.append(ValRow(backend, precision, scored.images, meter.scores(), per_class_iou=per_class))
    result.add_deltas()
    if limit is not None and limit < scored.total:
        result.notes.append(
            f"--limit {limit}: {limit} of {scored.total} images, spread evenly over the sorted file list"
        )
    if scored.unreadable:
        result.notes.append(f"excluded {describe_unreadable(scored.unreadable, root, limit=10)}")
    if test_protocol is not None:
        result.protocol = (
            f"test ({test_protocol.source}): {test_protocol.describe()}; scored at original size"
        )
    elif manifest["task"] == "segmentation":
        height, width = manifest["img_size"]
        result.protocol = f"resize to the graph's {height}x{width}"
        result.notes.append(
            f"scored at the graph's input size {height}x{width} (masks resized nearest-neighbour); "
            f"the paper scores at each image's original size (--protocol test)"
        )
    return result


__all__ = [
    "MASK_RULE",
    "ClassMapping",
    "ValResult",
    "ValRow",
    "class_mapping",
    "configure_val_parser",
    "format_val",
    "run_val",
    "segmentation_labels",
    "validate",
]
