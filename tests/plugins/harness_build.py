"""Build liblitevit_plugins.so against sets of real TensorRT headers and run the C++ harness on it.

For each header set and each plugin API its release has (8.x: IPluginV2DynamicExt; 10+: IPluginV3
and, with ``-DLITEVIT_PLUGIN_API=v2``, IPluginV2DynamicExt): a stub libnvinfer for the link
(``trt_harness/nvinfer_stub.cpp``), the library by ``plugins/CMakeLists.txt`` with its own defaults
(warnings as errors; one GPU architecture, 75, as the TensorRT glue is host code; its C++ under
AddressSanitizer), the harness
(``trt_harness/harness.cpp``) against the same headers under AddressSanitizer, then the harness on
the library and ``trt_harness/plugin_nodes.json``.

    python tests/plugins/harness_build.py ../shared/third_party/tensorrt      # every <version>/include below
    python tests/plugins/harness_build.py /path/to/TensorRT-8.6.1/include --build-dir /tmp/plugins

Used by ``.ci/plugins`` and ``tests/plugins/test_trt_harness.py``. With ``--build-dir`` (or
``$LITEVIT_PLUGIN_BUILD_DIR``) the builds are kept there and rebuilt only where they changed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
HARNESS = Path(__file__).resolve().parent / "trt_harness"
FIXTURE = HARNESS / "plugin_nodes.json"
BUILD_DIR_ENV = "LITEVIT_PLUGIN_BUILD_DIR"
# The TensorRT glue is host code; the kernels' architectures are covered by test_compile.py and the
# full-architecture build in .ci/plugins.
ARCH = "75"
SANITIZE = ("-fsanitize=address", "-fno-omit-frame-pointer")
HARNESS_FLAGS = (
    "-std=c++17",
    "-O1",
    "-g",
    *SANITIZE,
    "-Wall",
    "-Wextra",
    "-Werror",
    # The harness plays TensorRT, which implements and calls its own deprecated plugin interfaces.
    "-Wno-deprecated-declarations",
)


@dataclass(frozen=True)
class HeaderSet:
    version: tuple[int, int, int]
    include: Path

    @property
    def name(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def apis(self) -> tuple[str, ...]:
        """``auto`` (IPluginV3 from 10, IPluginV2DynamicExt before) and, from 10, ``v2`` as well."""
        return ("auto", "v2") if self.version[0] >= 10 else ("auto",)


def header_version(include: Path) -> tuple[int, int, int] | None:
    from litevit.plugins.build import parse_tensorrt_version

    header = include / "NvInferVersion.h"
    return parse_tensorrt_version(header.read_text(errors="replace")) if header.is_file() else None


def find_header_sets(*places: Path) -> list[HeaderSet]:
    """The include dirs in ``places``: each an include dir itself, or a folder of ``<version>/include``."""
    found: dict[Path, HeaderSet] = {}
    for place in places:
        candidates = [place] if (place / "NvInferVersion.h").is_file() else sorted(place.glob("*/include"))
        for include in candidates:
            version = header_version(include)
            if version is not None:
                found[include.resolve()] = HeaderSet(version, include.resolve())
    return sorted(found.values(), key=lambda s: s.version)


def missing_tools() -> str | None:
    """One sentence naming what this machine lacks to build the library and the harness, or None."""
    from litevit.errors import LitevitError
    from litevit.plugins.compile import cuda_include_dir, find_cxx, find_nvcc

    if shutil.which("cmake") is None:
        return "cmake is not installed"
    try:
        find_nvcc()
        find_cxx()
        cuda_include_dir()
    except LitevitError as missing:
        return str(missing)
    return None


def _run(command: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write("$ " + " ".join(command) + "\n")
        out.flush()
        status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    if status != 0:
        lines = log.read_text(errors="replace").splitlines()
        errors = [line for line in lines if re.search(r"\berror\b", line)]
        raise RuntimeError(f"{command[0]} failed (exit {status}): " + "\n".join((errors or lines)[-15:]))


def build_stub(out: Path) -> Path:
    from litevit.plugins.compile import find_cxx

    library = out / "lib" / "libnvinfer.so"
    library.parent.mkdir(parents=True, exist_ok=True)
    stub = HARNESS / "nvinfer_stub.cpp"
    if not library.is_file() or library.stat().st_mtime < stub.stat().st_mtime:
        _run(
            [find_cxx(), "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", str(stub), "-o", str(library)],
            out / "stub.log",
        )
    return library


def build_library(
    headers: HeaderSet,
    api: str,
    stub: Path,
    build: Path,
    archs: str = ARCH,
    sanitize: bool = True,
    jobs: int = 2,
) -> Path:
    """``plugins/CMakeLists.txt`` with its defaults against ``headers`` (its C++ under AddressSanitizer
    with ``sanitize``); the library's path."""
    from litevit.plugins.compile import find_nvcc

    build.mkdir(parents=True, exist_ok=True)
    log = build / "build.log"
    log.write_text("")
    generator = ["-G", "Ninja"] if shutil.which("ninja") and not (build / "CMakeCache.txt").is_file() else []
    _run(
        [
            "cmake",
            *generator,
            "-S",
            str(PLUGINS),
            "-B",
            str(build),
            f"-DCMAKE_CUDA_ARCHITECTURES={archs}",
            f"-DCMAKE_CUDA_COMPILER={find_nvcc()}",
            f"-DTensorRT_INCLUDE_DIR={headers.include}",
            f"-DTensorRT_LIBRARY={stub}",
            f"-DLITEVIT_PLUGIN_API={api}",
            # AddressSanitizer in the library's C++ as well, so that the harness sees its heap.
            f"-DCMAKE_CXX_FLAGS={' '.join(SANITIZE) if sanitize else ''}",
            f"-DCMAKE_SHARED_LINKER_FLAGS={SANITIZE[0] if sanitize else ''}",
        ],
        log,
    )
    _run(["cmake", "--build", str(build), "--parallel", str(jobs)], log)
    return build / "liblitevit_plugins.so"


