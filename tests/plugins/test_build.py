"""``litevit plugins build|path|check`` without TensorRT: version and arch parsing, where the library
goes, the CMake command line (through a recording fake cmake) and the one-sentence refusals."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

import pytest

from litevit._deps import has
from litevit.errors import LitevitError
from litevit.plugins import build

TRT8_HEADER = """
#define NV_TENSORRT_MAJOR 8 //!< TensorRT major version.
#define NV_TENSORRT_MINOR 5 //!< TensorRT minor version.
#define NV_TENSORRT_PATCH 2 //!< TensorRT patch version.
"""
# TensorRT 10 names the numbers through other macros.
TRT10_HEADER = """
#define TRT_MAJOR_ENTERPRISE 10
#define TRT_MINOR_ENTERPRISE 3
#define TRT_PATCH_ENTERPRISE 0
#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE //!< Major version.
#define NV_TENSORRT_MINOR TRT_MINOR_ENTERPRISE //!< Minor version.
#define NV_TENSORRT_PATCH TRT_PATCH_ENTERPRISE //!< Patch version.
"""


def test_tensorrt_version_from_the_8x_and_10x_headers() -> None:
    assert build.parse_tensorrt_version(TRT8_HEADER) == (8, 5, 2)
    assert build.parse_tensorrt_version(TRT10_HEADER) == (10, 3, 0)
    assert build.parse_tensorrt_version("#define NV_TENSORRT_MAJOR SOMETHING_UNDEFINED\n") is None


def test_cuda_arch_spellings() -> None:
    assert [build.parse_cuda_arch(text) for text in ("87", "8.7", "sm_72", "compute_70", "11.0")] == [
        87,
        87,
        72,
        70,
        110,
    ]
    with pytest.raises(LitevitError, match="not a GPU architecture"):
        build.parse_cuda_arch("orin")


def test_cache_folder_per_tensorrt_and_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LITEVIT_CACHE", str(tmp_path))
    assert build.cache_root() == tmp_path / "plugins"
    monkeypatch.delenv("LITEVIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.cache_root() == tmp_path / "xdg" / "litevit" / "plugins"
    assert build.target_name((10, 3, 0), 87) == "trt10.3-sm87"


def _tensorrt_root(tmp_path: Path, header: str = TRT10_HEADER) -> Path:
    root = tmp_path / "TensorRT"
    (root / "include").mkdir(parents=True)
    (root / "include" / "NvInferVersion.h").write_text(header)
    return root


def test_headers_from_the_root_given_or_a_sentence(tmp_path: Path) -> None:
    root = _tensorrt_root(tmp_path)
    assert build.find_tensorrt_headers(root) == root / "include"
    with pytest.raises(
        LitevitError, match=r"headers \(NvInferVersion.h\) were not found in .*--tensorrt-root"
    ):
        build.find_tensorrt_headers(tmp_path / "elsewhere")


def _fake_executable(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# Records its arguments; the build step writes the library where -DLITEVIT_OUTPUT_DIR says.
FAKE_CMAKE = """
import pathlib, sys
args = sys.argv[1:]
log = pathlib.Path(__file__).with_name("calls.txt")
log.write_text(log.read_text() + " ".join(args) + "\\n" if log.exists() else " ".join(args) + "\\n")
if args[0] == "-S":
    out = next(a.split("=", 1)[1] for a in args if a.startswith("-DLITEVIT_OUTPUT_DIR="))
    pathlib.Path(args[3], "out.txt").write_text(out)
elif args[0] == "--build":
    out = pathlib.Path(args[1], "out.txt").read_text()
    pathlib.Path(out, "liblitevit_plugins.so").write_bytes(b"")
