"""Compile litevit's CUDA kernels and plugin C++ without CMake: nvcc, NVRTC and g++.

* :func:`nvcc_compile`: a kernel source for several GPU architectures into one fatbin, host and
  device warnings as errors (the CI check for sm_75/87/90/110; the installed CUDA 13 cannot target
  sm_70/72).
* :func:`nvrtc_compile`: the same source through NVRTC (``cuda.bindings.nvrtc``) to PTX, and a cubin
  for an ``sm_XX`` target: the source-compatibility check for V100 (sm_70) and Xavier (sm_72), and
  the run-time compiler of the Python plugin path.
* :func:`cxx_compile`: plain C++17 (op cores, serialization, test programs) with g++.

Each raises :class:`CompileError` (a :class:`~litevit.errors.LitevitError`) with the first error
line as its message and the whole compiler output in ``log``; a missing compiler is one sentence
saying what to install. Nothing here imports CUDA at module import.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litevit.errors import LitevitError

# Host-compiler flags for every C++ translation unit (g++ and nvcc's host side).
CXX_WARNINGS = ("-Wall", "-Wextra", "-Werror")
CXX_STANDARD = "c++17"
# The header every kernel includes on the device side; a CUDA include dir must provide it.
_DEVICE_HEADER = "cuda_fp16.h"
# NVRTC 12.x notes that compute_70/72 are deprecated; that is the point of compiling for them.
_NVRTC_ARCH_NOTE = re.compile(r"^nvrtc: warning: Architectures prior to .* are deprecated")
_NVRTC_DIAGNOSTIC = re.compile(r"\(\d+\): (error|warning)|^nvrtc: (error|warning)")
_ARCH = re.compile(r"^(?:sm_|compute_)?(\d+)$")


class CompileError(LitevitError):
    """A compiler refused a source: the message is its first error line, ``log`` all it printed."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class NvrtcResult:
    arch: str  # what was asked: "compute_70" (PTX only) or "sm_72" (PTX and cubin)
    ptx: str
    cubin: bytes | None
    log: str


def arch_number(arch: int | str) -> int:
    """75 from 75, "75", "sm_75" or "compute_75"."""
    match = _ARCH.match(str(arch).strip())
    if match is None:
        raise LitevitError(f"{arch!r} is not a GPU architecture; write it as 87, sm_87 or compute_87.")
    return int(match.group(1))


def _first_line(log: str, pattern: re.Pattern[str], fallback: str) -> str:
    for line in log.splitlines():
        if pattern.search(line):
            return line.strip()
    return fallback


