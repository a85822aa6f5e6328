"""``litevit plugins build|path|check``: build liblitevit_plugins.so on the target, find it, load it.

The library is compiled by CMake (``plugins/CMakeLists.txt``, shipped in the package) against this
machine's TensorRT headers and CUDA toolkit, for its GPU, into a cache folder per (TensorRT
version, GPU architecture), e.g. ``~/.cache/litevit/plugins/trt10.3-sm87/liblitevit_plugins.so``:
an engine built with plugins is tied to both anyway. ``check`` loads a library the way engine
builds do (``litevit.runtime.trt_build.load_plugin_library``) and asks TensorRT's registry for
the three creators.

No TensorRT or CUDA is imported at module import.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from litevit.errors import LitevitError
from litevit.plugins.compile import arch_number, find_nvcc
from litevit.plugins.kernels import OP_PACKAGES, PLUGINS_DIR

LIBRARY_NAME = "liblitevit_plugins.so"
PLUGIN_NAMESPACE = "litevit"
PLUGIN_VERSION = "1"
PLUGIN_APIS = ("auto", "v2")
CACHE_ENV = "LITEVIT_CACHE"
TENSORRT_ROOT_ENV = "TENSORRT_ROOT"
VERSION_HEADER = "NvInferVersion.h"
# Where JetPack, NVIDIA's deb packages and tar installs put TensorRT's headers (CMakeLists.txt
# searches the same places).
HEADER_DIRS = (
    f"/usr/include/{platform.machine()}-linux-gnu",
    "/usr/include/aarch64-linux-gnu",
    "/usr/include/x86_64-linux-gnu",
    "/usr/include",
    "/usr/local/TensorRT/include",
    "/opt/tensorrt/include",
    "/usr/local/tensorrt/include",
)


def cache_root() -> Path:
    """``$LITEVIT_CACHE/plugins``, else ``$XDG_CACHE_HOME/litevit/plugins``, else
    ``~/.cache/litevit/plugins``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "plugins"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "litevit" / "plugins"


def parse_tensorrt_version(header: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) from NvInferVersion.h: NV_TENSORRT_MAJOR is a number (8.x) or the
    name of another macro (10.x: TRT_MAJOR_ENTERPRISE)."""
    defines = dict(re.findall(r"^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+(\w+)", header, re.MULTILINE))

    def value(name: str) -> int | None:
        raw = defines.get(name)
        if raw is not None and not raw.isdigit():
            raw = defines.get(raw)
        return int(raw) if raw is not None and raw.isdigit() else None

    parts = [value(f"NV_TENSORRT_{part}") for part in ("MAJOR", "MINOR", "PATCH")]
    if parts[0] is None or parts[1] is None:
        return None
    return parts[0], parts[1], parts[2] or 0


def find_tensorrt_headers(tensorrt_root: str | os.PathLike[str] | None = None) -> Path:
    """The include dir with NvInferVersion.h: ``tensorrt_root``/include, ``$TENSORRT_ROOT``/include,
    then the system locations; one sentence naming what to install when there is none."""
    roots = [tensorrt_root, os.environ.get(TENSORRT_ROOT_ENV)]
    candidates = [Path(root).expanduser() / "include" for root in roots if root]
    if tensorrt_root is not None:
        candidates.append(Path(tensorrt_root).expanduser())  # an include dir given directly
    else:
        candidates += [Path(directory) for directory in HEADER_DIRS]
    for candidate in candidates:
        if (candidate / VERSION_HEADER).is_file():
            return candidate
    where = f"in {tensorrt_root}/include" if tensorrt_root is not None else "in the usual places"
    raise LitevitError(
        f"TensorRT's C++ headers ({VERSION_HEADER}) were not found {where}: on a Jetson sudo apt install "
        f"libnvinfer-dev; for a tar install pass --tensorrt-root DIR (pip wheels ship no headers)."
    )


def header_version(include_dir: Path) -> tuple[int, int, int]:
    version = parse_tensorrt_version((include_dir / VERSION_HEADER).read_text(errors="replace"))
    if version is None:
        raise LitevitError(f"cannot read the TensorRT version from {include_dir / VERSION_HEADER}.")
    return version


def detect_cuda_arch() -> int:
    """This machine's GPU as a CUDA architecture number (8.7 -> 87), or one sentence."""
    from litevit.runtime import environment

    capability = environment.gpu_facts().get("compute_capability")
    if not capability:
        raise LitevitError(
            "cannot tell this machine's GPU (no nvidia-smi answer, no cuda-python): pass --cuda-arch, "
            "e.g. 87 for Orin, 72 for Xavier, 70 for V100."
        )
    return parse_cuda_arch(capability)


