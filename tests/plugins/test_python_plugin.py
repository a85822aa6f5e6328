"""litevit's Python TensorRT plugins (litevit.plugins.python_plugin) without TensorRT or a GPU.

TensorRT is tests/runtime/fake_tensorrt.py, a FAKE with the Python plugin surface of TensorRT
>= 10.0 as empty base classes; the CUDA driver is a fake that records calls. What these tests
prove is litevit's side: which creators it registers under which names and fields, how it reads
and serializes a node's attributes, the output-dims expressions it builds from the spec rules,
the formats it accepts, how it packs kernel arguments, and its kernel cache. They prove nothing
about TensorRT calling the plugin, nor about the kernels' results (the GPU script does that);
where cuda-python's NVRTC is installed, each kernel really is compiled to a cubin.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import inspect
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
import fake_tensorrt

from litevit.errors import LitevitError, MissingDependencyError
from litevit.plugins import kernels, python_plugin
from litevit.plugins.kernels import AffineDim, KernelSpec, Launch
from litevit.runtime import environment, runners, trt_build

# Node attributes per op (LVT stage 1 CSA, LVT RASA, ELSA-Swin-T stage 1 GhostHead) and input
# shapes at batch 2 that fit them; spec attribute names the node lacks are absent here on purpose.
EXAMPLES: dict[str, tuple[dict[str, Any], list[tuple[int, ...]]]] = {
    "CSA": (
        {"heads": 2, "kernel_size": 3, "stride": 2, "padding": 1, "channels": 64},
        [(2, 2 * 81, 28, 28), (2, 9 * 64, 28, 28)],
    ),
    "RASA": ({"dilations": (1, 3, 5), "kernel_size": 3, "channels": 64}, [(2, 64, 28, 28), (64, 1, 3, 3)]),
    "GhostHead": (
        {"heads": 3, "kernel_size": 7, "dilation": 1},
        [(2, 96, 56, 56), (2, 3 * 49, 56, 56), (96, 7, 7), (96, 7, 7)],
    ),
}


def spec_of(op_type: str) -> KernelSpec:
    """The op's real spec, or a skip while its helper has not written plugins/<op>/spec.py."""
    try:
        module = importlib.import_module(f"litevit.plugins.{kernels.OP_PACKAGES[op_type]}.spec")
    except ModuleNotFoundError as exc:
        pytest.skip(f"{op_type}'s spec is not written yet ({exc})")
    return module.SPEC


def node_attributes(spec: KernelSpec) -> dict[str, Any]:
    attrs, _ = EXAMPLES[spec.op_type]
    return {name: attrs[name] for name in spec.attribute_names}


# A small spec of litevit's own making, so that the plugin logic is tested whatever the ops' specs
# look like: output (B, 7, 2·H + 1, W - 1) of inputs x (B, C, H, W) and y (B, C, H, W).
def _toy_output_shape(shapes, attrs):
    batch, _, height, width = shapes[0]
    return (batch, 7, 2 * height + 1, shapes[1][3] - 1)


