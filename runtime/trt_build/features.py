"""Every difference between the TensorRT releases litevit builds with (8.5 through 11), decided
in one place from ``tensorrt.__version__``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from litevit.errors import LitevitError


MIN_TENSORRT = (8, 5)


PluginPrecedence = Literal["no-functions", "function", "plugin-if-registered", "plugin-if-namespaced"]


@dataclass(frozen=True)
class TrtFeatures:
    """What the installed TensorRT can do, decided from its version alone.

    ================================  ===========================  ==============================
    fact                              versions                     source
    ================================  ===========================  ==============================
    weak typing: BuilderFlag.FP16 /   < 11                         TRT 11 migration guide (removed
    INT8, precision by builder flags                               in 11.0; deprecated 10.12)
    NetworkDefinitionCreationFlag.    9.0 <= v < 11 (opt-in)       NvInfer.h on release/9.0 (first
    STRONGLY_TYPED                                                 with kSTRONGLY_TYPED); 11.0:
                                                                   always strong, flag deprecated
    implicit INT8 calibrators         < 11 (deprecated >= 10.1)    IInt8Calibrator removed in 11.0
    (IInt8EntropyCalibrator2)                                      (support policy); the bindings
                                                                   deprecate int8_calibrator and
                                                                   set_calibration_profile from
                                                                   10.1 (python/src at v10.3.0)
    parser runs model-local ONNX      >= 9.0                       onnx-tensorrt LocalFunction-
    function bodies                                                Importer; 8.5/8.6 have none
    plugin over function body         10.7-10.14: if registered;   CHANGELOG 10.7 ("prioritizes
                                      >= 10.15: if registered and  plugins over local functions");
                                      the node has plugin_namespace ModelImporter.cpp >= 10.15,
                                      or ENABLE_PLUGIN_OVERRIDE    CHANGELOG 10.15 (flag added)
    IPluginRegistry.load_library      >= 8.6 (8.5: ctypes.CDLL)    python/src/infer/pyPlugin.cpp
                                                                   release/8.6 vs release/8.5
    registry lookup get_creator       >= 10.0 (get_plugin_creator  pyPlugin.cpp release/10.0
    (finds V3 creators too)           before)
    explicit-batch creation flag      < 10 (ignored in 10.x,       Python API docs ("always
                                      absent from 11.0)            explicit batch in 10.0");
                                                                   NvInfer.h release/11.0
    ================================  ===========================  ==============================

    The memory-pool API (``IBuilderConfig.set_memory_pool_limit``) exists from 8.4, and
    ``max_workspace_size`` is gone from 10.0, so every supported version (>= 8.5) sets the
    workspace one way: no flag is needed for it.
    """

    version: str
    weak_typing: bool
    strongly_typed_flag: bool
    always_strongly_typed: bool
    int8_calibrators: bool
    int8_calibrators_deprecated: bool
    plugin_precedence: PluginPrecedence
    registry_load_library: bool
    registry_get_creator: bool
    explicit_batch_flag: bool

    @classmethod
    def from_version(cls, version: str) -> TrtFeatures:
        match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
        if match is None:
            raise LitevitError(f"cannot read the TensorRT version {version!r}.")
        v = (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))
        if v[:2] < MIN_TENSORRT:
            raise LitevitError(
                f"TensorRT {version} is too old; litevit builds engines with TensorRT "
                f"{MIN_TENSORRT[0]}.{MIN_TENSORRT[1]} or newer (JetPack 5.1+)."
            )
        precedence: PluginPrecedence
        if v < (9, 0):
            precedence = "no-functions"
        elif v < (10, 7):
            precedence = "function"
        elif v < (10, 15):
            precedence = "plugin-if-registered"
        else:
            precedence = "plugin-if-namespaced"
        return cls(
            version=version,
            weak_typing=v < (11, 0),
            strongly_typed_flag=(9, 0) <= v < (11, 0),
            always_strongly_typed=v >= (11, 0),
            int8_calibrators=v < (11, 0),
            int8_calibrators_deprecated=(10, 1) <= v < (11, 0),
            plugin_precedence=precedence,
            registry_load_library=v >= (8, 6),
            registry_get_creator=v >= (10, 0),
            explicit_batch_flag=v < (10, 0),
        )

    @property
    def parses_local_functions(self) -> bool:
        return self.plugin_precedence != "no-functions"

    def strongly_typed(self, requested: bool | None) -> bool:
        """Whether a build is strongly typed: ``requested`` (None: what this version requires,
        i.e. strong on 11 and weak before), or one sentence when this version cannot."""
        if requested and not (self.strongly_typed_flag or self.always_strongly_typed):
            raise LitevitError(
                f"TensorRT {self.version} has no strongly typed networks (9.0+); build weakly typed "
                f"(leave out --strongly-typed)."
            )
        if requested is False and not self.weak_typing:
            raise LitevitError(
                f"TensorRT {self.version} builds strongly typed networks only; leave out --weakly-typed."
            )
        return bool(requested) or self.always_strongly_typed


def installed_features() -> TrtFeatures:
    import tensorrt as trt

    return TrtFeatures.from_version(trt.__version__)
