"""The parity gate: PyTorch and ONNX Runtime on the same inputs, every output compared.

Tolerances (stated, and written into the manifest):

* FP32 graph vs PyTorch FP32: max |difference| <= 1e-4 x scale, where scale = max |PyTorch output|
  (at least 1e-3, so an all-zero output does not demand exact zeros);
* FP16 graph vs PyTorch FP32: max |difference| <= 2e-2 x scale and cosine similarity >= 0.999;
* segmentation label maps (``--seg-output labels``): >= 99.9 % of pixels agree (FP32), >= 99 %
  (FP16); the class scores the ArgMax reads are compared with the tolerances above.

Two inputs per shape: fixed-seed N(0, 1) noise and a smooth, image-like picture normalised with
the model's own mean/std. Dynamic graphs are also run at a second batch size and resolution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx
import torch

from litevit import synthetic
from litevit.errors import LitevitError
from litevit.onnx_graphs import SCORES_OUTPUT, with_scores_output
from litevit.export.onnx_export import SegmentationLabels
from litevit.models import model_cfg


@dataclass(frozen=True)
class Tolerance:
    max_abs_over_scale: float
    min_label_agreement: float
    min_cosine: float | None = None


TOLERANCES = {
    "fp32": Tolerance(max_abs_over_scale=1e-4, min_label_agreement=0.999),
    "fp16": Tolerance(max_abs_over_scale=2e-2, min_label_agreement=0.99, min_cosine=0.999),
}


class ParityError(LitevitError):
    """An exported graph disagrees with PyTorch beyond the stated tolerance."""


@dataclass
class OutputComparison:
    output: str
    input_kind: str
    input_shape: list[int]
    max_abs: float
    scale: float
    cosine: float
    top1_agreement: float | None = None
    label_agreement: float | None = None
    passed: bool = True
    reasons: list[str] = field(default_factory=list)


def image_like(shape: tuple[int, ...], cfg: Any, seed: int = 0) -> torch.Tensor:
    """A smooth picture (gradients, low-frequency waves, a blob) in the model's input units."""
    return torch.from_numpy(synthetic.image_like(shape, cfg.mean, cfg.std, cfg.pixel_scale, seed))


def parity_inputs(shape: tuple[int, ...], cfg: Any) -> list[tuple[str, torch.Tensor]]:
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    return [("random", noise), ("image", image_like(shape, cfg))]


def compare(
    name: str,
    kind: str,
    shape: tuple[int, ...],
    reference: np.ndarray,
    candidate: np.ndarray,
    precision: str,
    task: str,
) -> OutputComparison:
    tol = TOLERANCES[precision]
    if reference.shape != candidate.shape:
        return OutputComparison(
            name,
            kind,
            list(shape),
            float("inf"),
            0.0,
            0.0,
            passed=False,
            reasons=[f"shape {candidate.shape} != PyTorch {reference.shape}"],
        )
    if np.issubdtype(reference.dtype, np.integer):
        agreement = float(np.mean(reference == candidate))
        result = OutputComparison(
            name,
            kind,
            list(shape),
            float(np.abs(reference - candidate).max()),
            0.0,
            1.0,
            label_agreement=agreement,
        )
        if agreement < tol.min_label_agreement:
            result.passed = False
            result.reasons.append(f"label agreement {agreement:.4%} < {tol.min_label_agreement:.1%}")
        return result
    ref = reference.astype(np.float64)
    cand = candidate.astype(np.float64)
    max_abs = float(np.abs(ref - cand).max()) if ref.size else 0.0
    scale = max(float(np.abs(ref).max()) if ref.size else 0.0, 1e-3)
    denom = float(np.linalg.norm(ref) * np.linalg.norm(cand))
    cosine = float((ref.ravel() @ cand.ravel()) / denom) if denom > 0 else 1.0
    result = OutputComparison(name, kind, list(shape), max_abs, scale, cosine)
    if task == "classification" and ref.ndim == 2:
        result.top1_agreement = float(np.mean(ref.argmax(1) == cand.argmax(1)))
    if not np.isfinite(cand).all():
        result.passed = False
        result.reasons.append("non-finite values")
    if max_abs > tol.max_abs_over_scale * scale:
        result.passed = False
        result.reasons.append(f"max abs {max_abs:.3g} > {tol.max_abs_over_scale:g} x scale {scale:.3g}")
    if tol.min_cosine is not None and cosine < tol.min_cosine:
        result.passed = False
        result.reasons.append(f"cosine {cosine:.6f} < {tol.min_cosine}")
    return result


def cpu_session(onnx_model: onnx.ModelProto, precision: str, threads: int | None) -> Any:
    """An ONNX Runtime CPU session of the graph a gate checks; a graph it cannot load is a
    :class:`ParityError` naming the precision."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(
            onnx_model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ORT raises its own exception types for graphs it cannot load
        raise ParityError(
            f"ONNX Runtime cannot load the {precision} graph: {str(exc).splitlines()[0]}"
        ) from None


def run_parity(
    module: torch.nn.Module,
    onnx_model: onnx.ModelProto,
    shapes: list[tuple[int, ...]],
    precision: str,
    threads: int | None = None,
) -> list[OutputComparison]:
    """Run PyTorch (FP32) and ONNX Runtime (CPU) on the same inputs; compare every output."""

    cfg = model_cfg(module)
    labels_graph = any(n.op_type == "ArgMax" for n in onnx_model.graph.node)
    checked = with_scores_output(onnx_model) if labels_graph else onnx_model
    session = cpu_session(checked, precision, threads)
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    results = []
    for shape in shapes:
        for kind, x in parity_inputs(shape, cfg):
            with torch.inference_mode():
                if labels_graph:
                    if not isinstance(module, SegmentationLabels):
                        raise LitevitError(
                            "a label-map graph is checked against a SegmentationLabels module."
                        )
                    scores = module.scores(x)
                    expected = {names[0]: module.labels(scores).numpy(), SCORES_OUTPUT: scores.numpy()}
                else:
                    expected = {names[0]: module(x).numpy()}
            got = dict(zip(names, session.run(None, {input_name: x.numpy()}), strict=True))
            for name in names:
                results.append(compare(name, kind, shape, expected[name], got[name], precision, cfg.task))
    return results


def as_dicts(results: list[OutputComparison]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]


def format_table(title: str, results: list[OutputComparison]) -> str:
    header = ("output", "input", "shape", "max abs", "scale", "cosine", "top-1/labels", "ok")
    rows = [header]
    for r in results:
        agree = r.top1_agreement if r.top1_agreement is not None else r.label_agreement
        rows.append(
            (
                r.output,
                r.input_kind,
                "x".join(map(str, r.input_shape)),
                f"{r.max_abs:.2e}",
                f"{r.scale:.3g}" if r.scale else "-",
                f"{r.cosine:.6f}",
                f"{agree:.2%}" if agree is not None else "-",
                "yes" if r.passed else "NO: " + "; ".join(r.reasons),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return f"{title}\n" + "\n".join(lines)