TOY = KernelSpec(
    op_type="Toy",
    source=Path("toy_kernel.cu"),
    kernels={"float32": "litevit_toy_f32", "float16": "litevit_toy_f16"},
    num_inputs=2,
    attribute_names=("scale", "taps"),
    output_shape=_toy_output_shape,
    output_dims=lambda attrs: (
        AffineDim(0, 0, 1, 0),
        AffineDim(0, 1, 0, 7),
        AffineDim(0, 2, 2, 1),
        AffineDim(1, 3, 1, -1),
    ),
    launch=lambda shapes, attrs: Launch(
        grid=(int(np.prod(shapes[0])) // 4, 1, 1),
        block=(4, 1, 1),
        shared_bytes=16,
        scalars=(*shapes[0], attrs["scale"]),
    ),
)


@pytest.fixture
def trt(monkeypatch):
    """A fake TensorRT 10.3 (the Jetson's and the V100's generation) in sys.modules; fresh plugin
    classes and registrations; the toy op's "taps" read as a list; NVRTC taken as present."""
    return install(monkeypatch, "10.3.0.26")


def install(monkeypatch, version: str, **kwargs: Any) -> types.ModuleType:
    fake = fake_tensorrt.make_tensorrt(version, **kwargs)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    # Classes subclass this fake's bases: a fresh cache per test, the module's own left untouched.
    monkeypatch.setattr(
        python_plugin, "plugin_classes", functools.cache(python_plugin.plugin_classes.__wrapped__)
    )
    monkeypatch.setattr(python_plugin, "_REGISTERED", {})
    monkeypatch.setitem(python_plugin.LIST_ATTRIBUTES, "Toy", frozenset({"taps"}))
    # Registration checks that NVRTC loads; these tests must not depend on the NVRTC wheel.
    monkeypatch.setattr(python_plugin, "nvrtc_version", lambda: (12, 9))
    return fake


def fields(trt, attrs: dict[str, Any], extra: bool = True) -> Any:
    """The plugin fields TensorRT's ONNX parser hands a creator for a node with ``attrs``: kINT32
    arrays, plus the string attributes every litevit node carries (kCHAR), which plugins ignore."""
    collection = [
        trt.PluginField(name, np.atleast_1d(np.asarray(value, np.int32)), trt.PluginFieldType.INT32)
        for name, value in attrs.items()
    ]
    if extra:
        collection.append(
            trt.PluginField("plugin_namespace", np.frombuffer(b"litevit", np.int8), trt.PluginFieldType.CHAR)
        )
    return trt.PluginFieldCollection_(trt.PluginFieldCollection(collection))


def make_plugin(trt, spec: KernelSpec, attrs: dict[str, Any]) -> Any:
    _, creator_class = python_plugin.plugin_classes()
    return creator_class(spec).create_plugin(spec.op_type, fields(trt, attrs), trt.TensorRTPhase.BUILD)


# ---------------------------------------------------------------------------------------------
# Import and registration


def test_module_imports_without_tensorrt_cuda_or_torch(tmp_path):
    # Proves: the Jetson deployment side (no torch) and a machine without TensorRT or CUDA can
    # import the module; TensorRT and cuda-python are imported only when used.
    code = (
        "import sys\n"
        "for name in ('tensorrt', 'torch', 'cuda', 'cuda.bindings', 'cupy'):\n"
        "    sys.modules[name] = None\n"
        "import litevit.plugins.python_plugin as p\n"
        "print(p.NAMESPACE, p.VERSION)\n"
    )
    # Outside the checkout, where the source tree would shadow the installed package.
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["litevit", "1"]


@pytest.mark.parametrize("version", ["10.3.0.26", "10.8.0.43", "11.4.0.106"])
def test_register_adds_one_creator_per_op_under_the_node_names(monkeypatch, version):
    # Proves: every op of kernels.specs() gets a V3 creator named by its ONNX op_type, namespace
    # "litevit", version "1" (what the exported nodes carry), whose field names are the spec's
    # attribute names; registering again adds nothing (one creator per process).
    trt = install(monkeypatch, version)
    specs = {op: spec_of(op) for op in kernels.OP_PACKAGES}
    names = python_plugin.register()
    assert names == [f"litevit::{op} v1" for op in specs]
    assert trt.records.registered_creators == [(op, "1", "litevit") for op in specs]
    registry = trt.get_plugin_registry()
    for op, spec in specs.items():
        creator = registry.get_creator(op, "1", "litevit")
        assert isinstance(creator, trt.IPluginCreatorV3One)
        assert (creator.name, creator.plugin_namespace, creator.plugin_version) == (op, "litevit", "1")
        names_of_fields = [creator.field_names[i].name for i in range(len(creator.field_names))]
        assert names_of_fields == list(spec.attribute_names)
    assert python_plugin.register() == names
    assert len(trt.records.registered_creators) == len(specs)


def test_register_refuses_tensorrt_before_10(monkeypatch):
    # Proves: TensorRT 8.x (JetPack 5) has no Python IPluginV3; the user is told to use the library.
    install(monkeypatch, "8.6.2.3")
    with pytest.raises(LitevitError) as error:
        python_plugin.register()
    assert str(error.value) == (
        "litevit's Python plugins need TensorRT 10.0 or newer (IPluginV3); with TensorRT 8.6.2.3 build "
        "and use liblitevit_plugins.so (litevit plugins build)."
    )


def test_register_needs_nvrtc(monkeypatch):
    # Proves: without libnvrtc the plugins could be registered but every engine build would fail
    # at its first enqueue; register() says so first, in one sentence.
    install(monkeypatch, "10.3.0.26")

    def missing():
        raise RuntimeError("libnvrtc.so.12 not found")

    monkeypatch.setattr(python_plugin, "nvrtc_version", missing)
    with pytest.raises(
        MissingDependencyError, match=r"^NVRTC is not available \(libnvrtc.so.12 not found\); "
    ):
        python_plugin.register()


def test_register_refuses_when_the_library_already_registered_the_op(monkeypatch):
    # Proves: with liblitevit_plugins.so loaded in the same process, the Python creators are not
    # silently shadowed or doubled: one sentence says to pick one.
    spec_of("CSA")
    library_body = onnx.FunctionProto(name="CSA", domain="litevit")
    install(monkeypatch, "10.8.0.43", plugins={("CSA", "1", "litevit"): library_body})
    monkeypatch.setattr(kernels, "specs", lambda: {"CSA": spec_of("CSA")})
    with pytest.raises(LitevitError, match=r"already has a litevit::CSA v1 plugin .*use either the library"):
        python_plugin.register()


# ---------------------------------------------------------------------------------------------
# Attributes: node fields, serialization


@pytest.mark.parametrize("op_type", list(EXAMPLES))
def test_attributes_from_the_node_round_trip_through_serialization(trt, op_type):
    # Proves: the creator reads the node's kINT32 fields by the spec's names (ignoring the string
    # ones), lists stay lists and scalars ints; get_fields_to_serialize writes them back so that
    # the runtime-phase creator (engine deserialization) rebuilds the same plugin.
    spec = spec_of(op_type)
    attrs = node_attributes(spec)
    plugin = make_plugin(trt, spec, attrs)
    expected = {name: tuple(v) if isinstance(v, tuple) else v for name, v in attrs.items()}
    assert plugin.attributes == expected
    assert (plugin.plugin_name, plugin.plugin_namespace, plugin.plugin_version) == (op_type, "litevit", "1")
    assert plugin.num_outputs == 1

    serialized = plugin.get_fields_to_serialize()
    assert [serialized[i].name for i in range(len(serialized))] == list(spec.attribute_names)
    assert all(serialized[i].type == trt.PluginFieldType.INT32 for i in range(len(serialized)))
    _, creator_class = python_plugin.plugin_classes()
    restored = creator_class(spec).create_plugin(op_type, serialized, trt.TensorRTPhase.RUNTIME)
    assert restored.attributes == plugin.attributes
    assert restored.clone().attributes == plugin.attributes


def test_a_one_value_list_attribute_stays_a_list(trt):
    # Proves: a list attribute with one value (RASA with dilations [1]) is not mistaken for an int.
    plugin = make_plugin(trt, TOY, {"scale": 3, "taps": [5]})
    assert plugin.attributes == {"scale": 3, "taps": (5,)}


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"scale": 3}, "the Toy plugin needs the attribute 'taps'; the node has none."),
        ({"scale": [3, 4], "taps": [1]}, "the Toy attribute 'scale' must be one int; got [3, 4]."),
        ({"scale": 3, "taps": []}, "the Toy attribute 'taps' is an empty list."),
    ],
)
def test_bad_node_attributes_are_one_sentence(trt, attrs, message):
    with pytest.raises(LitevitError) as error:
        make_plugin(trt, TOY, attrs)
    assert str(error.value) == message


