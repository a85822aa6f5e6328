"""Merge ``litevit bench`` JSON documents from one or many machines into a report.

``build_report(json_paths, out_dir)`` writes ``report.md`` (one table per model and device, rows
per precision, backend and batch, with speed-ups against a baseline run and the paper's published
figure beside ours), ``report.csv`` (one row per run and batch, every number and environment fact,
for aggregating elsewhere) and, when matplotlib is installed, PNG plots: latency percentiles per
model, FPS against batch size, and complexity (MACs) against latency.

Every figure names what was timed (the bench document's ``timed_region`` sentence) and where (the
run's environment), because numbers from different scopes or machines are not comparable without
it. Torch-free: the standard library, plus matplotlib when it is installed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litevit._compat import strict_zip
from litevit._deps import has
from litevit._io import ensure_writable_dir, write_bytes
from litevit.errors import LitevitError

if TYPE_CHECKING:
    from typing import TypeGuard  # novermin: Python 3.10, named only in (string) annotations

SCHEMA = "litevit.bench/1"
PLOTS_NEED_MATPLOTLIB = (
    "Plots were not drawn because matplotlib is not installed: pip install 'litevit[report]'."
)
_PERCENTILES = ("p50", "p90", "p95", "p99")
_REQUIRED_LATENCY_KEYS = ("mean", *_PERCENTILES)


@dataclass(frozen=True)
class PaperReference:
    """A speed the paper or its official README published, with how it was measured."""

    fps: float
    batch: int
    device: str
    protocol: str
    source: str


# Only LVT publishes speeds for models litevit has (the SegViT, ELSA and Mobile-Former READMEs
# give none).
PAPER_REFERENCE: dict[str, PaperReference] = {
    "lvt_panoptic_fpn": PaperReference(
        fps=20.4,
        batch=1,
        device="one NVIDIA V100",
        protocol="PyTorch FP32 (mmdet 2.17 tools/analysis_tools/benchmark.py); COCO val pictures, keep-ratio "
        "resize to 1333x800 and padding outside the timed region (data loader); the network and its "
        "post-processing back to the original picture (rescale=True) inside; one picture per iteration",
        source="Chenglin-Yang/LVT README, COCO panoptic table",
    ),
    "lvt_seg": PaperReference(
        fps=45.5,
        batch=1,
        device="one NVIDIA V100",
        protocol="PyTorch FP32; ADE20K images resized to short side 512 keeping the aspect ratio; "
        "logits resized back to the image size and argmax included; one image per iteration; "
        "the README says over 2000 images, the official segmentation/tools/benchmark.py times "
        "200 images after 5 warm-up ones",
        source="Chenglin-Yang/LVT README, ADE20K table",
    ),
}


@dataclass(frozen=True, eq=False)  # identity equality: runs are keys while grouping
class BenchRun:
    """One bench document: a model on one backend, precision and device of one machine."""

    path: Path
    label: str  # unique among the report's runs; what `baseline` may name
    doc: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.doc["model"])

    @property
    def backend(self) -> str:
        return str(self.doc["backend"])

    @property
    def precision(self) -> str:
        return str(self.doc["precision"])

    @property
    def runtime_device(self) -> str:
        return str(self.doc["device"])

    @property
    def environment(self) -> dict[str, Any]:
        env: dict[str, Any] = self.doc["environment"]
        return env

    @property
    def jetson(self) -> dict[str, Any]:
        jetson = self.environment.get("jetson")
        return jetson if isinstance(jetson, dict) else {}

    @property
    def device_name(self) -> str:
        """GPU name for a GPU run, CPU model for a CPU run, plus the Jetson power mode if any."""
        on_gpu = self.runtime_device != "cpu"
        name = self.environment.get("gpu_name" if on_gpu else "cpu_model")
        name = str(name) if name else ("unknown GPU" if on_gpu else "unknown CPU")
        mode = self.jetson.get("nvpmodel_mode")
        if mode:
            clocks = _on_off(self.jetson.get("jetson_clocks"))
            name += f" [nvpmodel {mode}" + (f", jetson_clocks {clocks}]" if clocks else "]")
        return name

    @property
    def complexity(self) -> dict[str, Any]:
        complexity = self.doc.get("complexity")
        return complexity if isinstance(complexity, dict) else {}

    @property
    def gmacs(self) -> float | None:
        """Per-image GMACs (one multiply-add = 1, the papers' 'GFLOPs'), from MACs or FLOPs/2."""
        macs, flops = self.complexity.get("macs"), self.complexity.get("flops")
        if isinstance(macs, (int, float)):
            return macs / 1e9
        if isinstance(flops, (int, float)):
            return flops / 2e9
        return None

    @property
    def reference(self) -> PaperReference | None:
        """The paper's figure for this model, unless the bench run said it does not apply
        (``"reference": null``, e.g. an artefact built with a smoke architecture)."""
        if "reference" in self.doc and self.doc["reference"] is None:
            return None
        return PAPER_REFERENCE.get(self.model)

    def describe(self) -> str:
        return f"{self.backend} {self.precision} on {self.device_name}"

    @property
    def sweep_axis(self) -> str | None:
        """``"batch"`` or ``"size"`` for a run of ``litevit bench --sweep``, else None."""
        sweep = self.doc.get("sweep")
        return str(sweep["axis"]) if isinstance(sweep, dict) else None


@dataclass(frozen=True, eq=False)
class Measurement:
    """One entry of a run's ``runs`` list: one batch size (and timing scope)."""

    run: BenchRun
    entry: dict[str, Any]

    @property
    def batch(self) -> int:
        return int(self.entry["batch"])

    @property
    def fps(self) -> float:
        return float(self.entry["fps"])

    @property
    def latency(self) -> dict[str, float]:
        latency: dict[str, float] = self.entry["latency_ms"]
        return latency

    @property
    def scope(self) -> str:
        return str(self.entry["timed_region"])

    @property
    def measure(self) -> str:
        """Which timing of the batch: "host", "compute_only", "with_copies", "paper_end_to_end"."""
        return str(self.entry.get("measure") or "")

    @property
    def gmacs(self) -> float | None:
        """Per-image GMACs at this point's input size: the sweep's count where the run has one
        (``litevit bench --sweep``), else the run's."""
        macs = self.entry.get("macs_per_image")
        return macs / 1e9 if _is_number(macs) else self.run.gmacs

    @property
    def gpu_compute(self) -> dict[str, float] | None:
        gpu = self.entry.get("gpu_compute_latency_ms")
        return gpu if isinstance(gpu, dict) else None

    @property
    def power(self) -> dict[str, Any]:
        power = self.entry.get("power")
        return power if isinstance(power, dict) else {}

    @property
    def power_w(self) -> float | None:
        """Mean whole-board input power in watts (tegrastats' input rail, e.g. VDD_IN), if sampled."""
        for key in ("total_mw_mean", "vdd_in_mw_mean"):
            mw = self.power.get(key)
            if _is_number(mw):
                return mw / 1000
        return None

    @property
    def energy_mj_per_image(self) -> float | None:
        recorded = self.power.get("energy_per_image_mj")
        if _is_number(recorded):
            return float(recorded)
        watts = self.power_w
        return watts / self.fps * 1000 if watts is not None else None


# ----------------------------------------------------------------------------- loading


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _invalid(path: Path, what: str) -> LitevitError:
    return LitevitError(f"{str(path)!r} is not a valid litevit benchmark file: {what}.")


def _check_latency(path: Path, where: str, latency: Any, required: bool) -> None:
    if latency is None and not required:
        return
    if not isinstance(latency, dict):
        raise _invalid(path, f"{where} must be an object of latency statistics")
    for key in _REQUIRED_LATENCY_KEYS:
        if not _is_number(latency.get(key)):
            raise _invalid(path, f"{where}.{key} must be a number of milliseconds")
    if latency["mean"] <= 0:
        raise _invalid(path, f"{where}.mean must be positive")


def load_bench_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check one bench document, or raise one sentence naming the file and the fault."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise LitevitError(f"cannot read benchmark file {str(file)!r}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise LitevitError(f"{str(file)!r} is not a litevit benchmark file: it is not UTF-8 text.") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LitevitError(
            f"{str(file)!r} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
        ) from None
    if not isinstance(doc, dict) or "schema" not in doc:
        raise LitevitError(f'{str(file)!r} is not a litevit benchmark file: it has no "schema" key.')
    if doc["schema"] != SCHEMA:
        raise LitevitError(
            f"{str(file)!r} is not a litevit benchmark file: its schema is {doc['schema']!r}, not {SCHEMA!r}."
        )
    for key in ("model", "backend", "precision", "device"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise _invalid(file, f"{key!r} must be a non-empty string")
    if not isinstance(doc.get("environment"), dict):
        raise _invalid(file, "'environment' must be an object")
    if doc.get("complexity") is not None and not isinstance(doc["complexity"], dict):
        raise _invalid(file, "'complexity' must be an object or null")
    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs:
        raise _invalid(file, "'runs' must be a non-empty list")
    for index, entry in enumerate(runs):
        where = f"runs[{index}]"
        if not isinstance(entry, dict):
            raise _invalid(file, f"{where} must be an object")
        batch = entry.get("batch")
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise _invalid(file, f"{where}.batch must be a positive integer")
        if not isinstance(entry.get("timed_region"), str) or not entry["timed_region"]:
            raise _invalid(file, f"{where}.timed_region must say what was timed")
        _check_latency(file, f"{where}.latency_ms", entry.get("latency_ms"), required=True)
        _check_latency(file, f"{where}.gpu_compute_latency_ms", entry.get("gpu_compute_latency_ms"), False)
        if not _is_number(entry.get("fps")) or entry["fps"] <= 0:
            raise _invalid(file, f"{where}.fps must be a positive number")
        if entry.get("power") is not None and not isinstance(entry["power"], dict):
            raise _invalid(file, f"{where}.power must be an object or null")
    sweep = doc.get("sweep")
    if sweep is not None and (not isinstance(sweep, dict) or sweep.get("axis") not in ("batch", "size")):
        raise _invalid(file, '\'sweep\' must be an object whose axis is "batch" or "size"')
    return doc


def _unique_labels(paths: Sequence[Path]) -> list[str]:
    """File stems; where two files share a stem (runs from several machines), prefix the folder."""
    stems = [p.stem for p in paths]
    labels = [f"{p.parent.name}/{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]
    return [label if labels.count(label) == 1 else str(p) for label, p in strict_zip(labels, paths)]


def load_runs(json_paths: Iterable[str | os.PathLike[str]]) -> list[BenchRun]:
    paths: list[Path] = []
    for raw in json_paths:
        path = Path(raw)
        if path.resolve() not in {p.resolve() for p in paths}:  # the same file named twice counts once
            paths.append(path)
    if not paths:
        raise LitevitError(
            "no benchmark files given; pass one or more JSON files written by `litevit bench`."
        )
    docs = [load_bench_json(p) for p in paths]
    return [BenchRun(p, label, doc) for p, label, doc in strict_zip(paths, _unique_labels(paths), docs)]


# ----------------------------------------------------------------------------- baselines


def _selector_matches(run: BenchRun, selector: str) -> bool:
    """A run is named by its label, by BACKEND/DEVICE (device with or without the ':N' index),
    or by BACKEND/DEVICE/PRECISION."""
    device = run.runtime_device
    names = {run.label}
    for dev in {device, device.split(":")[0]}:
        names |= {f"{run.backend}/{dev}", f"{run.backend}/{dev}/{run.precision}"}
    return selector in names


def _slowest(runs: Sequence[BenchRun]) -> BenchRun:
    """The run with the lowest FPS at its smallest batch size (first given wins a tie)."""

    def fps_at_smallest_batch(run: BenchRun) -> float:
        entries = run.doc["runs"]
        smallest = min(e["batch"] for e in entries)
        return min(float(e["fps"]) for e in entries if e["batch"] == smallest)

    return min(runs, key=fps_at_smallest_batch)


def choose_baselines(runs: Sequence[BenchRun], baseline: str | None) -> tuple[dict[str, BenchRun], str]:
    """Baseline run per model and a sentence saying how it was chosen."""
    by_model: dict[str, list[BenchRun]] = {}
    for run in runs:
        by_model.setdefault(run.model, []).append(run)
    if baseline is None:
        chosen = {model: _slowest(model_runs) for model, model_runs in by_model.items()}
        how = (
            "Speed-ups are relative to the slowest run of each model (lowest FPS at its smallest "
            "batch size), at the same batch size; no baseline was given."
            " A dash means the baseline has no measurement at that batch size."
        )
        return chosen, how
    chosen = {}
    for model, model_runs in by_model.items():
        matches = [r for r in model_runs if _selector_matches(r, baseline)]
        if len(matches) > 1:
            names = ", ".join(r.label for r in matches)
            raise LitevitError(
                f"baseline {baseline!r} matches {len(matches)} runs of {model} ({names}); "
                "name one of them by its run label."
            )
        if matches:
            chosen[model] = matches[0]
    if not chosen:
        choices = sorted({r.label for r in runs} | {f"{r.backend}/{r.runtime_device}" for r in runs})
        raise LitevitError(f"baseline {baseline!r} matches no run; choose one of: {', '.join(choices)}.")
    how = (
        f"Speed-ups are relative to the baseline {baseline!r}, at the same batch size;"
        " a dash means the baseline has no measurement at that batch size."
    )
    missing = sorted(set(by_model) - set(chosen))
    if missing:
        how += f" No run of {', '.join(missing)} matches it, so those models have no speed-ups."
    return chosen, how


def _baseline_entry(baseline: BenchRun | None, m: Measurement) -> dict[str, Any] | None:
    """The baseline's entry at the same batch size, with the same measure where it has one."""
    if baseline is None:
        return None
    same_batch = [e for e in baseline.doc["runs"] if e["batch"] == m.batch]
    # A size sweep has one entry per input size at the same batch: compare like with like.
    same_shape = [e for e in same_batch if e.get("input_shape") == m.entry.get("input_shape")]
    same_batch = same_shape or same_batch
    same_measure = [e for e in same_batch if (e.get("measure") or "") == m.measure]
    return (same_measure or same_batch or [None])[0]


# ----------------------------------------------------------------------------- formatting


def _on_off(value: Any) -> str | None:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value) if value else None


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _fps(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _shape(entry: dict[str, Any]) -> str:
    shape = entry.get("input_shape")
    if isinstance(shape, list) and len(shape) == 4:
        return f"{shape[2]}×{shape[3]}"
    return "varies (per image)"


def environment_summary(run: BenchRun) -> str:
    """The facts that decide a figure, in one cell: device, versions, Jetson mode."""
    env = run.environment
    parts = []
    if env.get("gpu_name"):
        gpu = str(env["gpu_name"])
        if env.get("compute_capability"):
            gpu += f" (sm {env['compute_capability']})"
        parts.append(gpu)
    if env.get("cpu_model"):
        cores = f", {env['cpu_cores']} cores" if env.get("cpu_cores") else ""
        threads = f", {env['threads']} threads" if env.get("threads") else ""
        parts.append(f"{env['cpu_model']}{cores}{threads}")
    versions = [
        ("driver", "driver"), ("CUDA", "cuda"), ("cuDNN", "cudnn"), ("TensorRT", "tensorrt"),
        ("ORT", "onnxruntime"), ("torch", "torch"), ("Python", "python"),
    ]  # fmt: skip
    parts += [f"{name} {env[key]}" for name, key in versions if env.get(key)]
    jetson = run.jetson
    if jetson:
        release = f"JetPack {jetson.get('jetpack') or '?'} (L4T {jetson.get('l4t') or '?'})"
        clocks = _on_off(jetson.get("jetson_clocks"))
        mode = f"nvpmodel {jetson.get('nvpmodel_mode') or 'unknown'}, jetson_clocks {clocks or 'unknown'}"
        parts += [release, mode]
    if env.get("host"):
        parts.append(f"host {env['host']}")
    return "; ".join(parts) or "not recorded"


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|", *(line(r) for r in rows)]


# ----------------------------------------------------------------------------- report


_CSV_FIELDS = [
    "run", "file", "model", "task", "backend", "precision", "runtime_device", "device_name",
    "protocol", "batch", "measure", "input_shape", "timed_region", "warmup", "iterations",
    *(f"latency_{k}_ms" for k in ("mean", "std", "min", "p50", "p90", "p95", "p99", "max")),
    "fps", "throughput_ips",
    *(f"gpu_compute_{k}_ms" for k in ("mean", "p50", "p99")),
    "power_w", "power_rail", "energy_mj_per_image", "speedup", "baseline_run", "paper_fps", "paper_protocol",
    "params", "macs", "flops", "flop_counter",
    "host", "os", "cpu_model", "cpu_cores", "threads", "gpu_name", "compute_capability",
    "driver", "cuda", "cudnn", "tensorrt", "onnxruntime", "torch",
    "jetson_l4t", "jetpack", "nvpmodel_mode", "jetson_clocks",
    "created", "litevit_version", "artifact_sha256",
]  # fmt: skip


def _csv_row(m: Measurement, speedup: float | None, baseline: BenchRun | None) -> dict[str, Any]:
    run, entry, env, jetson = m.run, m.entry, m.run.environment, m.run.jetson
    reference = run.reference
    gpu = m.gpu_compute or {}
    row: dict[str, Any] = {
        "run": run.label,
        "file": str(run.path),
        "model": run.model,
        "task": run.doc.get("task"),
        "backend": run.backend,
        "precision": run.precision,
        "runtime_device": run.runtime_device,
        "device_name": run.device_name,
        "protocol": run.doc.get("protocol"),
        "batch": m.batch,
        "measure": m.measure,
        "input_shape": "x".join(map(str, entry["input_shape"])) if entry.get("input_shape") else None,
        "timed_region": m.scope,
        "warmup": entry.get("warmup"),
        "iterations": entry.get("iterations"),
        "fps": m.fps,
        "throughput_ips": entry.get("throughput_ips"),
        "power_w": m.power_w,
        "power_rail": m.power.get("total_rail", "VDD_IN" if m.power_w is not None else None),
        "energy_mj_per_image": m.energy_mj_per_image,
        "speedup": speedup,
        "baseline_run": baseline.label if baseline else None,
        "paper_fps": reference.fps if reference else None,
        "paper_protocol": f"{reference.device}; {reference.protocol}" if reference else None,
        "params": run.complexity.get("params"),
        "macs": round(m.gmacs * 1e9) if m.gmacs is not None else None,
        "flops": round(2 * m.gmacs * 1e9) if m.gmacs is not None else None,
        "flop_counter": run.complexity.get("counter"),
        "jetson_l4t": jetson.get("l4t"),
        "jetpack": jetson.get("jetpack"),
        "nvpmodel_mode": jetson.get("nvpmodel_mode"),
        "jetson_clocks": _on_off(jetson.get("jetson_clocks")),
        "created": run.doc.get("created"),
        "litevit_version": run.doc.get("litevit_version"),
        "artifact_sha256": run.doc.get("artifact_sha256"),
    }
    for key in ("mean", "std", "min", "p50", "p90", "p95", "p99", "max"):
        row[f"latency_{key}_ms"] = m.latency.get(key)
    for key in ("mean", "p50", "p99"):
        row[f"gpu_compute_{key}_ms"] = gpu.get(key)
    for key in (
        "host",
        "os",
        "cpu_model",
        "cpu_cores",
        "threads",
        "gpu_name",
        "compute_capability",
        "driver",
        "cuda",
        "cudnn",
        "tensorrt",
        "onnxruntime",
        "torch",
    ):
        row[key] = env.get(key)
    return row


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    write_bytes(path, buffer.getvalue().encode("utf-8"))


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _markdown(
    runs: Sequence[BenchRun],
    measurements: Sequence[Measurement],
    baselines: dict[str, BenchRun],
    baseline_sentence: str,
    speedups: dict[Measurement, float | None],
    scope_ids: dict[str, str],
    plots: Sequence[tuple[str, str, list[Measurement]]],
    plot_note: str,
    cost_curves: Sequence[str],
) -> list[str]:
    lines = [
        "# litevit benchmark report",
        "",
        f"Merged from {len(runs)} benchmark file(s). {baseline_sentence} Latencies are in "
        "milliseconds per batch; FPS is images per second (batch / mean latency). Each row names "
        "its run (environment below) and its timing scope (S1, S2, ... below).",
        "",
        "## Runs and environments",
        "",
        *_md_table(
            ["run", "model", "backend", "precision", "device", "protocol", "environment", "file"],
            (
                [
                    r.label,
                    r.model,
                    r.backend,
                    r.precision,
                    r.runtime_device,
                    str(r.doc.get("protocol")),
                    environment_summary(r),
                    str(r.path),
                ]
                for r in runs
            ),
        ),
        "",
    ]
    notes = [(r.label, str(note)) for r in runs for note in r.doc.get("notes") or []]
    if notes:
        lines += [
            "Notes from the benchmark runs:",
            "",
            *(f"- `{label}`: {note}" for label, note in notes),
            "",
        ]
    lines += [
        "## Timing scopes",
        "",
        *(f"- **{sid}**: {scope}" for scope, sid in scope_ids.items()),
        "- **GPU** columns: the same iterations timed with CUDA events on the GPU, so host-side "
        "overhead is left out; what they enclose follows the row's scope.",
        "",
    ]
    for model in dict.fromkeys(r.model for r in runs):
        lines += _model_section(
            model,
            [m for m in measurements if m.run.model == model],
            baselines.get(model),
            speedups,
            scope_ids,
        )
    lines += cost_curves
    lines += ["## Plots", ""]
    if plot_note:
        lines += [plot_note, ""]
    for name, caption, plotted in plots:
        scopes = ", ".join(sorted({scope_ids[m.scope] for m in plotted}, key=lambda s: int(s[1:])))
        envs = "; ".join(f"{r.label}: {r.describe()}" for r in dict.fromkeys(m.run for m in plotted))
        lines += [f"![{caption}]({name})", "", f"*{caption}.* Timing scope: {scopes}. Runs: {envs}.", ""]
    return lines


def _model_section(
    model: str,
    measurements: Sequence[Measurement],
    baseline: BenchRun | None,
    speedups: dict[Measurement, float | None],
    scope_ids: dict[str, str],
) -> list[str]:
    first = measurements[0].run
    lines = [f"## {model} ({first.doc.get('task') or 'task not recorded'})", ""]
    complexity = first.complexity
    if first.gmacs is not None:
        params = complexity.get("params")
        params_text = f"{params / 1e6:.2f} M parameters, " if isinstance(params, int) else ""
        lines.append(
            f"Complexity: {params_text}{first.gmacs:.3g} GMACs per image ({2 * first.gmacs:.3g} GFLOPs, "
            f"FLOPs = 2 x MACs), counted by {complexity.get('counter') or 'an unnamed counter'}."
        )
    else:
        lines.append("Complexity: not recorded in the benchmark file.")
    if baseline is not None:
        lines.append(f"Speed-up baseline: run `{baseline.label}` ({baseline.describe()}).")
    lines.append("")
    # The paper's figure, for the runs the bench did not mark as a different model (smoke arch).
    reference = PAPER_REFERENCE.get(model) if any(m.run.reference for m in measurements) else None
    scope_mismatch = False
    devices = dict.fromkeys(m.run.device_name for m in measurements)
    for device in devices:
        rows = sorted(
            (m for m in measurements if m.run.device_name == device),
            key=lambda m: (m.run.precision, m.run.backend, m.run.label, m.batch, m.measure),
        )
        show_gpu = any(m.gpu_compute for m in rows)
        show_power = any(m.power_w is not None for m in rows)
        header = [
            "run",
            "backend",
            "precision",
            "batch",
            "input",
            "protocol",
            "scope",
            "mean ± std",
            "p50",
            "p90",
            "p95",
            "p99",
            "FPS",
        ]
        header += ["GPU p50 (CUDA events)", "GPU FPS"] if show_gpu else []
        header += ["board power W", "mJ/image"] if show_power else []
        header += ["speed-up"]
        header += [f"paper FPS (ref., {reference.device})"] if reference else []
        table = []
        for m in rows:
            lat, gpu, speedup = m.latency, m.gpu_compute, speedups[m]
            std = lat.get("std")
            cells = [
                m.run.label,
                m.run.backend,
                m.run.precision,
                str(m.batch),
                _shape(m.entry),
                str(m.run.doc.get("protocol")),
                scope_ids[m.scope] + (f" ({m.measure.replace('_', ' ')})" if m.measure else ""),
                _num(lat["mean"]) + (f" ± {_num(std, 2)}" if _is_number(std) else ""),
            ]
            cells += [_num(lat[k]) for k in _PERCENTILES] + [_fps(m.fps)]
            if show_gpu:
                cells += [_num(gpu["p50"]), _fps(m.batch / gpu["mean"] * 1000)] if gpu else ["—", "—"]
            if show_power:
                cells += [_num(m.power_w, 3), _num(m.energy_mj_per_image, 3)]
            base_entry = _baseline_entry(baseline, m)
            if speedup is None or base_entry is None:
                cells.append("—")
            elif m.run is baseline:
                cells.append(f"{speedup:.2f}× (baseline)")
            else:
                other_scope = base_entry["timed_region"] != m.scope
                scope_mismatch |= other_scope
                cells.append(f"{speedup:.2f}×" + (" †" if other_scope else ""))
            if reference:
                applies = m.run.reference is not None and m.batch == reference.batch
                cells.append(_fps(reference.fps) if applies else "—")
            table.append(cells)
        lines += [f"### {model} on {device}", "", *_md_table(header, table), ""]
        lines += _stage_lines(rows)
    if scope_mismatch:
        lines += ["† The baseline timed a different scope, so this speed-up mixes what was measured.", ""]
    if reference:
        lines += [
            f"Paper reference ({reference.source}): {reference.fps} FPS at batch {reference.batch} on "
            f"{reference.device}; {reference.protocol}. Comparable only with rows measured with "
            "`--protocol paper` at the same batch size, and only on the same GPU.",
            "",
        ]
    return lines


def _stage_lines(measurements: Sequence[Measurement]) -> list[str]:
    """Detector pipelines (``--protocol paper``): median time per stage, and the whole pipeline's FPS."""
    lines = []
    for m in measurements:
        stages = m.entry.get("stages_ms")
        pipeline = m.entry.get("pipeline_ms")
        if not isinstance(stages, dict) or not isinstance(pipeline, dict):
            continue
        parts = ", ".join(f"{name} {_num(stats.get('p50'))} ms" for name, stats in stages.items())
        images = m.entry.get("paper_images") or {}
        found = images.get("mean_detections")
        lines.append(
            f"- `{m.run.label}` stages (p50): {parts}; pre + graph + post {_num(pipeline.get('p50'))} ms, "
            f"{_fps(1000.0 / pipeline['mean'])} FPS with pre-processing"
            + (f"; {found:.3g} detections per picture on average" if _is_number(found) else "")
            + "."
        )
    return [*lines, ""] if lines else []


# ----------------------------------------------------------------------------- plots


def _series_name(m: Measurement) -> str:
    """Legend text for one run and measure: label, then backend, precision, device, measure."""
    measure = f", {m.measure.replace('_', ' ')}" if m.measure else ""
    return f"{m.run.label}\n{m.run.backend} {m.run.precision}, {m.run.device_name}{measure}"


def _draw_plots(measurements: Sequence[Measurement], out: Path) -> list[tuple[str, str, list[Measurement]]]:
    """Draw every plot with matplotlib's Agg canvas (no display, no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    plots: list[tuple[str, str, list[Measurement]]] = []

    def save(fig: Figure, name: str, caption: str, plotted: list[Measurement]) -> None:
        FigureCanvasAgg(fig)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        write_bytes(out / name, buffer.getvalue())
        plots.append((name, caption, plotted))

    models = list(dict.fromkeys(m.run.model for m in measurements))
    for model in models:
        of_model = [m for m in measurements if m.run.model == model]
        # Percentiles at each run's smallest batch, so runs compare per image on equal terms.
        smallest = [m for m in of_model if m.batch == min(x.batch for x in of_model if x.run is m.run)]
        fig = Figure(figsize=(9, max(3.0, 1.2 + 0.9 * len(smallest))))
        ax = fig.add_subplot()
        height = 0.8 / len(_PERCENTILES)
        for i, key in enumerate(_PERCENTILES):
            ax.barh(
                [row + i * height for row in range(len(smallest))],
                [m.latency[key] for m in smallest],
                height=height,
                label=key,
            )
        ax.set_yticks([row + 0.4 - height / 2 for row in range(len(smallest))])
        ax.set_yticklabels([f"{_series_name(m)} (batch {m.batch})" for m in smallest], fontsize=8)
        ax.invert_yaxis()
        _log_if_wide(ax, "x", [m.latency["p50"] for m in smallest])
        ax.set_xlabel("latency per batch, ms")
        ax.set_title(f"{model}: latency percentiles")
        ax.legend(fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        save(fig, f"latency_{_file_safe(model)}.png", f"{model}: latency percentiles per run", smallest)

        series: dict[tuple[BenchRun, str], list[Measurement]] = {}
        for m in of_model:
            if m.run.sweep_axis != "size":  # many sizes at one batch: drawn as a cost curve instead
                series.setdefault((m.run, m.measure), []).append(m)
        if not series:
            continue
        plotted = [m for members in series.values() for m in members]
        fig = Figure(figsize=(11, 5))
        ax = fig.add_subplot()
        for members in series.values():
            members.sort(key=lambda m: m.batch)
            ax.plot(
                [m.batch for m in members],
                [m.fps for m in members],
                marker="o",
                label=_series_name(members[0]),
            )
        reference = PAPER_REFERENCE.get(model) if any(m.run.reference for m in of_model) else None
        if reference:
            ax.plot(
                [reference.batch],
                [reference.fps],
                marker="*",
                markersize=18,
                markerfacecolor="none",  # hollow, so a measured point at the same place stays visible
                linestyle="none",
                color="black",
                label=f"paper: {reference.fps} FPS, {reference.device}, batch {reference.batch} (see report)",
            )
        batches = sorted({m.batch for m in plotted})
        ax.set_xscale("log", base=2)
        ax.set_xticks(batches)
        ax.set_xticklabels([str(b) for b in batches])
        if not _log_if_wide(ax, "y", [m.fps for m in plotted] + ([reference.fps] if reference else [])):
            ax.set_ylim(bottom=0)  # a linear axis cut above zero would exaggerate the differences
        ax.set_xlabel("batch size")
        ax.set_ylabel("FPS (images/s)")
        ax.set_title(f"{model}: throughput against batch size")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: no line hidden
        ax.grid(alpha=0.3)
        save(fig, f"fps_vs_batch_{_file_safe(model)}.png", f"{model}: FPS against batch size", plotted)

    gmacs_at_batch_1 = {m: m.gmacs for m in measurements if m.batch == 1 and m.gmacs is not None}
    if gmacs_at_batch_1:
        fig = Figure(figsize=(11, 5.5))
        ax = fig.add_subplot()
        for device in dict.fromkeys(m.run.device_name for m in gmacs_at_batch_1):
            on_device = {m: g for m, g in gmacs_at_batch_1.items() if m.run.device_name == device}
            ax.scatter(list(on_device.values()), [m.latency["p50"] for m in on_device], label=device, s=40)
            for m, gmacs in on_device.items():
                ax.annotate(
                    f"{m.run.model} {m.run.backend} {m.run.precision} {m.measure.replace('_', ' ')}".strip(),
                    (gmacs, m.latency["p50"]),
                    fontsize=7,
                    xytext=(4, 4),
                    textcoords="offset points",
                )
        _log_scale(ax, "x")
        _log_scale(ax, "y")
        ax.margins(x=0.2, y=0.1)  # room for the point labels
        ax.set_xlabel("GMACs per image (1 multiply-add = 1; FLOPs = 2 x MACs)")
        ax.set_ylabel("p50 latency at batch 1, ms")
        ax.set_title("Complexity against latency (batch 1)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        ax.grid(alpha=0.3, which="both")
        save(fig, "flops_vs_latency.png", "MACs against p50 latency at batch 1", list(gmacs_at_batch_1))
    return plots


def _log_if_wide(ax: Any, axis: str, values: Sequence[float]) -> bool:
    """Log scale when values span more than 20x (else the small ones vanish); says if it did."""
    wide = bool(values) and max(values) / min(values) > 20
    if wide:
        _log_scale(ax, axis)
    return wide


def _log_scale(ax: Any, axis: str) -> None:
    """Log scale with ticks written as plain numbers (20, not 2x10^1); minor ticks at 2, 3 and 5."""
    from matplotlib.ticker import FuncFormatter

    def minor_label(value: float, _position: int) -> str:
        leading_digit = round(value / 10 ** math.floor(math.log10(value)))
        return f"{value:g}" if leading_digit in (2, 3, 5) else ""

    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    ticks = ax.xaxis if axis == "x" else ax.yaxis
    ticks.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    ticks.set_minor_formatter(FuncFormatter(minor_label))


def build_report(
    json_paths: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    baseline: str | None = None,
) -> dict[str, Path]:
    """Write report.md, report.csv and (with matplotlib) PNG plots into ``out_dir``.

    ``baseline`` names the run speed-ups are measured against: a run label (the JSON file's
    stem), ``BACKEND/DEVICE`` such as ``"ort/cpu"`` or ``"trt/cuda:0"``, or
    ``BACKEND/DEVICE/PRECISION``; default: the slowest run of each model. Returns the written
    files by name.
    """
    runs = load_runs(json_paths)
    baselines, baseline_sentence = choose_baselines(runs, baseline)
    out = ensure_writable_dir(out_dir)
    measurements = [Measurement(run, entry) for run in runs for entry in run.doc["runs"]]

    speedups: dict[Measurement, float | None] = {}
    for m in measurements:
        base = _baseline_entry(baselines.get(m.run.model), m)
        speedups[m] = m.fps / float(base["fps"]) if base is not None else None

    # Timing scopes are long sentences: number them once and refer to them as S1, S2, ...
    scope_ids: dict[str, str] = {}
    for m in measurements:
        scope_ids.setdefault(m.scope, f"S{len(scope_ids) + 1}")

    written: dict[str, Path] = {}
    plots: list[tuple[str, str, list[Measurement]]] = []  # (file name, caption, what it plots)
    plot_note = PLOTS_NEED_MATPLOTLIB
    # Sweeps (litevit bench --sweep) get their own section and figures; it builds on this module.
    from litevit.runtime.report_curves import cost_curve_section, draw_cost_curves

    if has("matplotlib"):
        plots = _draw_plots(measurements, out) + draw_cost_curves(runs, out)
        written |= {name: out / name for name, _, _ in plots}
        plot_note = ""

    lines = _markdown(
        runs,
        measurements,
        baselines,
        baseline_sentence,
        speedups,
        scope_ids,
        plots,
        plot_note,
        cost_curve_section(runs),
    )
    md_path, csv_path = out / "report.md", out / "report.csv"
    write_bytes(md_path, ("\n".join(lines) + "\n").encode("utf-8"))
    _write_csv(csv_path, [_csv_row(m, speedups[m], baselines.get(m.run.model)) for m in measurements])
    return {"report.md": md_path, "report.csv": csv_path, **written}
