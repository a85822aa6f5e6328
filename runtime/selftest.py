"""``litevit selftest``: on the target, build an engine in every precision and compare each with
ONNX Runtime.

The model is an artefact folder given on the command line or, when torch is installed, litevit's
smoke LVT (a few blocks, 64x64) exported with FP16 and Q/DQ INT8 graphs, calibrated on synthetic
PNG images written for the purpose: the self-test checks that this TensorRT, GPU and plugin
library build engines that compute what the ONNX graph computes, not how accurate a model is.

Builds: fp32, fp16 and Q/DQ int8 in the typing this TensorRT defaults to, plus implicit INT8
(TensorRT's entropy calibrator) where the version still has calibrators. The table says per
engine its typing, the path each custom op took, the build time and max abs difference / cosine
against ONNX Runtime; the exit status is 1 when any engine failed or could not be compared.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litevit._deps import has, require
from litevit._compat import strict_zip
from litevit import synthetic
from litevit.calibration.int8 import MIN_CALIBRATION_IMAGES, Int8Options
from litevit.errors import LitevitError
from litevit.runtime.trt_build import build_artifact, installed_features

SELFTEST_MODEL = "lvt"
SELFTEST_SIZE = (64, 64)
# Enough for INT8 calibration plus a few held out for its report.
SYNTHETIC_IMAGES = MIN_CALIBRATION_IMAGES + 16


@dataclass
class SelftestRow:
    """One engine of the self-test."""

    precision: str
    typing: str
    custom_ops: str
    build_seconds: float | None
    max_abs: float | None
    cosine: float | None
    passed: bool
    note: str


def write_synthetic_images(folder: Path, count: int = SYNTHETIC_IMAGES) -> Path:
    """``count`` smooth, deterministic RGB pictures as PNGs (a little larger than the model's input,
    so the resize and crop of the preprocessing run)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    height, width = SELFTEST_SIZE[0] + 8, SELFTEST_SIZE[1] + 16
    for index in range(count):
        pixels = synthetic.smooth_pictures((1, 3, height, width), seed=index)[0].transpose(1, 2, 0)
        Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(folder / f"synthetic_{index:03d}.png")
    return folder


def _export_smoke_model(folder: Path, images: Path, log: Any) -> Path:
    from litevit.export import export_model
    from litevit.models import get_model_cfg

    export_model(
        SELFTEST_MODEL,
        model_kwargs=get_model_cfg(SELFTEST_MODEL).smoke_arch,
        img_size=SELFTEST_SIZE,
        fp16=True,
        int8=True,
        calib=images,
        int8_options=Int8Options(holdout=16),
        out_dir=folder,
        progress=False,
        log=log,
    )
    return folder


def _row(label: str, sidecar: dict[str, Any]) -> SelftestRow:
    parity = sidecar["parity"]
    results = parity.get("results", [])
    float_results = [r for r in results if "max_abs" in r]
    max_abs = max((r["max_abs"] for r in float_results), default=None)
    cosine = min((r["cosine"] for r in float_results), default=None)
    reasons = [reason for r in results for reason in r.get("reasons", [])]
    note = {
        "passed": "",
        "failed": "; ".join(reasons),
        "skipped": f"not compared: {parity.get('reason')}",
        "not run": f"not compared: {parity.get('reason')}",
    }[parity["status"]]
    ops = ", ".join(
        f"{route['op_type']} {route['route']}" if route["route"] != "inline" else "inline export"
        for route in sidecar["custom_ops"]
    )
    return SelftestRow(
        label,
        sidecar["typing"],
        ops or "none",
        sidecar["build_seconds"],
        max_abs,
        cosine,
        parity["status"] == "passed",
        note,
    )


def run_selftests(
    artifact: Path,
    out_dir: Path,
    calib: Path,
    *,
    plugin_library: str | None = None,
    workspace_mb: int | None = None,
    log: Any = print,
) -> list[SelftestRow]:
    """Build and compare every precision this TensorRT offers for ``artifact``; a build that
    fails becomes a failed row with its one-sentence reason."""
    cases = [("fp32", "qdq", "fp32"), ("fp16", "qdq", "fp16"), ("int8", "qdq", "int8 Q/DQ")]
    if installed_features().int8_calibrators:
        cases.append(("int8", "implicit", "int8 implicit"))
    rows = []
    for precision, int8_mode, label in cases:
        log(f"--- {label}")
        try:
            build = build_artifact(
                artifact,
                precision,
                int8_mode=int8_mode,
                plugin_library=plugin_library,
                workspace_mb=workspace_mb,
                calib=calib,
                out_dir=out_dir / label.replace(" ", "-").replace("/", ""),
                log=log,
            )
        except LitevitError as exc:
            rows.append(SelftestRow(label, "-", "-", None, None, None, False, str(exc)))
            continue
        rows.append(_row(label, build.sidecar))
    return rows


