"""Which layers of a detector lose accuracy in FP16: the parity gate and val on FP16 graphs converted
with and without each float32 rule (export/fp16.py), on ONNX Runtime CPU.

    python benchmarks/fp16_detection.py ARTEFACT [ARTEFACT ...] [--data COCO_DIR] [--threads N]

For each artefact folder (exported by litevit-export; its FP32 graph is read), FP16 graphs are
converted in memory with:

* ``all rules``: litevit's default (Softmax, normalisations and reductions in float32; rule 4, box
  coordinates, in float32);
* ``no rule 4``: box coordinates (decoding, class offsets, RoI level mapping, RoIAlign RoIs) in
  float16;
* ``no softmax/norm keeps``: Softmax, LayerNormalization and the reductions in float16 (rule 4 kept);

and each is run through the detector parity gate (``litevit.export.detection``, FP16 tolerances,
at the manifest's gate score threshold) against PyTorch FP32; with ``--data`` (the COCO layout the
artefact's ``litevit val`` takes), also scored (box/mask AP or PQ) next to the FP32 graph. A
script that prints figures, not a test; ONNX Runtime's CPU float16 kernels stand in for a GPU's.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import onnx

from litevit._io import write_bytes
from litevit.artifacts import read_manifest
from litevit.calibration.val import validate
from litevit.export import fp16 as fp16_module
from litevit.export.api import _build_module
from litevit.export.detection import as_detector, run_detection_parity
from litevit.export.fp16 import DEFAULT_KEEP_FP32, convert_to_fp16
from litevit.export.onnx_export import INPUT_NAME, GraphSpec, for_onnxruntime

SOFTMAX_AND_NORMS = {"Softmax", "LayerNormalization", "ReduceMean", "ReduceSumSquare", "ReduceL2"}


@contextlib.contextmanager
def without_rule_4() -> Iterator[None]:
    saved = fp16_module._COORDINATE_INPUTS
    fp16_module._COORDINATE_INPUTS = {}
    try:
        yield
    finally:
        fp16_module._COORDINATE_INPUTS = saved


def variants(fp32: onnx.ModelProto) -> dict[str, onnx.ModelProto]:
    out = {"all rules": convert_to_fp16(fp32)}
    with without_rule_4():
        out["no rule 4"] = convert_to_fp16(fp32)
    out["no softmax/norm keeps"] = convert_to_fp16(fp32, DEFAULT_KEEP_FP32 - SOFTMAX_AND_NORMS)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, help="COCO layout to score each variant on (litevit val)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--export-size-only", action="store_true", help="gate at the export's batch and size only"
    )
    args = parser.parse_args()
    for folder in args.artifacts:
        manifest = read_manifest(folder)
        fp32_path = folder / f"{manifest['model']}.onnx"
        fp32 = for_onnxruntime(onnx.load(fp32_path))
        module = as_detector(
            _build_module(
                manifest["model"],
                manifest["weights"]["path"] if manifest.get("weights") else None,
                tuple(manifest["img_size"]),
                False,
                "logits",
                manifest.get("model_kwargs") or {},
                manifest["detection"],
            )
        )
        axes = {int(a) for a in manifest["dynamic_axes"][INPUT_NAME]}
        dynamic = not args.export_size_only
        spec = GraphSpec(
            tuple(manifest["img_size"]),
            manifest["batch"],
            dynamic and 0 in axes,
            dynamic and 2 in axes,
            17,
            "function",
        )
        threshold = manifest["detection"]["gate_score_thr"]
        print(f"== {folder} ({manifest['model']}, gate score threshold {threshold:g})")
        for name, graph in variants(fp32).items():
            gate = run_detection_parity(module, graph, spec, "fp16", threshold, args.threads)
            worst: dict[str, float] = {}
            for check in gate.checks:
                pick = min if check.at_least else max
                worst[check.check] = pick(worst.get(check.check, check.value), check.value)
            figures = ", ".join(f"{key} {value:.4g}" for key, value in worst.items())
            print(f"{name:24s} gate {'passed' if gate.passed else 'FAILED'}: worst {figures}")
            if args.data is not None:
                with tempfile.TemporaryDirectory() as tmp:
                    copy = Path(tmp) / folder.name
                    shutil.copytree(folder, copy)
                    write_bytes(copy / f"{manifest['model']}.fp16.onnx", graph.SerializeToString())
                    manifest_text = (copy / "manifest.json").read_text()
                    if f"{manifest['model']}.fp16.onnx" not in manifest_text:
                        print("   (val needs an artefact exported with --fp16)")
                        continue
                    # The manifest's hash of the FP16 file is not checked by val.
                    result = validate(
                        copy, args.data, precisions=("fp32", "fp16"), threads=args.threads, progress=False
                    )
                    rows = {row.precision: row for row in result.rows}
                    print(
                        f"   val {result.metric}: fp32 {rows['fp32'].scores[result.metric]:.2f}, fp16 "
                        f"{rows['fp16'].scores[result.metric]:.2f} ({rows['fp16'].delta:+.2f})"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
