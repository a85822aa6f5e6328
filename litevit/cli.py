"""The ``litevit`` command. Each subcommand is a thin shell over a function of the Python API.

Errors a user can cause (``LitevitError``) print as one line, ``litevit: error: ...``, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from litevit import __version__
from litevit.errors import LitevitError


def _pct(ours: float, paper: float | None) -> str:
    if not paper:
        return "-"
    return f"{100.0 * (ours - paper) / paper:+.1f}%"


def info_rows(names: Sequence[str], img_size: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Parameters and MACs of each named model (built on the meta device: no weights, no arithmetic)."""
    import torch

    from litevit.flops import count_model
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
        "  ".join(
            c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
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
    print(f"\n{CONVENTION}. Paper figures: see each model's cfg.paper (litevit/models/*.py).")
    models_by_note: dict[str, list[str]] = {}
    for r in rows:
        if r["note"]:
            models_by_note.setdefault(r["note"], []).append(r["model"])
    if models_by_note:
        print("Notes:")
        for note, models in models_by_note.items():
            print(f"- {', '.join(models)}: {note}")
    return 0


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LitevitError as exc:
        print(f"litevit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
