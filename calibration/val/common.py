"""What every task's ``litevit val`` shares: results, the table, argument checks, runners, paper figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from litevit._compat import strict_zip
from litevit._deps import has
from litevit.errors import LitevitError
from litevit.runtime.runners import Runner

DEFAULT_DYNAMIC_BATCH = 8


@dataclass
class ValRow:
    """One backend x precision: scores in percent; ``delta`` is the main score minus the same
    backend's FP32 score, in points (None for FP32 itself or when FP32 was not run)."""

    backend: str
    precision: str
    images: int
    scores: dict[str, float]
    delta: float | None = None
    per_class_iou: list[float | None] | None = None  # segmentation, percent; None: class absent


@dataclass
class ValResult:
    """Everything ``litevit val`` found; ``to_dict`` is what ``--json`` writes."""

    artifact: str
    model: str
    task: str
    data: str
    metric: str  # the main score: "top-1" or "mIoU"
    columns: list[str]  # score names, in table order
    batch: int
    images: int
    unreadable: list[tuple[str, str]]  # (path relative to the data folder, reason)
    label_rule: str
    paper: str  # the paper's figure, or "n/a"
    paper_note: str  # why n/a, or where the figure comes from
    rows: list[ValRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    protocol: str | None = None  # segmentation: how images reached the graph and were scored

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "litevit.val/1",
            **{key: value for key, value in asdict(self).items() if key not in ("rows", "unreadable")},
            "unreadable": [{"path": path, "reason": reason} for path, reason in self.unreadable],
            "rows": [asdict(row) for row in self.rows],
        }

    def add_deltas(self) -> None:
        """Each non-FP32 row's main score minus its backend's FP32 score."""
        fp32 = {row.backend: row.scores[self.metric] for row in self.rows if row.precision == "fp32"}
        for row in self.rows:
            if row.precision != "fp32" and row.backend in fp32:
                row.delta = row.scores[self.metric] - fp32[row.backend]


def checked(items: Sequence[str], known: Sequence[str], what: str) -> tuple[str, ...]:
    """``items`` without repeats, in order; one sentence for an unknown one or none at all."""
    unique = tuple(dict.fromkeys(items))
    if not unique:
        raise LitevitError(f"no {what} given; choose from {', '.join(known)}.")
    for item in unique:
        if item not in known:
            raise LitevitError(f"unknown {what} {item!r}; choose from {', '.join(known)}.")
    return unique


def comma_list(text: str, known: Sequence[str], what: str) -> tuple[str, ...]:
    return checked([item.strip() for item in text.split(",") if item.strip()], known, what)


def batch_size(manifest: dict[str, Any], batch: int | None) -> int:
    exported = manifest["inputs"][0]["shape"][0]
    if isinstance(exported, int) and exported > 0:
        if batch is not None and batch != exported:
            raise LitevitError(
                f"the artefact takes a fixed batch of {exported} (exported without --dynamic-batch); "
                f"--batch {batch} cannot be used with it."
            )
        return exported
    return batch if batch is not None else DEFAULT_DYNAMIC_BATCH


def run_padded(runner: Runner, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One inference; a graph with a fixed batch B > rows gets zero rows, whose outputs are dropped."""
    rows = len(next(iter(feeds.values())))
    batch = runner.inputs()[0].shape[0]
    if isinstance(batch, int) and batch > rows:
        feeds = {
            name: np.concatenate([array, np.zeros((batch - rows, *array.shape[1:]), array.dtype)])
            for name, array in feeds.items()
        }
    return {name: value[:rows] for name, value in runner.infer(feeds).items()}


def run_batch(runner: Runner, images: np.ndarray) -> np.ndarray:
    """The first output for ``images`` on a one-input graph (see :func:`run_padded`)."""
    info = runner.inputs()[0]
    return run_padded(runner, {info.name: images.astype(info.dtype, copy=False)})[runner.outputs()[0].name]


def paper_figure(manifest: dict[str, Any]) -> tuple[str, str]:
    """The paper's figure and where it comes from, or "n/a" and why."""
    if manifest.get("model_kwargs"):
        return "n/a", (
            f"built with model_kwargs ({', '.join(manifest['model_kwargs'])}), so not the paper's "
            f"{manifest['model']}"
        )
    paper = manifest.get("paper")  # written by the export, so a torch-free target has it
    if paper is None:
        if not has("torch"):
            return "n/a", "this artefact's manifest predates the paper figure and the registry needs torch"
        from litevit.models import get_model_cfg

        paper = asdict(get_model_cfg(manifest["model"]).paper)
    if not paper["metric"]:
        return "n/a", f"no published accuracy is recorded for {manifest['model']}"
    return paper["metric"], f"{paper['source']}; the paper's data and protocol, not yours"


def format_val(result: ValResult) -> str:
    """The table (one row per backend x precision) and what a reader needs to trust it."""
    delta_name = f"Δ{result.metric} vs fp32"
    header = ["model", "backend", "precision", "images", *result.columns, delta_name, "paper"]
    rows = [header]
    for row in result.rows:
        rows.append(
            [
                result.model,
                row.backend,
                row.precision,
                str(row.images),
                *(f"{row.scores[name]:.2f}" for name in result.columns),
                "-" if row.delta is None else f"{row.delta:+.2f}",
                result.paper,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    table = "\n".join(
        "  ".join(cell.ljust(width) for cell, width in strict_zip(r, widths)).rstrip() for r in rows
    )
    lines = [
        f"{result.model} ({result.task}) on {result.data}: {result.images} images, batch {result.batch}",
        f"labels: {result.label_rule}",
        *([f"protocol: {result.protocol}"] if result.protocol else []),
        table,
        f"paper: {result.paper} ({result.paper_note})",
        *result.notes,
    ]
    return "\n".join(lines)
