"""``litevit val`` on the command line: arguments, the printed table, ``--json``."""

from __future__ import annotations

import argparse

from litevit._io import write_json
from litevit.calibration.val.common import DEFAULT_DYNAMIC_BATCH, comma_list, format_val
from litevit.calibration.val.segmentation import SEG_IMAGES, SEG_MASKS, SEG_PROTOCOLS
from litevit.runtime.runners import BACKENDS, PRECISIONS


def configure_val_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``litevit val ARTIFACT --data DIR ...``."""
    parser.add_argument("artifact", help="artefact folder written by litevit-export (holds manifest.json)")
    parser.add_argument(
        "--data",
        required=True,
        help=f"labelled images: DIR/<class>/*.jpg|png for classifiers; DIR/{SEG_IMAGES}/X.jpg + "
        f"DIR/{SEG_MASKS}/X.png (or X_labelTrainIds.png) for segmenters; COCO instances / panoptic "
        f"layouts for detectors (DIR/annotations/instances_<split>.json or panoptic_<split>.json, "
        f"DIR/images/)",
    )
    parser.add_argument(
        "--backend", default="ort", help=f"comma-separated, of {','.join(BACKENDS)} (default ort)"
    )
    parser.add_argument(
        "--precision", default="fp32", help=f"comma-separated, of {','.join(PRECISIONS)} (default fp32)"
    )
    parser.add_argument("--limit", type=int, help="score N images spread evenly over the folder")
    parser.add_argument(
        "--batch",
        type=int,
        help=f"batch for a dynamic-batch artefact (default {DEFAULT_DYNAMIC_BATCH}); fixed ones keep theirs",
    )
    parser.add_argument("--threads", type=int, help="CPU threads per runner (ONNX Runtime, torch)")
    parser.add_argument(
        "--protocol",
        choices=SEG_PROTOCOLS,
        default="resize",
        help="segmentation: 'test' runs the model's published test protocol (keep-ratio resize, whole "
        "image or sliding windows; needs a --seg-output logits artefact) and scores at each image's "
        "original size, as mmseg's test tool; 'resize' (default) squeezes each image to the graph's size",
    )
    parser.add_argument(
        "--aug",
        action="store_true",
        help="with --protocol test: multi-scale (0.5-1.75) + flip, as --aug-test",
    )
    zero = parser.add_mutually_exclusive_group()
    zero.add_argument(
        "--reduce-zero-label",
        dest="reduce_zero_label",
        action="store_const",
        const=True,
        help="label PNG value 0 is ignored and k is class k-1 (default: the data set's mmseg rule)",
    )
    zero.add_argument(
        "--no-reduce-zero-label",
        dest="reduce_zero_label",
        action="store_const",
        const=False,
        help="label PNG value k is class k (255 ignored)",
    )
    parser.add_argument(
        "--split", help="detectors: the COCO split to score when DIR/annotations holds several"
    )
    parser.add_argument("--json", metavar="OUT", help="also write the result as JSON to OUT")


def run_val(args: argparse.Namespace) -> int:
    """``litevit val``: print the table, write ``--json``; exit 0."""
    from litevit.calibration.val import validate

    result = validate(
        args.artifact,
        args.data,
        backends=comma_list(args.backend, BACKENDS, "backend"),
        precisions=comma_list(args.precision, PRECISIONS, "precision"),
        batch=args.batch,
        limit=args.limit,
        threads=args.threads,
        progress=True,
        protocol=args.protocol,
        aug=args.aug,
        reduce_zero_label=args.reduce_zero_label,
        split=args.split,
    )
    print(format_val(result))
    if args.json:
        write_json(args.json, result.to_dict())
        print(f"wrote {args.json}")
    return 0
