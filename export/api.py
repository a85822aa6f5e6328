"""``export_model`` and ``check_artifacts``: the Python API behind ``litevit-export`` and
``litevit check``.

An export writes an artefact folder (default ``./litevit-artifacts/MODEL/``)::

    MODEL.onnx        FP32 graph, custom ops per --ops (function | plugin | inline)
    MODEL.fp16.onnx   strongly typed FP16 graph (with --fp16)
    MODEL.int8.onnx   Q/DQ INT8 graph for TensorRT calibrated on your images (with --int8 --calib
                      DIR), MODEL.int8.ort.onnx the same calibration in the Q/DQ form ONNX Runtime
                      runs as integer kernels on a CPU (manifest ``runtime: onnxruntime``), with
                      MODEL.int8.calib.json (keyed calibration cache) and MODEL.int8.report.json
                      (INT8/FP16 against FP32 on held-out images; see litevit.calibration)
    manifest.json     model + config, inputs/outputs, dynamic axes, opset, custom ops, mode,
                      versions, SHA-256 of every file, parity results

Every file is written atomically, the manifest last: a folder whose manifest lists a file with
its hash holds that file complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import io
import logging
import os
import platform
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import torch

import litevit
from litevit._deps import has
from litevit.artifacts import MANIFEST, MANIFEST_VERSION, read_manifest, verify_files
from litevit.calibration.images import Preprocessing
from litevit.calibration.int8 import CalibrationSplit, Int8Options, write_int8
from litevit._io import check_creatable_dir, ensure_writable_dir, sha256_file, write_bytes, write_json
from litevit.errors import LitevitError
from litevit.export import detection as det
from litevit.export.fp16 import convert_to_fp16
from litevit.export.onnx_export import (
    INPUT_NAME,
    OPS_MODES,
    SEG_OUTPUTS,
    GraphSpec,
    SegmentationLabels,
    apply_ops_mode,
    custom_op_usage,
    for_onnxruntime,
    output_names,
    torch_to_onnx,
    validate,
)
from litevit.export.reexport import carry_over, previous_manifest, remove_stale
from litevit.export.parity import TOLERANCES, ParityError, as_dicts, format_table, run_parity
from litevit.export.trt_target import adapt_for_target, check_target
from litevit.flops import count_model
from litevit.models import create_model, get_model_cfg, load_pretrained, model_cfg
from litevit.runtime.trt_build.parser_coverage import (
    TARGET_RELEASES,
    refusal,
    release_support,
    require_parser_support,
    unsupported_nodes,
)
from litevit.runtime.seg_protocols import SegTestProtocol

DEFAULT_OUT_ROOT = "litevit-artifacts"


@dataclass
class ExportResult:
    """What an export wrote and how its parity gate went."""

    out_dir: Path
    files: dict[str, Path]
    manifest: dict[str, Any]
    tables: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # still-valid files of the previous export
    removed: list[str] = field(default_factory=list)  # its stale files, deleted

    @property
    def passed(self) -> bool:
        return all(entry["passed"] for entry in self.manifest.get("parity", {}).values())


def _versions() -> dict[str, str | None]:
    import importlib.metadata

    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    ort_version = version("onnxruntime") or version("onnxruntime-gpu")
    return {
        "litevit": litevit.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": version("onnxscript"),
        "onnxruntime": ort_version,
    }


def model_complexity(name: str, img_size: Sequence[int], model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Parameters, MACs and FLOPs of one image at ``img_size``, counted on a meta-device copy of the
    model (no weights, no arithmetic). The model alone: the resize and argmax that
    ``--seg-output labels`` adds to the graph are not counted, as the papers did not count them."""
    with torch.device("meta"):
        model = create_model(name, img_size=tuple(img_size), **model_kwargs)
    report = count_model(model, tuple(img_size))
    return {
        "params": report.params,
        "macs": report.macs,
        "flops": report.flops,
        "counter": "litevit.flops (fvcore convention)",
        "input_shape": list(report.input_shape),
    }


