"""INT8 (Q/DQ) against FP32 on ONNX Runtime CPU: accuracy on held-out images and latency.

    python benchmarks/bench_int8.py [--models fixture lvt mobile_former_294m] [--method minmax]
                                    [--no-keep-auto] [--threads N] [--json OUT]

For each model: export FP32 + INT8 (dynamic batch, ``--ops function``, calibration (minmax unless
``--method`` says otherwise) on 256
of scikit-learn's digits from the trained fixture's training split, 64 more held out), then print

* INT8 vs FP32 on the held-out images: top-1 agreement, logits cosine (mean, min);
* ``fixture`` only (the reduced LVT trained on the digits): top-1 against the labels of all 360 test
  digits, FP32 and INT8;
* ONNX Runtime CPU median latency, batch 1 and 8 (30 timed runs after 3 warm-ups): FP32, the
  TensorRT Q/DQ graph and the ONNX Runtime INT8 graph (all layers, and as written);
* ``--keep-fp32 auto`` with target agreement 1.0 (unless ``--no-keep-auto``): which groups it keeps in
  FP32 and what that buys.

``lvt`` and ``mobile_former_294m`` have random weights (no checkpoints can be downloaded here), so
their agreement on near-flat logits is a harsh test; cosine is the figure to read. A script that
prints figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from litevit.calibration.diagnose import median_latency_ms, ort_session
from litevit.calibration.images import Preprocessing, list_images
from litevit.calibration.int8 import Int8Options
from litevit.calibration.qdq import fold_weight_transposes, quant_sites, quantize, quantize_for_onnxruntime
from litevit.calibration.ranges import METHODS
from litevit.export import export_model
from litevit.runtime.environment import collect_environment

REPO = Path(__file__).resolve().parents[1]
TRAINED = REPO / "tests" / "fixtures" / "trained"
sys.path.insert(0, str(TRAINED))
import digits  # noqa: E402  (the fixture's torch-free image writer)

BATCHES = (1, 8)


def _export_args(name: str) -> dict[str, Any]:
    if name != "fixture":
        return {"model": name}
    facts = json.loads((TRAINED / "lvt_digits.json").read_text())
    return {
        "model": facts["model"],
        "weights": TRAINED / "lvt_digits.pth",
        "img_size": facts["img_size"],
        "model_kwargs": facts["model_kwargs"],
    }


def _fixture_top1(folder: Path, manifest: dict[str, Any], labelled: Path, threads: int) -> dict[str, float]:
    prep = Preprocessing.from_manifest(manifest)
    paths = list_images(labelled)
    images = np.stack([prep.load(p) for p in paths])
    labels = np.array([int(p.parent.name) for p in paths])
    top1 = {}
    for precision, name in (("fp32", "lvt.onnx"), ("int8", "lvt.int8.onnx")):
        model = onnx.load(folder / name)
        session = ort_session(model, threads)
        logits = np.concatenate(
            [session.run(None, {"input": images[i : i + 8]})[0] for i in range(0, len(images), 8)]
        )
        top1[precision] = float((logits.argmax(1) == labels).mean())
    return top1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["fixture", "lvt", "mobile_former_294m"])
    parser.add_argument("--method", choices=METHODS, default="minmax", help="calibration method")
    parser.add_argument("--no-keep-auto", action="store_true", help="skip the --keep-fp32 auto search")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()
    cpu = collect_environment(args.threads)["cpu_model"]
    results: dict[str, Any] = {"cpu": cpu, "threads": args.threads, "method": args.method, "models": {}}
    print(f"# INT8 ({args.method}) vs FP32 on ONNX Runtime CPU, {cpu}, {args.threads} threads, one run")
    with tempfile.TemporaryDirectory() as tmp:
        calib = digits.write_digit_images(Path(tmp) / "calib", "train", layout="flat", limit=320)
        labelled = digits.write_digit_images(Path(tmp) / "test", "test", layout="classes")
        for name in args.models:
            exported = _export_args(name)
            folder = Path(tmp) / name
            options = Int8Options(
                method=args.method,
                samples=256,
                holdout=64,
                keep_fp32=None if args.no_keep_auto else "auto",
                target_agreement=1.0,
            )
            result = export_model(
                **exported,
                dynamic_batch=True,
                int8=True,
                calib=calib,
                int8_options=options,
                out_dir=folder,
                threads=args.threads,
                progress=False,
                log=lambda line: None,
                check=False,
            )
            model = exported["model"]
            report = json.loads((folder / f"{model}.int8.report.json").read_text())
            # The written graph keeps the auto-chosen groups in FP32; time the all-INT8 graph too.
            entry: dict[str, Any] = {"report": report, "latency_ms": {}}
            fp32 = onnx.load(folder / f"{model}.onnx")
            int8_written = onnx.load(folder / f"{model}.int8.onnx")
            ort_written = onnx.load(folder / f"{model}.int8.ort.onnx")
            amax = json.loads((folder / f"{model}.int8.calib.json").read_text())["amax"]
            folded = fold_weight_transposes(fp32)
            sites = quant_sites(folded)
            int8_all = quantize(folded, sites, amax)
            ort_all = quantize_for_onnxruntime(folded, sites, amax)
            h, w = result.manifest["img_size"]
            for batch in BATCHES:
                x = np.random.default_rng(0).normal(0, 1, (batch, 3, h, w)).astype(np.float32)
                entry["latency_ms"][batch] = {
                    "fp32": median_latency_ms(fp32, x, args.threads, runs=30),
                    "int8": median_latency_ms(int8_all, x, args.threads, runs=30),
                    "int8_keep_fp32_auto": median_latency_ms(int8_written, x, args.threads, runs=30),
                    "int8_ort": median_latency_ms(ort_all, x, args.threads, runs=30),
                    "int8_ort_keep_fp32_auto": median_latency_ms(ort_written, x, args.threads, runs=30),
                }
            if name == "fixture":
                entry["test_top1"] = _fixture_top1(folder, result.manifest, labelled, args.threads)
            results["models"][name] = entry
            _print(name, entry)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def _print(name: str, entry: dict[str, Any]) -> None:
    report = entry["report"]
    base = report["int8_all_layers"]
    print(f"\n## {name}  (held-out: {report['held_out']})")
    print(
        f"INT8 (all layers) vs FP32: top-1 agreement {100 * base['agreement']:.2f} %, cosine mean "
        f"{base['cosine_mean']:.5f} (min {base['cosine_min']:.5f})"
    )
    ort = report["int8_onnxruntime"]
    print(f"ONNX Runtime INT8 graph (as written) vs FP32: cosine mean {ort['cosine_mean']:.5f}")
    if "fp16" in report:
        print(f"FP16 vs FP32: cosine {report['fp16']['cosine_mean']:.6f}")
    if "test_top1" in entry:
        top1 = entry["test_top1"]
        print(
            f"test top-1 on 360 labelled digits: FP32 {100 * top1['fp32']:.2f} %, "
            f"INT8 {100 * top1['int8']:.2f} %"
        )
    auto = report.get("keep_fp32_auto")
    if auto is not None:
        final = auto.get("final") or base
        print(
            f"--keep-fp32 auto (target 1.0): kept {len(auto['kept'])} group(s) {auto['kept'][:4]}"
            f"{'...' if len(auto['kept']) > 4 else ''}; agreement {100 * final['agreement']:.2f} %, "
            f"cosine {final['cosine_mean']:.5f}; target met: {auto['met']}"
        )
    print(
        "| batch | FP32 ms | TensorRT Q/DQ graph ms | ORT INT8 graph ms | ORT INT8 speed-up "
        "| keep-auto: TensorRT graph / ORT graph ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for batch, times in entry["latency_ms"].items():
        print(
            f"| {batch} | {times['fp32']:.1f} | {times['int8']:.1f} | {times['int8_ort']:.1f} "
            f"| {times['fp32'] / times['int8_ort']:.2f}x | {times['int8_keep_fp32_auto']:.1f} / "
            f"{times['int8_ort_keep_fp32_auto']:.1f} |"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