def build_harness(headers: HeaderSet, out: Path) -> Path:
    from litevit.plugins.compile import cuda_include_dir, find_cxx

    out.mkdir(parents=True, exist_ok=True)
    binary = out / "trt_harness"
    sources = [HARNESS / name for name in ("harness.cpp", "trt_host.h", "json.h")]
    newest = max(path.stat().st_mtime for path in sources)
    if binary.is_file() and binary.stat().st_mtime >= newest:
        return binary
    command = [
        find_cxx(),
        *HARNESS_FLAGS,
        f"-isystem{headers.include}",
        f"-isystem{cuda_include_dir()}",
        str(HARNESS / "harness.cpp"),
        "-rdynamic",  # the library binds getPluginRegistry/getLogger to the harness's
        "-ldl",
        "-o",
        str(binary),
    ]
    _run(command, out / "harness.log")
    return binary


def run_harness(binary: Path, library: Path, fixture: Path = FIXTURE) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0"}
    return subprocess.run(
        [str(binary), str(library), str(fixture)], capture_output=True, text=True, env=env, timeout=600
    )


def library_build_dir(build_root: Path, headers: HeaderSet, api: str) -> Path:
    """One build folder for every header set and API where Ninja rebuilds what a new command line
    needs: only common/register.cpp sees TensorRT's headers and the plugin API (CMakeLists.txt), so
    another release or API recompiles the glue alone. Make does not track that: a folder each."""
    return build_root / ("lib" if shutil.which("ninja") else f"lib-trt{headers.name}-{api}")


def check(headers: HeaderSet, api: str, build_root: Path, log: Callable[[str], object] = print) -> bool:
    """Build and run for one header set and API; True when the harness passes."""
    start = time.monotonic()
    try:
        stub = build_stub(build_root / "stub")
        library = build_library(headers, api, stub, library_build_dir(build_root, headers, api))
        built = time.monotonic()
        binary = build_harness(headers, build_root / f"harness-trt{headers.name}")
    except RuntimeError as failed:
        log(f"TensorRT {headers.name} {api}: {failed}")
        return False
    result = run_harness(binary, library)
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "(no output)"
    log(
        f"TensorRT {headers.name} {api}: library built in {built - start:.0f} s; {summary}"
        f" [{time.monotonic() - built:.0f} s]"
    )
    for line in failures:
        log(f"  {line}")
    if result.returncode != 0 and not failures:
        log(result.stdout[-3000:] + result.stderr[-3000:])
    return result.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("places", nargs="+", type=Path, help="include dirs, or folders of <version>/include")
    parser.add_argument("--build-dir", type=Path, default=os.environ.get(BUILD_DIR_ENV) or None)
    parser.add_argument(
        "--archs",
        metavar="LIST",
        help="also build the library once, without sanitizer, against the newest headers for these GPU "
        "architectures (CMake's ;-separated CMAKE_CUDA_ARCHITECTURES), e.g. '75;87;90;110'",
    )
    args = parser.parse_args(argv)
    sets = find_header_sets(*args.places)
    if not sets:
        print(f"no TensorRT headers (NvInferVersion.h) under {', '.join(map(str, args.places))}.")
        return 1
    missing = missing_tools()
    if missing:
        print(f"cannot build the plugin library here: {missing}.")
        return 1
    with tempfile.TemporaryDirectory(prefix="litevit-plugins-") as scratch:
        root = args.build_dir or Path(scratch)
        results = [check(headers, api, root) for headers in sets for api in headers.apis]
        if args.archs:
            results.append(build_for_archs(sets[-1], args.archs, root))
    return 0 if all(results) else 1


def build_for_archs(
    headers: HeaderSet, archs: str, build_root: Path, log: Callable[[str], object] = print
) -> bool:
    """The library for ``archs`` with the project's defaults alone (no sanitizer): the kernels for
    every architecture the README claims, through CMake."""
    start = time.monotonic()
    try:
        stub = build_stub(build_root / "stub")
        library = build_library(headers, "auto", stub, build_root / "lib-archs", archs, False)
    except RuntimeError as failed:
        log(f"TensorRT {headers.name}, architectures {archs}: {failed}")
        return False
    seconds = time.monotonic() - start
    log(f"TensorRT {headers.name}, architectures {archs}: {library.name} built in {seconds:.0f} s")
    return True


if __name__ == "__main__":
    sys.exit(main())
