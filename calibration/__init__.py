"""litevit.calibration: INT8 from the user's own images.

Reads an image folder with the model's preprocessing, computes activation scales (minmax,
entropy, percentile), writes a Q/DQ ``MODEL.int8.onnx`` and a keyed calibration cache, and
diagnoses INT8/FP16 accuracy against FP32 (agreement, cosine, per-layer sensitivity). Never
falls back to random data. Filled by the INT8 issue.
"""
