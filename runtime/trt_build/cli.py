"""``litevit build``: the command line over :func:`build_artifact` and :func:`build_engine`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import onnx

from litevit._compat import remove_suffix
from litevit._deps import require
from litevit._io import sha256_file
from litevit.errors import LitevitError
from litevit.runtime.trt_build.build import (
    INT8_MODES,
    PRECISIONS,
    artifact_manifest_for,
    build_artifact,
    build_engine,
)
from litevit.runtime.trt_build.calibration import implicit_calibration_batches
from litevit.runtime.trt_build.plugins import PLUGINS_ENV, PYTHON_PLUGINS
from litevit.runtime.trt_build.profiles import (
    DEFAULT_MAX_BATCH,
    graph_inputs,
    optimisation_profiles,
    parse_shapes,
)


BUILD_DESCRIPTION = (
    "Build a TensorRT engine on this machine from an artefact folder (the graph this TensorRT version "
    "needs for --precision is picked from its manifest) or an .onnx file, and write ENGINE.json next to "
    "it: TensorRT, GPU, plugins, precision, typing, profiles, source, custom-op paths, build time, and "
    "parity against ONNX Runtime. Exit 1 when parity fails."
)


def configure_build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="ONNX|ARTIFACT", help="an artefact folder or an .onnx file")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="default: fp32")
    parser.add_argument(
        "--int8-mode",
        choices=INT8_MODES,
        default="qdq",
        help="qdq (default): the Q/DQ graph of litevit's calibration; implicit: TensorRT's entropy "
        "calibrator on --calib images (TensorRT < 11)",
    )
    parser.add_argument("--calib", metavar="DIR", help="calibration images for --int8-mode implicit")
    parser.add_argument(
        "--calib-cache",
        metavar="FILE",
        help="implicit INT8 calibration cache (default: next to the engine); reused only when litevit "
        "wrote it for the same images, preprocessing and graph",
    )
    parser.add_argument(
        "--plugins",
        metavar="LIB",
        help=f"TensorRT plugin library, or '{PYTHON_PLUGINS}' for litevit's Python plugins (TensorRT >= 10; "
        f"the engine then runs only from Python with litevit) (default: ${PLUGINS_ENV})",
    )
    parser.add_argument(
        "--shapes",
        nargs="+",
        metavar="[NAME=]MIN:OPT:MAX",
        help="optimisation profile per input, dims as 1x3x224x224 (default: from the manifest's dynamic "
        f"axes: batch 1..max(batch, {DEFAULT_MAX_BATCH}), exported height and width)",
    )
    parser.add_argument(
        "--workspace", type=int, metavar="MB", help="builder workspace limit (default: TensorRT's)"
    )
    parser.add_argument("--timing-cache", metavar="FILE", help="read and update this timing cache")
    parser.add_argument("--dla", type=int, metavar="N", help="build for DLA core N (Jetson), GPU fallback on")
    parser.add_argument(
        "--out", metavar="ENGINE", help="engine path for an .onnx target (default: next to it)"
    )
    typing_group = parser.add_mutually_exclusive_group()
    typing_group.add_argument(
        "--strongly-typed",
        dest="strongly_typed",
        action="store_const",
        const=True,
        help="strongly typed network (TensorRT 9+; always on 11)",
    )
    typing_group.add_argument(
        "--weakly-typed",
        dest="strongly_typed",
        action="store_const",
        const=False,
        help="precision by builder flags (TensorRT < 11; the default there)",
    )


def _engine_path_for(onnx_path: Path, precision: str) -> Path:
    stem = remove_suffix(onnx_path.name, ".onnx")
    for suffix in (".fp16", ".int8"):
        stem = remove_suffix(stem, suffix)
    return onnx_path.with_name(f"{stem}.{precision}.engine")


def run_build(args: argparse.Namespace) -> int:
    require("tensorrt")
    implicit = args.precision == "int8" and args.int8_mode == "implicit"
    if (args.calib is not None or args.calib_cache is not None) and not implicit:
        raise LitevitError(
            "--calib and --calib-cache apply to --precision int8 --int8-mode implicit; the Q/DQ graph was "
            "calibrated when it was written."
        )
    target = Path(args.target)
    profiles = parse_shapes(args.shapes or [])
    common: dict[str, Any] = {
        "precision": args.precision,
        "int8_mode": args.int8_mode,
        "strongly_typed": args.strongly_typed,
        "plugin_library": args.plugins,
        "profiles": profiles,
        "workspace_mb": args.workspace,
        "timing_cache": args.timing_cache,
        "dla_core": args.dla,
        "calibration_cache": args.calib_cache,
    }
    if target.is_dir():
        if args.out is not None:
            raise LitevitError("--out applies to an .onnx target; an artefact's engine goes into its folder.")
        result = build_artifact(target, calib=args.calib, **common)
    elif target.suffix == ".onnx" and target.is_file():
        batches = key = None
        if implicit and args.calib is not None:
            manifest = artifact_manifest_for(target)
            if manifest is None:
                raise LitevitError(
                    "implicit INT8 from --calib images needs the model's preprocessing: pass the artefact "
                    "folder instead of a loose .onnx file."
                )
            model = onnx.load(str(target), load_external_data=False)
            shape = optimisation_profiles(model, manifest, profiles)[graph_inputs(model)[0][0]].opt
            batches, key = implicit_calibration_batches(manifest, args.calib, shape, sha256_file(target))
        out = Path(args.out) if args.out is not None else _engine_path_for(target, args.precision)
        result = build_engine(target, out, calibrator_batches=batches, calibration_key=key, **common)
    else:
        raise LitevitError(f"{str(target)!r} is not an artefact folder or an .onnx file.")
    print(f"wrote {result.engine} and {result.sidecar_path.name}")
    return 1 if result.parity_status == "failed" else 0
