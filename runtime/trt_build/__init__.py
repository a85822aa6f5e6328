"""TensorRT engine builds for TensorRT 8.5 through 11: what ``litevit build`` does and writes.

``build_engine(ONNX, ENGINE, precision=...)`` parses an ONNX graph with TensorRT's ONNX parser,
builds a serialized engine (a plain TensorRT plan) and writes next to it a sidecar
``ENGINE.json`` (:data:`ENGINE_FORMAT`): which TensorRT, GPU, plugin library, precision, typing,
profiles and source graph made it, which path each litevit custom op took, and how the engine
compares with ONNX Runtime on the same input. ``build_artifact(FOLDER, precision)`` picks the
graph from an artefact folder's manifest. :class:`~litevit.runtime.runners.TrtRunner` reads the
sidecar before loading an engine and refuses one built for another TensorRT or GPU.

A module a concern:

===================  ===========================================================================
``features``         every difference between TensorRT versions, decided in one place
                     (:class:`TrtFeatures`, from the installed ``tensorrt.__version__``)
``plugins``          which plugin library to use and loading it into TensorRT's registry
``routing``          plugin, function body or inline ops per litevit op; the graph's kind
``parser_coverage``  every node against the release's ONNX parser (``onnx_parser_support.json``:
                     onnx-tensorrt's operators.md per release), before TensorRT sees the graph
``profiles``         optimisation profiles from ``--shapes`` or the manifest's dynamic axes
``tensorrt_log``     TensorRT's log, captured; failures as their first ERROR line
``calibration``      implicit INT8: entropy calibrator and the litevit-keyed cache
``parity``           the engine against ONNX Runtime on the same input
``sidecar``          ``ENGINE.json``, and the checks made before an engine is loaded
``build``            the build, for an ONNX file or an artefact folder
``cli``              ``litevit build``
===================  ===========================================================================

The package imports without TensorRT: ``tensorrt`` is imported inside the functions that talk
to it.
"""

from litevit.runtime.trt_build.build import (
    INT8_MODES,
    PRECISIONS,
    EngineBuild,
    artifact_graph,
    artifact_manifest_for,
    build_artifact,
    build_engine,
)
from litevit.runtime.trt_build.calibration import CalibrationCache, implicit_calibration_batches
from litevit.runtime.trt_build.cli import BUILD_DESCRIPTION, configure_build_parser, run_build
from litevit.runtime.trt_build.features import MIN_TENSORRT, TrtFeatures, installed_features
from litevit.runtime.trt_build.parity import (
    PARITY_TOLERANCES,
    ParityTolerance,
    compare_outputs,
    engine_parity,
)
from litevit.runtime.trt_build.plugins import (
    PLUGIN_LIBRARY,
    PLUGINS_ENV,
    PYTHON_PLUGINS,
    PluginSource,
    load_plugin_library,
    plugin_library_path,
    plugin_library_to_load,
    plugin_registered,
)
from litevit.runtime.trt_build.profiles import (
    DEFAULT_MAX_BATCH,
    ShapeRange,
    optimisation_profiles,
    parse_shapes,
)
from litevit.runtime.trt_build.routing import OpRoute, ParserInput, graph_kind, route_custom_ops
from litevit.runtime.trt_build.sidecar import (
    ENGINE_FORMAT,
    describe_target,
    engine_max_batch,
    engine_mismatch,
    read_engine_sidecar,
    rebuild_command,
    sidecar_path,
)

__all__ = [
    "BUILD_DESCRIPTION",
    "DEFAULT_MAX_BATCH",
    "ENGINE_FORMAT",
    "INT8_MODES",
    "MIN_TENSORRT",
    "PARITY_TOLERANCES",
    "PLUGINS_ENV",
    "PLUGIN_LIBRARY",
    "PRECISIONS",
    "PYTHON_PLUGINS",
    "CalibrationCache",
    "EngineBuild",
    "OpRoute",
    "ParityTolerance",
    "ParserInput",
    "PluginSource",
    "ShapeRange",
    "TrtFeatures",
    "artifact_graph",
    "artifact_manifest_for",
    "build_artifact",
    "build_engine",
    "compare_outputs",
    "configure_build_parser",
    "describe_target",
    "engine_max_batch",
    "engine_mismatch",
    "engine_parity",
    "graph_kind",
    "implicit_calibration_batches",
    "installed_features",
    "load_plugin_library",
    "optimisation_profiles",
    "parse_shapes",
    "plugin_library_path",
    "plugin_library_to_load",
    "plugin_registered",
    "rebuild_command",
    "read_engine_sidecar",
    "route_custom_ops",
    "run_build",
    "sidecar_path",
]
