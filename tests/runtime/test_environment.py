"""Environment facts: parsers on recorded output formats, and collect_environment against fixtures
(fake nvidia-smi / nvpmodel / jetson_clocks on PATH, a fake /etc/nv_tegra_release)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile

import pytest

from litevit.runtime import environment as env

# /etc/nv_tegra_release first lines as shipped (JetPack 4.6.1, 5.1.2, 6.1).
RELEASE_R32 = (
    "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
    "DATE: Sat Feb 19 17:05:08 UTC 2022\n"
)
RELEASE_R35 = (
    "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
    "DATE: Tue Aug  1 19:57:35 UTC 2023\n"
    "# KERNEL_VARIANT: oot\n"
    "TARGET_USERSPACE_LIB_DIR=nvidia\n"
    "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n"
)
RELEASE_R36 = (
    "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, "
    "DATE: Fri Sep 13 04:36:44 UTC 2024\n"
)

# `nvpmodel -q`: as root, and as a user on a Nano (the mode, then errors on root-only files).
NVPMODEL_ROOT = "NV Power Mode: MAXN\n0\n"
NVPMODEL_USER = (
    "NV Power Mode: 5W\n1\n"
    "NVPM ERROR: Error opening /sys/kernel/nvpmodel_emc_cap/emc_iso_cap: 13\n"
    "NVPM ERROR: failed to read PARAM EMC: ARG MAX_FREQ: PATH /sys/kernel/nvpmodel_emc_cap/emc_iso_cap\n"
)

# `jetson_clocks --show` after jetson_clocks on a TX1 (L4T 28), and an Orin in default DVFS.
CLOCKS_ON_TX1 = """SOC family:tegra210  Machine:jetson_tx1
Online CPUs: 0-3
CPU Cluster Switching: Disabled
cpu0: Gonvernor=interactive MinFreq=1734000 MaxFreq=1734000 CurrentFreq=1734000
cpu1: Gonvernor=interactive MinFreq=1734000 MaxFreq=1734000 CurrentFreq=1734000
cpu2: Gonvernor=interactive MinFreq=1734000 MaxFreq=1734000 CurrentFreq=1734000
cpu3: Gonvernor=interactive MinFreq=1734000 MaxFreq=1734000 CurrentFreq=1734000
GPU MinFreq=998400000 MaxFreq=998400000 CurrentFreq=998400000
EMC MinFreq=12750000 MaxFreq=1600000000 CurrentFreq=1600000000 FreqOverride=1
Fan: speed=255
"""
CLOCKS_OFF_ORIN = """SOC family:tegra234  Machine:NVIDIA Jetson AGX Orin Developer Kit
Online CPUs: 0-11
cpu0: Online=1 Governor=schedutil MinFreq=115200 MaxFreq=2201600 CurrentFreq=1651200 IdleStates: WFI=1 c7=1
cpu1: Online=1 Governor=schedutil MinFreq=115200 MaxFreq=2201600 CurrentFreq=729600 IdleStates: WFI=1 c7=1
GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=306000000
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=2133000000 FreqOverride=0
FAN Dynamic Speed control=active hwmon4_pwm=0
NV Power Mode: MAXN
"""

CPUINFO_X86 = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz\n"
)
CPUINFO_ORIN = (
    "processor\t: 0\nmodel name\t: ARMv8 Processor rev 1 (v8l)\nBogoMIPS\t: 62.50\nCPU part\t: 0xd42\n"
)
CPUINFO_OLD_ARM = "Processor\t: AArch64 Processor rev 1 (aarch64)\nprocessor\t: 0\nHardware\t: jetson_tx1\n"


@pytest.mark.parametrize(
    ("text", "l4t", "jetpack"),
    [
        (RELEASE_R32, "32.7.1", "4.6.1"),
        (RELEASE_R35, "35.4.1", "5.1.2"),
        (RELEASE_R36, "36.4.0", "6.1"),
        (RELEASE_R36.replace("REVISION: 4.0", "REVISION: 4.7"), "36.4.7", "6.x"),
        ("# R28 (release), REVISION: 2, GCID: 10567845", "28.2.0", None),
        ("not a release file", None, None),
    ],
)
def test_l4t_release_and_jetpack(text, l4t, jetpack):
    assert env.parse_l4t_release(text) == l4t
    assert env.jetpack_for_l4t(l4t) == jetpack


def test_nvpmodel():
    assert env.parse_nvpmodel(NVPMODEL_ROOT) == "MAXN"
    assert env.parse_nvpmodel(NVPMODEL_USER) == "5W"
    assert env.parse_nvpmodel("NVPM ERROR: failed to open config\n") is None


def test_jetson_clocks():
    assert env.parse_jetson_clocks(CLOCKS_ON_TX1) == "on"
    assert env.parse_jetson_clocks(CLOCKS_OFF_ORIN) == "off"
    # Only the GPU left to DVFS is enough for "off".
    gpu_free = CLOCKS_ON_TX1.replace("GPU MinFreq=998400000", "GPU MinFreq=76800000")
    assert env.parse_jetson_clocks(gpu_free) == "off"
    assert env.parse_jetson_clocks("jetson_clocks: must be run as root\n") is None


def test_nvidia_smi_cpuinfo_cuda_cudnn_torch_parsers():
    assert env.parse_nvidia_smi(
        "NVIDIA H100 80GB HBM3, 9.0, 550.54.15\nNVIDIA H100 80GB HBM3, 9.0, 550.54.15\n"
    ) == {
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "compute_capability": "9.0",
        "driver": "550.54.15",
    }
    assert env.parse_nvidia_smi("Orin (nvgpu), [N/A], 540.4.0\n")["compute_capability"] is None
    assert env.parse_nvidia_smi("") == {}
    assert env.parse_cpu_model(CPUINFO_X86) == "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"
    assert env.parse_cpu_model(CPUINFO_ORIN) == "ARMv8 Processor rev 1 (v8l)"
    assert env.parse_cpu_model(CPUINFO_OLD_ARM) == "AArch64 Processor rev 1 (aarch64)"
    assert env.parse_cpu_model("processor\t: 0\nHardware\t: jetson_tx1\n") == "jetson_tx1"
    version_json = (
        '{\n   "cuda" : {\n      "name" : "CUDA SDK",\n      "version" : "12.6.68"\n   },\n'
        '   "cuda_cudart" : {}\n}'
    )
    assert env.parse_cuda_version_file(version_json) == "12.6.68"
    assert env.parse_cuda_version_file("CUDA Version 10.2.89\n") == "10.2.89"
    header = "#define CUDNN_MAJOR 9\n#define CUDNN_MINOR 3\n#define CUDNN_PATCHLEVEL 0\n"
    assert env.parse_cudnn_header(header) == "9.3.0"
    assert env.parse_cudnn_header("#define CUDNN_MAJOR 9\n") is None
    assert env.cuda_from_torch_version("2.6.0+cu124") == "12.4"
    assert env.cuda_from_torch_version("2.13.0+cu130") == "13.0"
    assert env.cuda_from_torch_version("2.13.0+cpu") is None


def _fake_command(folder, name, output, exit_code=0):
    path = folder / name
    path.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\nexit {exit_code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_collect_environment_on_a_fake_jetson(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_command(bin_dir, "nvidia-smi", "Orin (nvgpu), 8.7, 540.4.0\n")
    _fake_command(bin_dir, "nvpmodel", NVPMODEL_USER, exit_code=1)  # the mode counts despite the errors
    _fake_command(bin_dir, "jetson_clocks", CLOCKS_ON_TX1)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    release = tmp_path / "nv_tegra_release"
    release.write_text(RELEASE_R36)
    monkeypatch.setattr(env, "JETSON_RELEASE_FILE", str(release))
    monkeypatch.setattr(env, "CUDA_VERSION_FILES", (str(tmp_path / "missing.json"),))
    facts = env.collect_environment(threads=4)
    assert list(facts) == [
        "host", "os", "python", "cpu_model", "cpu_cores", "threads", "gpu_name", "compute_capability",
        "driver", "cuda", "cudnn", "tensorrt", "onnxruntime", "torch", "jetson",
    ]  # fmt: skip
    assert (facts["gpu_name"], facts["compute_capability"], facts["driver"]) == (
        "Orin (nvgpu)",
        "8.7",
        "540.4.0",
    )
    assert facts["threads"] == 4 and facts["cpu_cores"] == os.cpu_count()
    assert facts["jetson"] == {
        "l4t": "36.4.0",
        "jetpack": "6.1",
        "nvpmodel_mode": "5W",
        "jetson_clocks": "on",
    }
    assert facts["onnxruntime"] is not None


def test_collect_environment_off_jetson_without_tools(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi, nvpmodel, jetson_clocks
    monkeypatch.setattr(env, "JETSON_RELEASE_FILE", str(tmp_path / "absent"))
    facts = env.collect_environment()
    assert facts["jetson"] is None
    assert facts["threads"] is None
    if "torch" not in sys.modules and not (env.has("cuda.bindings") or env.has("cuda.cudart")):
        assert facts["gpu_name"] is None


def test_collect_environment_never_imports_torch():
    code = (
        "import sys\n"
        "from litevit.runtime.environment import collect_environment\n"
        "facts = collect_environment()\n"
        "print('torch' in sys.modules, facts['torch'] is not None, facts['python'] is not None)\n"
    )
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    # torch's version is read from its metadata (installed here), without importing it.
    assert proc.stdout.split() == ["False", "True", "True"]