def test_non_int32_attribute_is_refused(trt):
    _, creator_class = python_plugin.plugin_classes()
    collection = trt.PluginFieldCollection_(
        trt.PluginFieldCollection(
            [
                trt.PluginField("scale", np.array([1.5], np.float32), trt.PluginFieldType.FLOAT32),
                trt.PluginField("taps", np.array([1], np.int32), trt.PluginFieldType.INT32),
            ]
        )
    )
    with pytest.raises(LitevitError, match=r"reads 'scale' as INT32 plugin data"):
        creator_class(TOY).create_plugin("Toy", collection, trt.TensorRTPhase.BUILD)


@pytest.mark.parametrize("op_type", list(EXAMPLES))
def test_the_exported_node_carries_every_attribute_the_plugin_reads(op_type):
    # Proves: a creator reading spec.attribute_names finds each of them on the node litevit's export
    # writes (the reference's attributes plus those derived from shapes, onnx_attr_names).
    from litevit.ops import OPS

    opdef = OPS[op_type]
    assert set(spec_of(op_type).attribute_names) <= set(opdef.attr_args) | set(opdef.onnx_attr_names)


@pytest.mark.parametrize("op_type", list(EXAMPLES))
def test_list_attributes_are_the_references_list_arguments(op_type):
    # Proves: LIST_ATTRIBUTES (needed because a one-value kINT32 field cannot say INT or INTS)
    # names exactly the attributes the litevit.ops reference takes as list[int]; attributes the
    # export adds from shapes (onnx_attr_names) are single INTs.
    from litevit.ops import OPS

    spec = spec_of(op_type)
    parameters = inspect.signature(OPS[op_type].reference).parameters
    lists = {
        name
        for name in spec.attribute_names
        if name in parameters and parameters[name].annotation in (list[int], "list[int]")
    }
    assert python_plugin.LIST_ATTRIBUTES.get(op_type, frozenset()) == lists