"""


def test_build_runs_cmake_for_this_tensorrt_and_arch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    cmake = _fake_executable(bin_dir, "cmake", FAKE_CMAKE)
    nvcc = _fake_executable(bin_dir, "nvcc", "")
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("CUDACXX", str(nvcc))
    monkeypatch.setenv("LITEVIT_CACHE", str(tmp_path / "cache"))
    root = _tensorrt_root(tmp_path)
    lines: list[str] = []
    library = build.build_library(tensorrt_root=str(root), cuda_arch="8.7", log=lines.append)
    assert library == tmp_path / "cache" / "plugins" / "trt10.3-sm87" / "liblitevit_plugins.so"
    assert library.is_file()
    configure, compile_ = (cmake.with_name("calls.txt")).read_text().splitlines()
    assert f"-S {build.PLUGINS_DIR} " in configure
    for option in (
        "-DCMAKE_CUDA_ARCHITECTURES=87",
        f"-DCMAKE_CUDA_COMPILER={nvcc}",
        f"-DTensorRT_INCLUDE_DIR={root / 'include'}",
        f"-DTENSORRT_ROOT={root}",
        "-DLITEVIT_PLUGIN_API=auto",
    ):
        assert option in configure.split(), option
    assert compile_.startswith(f"--build {library.parent / 'build'} --parallel")
    assert "TensorRT 10.3.0" in lines[0] and "sm_87" in lines[0]


def test_build_refusals_name_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(LitevitError, match="cmake was not found: pip install cmake"):
        build.build_library(tensorrt_root=str(tmp_path), cuda_arch=87)
    _fake_executable(tmp_path / "bin", "cmake", "")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(LitevitError, match="TensorRT's C\\+\\+ headers"):
        build.build_library(tensorrt_root=str(tmp_path), cuda_arch=87)
    with pytest.raises(LitevitError, match="--plugin-api must be one of auto, v2"):
        build.build_library(tensorrt_root=str(tmp_path), cuda_arch=87, plugin_api="v3")


def test_path_says_to_build_when_there_is_no_library(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LITEVIT_CACHE", str(tmp_path))
    monkeypatch.setattr(build, "runtime_tensorrt_version", lambda: (10, 3))
    monkeypatch.setattr(build, "detect_cuda_arch", lambda: 87)
    args = argparse.Namespace(plugins_command="path")
    assert build.run_plugins(args) == 1
    assert "no liblitevit_plugins.so is built for TensorRT 10.3 and sm_87 yet" in capsys.readouterr().out
    library = tmp_path / "plugins" / "trt10.3-sm87" / "liblitevit_plugins.so"
    library.parent.mkdir(parents=True)
    library.write_bytes(b"")
    assert build.run_plugins(args) == 0
    assert capsys.readouterr().out.strip() == str(library)


@pytest.mark.skipif(has("tensorrt"), reason="TensorRT is installed: the refusal cannot be shown")
def test_check_needs_tensorrt(tmp_path: Path) -> None:
    with pytest.raises(LitevitError, match="tensorrt is not installed"):
        build.check_library(tmp_path / "liblitevit_plugins.so")


def test_check_reports_each_plugin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = tmp_path / "liblitevit_plugins.so"
    library.write_bytes(b"")
    monkeypatch.setattr(
        build, "check_library", lambda path: [("CSA", True), ("RASA", False), ("GhostHead", True)]
    )
    assert build.run_plugins(argparse.Namespace(plugins_command="check", library=str(library))) == 1
    out = capsys.readouterr().out
    assert "RASA       litevit::RASA version 1: MISSING" in out and "no creator for RASA" in out
    monkeypatch.setattr(
        build, "check_library", lambda path: [("CSA", True), ("RASA", True), ("GhostHead", True)]
    )
    assert build.run_plugins(argparse.Namespace(plugins_command="check", library=str(library))) == 0
    assert "all 3 plugins registered" in capsys.readouterr().out


def test_parser_has_the_three_actions() -> None:
    parser = argparse.ArgumentParser()
    build.configure_plugins_parser(parser)
    args = parser.parse_args(["build", "--cuda-arch", "72", "--tensorrt-root", "/opt/trt", "--out", "x"])
    assert (args.plugins_command, args.cuda_arch, args.tensorrt_root, args.out, args.plugin_api) == (
        "build",
        "72",
        "/opt/trt",
        "x",
        "auto",
    )
    assert parser.parse_args(["check"]).library is None
    assert parser.parse_args(["path"]).plugins_command == "path"


def test_selftest_build_plugins_builds_every_engine_with_the_new_library(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from litevit.runtime import selftest

    library = tmp_path / "liblitevit_plugins.so"
    monkeypatch.setattr(selftest, "require", lambda module: None)
    monkeypatch.setattr(build, "build_library", lambda: library)
    seen: dict[str, object] = {}

    def run_selftests(*args: object, plugin_library: str | None = None, **kwargs: object) -> list[object]:
        seen["plugins"] = plugin_library
        return []

    monkeypatch.setattr(selftest, "run_selftests", run_selftests)
    parser = argparse.ArgumentParser()
    selftest.configure_selftest_parser(parser)
    argv = [str(tmp_path / "artifact"), "--calib", str(tmp_path), "--build-plugins"]
    assert selftest.run_selftest(parser.parse_args(argv)) == 0
    assert seen["plugins"] == str(library)
    with pytest.raises(LitevitError, match="leave out --plugins"):
        selftest.run_selftest(parser.parse_args([*argv, "--plugins", "other.so"]))
