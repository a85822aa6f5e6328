"""The deployment side must import and run on a Jetson without torch.

Runs in two places: here, with torch blocked in a subprocess; and in CI's second venv,
where only `litevit[ort]` is installed, so torch is really absent.
"""

import subprocess
import sys
import tempfile

BLOCK_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['onnxscript'] = None\n"


def _run(code: str) -> subprocess.CompletedProcess:
    # Run outside the checkout: `python -c` puts the working directory first on sys.path, where the
    # source tree would shadow the installed package.
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run(
            [sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, cwd=cwd
        )


def test_deployment_modules_import_without_torch():
    proc = _run(
        "import litevit, litevit.runtime, litevit.plugins, litevit.labels, litevit.cli\n"
        "import litevit.runtime.runners, litevit.runtime.bench, litevit.runtime.report\n"
        "import litevit.runtime.sweep, litevit.runtime.report_curves\n"
        "import litevit.runtime.doctor, litevit.runtime.environment, litevit.runtime.tegrastats\n"
        "import litevit.runtime.trt_build, litevit.runtime.selftest, litevit.serve.triton_repo\n"
        "import litevit.serve, litevit.serve.batching\n"
        "import litevit.calibration.int8, litevit.calibration.quant_report, litevit.calibration.val\n"
        "import litevit.calibration.coco_ap, litevit.calibration.panoptic, litevit.calibration.det_results\n"
        "import litevit.synthetic_shapes, litevit.runtime.detection, litevit.runtime.detection_compare\n"
        "import litevit.runtime.bench_detection, litevit.calibration.val.detection, litevit.serve.detection\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print(litevit.__version__, len(litevit.labels.class_names('ade20k150')))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.1.0", "150"]


def test_authoring_api_without_torch_is_one_sentence():
    proc = _run(
        "import litevit\n"
        "try:\n"
        "    litevit.create_model('lvt')\n"
        "except litevit.LitevitError as e:\n"
        "    print(e)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "torch is not installed; the model zoo, FLOP counting and export needs it: "
        "pip install 'litevit[author]' (torch)."
    )


def test_detector_metrics_without_pycocotools_are_one_sentence():
    proc = _run(
        "sys.modules['pycocotools'] = None\n"
        "import numpy as np, litevit\n"
        "from litevit.calibration.det_results import encode_masks\n"
        "try:\n"
        "    encode_masks(np.zeros((1, 2, 2), bool))\n"
        "except litevit.LitevitError as e:\n"
        "    print(e)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "pycocotools is not installed; scoring detectors (COCO box and mask AP, mask RLE) needs it: "
        "pip install 'litevit[det]' (pycocotools)."
    )


def test_importing_the_export_package_without_torch_is_the_install_sentence():
    proc = _run("try:\n    import litevit.export\nexcept ImportError as e:\n    print(type(e).__name__, e)\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "MissingDependencyError torch is not installed; the model zoo, FLOP counting and export needs it: "
        "pip install 'litevit[author]' (torch)."
    )


def test_cli_without_torch_exits_2_with_one_line():
    proc = _run("from litevit.cli import main; sys.exit(main(['info', 'lvt']))")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("litevit: error: torch is not installed")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_doctor_runs_without_torch_and_reports_the_embedded_default():
    proc = _run("from litevit.cli import main; sys.exit(main(['doctor']))")
    assert proc.returncode == 0, proc.stderr
    assert "torch" in proc.stdout and "default" in proc.stdout and "OK" in proc.stdout


def test_build_val_and_quant_report_commands_parse_without_torch():
    for command in ("build", "selftest", "val", "quant-report", "triton-repo", "plugins", "serve"):
        proc = _run(f"from litevit.cli import main; sys.exit(main(['{command}', '--help']))")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"usage: litevit {command}")


def test_parser_coverage_runs_from_the_installed_table_without_torch():
    # The table ships as package data; a JetPack 5 install (Python 3.8, TensorRT 8.5) checks its
    # graphs with it before a build.
    proc = _run(
        "import numpy as np\n"
        "from onnx import TensorProto, helper, numpy_helper\n"
        "from litevit.runtime.trt_build.parser_coverage import unsupported_nodes\n"
        "scale = numpy_helper.from_array(np.ones(4, np.float32), 'scale')\n"
        "x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 4])\n"
        "y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [2, 4])\n"
        "node = helper.make_node('LayerNormalization', ['x', 'scale'], ['y'], name='ln')\n"
        "model = helper.make_model(helper.make_graph([node], 'g', [x], [y], [scale]),\n"
        "                          opset_imports=[helper.make_opsetid('', 17)])\n"
        "print([(p.node, p.op_type, p.release) for p in unsupported_nodes(model, '8.5.2.2')])\n"
        "print(unsupported_nodes(model, '8.6.2.3'))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["[('ln', 'LayerNormalization', 'TensorRT 8.5')]", "[]"]
