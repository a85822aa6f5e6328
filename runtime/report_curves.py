"""Cost curves in ``litevit report``: the runs written by ``litevit bench --sweep``.

Per sweep, one table (every point: input shape, latency percentiles, throughput, MACs per image
and per timed iteration, and the compute rate the latency implies) and one figure of two panels,
both log-log against the swept axis (batch size, or pixels per image with the H x W written at
each point):

* latency per batch (p50, with the p50-p99 band), and on a second axis the MACs of one timed
  iteration (batch x MACs per image);
* throughput (images/s), and on a second axis the MACs per image.

On log-log axes a latency line that runs parallel to the MACs line means the runtime spends the
same time per MAC at every point; where it bends away, the runtime became more efficient (batching
amortises overheads) or less (caches overflow, attention grows faster than the MACs say).
Used by ``runtime.report``; torch-free, matplotlib only for the figure.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litevit._compat import strict_zip
from litevit._io import write_bytes
from litevit.runtime.report import BenchRun, Measurement, _file_safe, _log_scale, _md_table, _num


def _points(run: BenchRun) -> list[Measurement]:
    """The run's points in axis order (one measure: compute only on a GPU, the host otherwise)."""
    entries = [Measurement(run, e) for e in run.doc["runs"]]
    measures = {m.measure for m in entries}
    keep = "compute_only" if "compute_only" in measures else (entries[0].measure if entries else "")
    return sorted((m for m in entries if m.measure == keep), key=_x)


def _hw(m: Measurement) -> tuple[int, int] | None:
    size = m.entry.get("img_size")
    if isinstance(size, list) and len(size) == 2:
        return int(size[0]), int(size[1])
    shape = m.entry.get("input_shape")
    return (int(shape[2]), int(shape[3])) if isinstance(shape, list) and len(shape) == 4 else None


def _x(m: Measurement) -> float:
    if m.run.sweep_axis == "batch":
        return float(m.batch)
    hw = _hw(m)
    return float(hw[0] * hw[1]) if hw else 0.0


def _point_label(m: Measurement) -> str:
    if m.run.sweep_axis == "batch":
        return str(m.batch)
    hw = _hw(m)
    return f"{hw[0]}×{hw[1]}" if hw else "?"


def _gmacs(m: Measurement, key: str) -> float | None:
    value = m.entry.get(key)
    return float(value) / 1e9 if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _title(run: BenchRun) -> str:
    sweep = run.doc["sweep"]
    fixed = sweep.get("fixed") or {}
    if run.sweep_axis == "batch":
        size = fixed.get("img_size")
        held = f" at {size[0]}×{size[1]}" if isinstance(size, list) and len(size) == 2 else ""
        return f"{run.model}: batch sweep{held}, {run.describe()}"
    return f"{run.model}: size sweep at batch {fixed.get('batch', '?')}, {run.describe()}"


def cost_curve_section(runs: Sequence[BenchRun]) -> list[str]:
    """Markdown: one table per sweep run (the figures are listed with the other plots)."""
    swept = [r for r in runs if r.sweep_axis]
    if not swept:
        return []
    lines = [
        "## Cost curves",
        "",
        "Runs of `litevit bench --sweep`: one axis swept, everything else fixed. Latency is per timed "
        "iteration (one batch); GMAC/s is the MACs of one iteration divided by its mean latency "
        "(1 multiply-add = 1 MAC).",
        "",
    ]
    for run in swept:
        macs_source = run.doc["sweep"].get("macs") or "not recorded"
        lines += [f"### {_title(run)}", "", f"Run `{run.label}`. MACs: {macs_source}.", ""]
        rows = []
        for m in _points(run):
            lat = m.latency
            shape = m.entry.get("input_shape")
            gmac_rate = m.entry.get("gmacs_per_s")
            rows.append(
                [
                    _point_label(m),
                    "×".join(map(str, shape)) if isinstance(shape, list) else "—",
                    _num(lat["p50"]),
                    _num(lat["p90"]),
                    _num(lat["p99"]),
                    f"{m.fps:.1f}",
                    _num(_gmacs(m, "macs_per_image")),
                    _num(_gmacs(m, "macs")),
                    _num(gmac_rate if isinstance(gmac_rate, (int, float)) else None, 3),
                ]
            )
        axis = "batch" if run.sweep_axis == "batch" else "H×W"
        header = [
            axis,
            "input",
            "p50 ms",
            "p90",
            "p99",
            "images/s",
            "GMACs/image",
            "GMACs/iteration",
            "GMAC/s",
        ]
        lines += [*_md_table(header, rows), ""]
    return lines