def format_rows(rows: list[SelftestRow]) -> str:
    header = ("precision", "typing", "custom ops", "build s", "max abs", "cosine", "result")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.precision,
                row.typing,
                row.custom_ops,
                f"{row.build_seconds:.1f}" if row.build_seconds is not None else "-",
                f"{row.max_abs:.3g}" if row.max_abs is not None else "-",
                f"{row.cosine:.6f}" if row.cosine is not None else "-",
                "pass" if row.passed else "FAIL" + (f": {row.note}" if row.note else ""),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    text = [
        "  ".join(cell.ljust(width) for cell, width in strict_zip(line[:-1], widths)) + "  " + line[-1]
        for line in lines
    ]
    text.insert(1, "  ".join("-" * width for width in widths) + "  " + "-" * len(header[-1]))
    return "\n".join(text)


DESCRIPTION = (
    "Check this machine's TensorRT: build an engine in every precision (fp32, fp16, int8 Q/DQ, and implicit "
    "int8 where TensorRT still calibrates) from ARTIFACT or, when torch is installed, from litevit's smoke "
    "LVT, compare each with ONNX Runtime, print a table and exit 1 if any engine fails."
)


def configure_selftest_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "artifact",
        nargs="?",
        metavar="ARTIFACT",
        help="artefact folder with fp32, fp16 and int8 graphs (default: export the smoke LVT; needs torch)",
    )
    parser.add_argument(
        "--plugins", metavar="LIB", help="TensorRT plugin library (default: $LITEVIT_PLUGINS)"
    )
    parser.add_argument(
        "--build-plugins",
        action="store_true",
        help="first build liblitevit_plugins.so for this machine (as `litevit plugins build` does) and "
        "build every engine with it",
    )
    parser.add_argument("--workspace", type=int, metavar="MB", help="builder workspace limit")
    parser.add_argument(
        "--calib",
        metavar="DIR",
        help="images for implicit INT8 (default: synthetic PNGs written for the test)",
    )
    parser.add_argument("--keep", metavar="DIR", help="keep the exported model and engines in DIR")


def run_selftest(args: argparse.Namespace) -> int:
    require("tensorrt")
    plugins = args.plugins
    if args.build_plugins:
        if plugins is not None:
            raise LitevitError("--build-plugins builds the plugin library itself: leave out --plugins.")
        from litevit.plugins.build import build_library

        plugins = str(build_library())
    if args.artifact is None and not has("torch"):
        raise LitevitError(
            "litevit selftest needs an artefact folder (litevit selftest ARTIFACT) or torch to export its "
            "smoke model: pip install 'litevit[author]'."
        )
    with tempfile.TemporaryDirectory(prefix="litevit-selftest-") as scratch:
        work = Path(args.keep) if args.keep is not None else Path(scratch)
        if args.calib is not None:
            images = Path(args.calib)
        else:
            images = write_synthetic_images(work / "calibration")
            print(
                f"wrote {SYNTHETIC_IMAGES} synthetic calibration images to {images}: they are not photos; "
                f"the self-test checks engines against ONNX Runtime, not accuracy"
            )
        if args.artifact is not None:
            artifact = Path(args.artifact)
        else:
            size = "x".join(map(str, SELFTEST_SIZE))
            print(f"exporting the smoke {SELFTEST_MODEL} ({size}) with fp16 and int8 graphs")
            artifact = _export_smoke_model(work / SELFTEST_MODEL, images, log=lambda line: None)
        rows = run_selftests(
            artifact, work / "engines", images, plugin_library=plugins, workspace_mb=args.workspace
        )
    print(format_rows(rows))
    return 0 if all(row.passed for row in rows) else 1


__all__ = ["configure_selftest_parser", "run_selftest", "run_selftests", "write_synthetic_images"]