def _build_module(
    name: str,
    weights: str | None,
    img_size: tuple[int, int] | None,
    use_ema: bool,
    seg_output: str,
    model_kwargs: dict[str, Any],
    detection: dict[str, Any] | None = None,
) -> torch.nn.Module:
    """The module an export traces: the registered model (with the detector options of the
    manifest's ``detection`` entry) and the segmenters' label-map wrapper."""
    options = det.DetectionOptions.from_manifest(detection).model_kwargs() if detection else {}
    model = create_model(name, img_size=img_size, **model_kwargs, **options)
    if weights is not None:
        load_pretrained(model, weights, use_ema=use_ema)
    if model.cfg.task == "segmentation" and seg_output == "labels":
        return SegmentationLabels(model)
    return model


def _parity_shapes(spec: GraphSpec, divisor: int) -> list[tuple[int, ...]]:
    h, w = spec.img_size
    shapes: list[tuple[int, ...]] = [(spec.batch, 3, h, w)]
    if spec.dynamic_batch:
        shapes.append((spec.batch + 2, 3, h, w))
    if spec.dynamic_hw:
        # A second, non-square resolution proves both spatial axes are really dynamic.
        shapes.append((spec.batch, 3, h + 2 * divisor, w + divisor))
    return shapes


def _save_onnx(model: onnx.ModelProto, path: Path) -> None:
    write_bytes(path, model.SerializeToString())


@contextlib.contextmanager
def _quiet_exporter() -> Any:
    """torch's exporter prints progress and warns about absent torchvision ops; keep the user's
    terminal for litevit's own report (the text is kept for error messages)."""
    buffer = io.StringIO()
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(buffer):
            yield buffer
    finally:
        logger.setLevel(level)


def trt_build_hint(
    out_dir: Path,
    model: str,
    spec: GraphSpec,
    precisions: Sequence[str],
    has_custom_ops: bool,
    hw_range: dict[str, list[int]] | None = None,
    detector: bool = False,
) -> str:
    """How to build the engines on the target: ``litevit build`` (any TensorRT 8.5 - 11, picks the
    graph and flags per version), or the ``trtexec`` line per TensorRT family."""
    folder = shlex.quote(str(out_dir))
    lines = [f"  litevit build {folder} --precision {p}" for p in precisions]
    shapes = ""
    if spec.dynamic_axes():
        h, w = spec.img_size
        b = spec.batch
        low, high = (hw_range["min"], hw_range["max"]) if hw_range else ((h, w), (h, w))
        max_b = max(b, 8) if spec.dynamic_batch else b
        # A detector's image_shapes input follows the batch axis.
        extra = (
            [f",{det.IMAGE_SHAPES}:{n}x4" for n in (1 if spec.dynamic_batch else b, b, max_b)]
            if detector
            else [""] * 3
        )
        shapes = (
            f" --minShapes={INPUT_NAME}:{1 if spec.dynamic_batch else b}x3x{low[0]}x{low[1]}{extra[0]}"
            f" --optShapes={INPUT_NAME}:{b}x3x{h}x{w}{extra[1]}"
            f" --maxShapes={INPUT_NAME}:{max_b}x3x{high[0]}x{high[1]}{extra[2]}"
        )
    plugins = has_custom_ops and spec.ops != "inline"
    # The plugin library registers itself through getCreators (loadLibrary) on TensorRT >= 8.6 and
    # statically on 8.5, whose trtexec spells the option --plugins=.
    plugin_flag = " --dynamicPlugins=liblitevit_plugins.so" if plugins else ""
    for precision in precisions:
        engine = shlex.quote(str(out_dir / f"{model}.{precision}.engine"))
        graph = {"fp32": f"{model}.onnx", "fp16": f"{model}.fp16.onnx", "int8": f"{model}.int8.onnx"}[
            precision
        ]
        typed = shlex.quote(str(out_dir / graph))
        weak_graph = shlex.quote(str(out_dir / (f"{model}.onnx" if precision == "fp16" else graph)))
        weak_flags = {"fp32": "", "fp16": " --fp16", "int8": " --int8 --fp16"}[precision]
        strong = " --stronglyTyped" if precision != "fp32" else ""
        lines.append(
            f"  TensorRT 11 (strongly typed): trtexec --onnx={typed}{strong} --saveEngine={engine}"
            f"{shapes}{plugin_flag}"
        )
        lines.append(
            f"  TensorRT 8.5 - 10.x: trtexec --onnx={weak_graph}{weak_flags} --saveEngine={engine}"
            f"{shapes}{plugin_flag}"
        )
    if plugins:
        lines.append(
            "  (build the library with `litevit plugins build`; TensorRT 8.5 spells the option "
            "--plugins= and, like 8.6, needs the library or an export with --ops inline; either needs "
            "the graphs exported with --trt 8.5 / --trt 8.6)"
        )
    return "\n".join(lines)


