"""The ``litevit`` command. Each subcommand is a thin shell over a function of the Python API.

Errors a user can cause (``LitevitError``) print as one line, ``litevit: error: ...``, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litevit._compat import strict_zip
from litevit import __version__
from litevit.calibration.int8 import (
    DEFAULT_HOLDOUT,
    DEFAULT_PERCENTILE,
    DEFAULT_SAMPLES,
    DEFAULT_TARGET,
    Int8Options,
)
from litevit.calibration.quant_report import configure_quant_report_parser, run_quant_report
from litevit.calibration.ranges import METHODS
from litevit.calibration.val import configure_val_parser, run_val
from litevit.errors import LitevitError
from litevit.plugins.build import DESCRIPTION as PLUGINS_DESCRIPTION
from litevit.plugins.build import configure_plugins_parser, run_plugins
from litevit.runtime.selftest import DESCRIPTION as SELFTEST_DESCRIPTION
from litevit.runtime.selftest import configure_selftest_parser, run_selftest
from litevit.serve import SERVE_DESCRIPTION, configure_serve_parser, run_serve
from litevit.runtime.trt_build import BUILD_DESCRIPTION, configure_build_parser, run_build
from litevit.runtime.trt_build.parser_coverage import TARGET_RELEASES as TRT_RELEASES
from litevit.serve.triton_repo import TRITON_REPO_DESCRIPTION, configure_triton_repo_parser, run_triton_repo


def _pct(ours: float, paper: float | None) -> str:
    if not paper:
        return "-"
    return f"{100.0 * (ours - paper) / paper:+.1f}%"


def info_rows(names: Sequence[str], img_size: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Parameters and MACs of each named model (built on the meta device: no weights, no arithmetic)."""
    import torch

    from litevit.flops import count_model
    from litevit.labels import LABEL_SETS, class_names
    from litevit.models import create_model, get_model_cfg, list_models

    rows = []
    for name in names or list_models():
        cfg = get_model_cfg(name)  # unknown names fail here, before any work
        with torch.device("meta"):
            model = create_model(name, img_size=img_size)
        paper = cfg.paper
        size = tuple(img_size) if img_size else (paper.resolution or cfg.input_size)
        report = count_model(model, size)
        rows.append(
            {
                "model": name,
                "task": cfg.task,
                "classes": f"{cfg.label_set} ({cfg.num_classes})",
                "class_names": class_names(cfg.label_set) if cfg.label_set in LABEL_SETS else None,
                "input": f"{size[0]}x{size[1]}",
                "params_m": report.params_m,
                "paper_params_m": paper.params_m,
                "gmacs": report.gmacs,
                "paper_gmacs": paper.gmacs if (paper.resolution or cfg.input_size) == size else None,
                "gflops": report.flops / 1e9,
                "note": paper.note,
            }
        )
    return rows


