"""``litevit bench --sweep``: cost curves, how latency, throughput and MACs grow with the work.

One axis is swept per run, everything else held fixed:

* ``batch=1,2,4,8,16`` at the export size. The graph needs a dynamic batch axis
  (``--dynamic-batch`` at export).
* ``size=256,512,640x960,...`` (one integer for a square, HxW otherwise) at one batch size
  (``--batch``, default 1). The graph needs dynamic height and width (``--dynamic-hw``).
  A bare ``size`` sweeps the model's usual range: 256 ... 1024 for segmenters, 160 ... 384 around
  the 224 they were trained at for classifiers.

A model name is exported (again) with the dynamic axis the sweep needs; an artefact that lacks it
is refused in one sentence naming the export flag. Every point is timed exactly as ``litevit
bench`` times one batch size (``runtime.bench``, one runner for all points) and carries its MACs:
per image at that point's size and per timed iteration (x batch), and the compute rate that the
latency implies. MACs come from the manifest at the export size (they do not depend on the
batch); at other sizes they are counted with ``litevit.flops`` on a meta-device copy of the
model, which needs torch. Without torch those points have no MACs, and the document says why.

The result is one ``litevit.bench/1`` document (so ``litevit report`` reads it like any run)
with a ``sweep`` object and, per run, ``img_size``, ``macs_per_image``, ``macs`` and
``gmacs_per_s``. Torch-free (except counting MACs at sizes the manifest does not cover).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Tuple, Union

from litevit._compat import strict_zip
from litevit._deps import has
from litevit.artifacts import read_manifest
from litevit.errors import LitevitError
from litevit.runtime.bench import resolve_target, run_benchmark

# The export flag each axis needs, named in refusals.
AXES = {"batch": "--dynamic-batch", "size": "--dynamic-hw"}
DEFAULT_BATCHES = (1, 2, 4, 8, 16)
DEFAULT_SIZES = {
    "segmentation": (256, 384, 512, 640, 768, 896, 1024),
    "classification": (160, 192, 224, 256, 288, 320, 384),
}
MACS_NEED_TORCH = (
    "MACs at sizes other than the export size are counted with litevit.flops, which needs torch "
    "(pip install 'litevit[author]'); points without them have macs null."
)

Point = Union[int, Tuple[int, int]]  # typing.Tuple: evaluated at run time on Python 3.8


@dataclass(frozen=True)
class Sweep:
    """One swept axis and its values; ``values`` None means the defaults for the model's task."""

    axis: str
    values: tuple[Point, ...] | None = None


def parse_sweep(text: str) -> Sweep:
    """``batch=1,2,4``, ``size=256,512x1024`` or a bare ``batch``/``size`` (defaults)."""
    axis, _, listed = text.partition("=")
    axis = axis.strip()
    if axis not in AXES:
        raise LitevitError(
            f"--sweep takes batch=N,N,... or size=S,S,... (S is one integer or HxW); got {text!r}."
        )
    if not listed.strip():
        return Sweep(axis)
    values: list[Point] = []
    for item in listed.split(","):
        try:
            values.append(int(item) if axis == "batch" else _parse_size(item))
        except ValueError:
            what = "a positive integer" if axis == "batch" else "a positive integer or HxW"
            raise LitevitError(f"--sweep {axis}: each value must be {what}; got {item.strip()!r}.") from None
    if any(_min_side(v) < 1 for v in values):
        raise LitevitError(f"--sweep {axis}: values must be positive; got {listed!r}.")
    if len(set(values)) != len(values):
        raise LitevitError(f"--sweep {axis}: values repeat in {listed!r}.")
    return Sweep(axis, tuple(values))


def _parse_size(item: str) -> tuple[int, int]:
    parts = item.strip().lower().split("x")
    if len(parts) == 1:
        return int(parts[0]), int(parts[0])
    if len(parts) == 2:
        return int(parts[0]), int(parts[1])
    raise ValueError(item)


def _min_side(value: Point) -> int:
    return value if isinstance(value, int) else min(value)


