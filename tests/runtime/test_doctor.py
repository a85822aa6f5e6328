"""litevit doctor: one line per component, a sentence for each missing one, the ORT-CPU verdict."""

from __future__ import annotations

import subprocess
import sys
import tempfile

from litevit.runtime import doctor, environment

LABELS = [
    "litevit", "Python", "numpy", "onnx", "onnxruntime", "torch", "onnxscript", "TensorRT",
    "CUDA binding", "CUDA", "GPU", "Jetson", "plugins", "default",
]  # fmt: skip


def _lines(text):
    return {line[:14].strip(): line[14:] for line in text.splitlines()}


def test_report_on_this_machine_lists_every_component_and_says_ort_works():
    text, works = doctor.doctor_report()
    lines = _lines(text)
    assert list(lines) == LABELS
    assert works
    assert lines["default"].startswith("OK: ONNX Runtime CPU runs graphs")
    assert "CPUExecutionProvider" in lines["onnxruntime"]
    assert lines["plugins"].startswith("TensorRT is not installed here, so no plugin library")
    if not environment.has("tensorrt"):
        assert lines["TensorRT"] == (
            "missing: the trt backend and engine builds are disabled; pip install tensorrt "
            "(on a Jetson it comes with JetPack: sudo apt install python3-libnvinfer)."
        )


def test_engine_line(tmp_path):
    text, _ = doctor.doctor_report(engine=str(tmp_path / "absent.engine"))
    assert _lines(text)["engine"] == f"{tmp_path / 'absent.engine'} does not exist."
    engine = tmp_path / "lvt.fp16.engine"
    engine.write_bytes(b"\x00" * 16)
    line = _lines(doctor.doctor_report(engine=str(engine))[0])["engine"]
    assert "no sidecar lvt.fp16.engine.json" in line
    if not environment.has("tensorrt"):
        assert line.endswith("TensorRT is missing, so whether it loads here cannot be checked.")


def test_jetson_line_from_fixtures(tmp_path, monkeypatch):
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64\n")
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    monkeypatch.setattr(environment, "JETSON_RELEASE_FILE", str(release))
    monkeypatch.setattr(environment, "JETSON_MODEL_FILE", str(model))
    monkeypatch.setattr(environment, "NVPMODEL", "litevit-no-such-command")
    line = _lines(doctor.doctor_report()[0])["Jetson"]
    assert line == (
        "NVIDIA Jetson AGX Orin Developer Kit, L4T 35.4.1, JetPack 5.1.2, power mode unknown, "
        "jetson_clocks unknown (jetson_clocks --show needs root)"
    )


def _run(code: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)


def test_doctor_without_torch_and_without_onnxruntime():
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['onnxscript'] = None\n"
        "sys.modules['onnxruntime'] = None\n"
        "from litevit.runtime.doctor import doctor_report\n"
        "text, works = doctor_report()\n"
        "print(works)\n"
        "print(text)\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    verdict, *report = proc.stdout.splitlines()
    assert verdict == "False"
    lines = _lines("\n".join(report))
    assert lines["onnxruntime"] == (
        "missing: no backend can run an ONNX artefact (ort is the default); pip install 'litevit[ort]'."
    )
    assert lines["default"] == "BROKEN: ONNX Runtime is not installed: pip install 'litevit[ort]'."