# ---------------------------------------------------------------------------------------------
# Build phase: output shapes, formats


class ExprBuilder:
    """A fake IExprBuilder whose expressions are their values; it records each operation."""

    def __init__(self, trt) -> None:
        self.trt = trt
        self.operations: list[tuple[str, int, int]] = []

    def constant(self, value):
        return int(value)

    def operation(self, op, first, second):
        self.operations.append((op.name, first, second))
        functions = {"SUM": int.__add__, "SUB": int.__sub__, "PROD": int.__mul__}
        return functions[op.name](first, second)


def test_output_dims_follow_the_affine_rules(trt):
    # Proves: constant rules are constants; scale and offset cost one operation each and none
    # when they are 1 and 0; negative offsets subtract.
    plugin = make_plugin(trt, TOY, {"scale": 3, "taps": [1, 2]})
    builder = ExprBuilder(trt)
    (dims,) = plugin.get_output_shapes([[2, 5, 10, 12], [2, 5, 10, 12]], [], builder)
    assert isinstance(dims, trt.DimsExprs)
    assert list(dims) == [2, 7, 21, 11] == list(TOY.output_shape([(2, 5, 10, 12)] * 2, {}))
    assert builder.operations == [("PROD", 10, 2), ("SUM", 20, 1), ("SUB", 12, 1)]


@pytest.mark.parametrize("op_type", list(EXAMPLES))
@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("size", [1.0, 0.5, 1.5])
def test_output_dims_agree_with_the_spec_and_the_reference(trt, op_type, batch, size):
    # Proves: for each op, the expressions TensorRT gets evaluate to the spec's output shape and to
    # the litevit.ops reference's, at several batches and spatial sizes (dynamic shapes).
    from litevit.ops import OPS

    spec = spec_of(op_type)
    attrs, base_shapes = EXAMPLES[op_type]
    shapes = scaled_shapes(op_type, base_shapes, batch, size)
    plugin = make_plugin(trt, spec, node_attributes(spec))
    (dims,) = plugin.get_output_shapes([list(s) for s in shapes], [], ExprBuilder(trt))
    opdef = OPS[op_type]
    reference = opdef.output_shape(*shapes, **{n: attrs[n] for n in opdef.attr_args})
    assert tuple(dims) == tuple(spec.output_shape(shapes, node_attributes(spec))) == tuple(reference)


def scaled_shapes(
    op_type: str, shapes: list[tuple[int, ...]], batch: int, size: float
) -> list[tuple[int, ...]]:
    """The example's shapes at another batch and spatial size (weights keep theirs)."""

    def scale(shape: tuple[int, ...]) -> tuple[int, ...]:
        return (batch, shape[1], max(1, round(shape[2] * size)), max(1, round(shape[3] * size)))

    activations = {"CSA": 2, "RASA": 1, "GhostHead": 2}[op_type]
    return [scale(s) for s in shapes[:activations]] + list(shapes[activations:])


def desc(trt, dtype: str, fmt: str = "LINEAR", dims=(1, 1, 1, 1)):
    tensor = types.SimpleNamespace(type=trt.DataType[dtype], format=trt.TensorFormat[fmt], dims=dims)
    return types.SimpleNamespace(desc=tensor)


@pytest.mark.parametrize(
    ("types_", "formats", "pos", "supported"),
    [
        (["FLOAT", "FLOAT", "FLOAT"], ["LINEAR"] * 3, 2, True),
        (["HALF", "HALF", "HALF"], ["LINEAR"] * 3, 2, True),
        (["HALF", "HALF", "HALF"], ["LINEAR"] * 3, 0, True),
        (["INT8", "INT8", "INT8"], ["LINEAR"] * 3, 0, False),
        (["INT32", "FLOAT", "FLOAT"], ["LINEAR"] * 3, 0, False),
        (["FLOAT", "HALF", "FLOAT"], ["LINEAR"] * 3, 1, False),
        (["HALF", "HALF", "FLOAT"], ["LINEAR"] * 3, 2, False),
        (["HALF", "HALF", "HALF"], ["LINEAR", "CHW2", "LINEAR"], 1, False),
        (["FLOAT", "FLOAT", "FLOAT"], ["LINEAR", "LINEAR", "CHW32"], 2, False),
    ],
)
def test_formats_are_fp32_or_fp16_linear_all_of_one_type(trt, types_, formats, pos, supported):
    plugin = make_plugin(trt, TOY, {"scale": 1, "taps": [1]})
    in_out = [desc(trt, t, f) for t, f in zip(types_, formats, strict=True)]
    assert plugin.supports_format_combination(pos, in_out, 2) is supported


