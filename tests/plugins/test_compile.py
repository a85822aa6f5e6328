"""Every op's kernel compiles, warnings as errors: nvcc for sm_75/87/90/110, NVRTC for compute_70/72
(CUDA 13's nvcc cannot target V100 and Xavier), and the plugin C++ that needs no CUDA or TensorRT
compiles with g++.

No GPU is needed: these prove the sources compile for every target, not that the kernels are right
(the op cores' tests and benchmarks/gpu_kernels.py do that). The ops are those whose folder exists,
so a half-written op does not hide the others.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from litevit.errors import LitevitError
from litevit.plugins import compile as plugin_compile
from litevit.plugins.compile import CompileError, cuda_include_dir, cxx_compile, nvcc_compile, nvrtc_compile
from litevit.plugins.kernels import OP_PACKAGES, PLUGINS_DIR

NVCC_ARCHS = (75, 87, 90, 110)  # Turing, Orin, Hopper, Thor
NVRTC_ARCHS = ("compute_70", "compute_72", "sm_70", "sm_72")  # V100, Xavier: PTX, and cubins
COMMON = PLUGINS_DIR / "common"

KERNELS = {
    package: PLUGINS_DIR / package / f"{package}_kernel.cu"
    for package in OP_PACKAGES.values()
    if (PLUGINS_DIR / package / f"{package}_kernel.cu").is_file()
}
CORES = [
    path for package in OP_PACKAGES.values() for path in sorted((PLUGINS_DIR / package).glob("*_core.cpp"))
]


def _has_nvcc() -> bool:
    try:
        plugin_compile.find_nvcc()
    except LitevitError:
        return False
    return True


needs_nvcc = pytest.mark.skipif(not _has_nvcc(), reason="nvcc (CUDA toolkit) is not installed")
needs_nvrtc = pytest.mark.skipif(
    importlib.util.find_spec("cuda") is None or importlib.util.find_spec("cuda.bindings") is None,
    reason="cuda.bindings is not installed (pip install 'litevit[kernels]')",
)
needs_kernels = pytest.mark.skipif(not KERNELS, reason="no op kernel exists yet")


def _kernel_names(package: str) -> list[str]:
    return [f"litevit_{package}_f32", f"litevit_{package}_f16"]


@needs_nvcc
@needs_kernels
@pytest.mark.parametrize("package", sorted(KERNELS))
def test_nvcc_compiles_the_kernel_for_every_arch(package: str, tmp_path: Path) -> None:
    fatbin = nvcc_compile(KERNELS[package], NVCC_ARCHS, tmp_path)
    data = fatbin.read_bytes()
    for name in _kernel_names(package):
        assert name.encode() in data, f"{fatbin.name} has no kernel {name}"


@needs_nvrtc
@needs_kernels
@pytest.mark.parametrize("arch", NVRTC_ARCHS)
@pytest.mark.parametrize("package", sorted(KERNELS))
def test_nvrtc_compiles_the_kernel_for_v100_and_xavier(package: str, arch: str) -> None:
    result = nvrtc_compile(KERNELS[package], arch)
    assert f".target sm_{arch.split('_')[1]}" in result.ptx
    for name in _kernel_names(package):
        assert f".entry {name}(" in result.ptx, f"no kernel {name} in the PTX for {arch}"
    if arch.startswith("sm_"):
        assert result.cubin is not None and result.cubin.startswith(b"\x7fELF")
    else:
        assert result.cubin is None


def test_gxx_compiles_and_links_common_and_every_core(tmp_path: Path) -> None:
    headers = [COMMON / "op_core.h", COMMON / "serialize.h"]
    headers += [path for package in OP_PACKAGES.values() for path in (PLUGINS_DIR / package).glob("*_core.h")]
    main = tmp_path / "main.cpp"
    main.write_text("".join(f'#include "{header}"\n' for header in headers) + "int main() { return 0; }\n")
    binary = cxx_compile(
        [main, COMMON / "serialize.cpp", *CORES], tmp_path / "cores", include_dirs=[PLUGINS_DIR]
    )
    assert binary.is_file()


def test_gxx_compiles_the_generic_launcher(tmp_path: Path) -> None:
    try:
        cuda = cuda_include_dir()
    except LitevitError as exc:
        pytest.skip(str(exc))
    # launch.cu is host code only: g++ compiles it as C++ against the CUDA runtime headers.
    cxx_compile(
        [COMMON / "launch.cu"], tmp_path / "launch.o", include_dirs=[COMMON, cuda], flags=["-x", "c++", "-c"]
    )


# The checks must be able to fail: a warning is an error for every compiler.
WARNING_SOURCE = (
    '#include <cuda_fp16.h>\nextern "C" __global__ void k(float* out) { int unused; out[0] = 1.0f; }\n'
)


@needs_nvcc
def test_nvcc_refuses_a_warning(tmp_path: Path) -> None:
    source = tmp_path / "warns.cu"
    source.write_text(WARNING_SOURCE)
    with pytest.raises(CompileError, match="unused"):
        nvcc_compile(source, [87], tmp_path)


@needs_nvrtc
def test_nvrtc_refuses_a_warning_and_reports_the_first_error(tmp_path: Path) -> None:
    source = tmp_path / "warns.cu"
    source.write_text(WARNING_SOURCE)
    with pytest.raises(CompileError, match=r"warns.cu\(2\): warning.*unused"):
        nvrtc_compile(source, "compute_70")
    assert nvrtc_compile(source, "compute_70", warnings_as_errors=False).ptx
    source.write_text('extern "C" __global__ void k(float* out) { out[0] = undeclared; }\n')
    with pytest.raises(
        CompileError, match=r'warns.cu\(1\): error: identifier "undeclared" is undefined'
    ) as info:
        nvrtc_compile(source, "sm_72")
    assert "undeclared" in info.value.log


@needs_nvrtc
def test_nvrtc_leaves_the_interpreter_s_shared_bytes_alone(tmp_path: Path) -> None:
    # Proves: a clean compile (NVRTC's log is one NUL byte) writes into a buffer of its own. Written
    # into b" " * 1, which is the interpreter's one shared b" ", it made every b" " in the process
    # b"\x00", after which torch.load failed ("record size ... does not match expected size").
    source = tmp_path / "clean.cu"
    source.write_text('extern "C" __global__ void k(float* out) { out[0] = 1.0f; }\n')
    assert nvrtc_compile(source, "sm_87").log == ""
    assert bytes([32])[0] == 32  # the shared one-byte object (b" "[0] would be folded to 32 at compile time)


def test_gxx_refuses_a_warning(tmp_path: Path) -> None:
    source = tmp_path / "warns.cpp"
    source.write_text("int main() { int unused; return 0; }\n")
    with pytest.raises(CompileError, match="unused"):
        cxx_compile([source], tmp_path / "warns")


def test_missing_compilers_are_one_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CUDACXX", raising=False)
    monkeypatch.setattr(plugin_compile, "_cuda_roots", lambda: [])
    with pytest.raises(LitevitError, match="nvcc .* was not found"):
        plugin_compile.find_nvcc()
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(LitevitError, match="'no-such-compiler' was not found"):
        plugin_compile.find_cxx()
    monkeypatch.setattr(plugin_compile, "_wheel_include_dirs", lambda: [])
    with pytest.raises(LitevitError, match="cuda_fp16.h"):
        cuda_include_dir()


def test_arch_names() -> None:
    assert [plugin_compile.arch_number(a) for a in (87, "87", "sm_87", "compute_110")] == [87, 87, 87, 110]
    with pytest.raises(LitevitError, match="not a GPU architecture"):
        plugin_compile.arch_number("orin")
    with pytest.raises(LitevitError, match="compute_XX or sm_XX"):
        nvrtc_compile(Path("x.cu"), "70")


def test_cuda_include_dir_prefers_cuda_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "cuda_fp16.h").write_text("")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    assert cuda_include_dir() == tmp_path / "include"