def run_sweep(
    target: str | os.PathLike[str],
    sweep: Sweep,
    *,
    backend: str = "ort",
    precision: str = "fp32",
    batch: int = 1,
    warmup: int = 10,
    iterations: int | None = None,
    seconds: float | None = None,
    threads: int | None = None,
    device: str | None = None,
    progress: bool = False,
    allow_few_iterations: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Time ``target`` at every point of ``sweep``; returns the ``litevit.bench/1`` document
    with the sweep's facts (see the module docstring). ``batch`` is the batch of a size sweep;
    ``allow_few_iterations`` as for :func:`~litevit.runtime.bench.run_benchmark`."""
    path = resolve_target(
        target,
        precision=precision,
        protocol="synthetic",
        log=log,
        dynamic_batch=sweep.axis == "batch",
        dynamic_hw=sweep.axis == "size",
    )
    manifest = read_manifest(path) if path.is_dir() else None
    if sweep.axis == "batch":
        batches = [int(v) for v in (sweep.values or DEFAULT_BATCHES)]  # type: ignore[arg-type]
        sizes = None
    else:
        batches = [batch]
        sizes = _sizes(sweep, manifest, path)
    doc = run_benchmark(
        path,
        backend=backend,
        precision=precision,
        batches=batches,
        warmup=warmup,
        iterations=iterations,
        seconds=seconds,
        threads=threads,
        device=device,
        progress=progress,
        allow_few_iterations=allow_few_iterations,
        log=log,
        img_sizes=sizes,
    )
    macs_source = _annotate_points(doc["runs"], manifest)
    export_size = list(manifest["img_size"]) if manifest else None
    doc["sweep"] = {
        "axis": sweep.axis,
        "values": batches if sweep.axis == "batch" else [list(s) for s in sizes or []],
        "fixed": {"img_size": export_size} if sweep.axis == "batch" else {"batch": batch},
        "macs": macs_source,
    }
    if any(run["macs_per_image"] is None for run in doc["runs"]):
        doc["notes"].append(MACS_NEED_TORCH if manifest is not None else "no manifest, so no MACs.")
    return doc


def _sizes(sweep: Sweep, manifest: dict[str, Any] | None, path: Path) -> list[tuple[int, int]]:
    """The sweep's (H, W) list, checked against the model's size divisor."""
    if sweep.values is None:
        task = manifest.get("task") if manifest else None
        if task not in DEFAULT_SIZES:
            raise LitevitError(
                f"{str(path)!r} does not say whether it is a classifier or a segmenter, so the sweep "
                f"has no default sizes: give them, e.g. --sweep size=256,512,1024."
            )
        values: Sequence[Point] = DEFAULT_SIZES[task]
    else:
        values = sweep.values
    sizes = [(v, v) if isinstance(v, int) else (int(v[0]), int(v[1])) for v in values]
    divisor = int((manifest or {}).get("data_config", {}).get("size_divisor") or 1)
    bad = [f"{h}x{w}" for h, w in sizes if h % divisor or w % divisor]
    if bad:
        raise LitevitError(
            f"{manifest['model'] if manifest else path.name} takes heights and widths that are "
            f"multiples of {divisor}; the sweep has {', '.join(bad)}."
        )
    return sizes


def _annotate_points(runs: list[dict[str, Any]], manifest: dict[str, Any] | None) -> str | None:
    """Add img_size, macs_per_image, macs and gmacs_per_s to every run; say where MACs came from."""
    counted: dict[tuple[int, int], int | None] = {}
    sources: set[str] = set()
    for run in runs:
        shape = run.get("input_shape")
        size = (int(shape[2]), int(shape[3])) if isinstance(shape, list) and len(shape) == 4 else None
        if size is not None and size not in counted:
            counted[size], source = _macs_per_image(manifest, size)
            sources |= {source} if source else set()
        per_image = counted.get(size) if size is not None else None
        run["img_size"] = list(size) if size else None
        run["macs_per_image"] = per_image
        run["macs"] = per_image * run["batch"] if per_image is not None else None
        run["gmacs_per_s"] = (
            run["macs"] / run["latency_ms"]["mean"] / 1e6 if run["macs"] is not None else None
        )
    if not sources:
        return None
    counter = (manifest or {}).get("complexity", {}).get("counter") or "litevit.flops"
    how = " and ".join(sorted(sources))
    return f"{counter}: {how}; per timed iteration = per image x batch"


def _macs_per_image(manifest: dict[str, Any] | None, size: tuple[int, int]) -> tuple[int | None, str | None]:
    if manifest is None:
        return None, None
    complexity = manifest.get("complexity") or {}
    if tuple(manifest["img_size"]) == size and complexity.get("macs") is not None:
        return int(complexity["macs"]), "the manifest's count at the export size"
    if not has("torch"):
        return None, None
    from litevit.export.api import model_complexity

    counted = model_complexity(manifest["model"], size, manifest.get("model_kwargs") or {})
    return int(counted["macs"]), "counted at each other size on a meta-device copy of the model"


def format_sweep(doc: dict[str, Any]) -> str:
    """The sweep as a table for the terminal: one row per point."""
    sweep = doc["sweep"]
    header = ("point", "input", "p50 ms", "p90", "p99", "images/s", "GMACs/image", "GMAC/s")
    rows = [header]
    for run in doc["runs"]:
        lat = run["latency_ms"]
        size = run.get("img_size")
        point = f"batch {run['batch']}" if sweep["axis"] == "batch" else f"{size[0]}x{size[1]}"
        rows.append(
            (
                point + (f" ({run['measure'].replace('_', ' ')})" if run.get("measure") != "host" else ""),
                "x".join(map(str, run["input_shape"])) if run.get("input_shape") else "?",
                f"{lat['p50']:.2f}",
                f"{lat['p90']:.2f}",
                f"{lat['p99']:.2f}",
                f"{run['throughput_ips']:.1f}",
                f"{run['macs_per_image'] / 1e9:.4g}" if run.get("macs_per_image") is not None else "-",
                f"{run['gmacs_per_s']:.3g}" if run.get("gmacs_per_s") is not None else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    table = "\n".join("  ".join(c.rjust(w) for c, w in strict_zip(r, widths)) for r in rows)
    fixed = sweep["fixed"]
    if sweep["axis"] == "batch":
        held = f"at {fixed['img_size'][0]}x{fixed['img_size'][1]}" if fixed.get("img_size") else ""
    else:
        held = f"at batch {fixed['batch']}"
    where = f"{doc['backend']} {doc['precision']} on {doc['device']}"
    title = f"{doc['model']} | {where} | {sweep['axis']} sweep {held}"
    scopes = sorted({run["timed_region"] for run in doc["runs"]})
    return "\n".join([title.rstrip(), table, *(f"timed region: {scope}" for scope in scopes)])


__all__ = ["AXES", "DEFAULT_BATCHES", "DEFAULT_SIZES", "Sweep", "format_sweep", "parse_sweep", "run_sweep"]
