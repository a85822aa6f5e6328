"""litevit.export: PyTorch -> ONNX.

Exports a registered model to an artefact folder: ``MODEL.onnx`` with CSA, RASA and GhostHead as
nodes of domain ``litevit`` (with ONNX function bodies, plugin-only, or inlined standard ops), a
strongly typed ``MODEL.fp16.onnx``, and ``manifest.json``, then checks every output against
PyTorch on the same input (the parity gate). ``litevit-export`` / ``litevit export`` and
``litevit check`` are thin shells over :func:`export_model` and :func:`check_artifacts`.
"""

from litevit._deps import require

# Without the authoring extra, importing this package raises litevit's one-sentence install hint
# (a MissingDependencyError, also an ImportError) instead of a bare ModuleNotFoundError deep inside.
require("torch")
require("onnxscript")

from litevit.export.api import ExportResult, check_artifacts, export_model, read_manifest  # noqa: E402
from litevit.export.parity import ParityError  # noqa: E402

__all__ = ["ExportResult", "ParityError", "check_artifacts", "export_model", "read_manifest"]