def _format_table(rows: list[dict[str, Any]]) -> str:
    header = (
        "model",
        "task",
        "classes",
        "input",
        "params M",
        "paper M",
        "diff",
        "GMACs",
        "paper GMACs",
        "diff",
        "GFLOPs",
    )
    lines = [header]
    for r in rows:
        lines.append(
            (
                r["model"],
                r["task"],
                r["classes"],
                r["input"],
                f"{r['params_m']:.3f}",
                f"{r['paper_params_m']:.2f}" if r["paper_params_m"] else "-",
                _pct(r["params_m"], r["paper_params_m"]),
                f"{r['gmacs']:.3f}",
                f"{r['paper_gmacs']:.3f}" if r["paper_gmacs"] else "-",
                _pct(r["gmacs"], r["paper_gmacs"]),
                f"{r['gflops']:.3f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [
        "  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(strict_zip(line, widths)))
        for line in lines
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def _cmd_info(args: argparse.Namespace) -> int:
    from litevit._deps import require_torch

    require_torch()
    from litevit.flops import CONVENTION

    rows = info_rows(args.models, args.img_size)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(_format_table(rows))
    print(
        f"\n{CONVENTION}. Paper figures: see each model's cfg.paper (litevit/models/*.py). Class names: "
        f"litevit.labels.class_names(LABEL_SET), and in `litevit info --json`."
    )
    models_by_note: dict[str, list[str]] = {}
    for r in rows:
        if r["note"]:
            models_by_note.setdefault(r["note"], []).append(r["model"])
    if models_by_note:
        print("Notes:")
        for note, models in models_by_note.items():
            print(f"- {', '.join(models)}: {note}")
    return 0


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="registered model name (see `litevit info`)")
    parser.add_argument(
        "--weights", metavar="PATH", help="official checkpoint to load (default: random init)"
    )
    parser.add_argument(
        "--use-ema", action="store_true", help="load the checkpoint's EMA weights (ELSA-Swin-B)"
    )
    parser.add_argument(
        "--img-size",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        help="input size (default: the model's, e.g. 224 224)",
    )
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument("--batch", type=int, default=1, metavar="N", help="fixed batch size (default: 1)")
    batch.add_argument("--dynamic-batch", action="store_true", help="dynamic batch axis")
    parser.add_argument(
        "--dynamic-hw", action="store_true", help="dynamic height and width (multiples of the model's stride)"
    )
    parser.add_argument(
        "--fp16", action="store_true", help="also write MODEL.fp16.onnx, a strongly typed FP16 graph"
    )
    int8 = parser.add_argument_group("INT8 (Q/DQ graph calibrated on your images)")
    int8.add_argument(
        "--int8", action="store_true", help="also write MODEL.int8.onnx, a Q/DQ INT8 graph (needs --calib)"
    )
    int8.add_argument(
        "--calib", metavar="DIR", help="your images (JPEG/PNG, searched recursively) for calibration"
    )
    int8.add_argument(
        "--calib-samples",
        type=int,
        metavar="N",
        help=f"at most N calibration images, evenly spaced over the folder (default: {DEFAULT_SAMPLES})",
    )
    int8.add_argument(
        "--holdout",
        type=int,
        metavar="N",
        help=f"images kept out of calibration for the accuracy report (default: {DEFAULT_HOLDOUT})",
    )
    int8.add_argument(
        "--calib-method",
        choices=METHODS,
        help="activation ranges: minmax (default), entropy (TensorRT's KL method), percentile",
    )
    int8.add_argument(
        "--percentile",
        type=float,
        metavar="P",
        help=f"for --calib-method percentile (default: {DEFAULT_PERCENTILE})",
    )
    int8.add_argument(
        "--keep-fp32",
        metavar="auto|NAME[,NAME]",
        help="leave layers in FP32: 'auto' (most sensitive first, until --target-agreement is met) or "
        "module/layer names from the sensitivity report",
    )
    int8.add_argument(
        "--target-agreement",
        type=float,
        metavar="F",
        help=f"--keep-fp32 auto stops when INT8 agrees with FP32 this often (default: {DEFAULT_TARGET})",
    )
    int8.add_argument(
        "--recalibrate", action="store_true", help="replace a calibration cache made for something else"
    )
    parser.add_argument(
        "--ops",
        choices=("function", "plugin", "inline"),
        default="function",
        help="custom ops as litevit nodes with ONNX function bodies (function, default: ONNX Runtime and "
        "TensorRT run it), nodes only for the TensorRT plugin library (plugin), or standard ops only "
        "(inline)",
    )
    parser.add_argument(
        "--opset",
        type=int,
        default=17,
        help="ONNX opset (default: 17, the newest TensorRT 8.5/8.6 read; 18 for TensorRT >= 10 only)",
    )
    parser.add_argument(
        "--trt",
        metavar="RELEASE",
        choices=TRT_RELEASES,
        help="write the graphs for this TensorRT release's ONNX parser, one of "
        f"{', '.join(TRT_RELEASES)}: operators it lacks are written in ones it has (8.5, JetPack 5.1: "
        "LayerNormalization and CastLike; 8.6: CastLike), and every graph is checked against it "
        "(default: graphs for TensorRT >= 10, with a note naming the releases that cannot parse them)",
    )
    parser.add_argument(
        "--seg-output",
        choices=("labels", "logits"),
        help="segmentation models: int32 label map at input size, resize + argmax in the graph (labels, "
        "default), or the head's native-resolution logits (logits)",
    )
    detection = parser.add_argument_group("detectors (Mask R-CNN, Cascade Mask R-CNN, Panoptic FPN)")
    detection.add_argument(
        "--det-masks",
        choices=("canvas", "roi"),
        help="detectors: instance masks pasted in the graph on the input canvas, bool (canvas, default), "
        "or 28x28 probabilities per detection, pasted on the host at the original size as mmdet does (roi)",
    )
    detection.add_argument(
        "--score-thr",
        type=float,
        metavar="T",
        help="RCNN score threshold written into the graph (default: the official config's)",
    )
    detection.add_argument(
        "--gate-score-thr",
        type=float,
        metavar="T",
        help="score threshold the parity gate runs at (default: the graph's with --weights, 0 for "
        "random weights, whose scores sit near 1/81)",
    )
    parser.add_argument("--out", metavar="DIR", help="artefact folder (default: ./litevit-artifacts/MODEL)")
    parser.add_argument("--no-check", action="store_true", help="skip the parity gate against PyTorch")
    parser.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime threads for the parity gate")


def _int8_options(args: argparse.Namespace) -> Int8Options:
    keep: str | list[str] | None = None
    if args.keep_fp32:
        keep = (
            "auto"
            if args.keep_fp32 == "auto"
            else [n.strip() for n in args.keep_fp32.split(",") if n.strip()]
        )

    def given(value: Any, default: Any) -> Any:
        return default if value is None else value

    return Int8Options(
        method=given(args.calib_method, "minmax"),
        percentile=given(args.percentile, DEFAULT_PERCENTILE),
        samples=given(args.calib_samples, DEFAULT_SAMPLES),
        holdout=given(args.holdout, DEFAULT_HOLDOUT),
        keep_fp32=keep,
        target_agreement=given(args.target_agreement, DEFAULT_TARGET),
        recalibrate=args.recalibrate,
    )


def refuse_unused_export_options(args: argparse.Namespace) -> None:
    """One sentence, before any work, for an option that this export would silently ignore."""
    int8_only = [
        option
        for option, value in (
            ("--calib", args.calib),
            ("--calib-samples", args.calib_samples),
            ("--holdout", args.holdout),
            ("--calib-method", args.calib_method),
            ("--percentile", args.percentile),
            ("--keep-fp32", args.keep_fp32),
            ("--target-agreement", args.target_agreement),
            ("--recalibrate", args.recalibrate or None),
        )
        if value is not None
    ]
    if int8_only and not args.int8:
        raise LitevitError(
            f"{', '.join(int8_only)} {'applies' if len(int8_only) == 1 else 'apply'} to the INT8 graph only: "
            f"add --int8 (with --calib DIR) or drop {'it' if len(int8_only) == 1 else 'them'}."
        )
    if args.percentile is not None and args.calib_method != "percentile":
        raise LitevitError(
            "--percentile applies to --calib-method percentile only: add that or drop --percentile."
        )
    if args.target_agreement is not None and args.keep_fp32 != "auto":
        raise LitevitError(
            "--target-agreement is what --keep-fp32 auto aims for: add --keep-fp32 auto or drop "
            "--target-agreement."
        )
    if args.threads is not None and args.no_check and not args.int8:
        raise LitevitError(
            "--threads sets ONNX Runtime's threads for the parity gate and INT8 calibration, and this export "
            "runs neither (--no-check, no --int8): drop --threads."
        )
    if args.use_ema and args.weights is None:
        raise LitevitError("--use-ema picks the EMA weights of a checkpoint: add --weights PATH or drop it.")
    if args.seg_output is not None:
        from litevit.models import get_model_cfg

        task = get_model_cfg(args.model).task
        if task != "segmentation":
            raise LitevitError(
                f"--seg-output applies to segmentation models; {args.model} is a {task} model: drop it."
            )
    detector_only = [
        flag
        for flag, value in (
            ("--det-masks", args.det_masks),
            ("--score-thr", args.score_thr),
            ("--gate-score-thr", args.gate_score_thr),
        )
        if value is not None
    ]
    if detector_only:
        from litevit.artifacts import DETECTION_TASKS
        from litevit.models import get_model_cfg

        task = get_model_cfg(args.model).task
        if task not in DETECTION_TASKS:
            verb, pronoun = ("applies", "it") if len(detector_only) == 1 else ("apply", "them")
            raise LitevitError(
                f"{', '.join(detector_only)} {verb} to detectors; {args.model} is a {task} model: "
                f"drop {pronoun}."
            )
    if args.gate_score_thr is not None and args.no_check:
        raise LitevitError(
            "--gate-score-thr is the parity gate's threshold, and --no-check skips the gate: drop one."
        )


def _cmd_export(args: argparse.Namespace) -> int:
    from litevit._deps import require

    for module in ("torch", "onnxscript", "onnxruntime"):
        require(module)
    refuse_unused_export_options(args)
    from litevit.export import ParityError, export_model
    from litevit.export.detection import DetectionOptions

    try:
        result = export_model(
            args.model,
            weights=args.weights,
            use_ema=args.use_ema,
            img_size=args.img_size,
            batch=args.batch,
            dynamic_batch=args.dynamic_batch,
            dynamic_hw=args.dynamic_hw,
            fp16=args.fp16,
            int8=args.int8,
            calib=args.calib,
            int8_options=_int8_options(args),
            ops=args.ops,
            opset=args.opset,
            trt=args.trt,
            out_dir=args.out,
            check=not args.no_check,
            seg_output=args.seg_output or "labels",
            detection=DetectionOptions(args.det_masks or "canvas", args.score_thr, args.gate_score_thr),
            threads=args.threads,
        )
    except ParityError as exc:
        print(f"litevit: parity gate FAILED: {exc}", file=sys.stderr)
        return 1
    for name, entry in result.manifest["files"].items():
        if name not in result.kept:
            size = entry["bytes"]
            shown = f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"
            print(f"wrote {result.out_dir / name} ({shown})")
    print(f"wrote {result.out_dir / 'manifest.json'}")
    for notice in result.notices:
        print(notice)
    from litevit._deps import has

    if has("tensorrt"):
        # TensorRT is here: build the requested engines now, as `litevit build` would.
        from litevit.runtime.trt_build import build_artifact

        for precision in [p for p, wanted in (("fp16", args.fp16), ("int8", args.int8)) if wanted]:
            if build_artifact(result.out_dir, precision).parity_status == "failed":
                return 1
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from litevit._deps import require

    for module in ("torch", "onnxruntime"):
        require(module)
    from litevit.export import ParityError, check_artifacts

    try:
        check_artifacts(args.artifact_dir, threads=args.threads)
    except ParityError as exc:
        print(f"litevit: parity gate FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"{args.artifact_dir}: files match their hashes; parity gate passed.")
    return 0


def _format_bench(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    where = env.get("gpu_name") if doc["device"].startswith("cuda") else env.get("cpu_model")
    header = ("batch", "measure", "mean ms", "p50", "p90", "p99", "FPS")
    rows = [header]
    for run in doc["runs"]:
        lat = run["latency_ms"]
        rows.append(
            (
                str(run["batch"]),
                str(run.get("measure", "")),
                f"{lat['mean']:.2f}",
                f"{lat['p50']:.2f}",
                f"{lat['p90']:.2f}",
                f"{lat['p99']:.2f}",
                f"{run['fps']:.1f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    table = "\n".join("  ".join(c.rjust(w) for c, w in strict_zip(r, widths)) for r in rows)
    scopes = sorted({run["timed_region"] for run in doc["runs"]})
    macs = (doc.get("complexity") or {}).get("macs")
    lines = [
        f"{doc['model']} | {doc['backend']} {doc['precision']} on {doc['device']} ({where}) | "
        f"protocol {doc['protocol']}" + (f" | {macs / 1e9:.3f} GMACs" if macs else ""),
        table,
        *(f"timed region: {scope}" for scope in scopes),
    ]
    return "\n".join(lines)


def _cmd_bench(args: argparse.Namespace) -> int:
    from litevit.runtime.bench import run_benchmark, write_bench_json

    if args.sweep is not None:
        return _cmd_bench_sweep(args)
    doc = run_benchmark(
        args.target,
        backend=args.backend,
        precision=args.precision,
        batches=args.batch or [1],
        warmup=args.warmup,
        iterations=args.iters,
        seconds=args.seconds,
        threads=args.threads,
        device=args.device,
        protocol=args.protocol,
        progress=True,
        allow_few_iterations=args.allow_few_iterations,
        log=lambda s: print(s, file=sys.stderr),
    )
    print(_format_bench(doc))
    json_path = args.json or _default_bench_json(doc)
    print(f"wrote {write_bench_json(doc, json_path)}")
    return 0


def _default_bench_json(doc: dict[str, Any], suffix: str = "") -> Path:
    """Where a bench document goes without --json:
    litevit-runs/MODEL.BACKEND.PRECISION.DEVICE[SUFFIX].json."""
    from litevit._io import ensure_writable_dir

    device = doc["device"].replace(":", "")
    folder = ensure_writable_dir(DEFAULT_RUNS_DIR)
    return folder / f"{doc['model']}.{doc['backend']}.{doc['precision']}.{device}{suffix}.json"


def _cmd_bench_sweep(args: argparse.Namespace) -> int:
    from litevit.runtime.bench import write_bench_json
    from litevit.runtime.sweep import format_sweep, parse_sweep, run_sweep

    sweep = parse_sweep(args.sweep)
    if args.protocol != "synthetic":
        raise LitevitError("--sweep times synthetic inputs of each point's shape: drop --protocol paper.")
    if sweep.axis == "batch" and args.batch:
        raise LitevitError("--sweep batch=... gives the batch sizes: drop --batch.")
    if sweep.axis == "size" and args.batch and len(args.batch) > 1:
        raise LitevitError("--sweep size holds the batch size fixed: give one --batch, or sweep batch.")
    doc = run_sweep(
        args.target,
        sweep,
        backend=args.backend,
        precision=args.precision,
        batch=args.batch[0] if args.batch else 1,
        warmup=args.warmup,
        iterations=args.iters,
        seconds=args.seconds,
        threads=args.threads,
        device=args.device,
        progress=True,
        allow_few_iterations=args.allow_few_iterations,
        log=lambda s: print(s, file=sys.stderr),
    )
    print(format_sweep(doc))
    json_path = args.json or _default_bench_json(doc, f".sweep-{sweep.axis}")
    print(f"wrote {write_bench_json(doc, json_path)}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from litevit.runtime.report import build_report

    for path in build_report(args.runs, args.out, baseline=args.baseline).values():
        print(f"wrote {path}")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from litevit.runtime.doctor import doctor_report

    text, works = doctor_report(args.engine)
    print(text)
    return 0 if works else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litevit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"litevit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser(
        "info",
        help="parameters and MACs of models next to the paper's figures",
        description="Print parameters, MACs and FLOPs of each model (default: all registered) at the "
        "paper's resolution, next to the published figures and the difference.",
    )
    info.add_argument("models", nargs="*", metavar="MODEL", help="model names (default: all)")
    info.add_argument(
        "--img-size", nargs=2, type=int, metavar=("H", "W"), help="count at this input size instead"
    )
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=_cmd_info)

    export = sub.add_parser(
        "export",
        help="export a model to ONNX (FP32, FP16) with a parity gate",
        description=EXPORT_DESCRIPTION,
    )
    _add_export_arguments(export)
    export.set_defaults(func=_cmd_export)

    check = sub.add_parser(
        "check",
        help="re-verify an artefact folder: file hashes and the parity gate",
        description="Verify every file listed in ARTIFACT_DIR/manifest.json against its SHA-256 and rerun "
        "the parity gate against PyTorch.",
    )
    check.add_argument("artifact_dir", metavar="ARTIFACT_DIR")
    check.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime threads")
    check.set_defaults(func=_cmd_check)

    bench = sub.add_parser(
        "bench",
        help="latency, FPS and FLOPs of a model or artefact on one backend",
        description="Benchmark a model name (exported first into ./litevit-artifacts/MODEL; needs torch), "
        "an artefact folder, or an .onnx/.engine file: warm-up, then per-iteration timing (perf_counter_ns "
        "on CPU; CUDA events on GPU, compute-only and with host<->device copies). Prints a summary; "
        "--json writes the litevit.bench/1 document that `litevit report` reads.",
    )
    bench.add_argument("target", metavar="MODEL|ARTIFACT")
    bench.add_argument("--backend", choices=("ort", "torch", "trt"), default="ort", help="default: ort")
    bench.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32", help="default: fp32")
    bench.add_argument("--batch", type=int, nargs="+", metavar="N", help="batch sizes (default: 1)")
    bench.add_argument("--warmup", type=int, default=10, metavar="N", help="untimed iterations (default: 10)")
    budget = bench.add_mutually_exclusive_group()
    budget.add_argument("--iters", type=int, metavar="N", help="timed iterations (default: 200)")
    budget.add_argument("--seconds", type=float, metavar="S", help="time for S seconds instead")
    bench.add_argument(
        "--allow-few-iterations",
        action="store_true",
        help="keep a run with fewer timed iterations than its p99 needs (100); refused otherwise",
    )
    bench.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: the runtime's)")
    bench.add_argument(
        "--device", metavar="DEV", help="cpu or cuda[:N] (default: cpu for ort/torch, cuda:0 for trt)"
    )
    bench.add_argument(
        "--protocol",
        choices=("synthetic", "paper", "test", "test-aug"),
        default="synthetic",
        help="synthetic (default): fixed input at the artefact's size; paper: segmentation as LVT measured "
        "its FPS: aspect-kept resize to short side 512, resize-back and argmax inside the timed region; "
        "test / test-aug: a segmentation artefact's published test protocol (sliding windows or whole "
        "image; test-aug adds multi-scale + flip), timed per image end to end and as the graph alone "
        "(--batch: windows per graph call)",
    )
    bench.add_argument(
        "--sweep",
        metavar="AXIS[=V,V,...]",
        help="cost curve along one axis: batch=1,2,4,8,16 (needs a --dynamic-batch graph) or "
        "size=256,512,... (one integer or HxW; needs --dynamic-hw; at --batch, default 1); a bare batch "
        "or size takes the defaults (size: 256...1024 for segmenters, 160...384 for classifiers). A model "
        "name is re-exported with the dynamic axis if needed. One JSON with every point's latency, "
        "throughput and MACs",
    )
    bench.add_argument(
        "--json",
        metavar="OUT",
        help="where to write the run's JSON (default: ./litevit-runs/MODEL.BACKEND.PRECISION.DEVICE.json, "
        "sweeps: ...DEVICE.sweep-AXIS.json)",
    )
    bench.set_defaults(func=_cmd_bench)

    report = sub.add_parser(
        "report",
        help="merge bench JSONs into report.md, report.csv and PNG plots",
        description="Merge litevit bench JSON runs (from several machines) into report.md, report.csv and "
        "PNG plots (plots need matplotlib: pip install 'litevit[report]').",
    )
    report.add_argument("runs", nargs="+", metavar="RUN.json")
    report.add_argument("--out", required=True, metavar="DIR")
    report.add_argument(
        "--baseline",
        metavar="RUN|BACKEND/DEVICE[/PRECISION]",
        help="speed-ups relative to this run (default: the slowest run of each model)",
    )
    report.set_defaults(func=_cmd_report)

    quant = sub.add_parser(
        "quant-report",
        help="INT8/FP16 accuracy against FP32 on your images, and per-layer sensitivity",
        description="Compare an artefact's INT8 and FP16 graphs with its FP32 graph on images from --data "
        "(top-1 agreement and logits cosine for classifiers; pixel agreement, mIoU proxy and score cosine "
        "for segmenters), then rank layers by how much leaving each in FP32 recovers. Runs on ONNX Runtime, "
        "no torch needed.",
    )
    configure_quant_report_parser(quant)
    quant.set_defaults(func=run_quant_report)

    build = sub.add_parser(
        "build",
        help="build a TensorRT engine from an artefact or .onnx (TensorRT 8.5 to 11)",
        description=BUILD_DESCRIPTION,
    )
    configure_build_parser(build)
    build.set_defaults(func=run_build)

    selftest = sub.add_parser(
        "selftest",
        help="on the target: build an engine in every precision and compare it with ONNX Runtime",
        description=SELFTEST_DESCRIPTION,
    )
    configure_selftest_parser(selftest)
    selftest.set_defaults(func=run_selftest)

    val = sub.add_parser(
        "val",
        help="top-1/top-5 or mIoU of an artefact on your labelled images, per backend and precision",
        description=VAL_DESCRIPTION,
    )
    configure_val_parser(val)
    val.set_defaults(func=run_val)

    plugins = sub.add_parser(
        "plugins",
        help="build, locate and check liblitevit_plugins.so (TensorRT plugins for CSA, RASA, GhostHead)",
        description=PLUGINS_DESCRIPTION,
    )
    configure_plugins_parser(plugins)
    plugins.set_defaults(func=run_plugins)

    serve = sub.add_parser(
        "serve",
        help="serve artefacts over HTTP (KServe v2 / Triton protocol) with dynamic batching",
        description=SERVE_DESCRIPTION,
    )
    configure_serve_parser(serve)
    serve.set_defaults(func=run_serve)

    triton = sub.add_parser(
        "triton-repo",
        help="write a Triton model repository (config.pbtxt + model.plan/model.onnx) from artefacts",
        description=TRITON_REPO_DESCRIPTION,
    )
    configure_triton_repo_parser(triton)
    triton.set_defaults(func=run_triton_repo)

    doctor = sub.add_parser(
        "doctor",
        help="what is installed, what works, what is missing",
        description="One screen: Python, torch, ONNX, ONNX Runtime, TensorRT, CUDA, GPU, Jetson, plugin "
        "library, and (--engine) whether an engine fits this TensorRT and GPU. Exit 0 when the embedded "
        "default (ONNX Runtime on CPU) works.",
    )
    doctor.add_argument("--engine", metavar="FILE", help="check this TensorRT engine against this machine")
    doctor.set_defaults(func=_cmd_doctor)
    return parser


DEFAULT_RUNS_DIR = "litevit-runs"
VAL_DESCRIPTION = (
    "Accuracy of an artefact on your labelled images, one row per backend x precision, next to the "
    "paper's figure: top-1/top-5 on an ImageFolder-style folder (DIR/<class>/*.jpg|png) for classifiers, "
    "mIoU and pixel accuracy on DIR/images + DIR/annotations (ADE20K layout) for segmenters. This is how "
    "you learn what FP16 or INT8 cost you."
)
EXPORT_DESCRIPTION = (
    "Export a litevit model to an artefact folder: MODEL.onnx (FP32; CSA, RASA and GhostHead as nodes of "
    "domain litevit), MODEL.fp16.onnx with --fp16, and manifest.json; then compare every output with "
    "PyTorch on the same inputs (parity gate) and exit 1 if a stated tolerance is exceeded."
)


def export_main(argv: Sequence[str] | None = None) -> int:
    """``litevit-export``: the same as ``litevit export``."""
    parser = argparse.ArgumentParser(prog="litevit-export", description=EXPORT_DESCRIPTION)
    _add_export_arguments(parser)
    args = parser.parse_args(argv)
    return _run(_cmd_export, args)


def _run(func: Any, args: argparse.Namespace) -> int:
    try:
        return int(func(args))
    except LitevitError as exc:
        print(f"litevit: error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return _run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