def parse_cuda_arch(text: str) -> int:
    """87 from "87", "8.7", "sm_87" or "compute_87"."""
    text = str(text).strip()
    if re.fullmatch(r"\d+\.\d+", text):
        major, minor = text.split(".")
        return int(major) * 10 + int(minor)
    return arch_number(text)


def target_name(tensorrt: tuple[int, ...], arch: int) -> str:
    """The cache folder of one (TensorRT major.minor, GPU arch): ``trt10.3-sm87``."""
    return f"trt{tensorrt[0]}.{tensorrt[1]}-sm{arch}"


def build_library(
    *,
    tensorrt_root: str | None = None,
    cuda_arch: str | int | None = None,
    out: str | os.PathLike[str] | None = None,
    plugin_api: str = "auto",
    jobs: int | None = None,
    log: Callable[[str], object] = print,
) -> Path:
    """Configure and build liblitevit_plugins.so; returns its path."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise LitevitError("cmake was not found: pip install cmake (3.18 or newer) or apt install cmake.")
    if plugin_api not in PLUGIN_APIS:
        raise LitevitError(f"--plugin-api must be one of {', '.join(PLUGIN_APIS)}, not {plugin_api!r}.")
    include_dir = find_tensorrt_headers(tensorrt_root)
    version = header_version(include_dir)
    nvcc = find_nvcc()
    arch = parse_cuda_arch(str(cuda_arch)) if cuda_arch is not None else detect_cuda_arch()
    out_dir = Path(out).expanduser() if out is not None else cache_root() / target_name(version, arch)
    build_dir = out_dir / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    log(
        f"building {LIBRARY_NAME} for TensorRT {'.'.join(map(str, version))} ({include_dir}), sm_{arch}, "
        f"with {nvcc}"
    )
    configure = [
        cmake,
        "-S",
        str(PLUGINS_DIR),
        "-B",
        str(build_dir),
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_CUDA_ARCHITECTURES={arch}",
        f"-DCMAKE_CUDA_COMPILER={nvcc}",
        f"-DTensorRT_INCLUDE_DIR={include_dir}",
        f"-DLITEVIT_OUTPUT_DIR={out_dir}",
        f"-DLITEVIT_PLUGIN_API={plugin_api}",
    ]
    root = tensorrt_root or os.environ.get(TENSORRT_ROOT_ENV)
    if root:
        configure.append(f"-DTENSORRT_ROOT={Path(root).expanduser()}")
    _run_step(configure, "cmake could not configure the plugin build")
    _run_step(
        [cmake, "--build", str(build_dir), "--parallel", str(jobs or os.cpu_count() or 1)],
        "the plugin build failed",
    )
    library = out_dir / LIBRARY_NAME
    if not library.is_file():
        raise LitevitError(f"the build finished but left no {library}.")
    return library


def _run_step(command: list[str], failure: str) -> None:
    # CMake and the compilers print to the terminal: their messages are the useful part of a failure.
    status = subprocess.run(command).returncode
    if status != 0:
        raise LitevitError(f"{failure} (exit status {status}); its output is above.")


def runtime_tensorrt_version() -> tuple[int, int] | None:
    """The installed TensorRT (package metadata, else the headers), as (major, minor)."""
    from litevit.runtime import environment

    installed = environment.tensorrt_version()
    if installed and (match := re.match(r"(\d+)\.(\d+)", installed)):
        return int(match.group(1)), int(match.group(2))
    try:
        return header_version(find_tensorrt_headers())[:2]
    except LitevitError:
        return None


def built_library() -> Path:
    """The library ``litevit plugins build`` made for this machine's TensorRT and GPU, or one
    sentence saying to build it."""
    version = runtime_tensorrt_version()
    if version is None:
        raise LitevitError("TensorRT is not installed here, so no plugin library can be picked for it.")
    arch = detect_cuda_arch()
    library = cache_root() / target_name(version, arch) / LIBRARY_NAME
    if not library.is_file():
        raise LitevitError(
            f"no {LIBRARY_NAME} is built for TensorRT {version[0]}.{version[1]} and sm_{arch} yet: run "
            f"`litevit plugins build`."
        )
    return library


def check_library(library: Path) -> list[tuple[str, bool]]:
    """Load ``library`` into TensorRT's plugin registry; (op, registered) per litevit op."""
    from litevit._deps import require
    from litevit.runtime.trt_build import load_plugin_library, plugin_registered

    require("tensorrt")
    if not library.is_file():
        raise LitevitError(f"the plugin library {str(library)!r} does not exist.")
    load_plugin_library(library.resolve())
    return [(op, plugin_registered(op, PLUGIN_VERSION, PLUGIN_NAMESPACE)) for op in OP_PACKAGES]