def test_output_type_is_the_input_type_and_no_workspace(trt):
    plugin = make_plugin(trt, TOY, {"scale": 1, "taps": [1]})
    assert plugin.get_output_data_types([trt.DataType.HALF, trt.DataType.HALF]) == [trt.DataType.HALF]
    assert plugin.get_workspace_size([], []) == 0
    assert plugin.get_capability_interface(trt.PluginFieldType.INT32) is plugin
    with pytest.raises(LitevitError, match="takes 2 inputs and gives 1 output; got 1 and 1"):
        plugin.configure_plugin([desc(trt, "FLOAT")], [desc(trt, "FLOAT")])


# ---------------------------------------------------------------------------------------------
# Runtime: kernel arguments and launches (fake CUDA driver)


class FakeDriver:
    """The cuda.bindings.driver calls the plugin makes, recorded; results as cuda-python gives them."""

    CUresult = types.SimpleNamespace(CUDA_SUCCESS=0, CUDA_ERROR_INVALID_VALUE=1)
    CUdevice_attribute = types.SimpleNamespace(
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR="major",
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR="minor",
    )

    def __init__(self, capability=(8, 7), launch_error: int = 0) -> None:
        self.capability = capability
        self.launch_error = launch_error
        self.context = 0x1000
        self.launches: list[tuple] = []
        self.loaded: list[bytes] = []
        self.lookups: list[bytes] = []

    def CUstream(self, handle):
        return ("stream", handle)

    def cuGetErrorName(self, error):
        return 0, b"CUDA_ERROR_INVALID_VALUE"

    def cuLaunchKernel(self, *args):
        self.launches.append(args)
        return (self.launch_error,)

    def cuCtxGetCurrent(self):
        return 0, self.context

    def cuCtxGetDevice(self):
        return 0, 0

    def cuDeviceGetAttribute(self, attribute, device):
        return 0, self.capability[0 if attribute == "major" else 1]

    def cuModuleLoadData(self, image):
        self.loaded.append(image)
        return 0, ("module", len(self.loaded))

    def cuModuleGetFunction(self, module, name):
        self.lookups.append(name)
        return 0, ("function", module, name)


def test_kernel_arguments_are_pointers_then_int32_scalars():
    values, ctypes_ = python_plugin.kernel_arguments([0x7000, 0x8000], 0x9000, (2, -1, 2**31 - 1))
    assert values == (0x7000, 0x8000, 0x9000, 2, -1, 2**31 - 1)
    assert ctypes_ == (ctypes.c_void_p,) * 3 + (ctypes.c_int32,) * 3
    with pytest.raises(LitevitError, match=r"kernel argument \(2147483648\) does not fit in int32"):
        python_plugin.kernel_arguments([1], 2, (2**31,))


def test_launch_passes_grid_block_shared_memory_stream_and_arguments():
    driver = FakeDriver()
    launch = Launch(grid=(5, 2, 3), block=(128, 1, 1), shared_bytes=64, scalars=(4, 9))
    python_plugin.launch_kernel(driver, "fn", launch, [11, 12], 13, 777)
    ((function, *dims, shared, stream, params, extra),) = driver.launches
    assert (function, tuple(dims), shared, stream, extra) == (
        "fn",
        (5, 2, 3, 128, 1, 1),
        64,
        ("stream", 777),
        0,
    )
    assert params == ((11, 12, 13, 4, 9), (ctypes.c_void_p,) * 3 + (ctypes.c_int32,) * 2)


def test_an_empty_output_launches_nothing_and_errors_name_the_cuda_error():
    driver = FakeDriver()
    python_plugin.launch_kernel(driver, "fn", Launch((0, 1, 1), (256, 1, 1), 0, ()), [1], 2, 0)
    assert driver.launches == []
    failing = FakeDriver(launch_error=1)
    with pytest.raises(RuntimeError, match="cuLaunchKernel failed: CUDA_ERROR_INVALID_VALUE"):
        python_plugin.launch_kernel(failing, "fn", Launch((1, 1, 1), (256, 1, 1), 0, ()), [1], 2, 0)