def export_model(
    model: str,
    *,
    weights: str | os.PathLike[str] | None = None,
    use_ema: bool = False,
    img_size: Sequence[int] | None = None,
    batch: int = 1,
    dynamic_batch: bool = False,
    dynamic_hw: bool = False,
    fp16: bool = False,
    int8: bool = False,
    calib: str | os.PathLike[str] | None = None,
    int8_options: Int8Options | None = None,
    ops: str = "function",
    opset: int = 17,
    trt: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    check: bool = True,
    seg_output: str = "labels",
    threads: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    test_protocol: dict[str, Any] | None = None,
    detection: det.DetectionOptions | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Export a registered model to an artefact folder and run the parity gate.

    ``trt`` names the TensorRT release the graphs are for ("8.5", ... see
    :mod:`litevit.export.trt_target`): the operators its ONNX parser lacks are written in ones it
    has, and every graph is checked against that parser before it is written. Without it, the
    graphs are written for TensorRT >= 10 and :attr:`ExportResult.notices` names the releases
    whose parser could not take them.

    ``test_protocol`` (segmentation) replaces the registry's published test protocol in the
    manifest (``ModelCfg.test_protocol`` layout), e.g. for a model fine-tuned at another crop size.

    Raises :class:`LitevitError` for bad arguments and :class:`ParityError` (after writing the
    files and a manifest that records the failure) when a graph disagrees with PyTorch.
    """
    cfg = get_model_cfg(model)
    detector = det.is_detector(cfg.task)
    if detector and int8:
        raise LitevitError(
            f"--int8 is not available for detectors ({model}): litevit's INT8 calibration feeds one "
            f"image input, and a detector also takes image_shapes; export with --fp16."
        )
    if ops not in OPS_MODES:
        raise LitevitError(f"unknown --ops mode {ops!r}; choose one of {', '.join(OPS_MODES)}.")
    if seg_output not in SEG_OUTPUTS:
        raise LitevitError(f"unknown --seg-output {seg_output!r}; choose one of {', '.join(SEG_OUTPUTS)}.")
    if batch < 1:
        raise LitevitError(f"--batch must be at least 1; got {batch}.")
    if trt is not None:
        check_target_opset(check_target(trt), opset)
    size = cfg.check_img_size(img_size) if img_size is not None else cfg.input_size
    model_kwargs = dict(model_kwargs or {})
    if test_protocol is not None:
        if cfg.task != "segmentation":
            raise LitevitError(f"test_protocol applies to segmentation models; {model} is {cfg.task}.")
        SegTestProtocol.from_config(test_protocol)  # refuse a malformed one before the export
    weights_path = os.fspath(weights) if weights is not None else None
    if weights_path is not None and not os.path.isfile(weights_path):
        raise LitevitError(f"weights file {weights_path!r} does not exist or is not a file.")
    # Created only when the first file is written: a refused export leaves no empty folder behind.
    folder = check_creatable_dir(out_dir if out_dir is not None else Path(DEFAULT_OUT_ROOT) / model)
    notices: list[str] = []
    if int8:
        if calib is None:
            raise LitevitError(
                "--int8 needs --calib DIR, a folder of your own images (JPEG/PNG): litevit never "
                "calibrates on random data."
            )
        int8_options = int8_options or Int8Options()
        int8_options.check()
        # Refuse a missing, empty or tiny folder before the slow export.
        split = CalibrationSplit.from_folder(calib, int8_options.samples, int8_options.holdout)
    det_options = (detection or det.DetectionOptions()) if detector else None
    if det_options is not None:
        det_options.check(cfg.task)
    spec = GraphSpec(size, batch, dynamic_batch, dynamic_hw, opset, ops)
    module = _build_module(
        model, weights_path, size, use_ema, seg_output, model_kwargs, det_options and det_options.manifest()
    )
    det_manifest = None
    if det_options is not None:
        # As built: the graph's score threshold and the one its parity gate runs at.
        det_manifest = {
            **det_options.manifest(),
            "score_thr": det.graph_score_threshold(module),
            "gate_score_thr": det_options.gate_threshold(module, weights_path is not None),
            "test_scale": det.test_scale(cfg, size),
        }
    names = det.output_names(module) if detector else output_names(cfg.task, seg_output)
    inputs = det.detection_inputs(module, spec) if detector else None

    start = time.perf_counter()
    with _quiet_exporter() as chatter:
        try:
            graph = torch_to_onnx(module, spec, names, inputs)
        except LitevitError:
            raise
        except Exception as exc:  # the exporter raises many types; keep its first line
            last = [line for line in chatter.getvalue().splitlines() if line.strip()][-1:]
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LitevitError(
                f"torch could not export {model}: {detail}{' / ' + last[0] if last else ''}"
            ) from exc
    graph = _rename_dynamic_dims(graph, spec)
    graph.metadata_props.extend(
        [
            onnx.StringStringEntryProto(key="litevit.model", value=model),
            onnx.StringStringEntryProto(key="litevit.version", value=litevit.__version__),
            onnx.StringStringEntryProto(key="litevit.ops_mode", value=ops),
        ]
    )
    plain = apply_ops_mode(graph, ops)
    files = {"fp32": folder / f"{model}.onnx"}
    graphs = {"fp32": plain}
    if fp16:
        files["fp16"] = folder / f"{model}.fp16.onnx"
        # From the graph before any rewrite for the target: its FP16 rules keep a normalization in
        # float32 as one op, which the rewrite then writes out in float32.
        graphs["fp16"] = convert_to_fp16(plain)
    rewrites: dict[str, dict[str, int]] = {}
    for key in list(graphs):
        if trt is not None:
            graphs[key], rewrites[files[key].name] = adapt_for_target(graphs[key], trt)
        validate(graphs[key], opset)
        if trt is not None:
            require_parser_support(graphs[key], trt, graph=files[key].name)
    if trt is None:
        notices.extend(parser_notices(graphs["fp32"], files["fp32"].name))
    fp32 = graphs["fp32"]
    export_seconds = time.perf_counter() - start
    ensure_writable_dir(folder)
    for key, path in files.items():
        _save_onnx(graphs[key], path)

    tables = []
    parity: dict[str, Any] = {}
    if check and det_options is not None:
        assert det_manifest is not None
        for key, path in files.items():
            gate = det.run_detection_parity(
                det.as_detector(module),
                for_onnxruntime(graphs[key]),
                spec,
                key,
                det_manifest["gate_score_thr"],
                threads,
            )
            parity[path.name] = gate.manifest_entry()
            tables.append(gate.table(f"parity {path.name} vs PyTorch FP32 (ONNX Runtime CPU):"))
    elif check:
        shapes = _parity_shapes(spec, model_cfg(module).size_divisor)
        for key, path in files.items():
            results = run_parity(module, for_onnxruntime(graphs[key]), shapes, key, threads)
            parity[path.name] = {
                "precision": key,
                "runtime": "onnxruntime CPUExecutionProvider",
                "reference": "PyTorch FP32 eager (same weights, same inputs)",
                "tolerance": dataclasses.asdict(TOLERANCES[key]),
                "passed": all(r.passed for r in results),
                "results": as_dicts(results),
            }
            tables.append(format_table(f"parity {path.name} vs PyTorch FP32 (ONNX Runtime CPU):", results))

    calibration = None
    int8_records: list[Path] = []
    if int8:
        assert int8_options is not None
        prep = Preprocessing.from_manifest(
            {"task": cfg.task, "data_config": model_cfg(module).data_config(), "img_size": size}
        )
        quantized = write_int8(
            fp32,
            files["fp32"],
            folder,
            model,
            prep,
            split,
            int8_options,
            runnable=for_onnxruntime,
            fp16=graphs.get("fp16"),
            threads=threads,
            progress=progress,
        )
        files["int8"] = quantized.path
        files["int8_ort"] = quantized.ort_path
        if trt is not None:
            require_parser_support(onnx.load(str(quantized.path)), trt, graph=quantized.path.name)
        parity[quantized.path.name] = quantized.parity
        parity[quantized.ort_path.name] = quantized.ort_parity
        calibration = quantized.manifest_calibration
        int8_records = [quantized.cache_path, quantized.report_path]
        tables.append("\n".join(quantized.lines))

    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "task": cfg.task,
        "model_kwargs": model_kwargs,
        "weights": {
            "path": os.path.abspath(weights_path),
            "sha256": sha256_file(weights_path),
            "use_ema": use_ema,
        }
        if weights_path
        else None,
        "data_config": {
            **model_cfg(module).data_config(),
            **({"test_protocol": test_protocol} if test_protocol is not None else {}),
        },
        "arch": model_cfg(module).arch,
        "paper": dataclasses.asdict(cfg.paper),
        "inputs": _io_description(fp32.graph.input),
        "outputs": _io_description(fp32.graph.output),
        "dynamic_axes": det.dynamic_axes(spec) if detector else {INPUT_NAME: spec.dynamic_axes()},
        "img_size": list(size),
        "batch": batch,
        "seg_output": seg_output if cfg.task == "segmentation" else None,
        "detection": det_manifest,
        "hw_range": det.hw_range(model_cfg(module), spec) if detector else None,
        "opset": opset,
        "ops_mode": ops,
        "trt_target": trt,
        "trt_rewrites": rewrites if trt is not None else None,
        "custom_ops": custom_op_usage(graph),
        "complexity": model_complexity(model, size, model_kwargs),
        "versions": _versions(),
        "export_seconds": round(export_seconds, 2),
        "files": {
            path.name: _file_entry(key, path)
            for key, path in [*files.items(), *(("int8", record) for record in int8_records)]
        },
        "parity": parity,
        "calibration": calibration,
        "notices": notices,
    }
    previous = previous_manifest(folder)
    kept = carry_over(folder, previous, manifest)
    write_json(folder / MANIFEST, manifest)
    removed = remove_stale(folder, previous, manifest)
    if kept:
        notices.append(f"kept from the previous export (derived from the same FP32 graph): {', '.join(kept)}")
    if removed:
        notices.append(f"removed stale files of the previous export: {', '.join(removed)}")
    result = ExportResult(folder, files, manifest, tables, notices, kept, removed)
    for table in tables:
        log(table)
    if check and not result.passed:
        failed = [name for name, entry in parity.items() if not entry["passed"]]
        raise ParityError(
            f"parity gate failed for {', '.join(failed)} (tolerances in {folder / MANIFEST}); "
            f"the files are kept for inspection."
        )
    engines = [p for p, wanted in (("fp16", fp16), ("int8", int8)) if wanted]
    if engines and not has("tensorrt"):
        notices.append("TensorRT is not installed here, so no engine was built; on the target, build with:")
        notices.append(
            trt_build_hint(
                folder, model, spec, engines, bool(manifest["custom_ops"]), manifest["hw_range"], detector
            )
        )
    return result


def _file_entry(key: str, path: Path) -> dict[str, Any]:
    """A manifest ``files`` entry; a graph made for one runtime only names it (``runtime``)."""
    precision, _, runtime = key.partition("_")
    entry: dict[str, Any] = {
        "precision": precision,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
    }
    if runtime:
        entry["runtime"] = {"ort": "onnxruntime"}[runtime]
    return entry


def check_target_opset(target: str, opset: int) -> None:
    """Refuse an opset the target release's parser does not read."""
    low, high = release_support(target).opset
    if not low <= opset <= high:
        raise LitevitError(
            f"TensorRT {target}'s ONNX parser reads opsets {low} - {high}; leave out --opset {opset} "
            f"for --trt {target}."
        )


def parser_notices(model: onnx.ModelProto, name: str) -> list[str]:
    """One line per supported TensorRT release whose ONNX parser cannot take ``model`` as written."""
    notices = []
    for release in TARGET_RELEASES:
        problems = unsupported_nodes(model, release)
        if problems:
            notices.append(f"note: {refusal(problems, name)}")
    return notices


def _io_description(values: Any) -> list[dict[str, Any]]:
    described = []
    for value in values:
        tensor = value.type.tensor_type
        described.append(
            {
                "name": value.name,
                "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
                "shape": [d.dim_param if d.dim_param else d.dim_value for d in tensor.shape.dim],
            }
        )
    return described


def _rename_dynamic_dims(model: onnx.ModelProto, spec: GraphSpec) -> onnx.ModelProto:
    """Name the graph's dynamic dims after the axes they are (the exporter writes symbols such
    as ``s77`` or ``32*s75``); output dims that are the same symbols get the same names."""
    input_dims = model.graph.input[0].type.tensor_type.shape.dim
    names = {
        input_dims[axis].dim_param: name
        for axis, name in spec.dynamic_axes().items()
        if input_dims[axis].dim_param
    }
    for value in [*model.graph.input, *model.graph.output]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.dim_param = names[dim.dim_param]
    return model


def check_artifacts(
    artifact_dir: str | os.PathLike[str], threads: int | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Verify every file's SHA-256 and rerun the parity gate; returns the fresh parity results."""
    folder = Path(artifact_dir)
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    weights = manifest.get("weights")
    if weights and (not os.path.isfile(weights["path"]) or sha256_file(weights["path"]) != weights["sha256"]):
        raise LitevitError(
            f"the weights {weights['path']!r} this export was made from are missing or changed."
        )
    spec = GraphSpec(
        tuple(manifest["img_size"]),  # type: ignore[arg-type]
        manifest["batch"],
        0 in {int(k) for k in manifest["dynamic_axes"][INPUT_NAME]},
        2 in {int(k) for k in manifest["dynamic_axes"][INPUT_NAME]},
        manifest["opset"],
        manifest["ops_mode"],
    )
    module = _build_module(
        manifest["model"],
        weights["path"] if weights else None,
        spec.img_size,
        bool(weights and weights["use_ema"]),
        manifest.get("seg_output") or "logits",
        manifest.get("model_kwargs") or {},
        manifest.get("detection"),
    )
    fresh: dict[str, Any] = {}
    for name, entry in manifest["files"].items():
        if not name.endswith(".onnx"):
            continue  # the INT8 calibration cache and report: hashes verified above
        if entry["precision"] == "int8":
            # INT8 is judged on images against FP32, not on synthetic inputs against PyTorch.
            log(f"{name}: hash verified; its accuracy needs images: litevit quant-report {folder} --data DIR")
            continue
        try:
            graph = onnx.load(folder / name)
        except Exception as exc:  # protobuf decode errors have many types
            raise LitevitError(f"{str(folder / name)!r} is not a readable ONNX file: {exc}.") from None
        title = f"parity {name} vs PyTorch FP32 (ONNX Runtime CPU):"
        if manifest.get("detection"):
            gate = det.run_detection_parity(
                det.as_detector(module),
                for_onnxruntime(graph),
                spec,
                entry["precision"],
                manifest["detection"]["gate_score_thr"],
                threads,
            )
            log(gate.table(title))
            fresh[name] = {"passed": gate.passed, "results": [check.as_dict() for check in gate.checks]}
            continue
        results = run_parity(
            module,
            for_onnxruntime(graph),
            _parity_shapes(spec, model_cfg(module).size_divisor),
            entry["precision"],
            threads,
        )
        log(format_table(title, results))
        fresh[name] = {"passed": all(r.passed for r in results), "results": as_dicts(results)}
    failed = [name for name, entry in fresh.items() if not entry["passed"]]
    if failed:
        raise ParityError(f"parity gate failed for {', '.join(failed)}.")
    return fresh


__all__ = ["ExportResult", "check_artifacts", "export_model", "read_manifest"]