def draw_cost_curves(runs: Sequence[BenchRun], out: Path) -> list[tuple[str, str, list[Measurement]]]:
    """One PNG per sweep run; returns (file name, caption, plotted measurements) per figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    plots = []
    for run in (r for r in runs if r.sweep_axis):
        points = _points(run)
        if not points:
            continue
        x = [_x(m) for m in points]
        fig = Figure(figsize=(12, 4.8))
        FigureCanvasAgg(fig)
        latency_ax, throughput_ax = fig.subplots(1, 2)
        _latency_panel(latency_ax, x, points)
        throughput_ax.plot(x, [m.fps for m in points], marker="o", color="C2", label="throughput")
        throughput_ax.set_ylim(bottom=0)  # a cut axis would exaggerate the differences
        throughput_ax.set_ylabel("throughput, images/s")
        twin = throughput_ax.twinx()
        per_image = [(xi, g) for xi, g in strict_zip(x, [_gmacs(m, "macs_per_image") for m in points]) if g]
        if per_image:
            twin.plot(*zip(*per_image), linestyle="--", marker="s", color="0.4", label="GMACs per image")
            twin.set_ylim(bottom=0)
        twin.set_ylabel("GMACs per image" if per_image else "GMACs per image: not recorded")
        _one_legend(throughput_ax, twin)
        for ax in (latency_ax, throughput_ax):
            _log_scale(ax, "x")
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticks(x)
            ax.set_xticklabels(
                [_point_label(m) for m in points], rotation=30 if run.sweep_axis == "size" else 0
            )
            ax.set_xlabel("batch size" if run.sweep_axis == "batch" else "input H×W (axis: pixels per image)")
            ax.grid(alpha=0.3, which="both")
        latency_ax.set_title("latency per iteration (log-log)")
        throughput_ax.set_title("throughput and work per image")
        fig.suptitle(_title(run), fontsize=10)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        name = f"cost_{run.sweep_axis}_{_file_safe(run.label)}.png"
        write_bytes(out / name, buffer.getvalue())
        against = "batch size" if run.sweep_axis == "batch" else "input size"
        caption = (
            f"{_title(run)}: latency and throughput against {against}, with MACs on the second axes. Left, "
            "log-log, the MACs of one iteration are scaled to meet the first point's p50: where the latency "
            "follows that line the time per MAC is constant, above it each MAC costs more, below it less"
        )
        plots.append((name, caption, points))
    return plots


def _latency_panel(ax: Any, x: list[float], points: list[Measurement]) -> None:
    """p50 latency with its p50-p99 band; MACs per iteration on a second log axis spanning the
    same decades, anchored so that the first point's MACs sit on its p50."""
    p50 = [m.latency["p50"] for m in points]
    p99 = [m.latency["p99"] for m in points]
    ax.plot(x, p50, marker="o", color="C0", label="p50 latency")
    ax.fill_between(x, p50, p99, color="C0", alpha=0.2, label="p50–p99")
    ax.set_ylabel("latency per batch, ms")
    _log_scale(ax, "y")
    macs = [_gmacs(m, "macs") for m in points]
    twin = ax.twinx()
    if all(g is not None and g > 0 for g in macs) and p50[0] > 0:
        gmacs = [float(g) for g in macs if g is not None]
        ms_per_gmac = p50[0] / gmacs[0]
        values = p50 + p99 + [g * ms_per_gmac for g in gmacs]
        low, high = min(values) / 1.25, max(values) * 1.25
        ax.set_ylim(low, high)
        twin.plot(x, gmacs, linestyle="--", marker="s", color="0.4", label="GMACs per iteration")
        _log_scale(twin, "y")
        twin.set_ylim(low / ms_per_gmac, high / ms_per_gmac)
        twin.set_ylabel("GMACs per iteration (batch × per image)")
    else:
        twin.set_ylabel("GMACs per iteration: not recorded")
        twin.set_yticks([])
    _one_legend(ax, twin)


def _one_legend(ax: Any, twin: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    twin_handles, twin_labels = twin.get_legend_handles_labels()
    ax.legend(handles + twin_handles, labels + twin_labels, fontsize=8, loc="best")