DESCRIPTION = (
    "Build liblitevit_plugins.so (the CUDA kernels and TensorRT plugins of CSA, RASA and GhostHead) on this "
    "machine with CMake, print where it is, or check that TensorRT loads it and registers its plugins."
)


def configure_plugins_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="plugins_command", required=True, metavar="ACTION")
    build = sub.add_parser(
        "build",
        help="compile the plugin library for this machine's TensorRT and GPU",
        description="Configure and build liblitevit_plugins.so with CMake against this machine's TensorRT "
        f"headers and CUDA toolkit, into {cache_root()}/trt<version>-sm<arch>/ (or --out); print its path.",
    )
    build.add_argument("--tensorrt-root", metavar="DIR", help="TensorRT tar install (include/, lib/)")
    build.add_argument("--cuda-arch", metavar="ARCH", help="GPU architecture, e.g. 87 (default: this GPU)")
    build.add_argument("--out", metavar="DIR", help="where to put the library (default: the cache)")
    build.add_argument(
        "--plugin-api",
        choices=PLUGIN_APIS,
        default="auto",
        help="auto: IPluginV3 on TensorRT >= 10, IPluginV2DynamicExt before; v2: IPluginV2DynamicExt always",
    )
    build.add_argument("--jobs", type=int, metavar="N", help="parallel compile jobs (default: CPU count)")
    sub.add_parser(
        "path",
        help="print the plugin library built for this machine",
        description="Print the liblitevit_plugins.so that `litevit plugins build` made for this machine's "
        "TensorRT and GPU; exit 1 when there is none.",
    )
    check = sub.add_parser(
        "check",
        help="load the plugin library into TensorRT and check its three plugins register",
        description="Load LIB (default: the library built for this machine) into TensorRT's plugin registry "
        "and check that CSA, RASA and GhostHead are registered (namespace litevit, version 1); exit 1 "
        "otherwise.",
    )
    check.add_argument("library", nargs="?", metavar="LIB")


def run_plugins(args: argparse.Namespace) -> int:
    if args.plugins_command == "build":
        library = build_library(
            tensorrt_root=args.tensorrt_root,
            cuda_arch=args.cuda_arch,
            out=args.out,
            plugin_api=args.plugin_api,
            jobs=args.jobs,
        )
        print(library)
        return 0
    if args.plugins_command == "path":
        try:
            print(built_library())
        except LitevitError as exc:
            print(exc)
            return 1
        return 0
    library = Path(args.library).expanduser() if args.library else built_library()
    results = check_library(library)
    for op, registered in results:
        state = "registered" if registered else "MISSING"
        print(f"{op:<10} {PLUGIN_NAMESPACE}::{op} version {PLUGIN_VERSION}: {state}")
    missing = [op for op, registered in results if not registered]
    if missing:
        print(f"{library}: TensorRT has no creator for {', '.join(missing)}.")
        return 1
    print(f"{library}: all {len(results)} plugins registered.")
    return 0


__all__ = [
    "DESCRIPTION",
    "build_library",
    "built_library",
    "check_library",
    "configure_plugins_parser",
    "parse_tensorrt_version",
    "run_plugins",
]
