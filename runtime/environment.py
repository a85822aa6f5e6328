"""The machine a benchmark ran on, read from the system: every fact that cannot be read is None.

Nothing here imports torch, TensorRT or a CUDA binding to ask a version: installed versions come
from package metadata (``importlib.metadata``), the GPU from ``nvidia-smi`` (or, when it is absent,
from cuda-python if installed, or from torch if the caller already imported it), Jetson facts from
``/etc/nv_tegra_release``, ``nvpmodel -q`` and ``jetson_clocks --show``. The parsers are pure
functions of text so they can be tested on recorded output.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from litevit._deps import has

# Module constants so tests can point them at fixtures.
JETSON_RELEASE_FILE = "/etc/nv_tegra_release"
JETSON_MODEL_FILE = "/proc/device-tree/model"
CPUINFO_FILE = "/proc/cpuinfo"
CUDA_VERSION_FILES = ("/usr/local/cuda/version.json", "/usr/local/cuda/version.txt")
CUDNN_VERSION_HEADERS = ("/usr/include/cudnn_version.h", "/usr/include/aarch64-linux-gnu/cudnn_version_v8.h")
NVIDIA_SMI = "nvidia-smi"
NVPMODEL = "nvpmodel"
JETSON_CLOCKS = "jetson_clocks"
COMMAND_TIMEOUT_S = 10.0

# Jetson Linux (L4T) release -> JetPack release, from NVIDIA's JetPack archive
# (https://developer.nvidia.com/embedded/jetpack-archive) and its release pages (docs/tensorrt.md,
# "JetPack, Jetson Linux, CUDA and TensorRT"). A release not listed maps to its family ("6.x").
L4T_TO_JETPACK = {
    "32.6.1": "4.6",
    "32.7.1": "4.6.1",
    "32.7.2": "4.6.2",
    "32.7.3": "4.6.3",
    "32.7.4": "4.6.4",
    "32.7.5": "4.6.5",
    "32.7.6": "4.6.6",
    "35.1.0": "5.0.2",
    "35.2.1": "5.1",
    "35.3.1": "5.1.1",
    "35.4.1": "5.1.2",
    "35.5.0": "5.1.3",
    "35.6.0": "5.1.4",
    "35.6.1": "5.1.5",
    "36.2.0": "6.0 DP",
    "36.3.0": "6.0",
    "36.4.0": "6.1",
    "36.4.3": "6.2",
    "36.4.4": "6.2.1",
    "38.2.0": "7.0",
}
L4T_MAJOR_TO_JETPACK_FAMILY = {"32": "4.x", "35": "5.x", "36": "6.x", "38": "7.x", "39": "7.x"}


# ---------------------------------------------------------------------------------------------
# Parsers: text in, fact out (None when the text does not say).


def parse_cpu_model(cpuinfo: str) -> str | None:
    """The CPU model from /proc/cpuinfo: "model name" (x86, recent ARM kernels), else older ARM
    kernels' "Processor", else their board name ("Hardware")."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "processor", "hardware"):
        model = fields.get(key)
        # On x86 "processor" is the core index; a bare number is not a model.
        if model and not model.isdigit():
            return model
    return None


