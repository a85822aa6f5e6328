"""litevit.calibration: INT8 from the user's own images, and what precision costs in accuracy.

``images``        image folders and the model's preprocessing (from the manifest)
``ranges``        activation thresholds: minmax, entropy (TensorRT's KL method), percentile
``qdq``           Q/DQ pairs on the inputs of weighted ops, symmetric INT8, per-channel weights
``int8``          calibration split, keyed cache, ``MODEL.int8.onnx`` and its report (export --int8)
``diagnose``      agreement with FP32, per-layer sensitivity, ``--keep-fp32 auto``
``quant_report``  ``litevit quant-report``
``val``           ``litevit val``: top-1/top-5 or mIoU on labelled images per backend x precision
``coco``          COCO instances / panoptic layouts, categories, panoptic PNG ids (detectors' data)
``coco_ap``       COCO box and mask AP (pycocotools, as mmdet 2.x runs it)
``panoptic``      PQ, SQ, RQ (COCO panoptic rules, numpy)
``det_results``   detector outputs -> COCO results and COCO panoptic PNGs

Never falls back to random data. Torch-free: everything runs on ONNX Runtime.
"""