@pytest.mark.parametrize(("dtype", "kernel"), [("FLOAT", b"litevit_toy_f32"), ("HALF", b"litevit_toy_f16")])
def test_enqueue_launches_the_specs_kernel_for_the_input_type(trt, monkeypatch, tmp_path, dtype, kernel):
    # Proves: enqueue picks the FP32/FP16 kernel by the input type, takes grid/block/scalars from
    # spec.launch for the runtime shapes, and passes the TensorRT pointers and stream through;
    # the module is loaded once per context and op, the cubin compiled for the device's sm_XY.
    driver = FakeDriver(capability=(7, 2))
    compiled: list[tuple[str, str]] = []
    monkeypatch.setattr(python_plugin, "_driver", lambda: driver)
    monkeypatch.setattr(python_plugin, "KERNELS", python_plugin.KernelCache(tmp_path))
    monkeypatch.setattr(python_plugin, "nvrtc_version", lambda: (12, 9))
    monkeypatch.setattr(python_plugin, "kernel_cache_key", lambda source, arch, version: f"toy-{arch}")
    monkeypatch.setattr(
        python_plugin, "_compile_cubin", lambda source, arch: compiled.append((source.name, arch)) or b"CUBIN"
    )
    plugin = make_plugin(trt, TOY, {"scale": 3, "taps": [1]}).attach_to_context(None)
    inputs = [types.SimpleNamespace(type=trt.DataType[dtype], dims=(1, 2, 4, 4))] * 2
    output = [types.SimpleNamespace(type=trt.DataType[dtype], dims=(1, 7, 9, 3))]
    plugin.on_shape_change(inputs, output)
    plugin.enqueue(inputs, output, [0xA0, 0xB0], [0xC0], 0, 55)
    plugin.enqueue(inputs, output, [0xA0, 0xB0], [0xC0], 0, 55)
    assert compiled == [("toy_kernel.cu", "sm_72")]
    assert driver.loaded == [b"CUBIN"]
    assert driver.lookups == [kernel]
    expected = (("function", ("module", 1), kernel), 8, 1, 1, 4, 1, 1, 16, ("stream", 55))
    assert [call[:9] for call in driver.launches] == [expected, expected]
    assert driver.launches[0][9][0] == (0xA0, 0xB0, 0xC0, 1, 2, 4, 4, 3)


def test_a_wrong_output_shape_is_refused_before_enqueue(trt):
    plugin = make_plugin(trt, TOY, {"scale": 3, "taps": [1]})
    inputs = [types.SimpleNamespace(type=trt.DataType.FLOAT, dims=(1, 2, 4, 4))] * 2
    with pytest.raises(LitevitError, match=r"output is \(1, 7, 9, 4\) for inputs .* gives \(1, 7, 9, 3\)"):
        plugin.on_shape_change(inputs, [types.SimpleNamespace(type=trt.DataType.FLOAT, dims=(1, 7, 9, 4))])


def test_modules_are_per_context(monkeypatch, tmp_path):
    # Proves: a second CUDA context loads its own module (a module belongs to one context) from the
    # cubin compiled once.
    driver = FakeDriver()
    compiled: list[str] = []
    monkeypatch.setattr(python_plugin, "_driver", lambda: driver)
    monkeypatch.setattr(python_plugin, "nvrtc_version", lambda: (12, 9))
    monkeypatch.setattr(python_plugin, "kernel_cache_key", lambda source, arch, version: "toy")
    monkeypatch.setattr(
        python_plugin, "_compile_cubin", lambda source, arch: compiled.append(arch) or b"CUBIN"
    )
    cache = python_plugin.KernelCache(tmp_path)
    first = cache.function(TOY, "float32")
    driver.context = 0x2000
    second = cache.function(TOY, "float32")
    assert first != second
    assert compiled == ["sm_87"]
    assert driver.loaded == [b"CUBIN", b"CUBIN"]


# ---------------------------------------------------------------------------------------------
# The kernel cache


