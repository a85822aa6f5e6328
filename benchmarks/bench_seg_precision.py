"""FP16 and INT8 against FP32 for the full segmentation models (random weights), ONNX Runtime CPU.

    python benchmarks/bench_seg_precision.py [--models elsa_swin_tiny_upernet_ade ...]
                                             [--img-size H W] [--samples 32] [--holdout 8]

For each model, the full architecture at ``--img-size`` (default 256x256, to keep a 2-core run
within minutes; the graphs are the same at any size): export FP32 + FP16 + INT8 (dynamic batch,
class-score output, INT8 calibrated with minmax on ``--samples`` synthetic shape scenes from
``tests/fixtures/trained/shapes.py``, ``--holdout`` more held out), and print what the export
measured: FP16 vs PyTorch FP32 (parity gate: max abs / scale, cosine on the class scores), INT8
vs FP32 on the held-out scenes (score cosine mean and min, pixel agreement). Random weights: no
checkpoint can be downloaded here, so these are numerical-precision figures, not accuracy; the
accuracy cost (mIoU) is measured on the trained fixture by ``tests/calibration/test_val_seg_protocol.py``.
A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "trained"))

import shapes

from litevit.calibration.int8 import Int8Options
from litevit.export import export_model

DEFAULT_MODELS = ("elsa_swin_tiny_upernet_ade", "segvit_shrunk_vit_l_coco_stuff10k")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--img-size", nargs=2, type=int, default=(256, 256))
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--holdout", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        scenes = shapes.write_scenes(Path(tmp) / "scenes", range(5000, 5000 + args.samples + args.holdout))
        for name in args.models:
            result = export_model(
                name,
                img_size=tuple(args.img_size),
                dynamic_batch=True,
                seg_output="logits",
                fp16=True,
                int8=True,
                calib=scenes / "images",
                int8_options=Int8Options(samples=args.samples, holdout=args.holdout),
                out_dir=Path(tmp) / name,
                threads=args.threads,
                progress=False,
                log=lambda s: None,
            )
            parity = result.manifest["parity"]
            fp16 = next(e for e in parity.values() if e["precision"] == "fp16")["results"]
            int8 = next(e for e in parity.values() if e["precision"] == "int8")["results"][0]
            figures[name] = {
                "img_size": list(args.img_size),
                "fp16_vs_torch_fp32": [
                    {
                        "input": r["input_kind"],
                        "max_abs_over_scale": r["max_abs"] / r["scale"],
                        "cosine": r["cosine"],
                    }
                    for r in fp16
                ],
                "int8_vs_fp32_heldout": int8,
            }
            worst16 = min(r["cosine"] for r in fp16)
            print(
                f"{name} @{args.img_size[0]}x{args.img_size[1]}: FP16 cosine (min over inputs) "
                f"{worst16:.6f}, "
                f"max|d|/scale {max(r['max_abs'] / r['scale'] for r in fp16):.2e}; INT8 vs FP32 on "
                f"{args.holdout} held-out scenes: {json.dumps(int8)}",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
