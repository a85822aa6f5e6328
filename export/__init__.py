"""litevit.export: PyTorch -> ONNX.

Exports a registered model to an artefact folder: ``MODEL.onnx`` with CSA, RASA and GhostHead as
nodes of domain ``litevit`` (with ONNX function bodies, plugin-only, or inlined standard ops), a
strongly typed ``MODEL.fp16.onnx``, and ``manifest.json``, then checks every output against
PyTorch on the same input (the parity gate). Filled by the export issue.
"""