def test_cache_key_changes_with_source_header_arch_and_nvrtc(tmp_path):
    # Proves: the disk cache never serves a cubin for another source (its local headers
    # included), another GPU architecture or another NVRTC.
    source = tmp_path / "op_kernel.cu"
    header = tmp_path / "op_gather.h"
    source.write_text('#include <cuda_fp16.h>\n#include "op_gather.h"\n__global__ void k() {}\n')
    header.write_text("#pragma once\n")
    key = python_plugin.kernel_cache_key(source, "sm_87", (12, 9))
    assert key.startswith("op_kernel-sm_87-nvrtc12.9-") and len(key.rsplit("-", 1)[1]) == 64
    assert python_plugin.kernel_cache_key(source, "sm_87", (12, 9)) == key
    assert python_plugin.kernel_cache_key(source, "sm_72", (12, 9)) != key
    assert python_plugin.kernel_cache_key(source, "sm_87", (12, 8)) != key
    header.write_text("#pragma once\n// changed\n")
    changed_header = python_plugin.kernel_cache_key(source, "sm_87", (12, 9))
    assert changed_header != key
    source.write_text(source.read_text() + "// changed\n")
    assert python_plugin.kernel_cache_key(source, "sm_87", (12, 9)) not in (key, changed_header)


def test_cubins_are_compiled_once_then_read_from_memory_and_disk(monkeypatch, tmp_path):
    # Proves: the first use compiles and writes the disk cache; the same process answers from
    # memory; a new process (a new cache object) reads the file instead of running NVRTC.
    source = tmp_path / "toy_kernel.cu"
    source.write_text("__global__ void k() {}\n")
    spec = KernelSpec(**{**TOY.__dict__, "source": source})
    compiled: list[str] = []
    monkeypatch.setattr(python_plugin, "nvrtc_version", lambda: (12, 9))
    monkeypatch.setattr(
        python_plugin, "_compile_cubin", lambda src, arch: compiled.append(arch) or b"CUBIN-" + arch.encode()
    )
    cache_dir = tmp_path / "cache"
    first = python_plugin.KernelCache(cache_dir)
    assert first.cubin(spec, "sm_87") == b"CUBIN-sm_87"
    assert first.cubin(spec, "sm_87") == b"CUBIN-sm_87"
    assert compiled == ["sm_87"]
    (written,) = cache_dir.iterdir()
    assert written.name == python_plugin.kernel_cache_key(source, "sm_87", (12, 9)) + ".cubin"
    assert python_plugin.KernelCache(cache_dir).cubin(spec, "sm_87") == b"CUBIN-sm_87"
    assert compiled == ["sm_87"]
    assert python_plugin.KernelCache(cache_dir).cubin(spec, "sm_90") == b"CUBIN-sm_90"
    assert compiled == ["sm_87", "sm_90"]


def test_cache_dir_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert python_plugin.kernel_cache_dir() == tmp_path / "litevit" / "kernels"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert python_plugin.kernel_cache_dir() == Path.home() / ".cache" / "litevit" / "kernels"


def _nvrtc_missing() -> str | None:
    try:
        from cuda.bindings import nvrtc

        nvrtc.nvrtcVersion()
        importlib.import_module("litevit.plugins.compile")
    except Exception as exc:  # absent wheel, absent libnvrtc, compile.py not written yet
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.mark.skipif(_nvrtc_missing() is not None, reason=f"NVRTC unavailable: {_nvrtc_missing()}")
@pytest.mark.parametrize("op_type", list(EXAMPLES))
@pytest.mark.parametrize("arch", ["sm_70", "sm_87"])
def test_each_kernel_compiles_to_a_cubin_with_nvrtc(op_type, arch):
    # Proves: what the plugin compiles at run time (the op's source, for the device's sm_XY; here
    # the V100's and Orin's) compiles with NVRTC to a cubin (an ELF image) holding both kernels.
    spec = spec_of(op_type)
    cubin = python_plugin._compile_cubin(spec.source, arch)
    assert cubin[:4] == b"\x7fELF"
    for name in spec.kernels.values():
        assert name.encode() in cubin


# ---------------------------------------------------------------------------------------------
# litevit build / TrtRunner: --plugins python


def test_python_is_a_plugin_source_for_build_and_runner(monkeypatch):
    # Proves: "python" (option or $LITEVIT_PLUGINS) selects the Python plugins without looking for
    # a file; an engine whose sidecar records them registers them again before loading.
    monkeypatch.delenv(trt_build.PLUGINS_ENV, raising=False)
    assert trt_build.plugin_library_path("python") == "python"
    monkeypatch.setenv(trt_build.PLUGINS_ENV, "python")
    assert trt_build.plugin_library_path(None) == "python"
    monkeypatch.delenv(trt_build.PLUGINS_ENV)
    sidecar = {"plugins": {"library": "python", "sha256": None}}
    assert trt_build.plugin_library_to_load(sidecar, None) == "python"
    assert trt_build.plugins.plugins_record("python") == {"library": "python", "sha256": None}
    registered: list[bool] = []
    monkeypatch.setattr(python_plugin, "register", lambda: registered.append(True) or [])
    trt_build.load_plugin_library("python")
    assert registered == [True]