def _run(command: Sequence[str], what: str) -> str:
    """Run a compiler; its output on success, CompileError with the first error line otherwise."""
    proc = subprocess.run(list(command), capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        first = _first_line(log, re.compile(r"error", re.IGNORECASE), f"{what} failed ({proc.returncode})")
        raise CompileError(first, log)
    return log


def find_nvcc() -> str:
    """nvcc from $CUDACXX, PATH, $CUDA_HOME/$CUDA_PATH or /usr/local/cuda, else one sentence."""
    candidates = [os.environ.get("CUDACXX"), shutil.which("nvcc")]
    candidates += [str(Path(root) / "bin" / "nvcc") for root in _cuda_roots()]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise LitevitError(
        "nvcc (the CUDA compiler) was not found on PATH, in $CUDA_HOME or /usr/local/cuda: install the CUDA "
        "toolkit (pip wheels have no nvcc)."
    )


def find_cxx() -> str:
    """The C++ compiler: $CXX, else g++."""
    chosen = os.environ.get("CXX") or "g++"
    path = shutil.which(chosen)
    if path is None:
        raise LitevitError(
            f"the C++ compiler {chosen!r} was not found: install g++ (apt install g++) or set $CXX."
        )
    return path


def _cuda_roots() -> list[Path]:
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    return [Path(root) for root in roots if root]


def _wheel_include_dirs() -> list[Path]:
    """Include dirs of the pip CUDA wheels (``nvidia/cuda_runtime/include`` and the NVRTC one)."""
    import importlib.util

    found = []
    for package in ("nvidia.cuda_runtime", "nvidia.cuda_nvrtc"):
        try:
            spec = importlib.util.find_spec(package)
        except (ModuleNotFoundError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            found.append(Path(location) / "include")
    return found


def cuda_include_dir() -> Path:
    """A directory with CUDA's device headers (cuda_fp16.h) for NVRTC: $CUDA_HOME, $CUDA_PATH,
    /usr/local/cuda, else the nvidia-cuda-runtime / nvidia-cuda-nvrtc wheels."""
    candidates = [root / "include" for root in _cuda_roots()] + _wheel_include_dirs()
    for candidate in candidates:
        if (candidate / _DEVICE_HEADER).is_file():
            return candidate
    raise LitevitError(
        f"no CUDA include directory with {_DEVICE_HEADER} was found ($CUDA_HOME, $CUDA_PATH, "
        f"/usr/local/cuda, the nvidia-cuda-runtime wheel): install the CUDA toolkit or pip install "
        f"'nvidia-cuda-runtime-cu12'."
    )


def nvcc_compile(
    source: Path,
    archs: Sequence[int | str],
    out_dir: Path,
    *,
    include_dirs: Sequence[Path] = (),
    nvcc: str | None = None,
) -> Path:
    """Compile ``source`` for each of ``archs`` into ``out_dir/<stem>.fatbin`` (SASS per arch), with
    nvcc and host-compiler warnings as errors.

    One ``nvcc -c`` does it: the host side of the file is compiled too (so its warnings count), and
    the fatbin is taken from the kept intermediates.
    """
    numbers = sorted({arch_number(arch) for arch in archs})
    if not numbers:
        raise LitevitError("nvcc_compile needs at least one GPU architecture.")
    compiler = nvcc or find_nvcc()
    gencode = [f"-gencode=arch=compute_{n},code=sm_{n}" for n in numbers]
    source = Path(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="litevit-nvcc-") as scratch:
        command = [
            compiler,
            f"-std={CXX_STANDARD}",
            "-c",
            *gencode,
            "-Werror=all-warnings",
            "-Xcompiler=" + ",".join(CXX_WARNINGS),
            *(f"-I{directory}" for directory in include_dirs),
            "-keep",
            f"-keep-dir={scratch}",
            str(source),
            "-o",
            str(Path(scratch) / f"{source.stem}.o"),
        ]
        _run(command, f"nvcc {source.name}")
        fatbin = Path(scratch) / f"{source.stem}.fatbin"
        if not fatbin.is_file():
            raise CompileError(f"nvcc left no {fatbin.name} among its intermediates.", "")
        target = out_dir / fatbin.name
        shutil.move(str(fatbin), target)
    return target


def _nvrtc() -> Any:
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        raise LitevitError(
            "cuda-python (cuda.bindings) is not installed; compiling kernels with NVRTC needs it: "
            "pip install 'litevit[kernels]'."
        ) from None
    return nvrtc


def _check(nvrtc: Any, result: tuple[Any, ...], what: str) -> tuple[Any, ...]:
    if result[0] != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise LitevitError(f"NVRTC failed to {what} ({result[0]}).")
    return result[1:]


def nvrtc_compile(
    source: Path,
    arch: str,
    *,
    include_dirs: Sequence[Path] = (),
    warnings_as_errors: bool = True,
) -> NvrtcResult:
    """Compile ``source`` with NVRTC for ``arch``: ``compute_XX`` gives PTX, ``sm_XX`` PTX and a cubin.

    The source's directory and CUDA's include dir (:func:`cuda_include_dir`) are on the include
    path. NVRTC has no -Werror: with ``warnings_as_errors`` a warning about the source fails the
    compile like an error (NVRTC's note that pre-sm_75 targets are deprecated does not).
    """
    if not re.fullmatch(r"(sm|compute)_\d+", arch):
        raise LitevitError(f"NVRTC targets are written compute_XX or sm_XX, not {arch!r}.")
    nvrtc = _nvrtc()
    source = Path(source)
    directories = [source.parent, *include_dirs, cuda_include_dir()]
    options = [f"--gpu-architecture={arch}", f"-std={CXX_STANDARD}"]
    options += [f"-I{directory}" for directory in directories]
    try:
        created = nvrtc.nvrtcCreateProgram(source.read_bytes(), source.name.encode(), 0, [], [])
        (program,) = _check(nvrtc, created, "create a program")
    except RuntimeError as exc:  # cuda.bindings cannot find libnvrtc
        raise LitevitError(
            f"NVRTC (libnvrtc) is not available ({exc}): pip install 'nvidia-cuda-nvrtc-cu12'."
        ) from None
    try:
        encoded = [option.encode() for option in options]
        (status,) = nvrtc.nvrtcCompileProgram(program, len(encoded), encoded)
        (size,) = _check(nvrtc, nvrtc.nvrtcGetProgramLogSize(program), "read the log size")
        # NVRTC writes into the buffers it is given: they must be fresh and mutable. (b" " * 1 is
        # the interpreter's shared b" " itself: filling it with NVRTC's empty log turned every b" "
        # in the process into b"\x00" and broke torch.load.)
        buffer = bytearray(size)
        _check(nvrtc, nvrtc.nvrtcGetProgramLog(program, buffer), "read the log")
        log = bytes(buffer).rstrip(b"\x00 ").decode(errors="replace")
        diagnostics = [
            line.strip()
            for line in log.splitlines()
            if _NVRTC_DIAGNOSTIC.search(line) and not _NVRTC_ARCH_NOTE.match(line)
        ]
        if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            errors = [line for line in diagnostics if "error" in line]
            fallback = f"NVRTC could not compile {source.name} for {arch}"
            raise CompileError((errors or diagnostics or [fallback])[0], log)
        if warnings_as_errors and diagnostics:
            raise CompileError(diagnostics[0], log)
        (ptx_size,) = _check(nvrtc, nvrtc.nvrtcGetPTXSize(program), "read the PTX size")
        ptx = bytearray(ptx_size)
        _check(nvrtc, nvrtc.nvrtcGetPTX(program, ptx), "read the PTX")
        cubin: bytes | None = None
        if arch.startswith("sm_"):
            (cubin_size,) = _check(nvrtc, nvrtc.nvrtcGetCUBINSize(program), "read the cubin size")
            cubin_buffer = bytearray(cubin_size)
            _check(nvrtc, nvrtc.nvrtcGetCUBIN(program, cubin_buffer), "read the cubin")
            cubin = bytes(cubin_buffer)
    finally:
        nvrtc.nvrtcDestroyProgram(program)
    return NvrtcResult(arch, bytes(ptx).rstrip(b"\x00").decode(), cubin, log)


def cxx_compile(
    sources: Sequence[Path],
    output: Path,
    *,
    include_dirs: Sequence[Path] = (),
    flags: Sequence[str] = (),
    compiler: str | None = None,
) -> Path:
    """Compile and link ``sources`` into the executable ``output`` (C++17, -Wall -Wextra -Werror)."""
    command = [
        compiler or find_cxx(),
        f"-std={CXX_STANDARD}",
        *CXX_WARNINGS,
        *flags,
        *(f"-I{directory}" for directory in include_dirs),
        *(str(source) for source in sources),
        "-o",
        str(output),
    ]
    output.parent.mkdir(parents=True, exist_ok=True)
    _run(command, f"{Path(command[0]).name} {output.name}")
    return output


__all__ = [
    "CompileError",
    "NvrtcResult",
    "arch_number",
    "cuda_include_dir",
    "cxx_compile",
    "find_cxx",
    "find_nvcc",
    "nvcc_compile",
    "nvrtc_compile",
]