def parse_l4t_release(text: str) -> str | None:
    """``# R35 (release), REVISION: 4.1, GCID: ...`` -> ``"35.4.1"``."""
    match = re.search(r"#\s*R(\d+)\s*\([^)]*\),\s*REVISION:\s*(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    major, minor, patch = match.group(1), match.group(2), match.group(3) or "0"
    return f"{major}.{minor}.{patch}"


def jetpack_for_l4t(l4t: str | None) -> str | None:
    if l4t is None:
        return None
    return L4T_TO_JETPACK.get(l4t) or L4T_MAJOR_TO_JETPACK_FAMILY.get(l4t.split(".")[0])


def parse_nvpmodel(text: str) -> str | None:
    """``nvpmodel -q`` output (``NV Power Mode: MAXN`` then the mode id; unprivileged runs add
    ``NVPM ERROR`` lines after it) -> the mode name."""
    match = re.search(r"NV Power Mode:\s*(\S+)", text)
    return match.group(1) if match else None


def parse_jetson_clocks(text: str) -> str | None:
    """``jetson_clocks --show`` -> "on" when every online CPU and the GPU have their minimum
    frequency raised to their maximum (what jetson_clocks does), "off" when any has not, None
    when the output lists no frequencies (e.g. not run as root)."""
    pinned: list[bool] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not (re.match(r"cpu\d+:", stripped) or stripped.startswith("GPU ")):
            continue
        low = re.search(r"MinFreq=(\d+)", stripped)
        high = re.search(r"MaxFreq=(\d+)", stripped)
        if low and high:
            pinned.append(low.group(1) == high.group(1))
    if not pinned:
        return None
    return "on" if all(pinned) else "off"


def parse_nvidia_smi(text: str) -> dict[str, str | None]:
    """First line of ``nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader``."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return {}
    fields = [field.strip() for field in lines[0].split(",")]
    if len(fields) != 3:
        return {}
    # nvidia-smi writes "[N/A]" (or "N/A") for a field it cannot read, e.g. on Jetson.
    name, capability, driver = (None if "N/A" in f else f for f in fields)
    return {"gpu_name": name, "compute_capability": capability, "driver": driver}


def parse_cuda_version_file(text: str) -> str | None:
    """``/usr/local/cuda/version.json`` (CUDA >= 11.1) or ``version.txt`` -> "major.minor.patch"."""
    match = re.search(r'"cuda"\s*:\s*\{[^}]*"version"\s*:\s*"([\d.]+)"', text) or re.search(
        r"CUDA Version\s+([\d.]+)", text
    )
    return match.group(1) if match else None


def parse_cudnn_header(text: str) -> str | None:
    """``#define CUDNN_MAJOR 9`` / ``CUDNN_MINOR`` / ``CUDNN_PATCHLEVEL`` -> "9.3.0"."""
    parts = [re.search(rf"#define\s+CUDNN_{key}\s+(\d+)", text) for key in ("MAJOR", "MINOR", "PATCHLEVEL")]
    if any(part is None for part in parts):
        return None
    return ".".join(part.group(1) for part in parts if part is not None)


def cuda_from_torch_version(version: str | None) -> str | None:
    """torch's local version label names its CUDA build: ``2.6.0+cu124`` -> "12.4"."""
    match = re.search(r"\+cu(\d+)(\d)$", version or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None


# ---------------------------------------------------------------------------------------------
# Readers: run a command or read a file; anything that fails is None.


def _read_text(path: str) -> str | None:
    try:
        # Device-tree strings end in NUL.
        return Path(path).read_text(errors="replace").replace("\x00", "")
    except OSError:
        return None


def _run(*command: str) -> str | None:
    """stdout of ``command`` (also when it exits non-zero: nvpmodel prints the mode and then
    fails on files a non-root user cannot read), or None when it is absent or hangs."""
    executable = shutil.which(command[0])
    if executable is None:
        return None
    try:
        proc = subprocess.run(
            [executable, *command[1:]], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout


def package_version(*distributions: str) -> str | None:
    """The installed version of the first of ``distributions`` that is installed."""
    for distribution in distributions:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _gpu_from_cuda_python() -> dict[str, str | None]:
    if not (has("cuda.bindings") or has("cuda.cudart")):
        return {}
    try:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart  # type: ignore[no-redef]
        error, props = cudart.cudaGetDeviceProperties(0)
        if error != cudart.cudaError_t.cudaSuccess:
            return {}
        name = (
            props.name.decode(errors="replace").rstrip("\x00")
            if isinstance(props.name, bytes)
            else props.name
        )
        # The runtime API does not tell the driver's build number; nvidia-smi does.
        return {"gpu_name": str(name), "compute_capability": f"{props.major}.{props.minor}", "driver": None}
    except Exception:  # no driver library, no device: the binding raises several types
        return {}


def _gpu_from_loaded_torch() -> dict[str, str | None]:
    torch = sys.modules.get("torch")  # never import torch just to ask
    if torch is None:
        return {}
    try:
        if not torch.cuda.is_available():
            return {}
        major, minor = torch.cuda.get_device_capability(0)
        return {
            "gpu_name": torch.cuda.get_device_name(0),
            "compute_capability": f"{major}.{minor}",
            "driver": None,
        }
    except Exception:  # a broken CUDA install raises from inside torch
        return {}


def gpu_facts() -> dict[str, str | None]:
    """Name, compute capability and driver of GPU 0."""
    smi = _run(NVIDIA_SMI, "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader")
    facts = parse_nvidia_smi(smi) if smi else {}
    for fallback in (_gpu_from_cuda_python, _gpu_from_loaded_torch):
        if facts.get("gpu_name") and facts.get("compute_capability"):
            break
        for key, value in fallback().items():
            if facts.get(key) is None:
                facts[key] = value
    return {key: facts.get(key) for key in ("gpu_name", "compute_capability", "driver")}


def cuda_version() -> str | None:
    """The CUDA toolkit/runtime: the system toolkit's version file, else the pip CUDA runtime
    wheel, else the CUDA build of the installed torch wheel."""
    for path in CUDA_VERSION_FILES:
        text = _read_text(path)
        if text and (version := parse_cuda_version_file(text)):
            return version
    return package_version(
        "nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime-cu11", "nvidia-cuda-runtime"
    ) or cuda_from_torch_version(package_version("torch"))


def cudnn_version() -> str | None:
    for path in CUDNN_VERSION_HEADERS:
        text = _read_text(path)
        if text and (version := parse_cudnn_header(text)):
            return version
    return package_version("nvidia-cudnn-cu12", "nvidia-cudnn-cu11", "nvidia-cudnn-cu13")


def tensorrt_version() -> str | None:
    # pip wheels are "tensorrt" (meta) or "tensorrt-cuXX"; JetPack's python3-libnvinfer
    # installs a "tensorrt" dist-info too.
    return package_version("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt-cu11")


def jetson_facts() -> dict[str, str | None] | None:
    """None off a Jetson; else L4T, JetPack, power mode and jetson_clocks state."""
    release = _read_text(JETSON_RELEASE_FILE)
    if release is None:
        return None
    l4t = parse_l4t_release(release)
    nvpmodel = _run(NVPMODEL, "-q")
    clocks = _run(JETSON_CLOCKS, "--show")
    return {
        "l4t": l4t,
        "jetpack": jetpack_for_l4t(l4t),
        "nvpmodel_mode": parse_nvpmodel(nvpmodel) if nvpmodel else None,
        "jetson_clocks": parse_jetson_clocks(clocks) if clocks else None,
    }


def jetson_model() -> str | None:
    """The module's name from the device tree, e.g. "NVIDIA Jetson AGX Orin Developer Kit"."""
    text = _read_text(JETSON_MODEL_FILE)
    if text is None:
        return None
    return text.strip() or None


def collect_environment(threads: int | None = None) -> dict[str, Any]:
    """The ``environment`` object of a ``litevit.bench/1`` document."""
    cpuinfo = _read_text(CPUINFO_FILE)
    return {
        "host": platform.node() or None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": (parse_cpu_model(cpuinfo) if cpuinfo else None) or platform.processor() or None,
        "cpu_cores": os.cpu_count(),
        "threads": threads,
        **gpu_facts(),
        "cuda": cuda_version(),
        "cudnn": cudnn_version(),
        "tensorrt": tensorrt_version(),
        "onnxruntime": package_version("onnxruntime", "onnxruntime-gpu"),
        "torch": package_version("torch"),
        "jetson": jetson_facts(),
    }


__all__ = [
    "collect_environment",
    "jetpack_for_l4t",
    "parse_jetson_clocks",
    "parse_l4t_release",
    "parse_nvpmodel",
]