def test_route_lines_name_the_python_plugins():
    # Proves: on TensorRT 10.3 (which would inline a function body and never ask the registry)
    # the bodies of ops the Python plugins register are stripped, and the build says where the
    # plugin comes from.
    body = helper.make_function(
        "litevit",
        "CSA",
        ["x"],
        ["y"],
        [helper.make_node("Relu", ["x"], ["y"])],
        [helper.make_opsetid("", 17)],
    )
    node = helper.make_node(
        "CSA", ["x"], ["y"], domain="litevit", plugin_version="1", plugin_namespace="litevit"
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 2, 2])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("litevit", 1)],
        functions=[body],
    )
    result = trt_build.route_custom_ops(
        model, trt_build.TrtFeatures.from_version("10.3.0.26"), "python", lambda *key: True
    )
    assert [r.line for r in result.routes] == [
        "CSA x1: TensorRT plugin litevit::CSA v1 from litevit.plugins.python_plugin"
    ]
    assert list(result.model.functions) == []


def test_build_and_run_an_engine_with_the_python_plugins(monkeypatch, tmp_path):
    # Proves, end to end against the fake TensorRT 10.8: `litevit build --plugins python`
    # registers the Python creators before parsing, routes the ops to them, records "python" in
    # the sidecar, and the runner of the engine (parity) registers them again (idempotently)
    # from the sidecar.
    for op in kernels.OP_PACKAGES:
        spec_of(op)
    trt = install(monkeypatch, "10.8.0.43")
    present = {"tensorrt", "cuda.bindings", "onnxruntime"}
    for module in (runners, trt_build.parity):
        monkeypatch.setattr(module, "has", lambda name: name in present)
    monkeypatch.setattr(runners, "_open_cuda", lambda index: fake_tensorrt.FakeCuda(index))
    monkeypatch.setattr(
        environment, "gpu_facts", lambda: {"gpu_name": "Orin (fake)", "compute_capability": "8.7"}
    )
    monkeypatch.setattr(environment, "cuda_version", lambda: "12.6")
    monkeypatch.delenv(trt_build.PLUGINS_ENV, raising=False)

    body = helper.make_function(
        "litevit",
        "RASA",
        ["q", "weight"],
        ["y"],
        [helper.make_node("Relu", ["q"], ["y"])],
        [helper.make_opsetid("", 17)],
    )
    node = helper.make_node(
        "RASA",
        ["q", "weight"],
        ["y"],
        domain="litevit",
        plugin_version="1",
        plugin_namespace="litevit",
        dilations=[1, 3, 5],
        kernel_size=3,
    )
    weight = helper.make_tensor("weight", TensorProto.FLOAT, [4, 1, 3, 3], [0.1] * 36)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [weight],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("litevit", 1)],
        functions=[body],
    )
    model.ir_version = 8
    path = tmp_path / "rasa.onnx"
    onnx.save(model, path)
    registrations: list[list[str]] = []
    register = python_plugin.register
    monkeypatch.setattr(
        python_plugin, "register", lambda: registrations.append(register()) or registrations[-1]
    )
    lines: list[str] = []
    engine = tmp_path / "rasa.engine"
    result = trt_build.build_engine(path, engine, plugin_library="python", log=lines.append)
    assert lines[0] == "RASA x1: TensorRT plugin litevit::RASA v1 from litevit.plugins.python_plugin"
    assert result.sidecar["plugins"] == {"library": "python", "sha256": None}
    assert trt.records.registered_creators == [(op, "1", "litevit") for op in kernels.OP_PACKAGES]
    assert trt.records.loaded_libraries == []
    assert result.parity_status == "passed"
    assert len(registrations) == 2  # the build, then the parity runner
    # A later process-like load: no plugins argument, no $LITEVIT_PLUGINS; the sidecar says "python".
    with runners.TrtRunner(engine):
        pass
    assert len(registrations) == 3
    assert len(trt.records.registered_creators) == len(kernels.OP_PACKAGES)
