"""TensorRT plugins for CSA, RASA and GhostHead written in Python (IPluginV3, TensorRT >= 10.0).

The path for machines without a C++ compiler or TensorRT's headers: :func:`register` adds one
``IPluginCreatorV3One`` per op of :func:`litevit.plugins.kernels.specs` to TensorRT's plugin
registry, under the ONNX op_type as name, namespace ``litevit`` and version ``1`` (what the
exported nodes name), so the ONNX parser maps litevit's nodes onto these plugins. TensorRT 10.0
brought IPluginV3 to Python, so this covers the V100's TensorRT 10.4 and JetPack 6's 10.3;
JetPack 5 (TensorRT 8.5/8.6) needs the C++ library. ``litevit build --plugins python`` and
:class:`~litevit.runtime.runners.TrtRunner` (through the engine's sidecar) call :func:`register`.

**Engines built with these plugins need Python at run time**: TensorRT serializes only the
plugins' attributes into the engine, so the process that deserializes it must have imported
litevit and called :func:`register` (with TensorRT's Python bindings, cuda-python and NVRTC
installed). ``trtexec`` and C++ applications cannot run such engines; the C++ library
``liblitevit_plugins.so`` (``litevit plugins build``) is the path for them.

Each plugin reads the node's attributes (``kINT32`` plugin fields named as the spec's
``attribute_names``) and serializes them back the same way; takes its output shape from the
spec's affine rules through TensorRT's ``IExprBuilder``; accepts FP32 or FP16 linear tensors,
all inputs and the output of one type; and enqueues the op's CUDA kernel (the same
``plugins/<op>/<op>_kernel.cu`` the C++ plugin uses), compiled at run time with NVRTC for the
current GPU's compute capability and launched with ``cuda.bindings.driver.cuLaunchKernel``:
the input pointers, the output pointer, then the spec's int32 scalars. Compiled kernels are
kept per (op, architecture) in memory and in ``~/.cache/litevit/kernels`` (or
``$XDG_CACHE_HOME/litevit/kernels``), named by the SHA-256 of the source, the architecture and
the NVRTC version, so only the first run on a machine pays for NVRTC.

This module imports without TensorRT and CUDA: both are imported where they are used.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import numpy as np

from litevit._deps import has, require
from litevit.errors import LitevitError, MissingDependencyError
from litevit.plugins import kernels
from litevit.plugins.kernels import AffineDim, KernelSpec, Launch

NAMESPACE = "litevit"
VERSION = "1"
# IPluginV3 and IPluginCreatorV3One are implementable in Python from TensorRT 10.0 (10.0 EA
# release notes; NVIDIA/TensorRT samples/python/python_plugin).
MIN_TENSORRT = (10, 0)
# Attributes whose ONNX type is INTS (the reference takes a list): every other attribute is one
# INT. A kINT32 field of one value cannot say which, so it is written down here; a test checks
# it against the references' signatures.
LIST_ATTRIBUTES: dict[str, frozenset[str]] = {"RASA": frozenset({"dilations"})}
# Keys of KernelSpec.kernels, by the name of the trt.DataType the tensors have.
KERNEL_DTYPES = {"FLOAT": "float32", "HALF": "float16"}

AttributeValue = Union[int, Tuple[int, ...]]
Attributes = Dict[str, AttributeValue]

_INT32_RANGE = (-(2**31), 2**31 - 1)
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


# ---------------------------------------------------------------------------------------------
# Attributes: plugin fields <-> the values the spec's rules take


def attributes_from_fields(spec: KernelSpec, fields: Iterable[Any]) -> Attributes:
    """The op's attributes from TensorRT plugin fields (``.name``, ``.data``, ``.type``): every
    name of ``spec.attribute_names`` must be there as kINT32, one value unless it is a list
    attribute. Fields the op does not read (``plugin_version``, ...) are ignored."""
    by_name = {str(field.name): field for field in fields}
    lists = LIST_ATTRIBUTES.get(spec.op_type, frozenset())
    attributes: Attributes = {}
    for name in spec.attribute_names:
        field = by_name.get(name)
        if field is None:
            raise LitevitError(f"the {spec.op_type} plugin needs the attribute {name!r}; the node has none.")
        if getattr(field.type, "name", None) != "INT32":
            raise LitevitError(
                f"the {spec.op_type} plugin reads {name!r} as INT32 plugin data; got {field.type}."
            )
        values = tuple(int(v) for v in np.asarray(field.data, dtype=np.int32).reshape(-1))
        if name in lists:
            if not values:
                raise LitevitError(f"the {spec.op_type} attribute {name!r} is an empty list.")
            attributes[name] = values
        elif len(values) != 1:
            raise LitevitError(f"the {spec.op_type} attribute {name!r} must be one int; got {list(values)}.")
        else:
            attributes[name] = values[0]
    return attributes


def attribute_arrays(
    spec: KernelSpec, attributes: Mapping[str, AttributeValue]
) -> list[tuple[str, np.ndarray]]:
    """``(name, int32 array)`` per attribute in ``spec.attribute_names`` order: the plugin fields
    that serialize a plugin (read back by :func:`attributes_from_fields`)."""
    return [
        (name, np.atleast_1d(np.asarray(attributes[name], dtype=np.int32))) for name in spec.attribute_names
    ]


# ---------------------------------------------------------------------------------------------
# Output shapes and launches


def output_dim_exprs(
    rules: Sequence[AffineDim], inputs: Sequence[Any], builder: Any, operation: Any
) -> list[Any]:
    """One IDimensionExpr per output dim: ``scale * inputs[input][axis] + offset`` built with
    ``builder`` (an IExprBuilder; ``operation`` is trt.DimensionOperation), no operation spent
    on a scale of 1 or an offset of 0."""
    exprs = []
    for rule in rules:
        if rule.scale == 0:
            exprs.append(builder.constant(rule.offset))
            continue
        expr = inputs[rule.input][rule.axis]
        if rule.scale != 1:
            expr = builder.operation(operation.PROD, expr, builder.constant(rule.scale))
        if rule.offset > 0:
            expr = builder.operation(operation.SUM, expr, builder.constant(rule.offset))
        elif rule.offset < 0:
            expr = builder.operation(operation.SUB, expr, builder.constant(-rule.offset))
        exprs.append(expr)
    return exprs


def kernel_arguments(
    inputs: Sequence[int], output: int, scalars: Sequence[int]
) -> tuple[tuple[int, ...], tuple[Any, ...]]:
    """cuLaunchKernel's ``kernelParams`` as cuda-python takes them, (values, ctypes types): the
    input pointers, the output pointer, then the int32 scalars, the kernels' parameter list."""
    for value in scalars:
        if not _INT32_RANGE[0] <= value <= _INT32_RANGE[1]:
            raise LitevitError(f"a kernel argument ({value}) does not fit in int32: the tensor is too large.")
    values = (*(int(p) for p in inputs), int(output), *(int(s) for s in scalars))
    types = (ctypes.c_void_p,) * (len(inputs) + 1) + (ctypes.c_int32,) * len(scalars)
    return values, types


def launch_kernel(
    driver: Any, function: Any, launch: Launch, inputs: Sequence[int], output: int, stream: int
) -> None:
    """Launch ``function`` with ``launch``'s grid, block and shared memory on ``stream``."""
    if 0 in launch.grid:  # an empty output: nothing to compute, and CUDA refuses an empty grid
        return
    _check(
        driver,
        driver.cuLaunchKernel(
            function,
            *launch.grid,
            *launch.block,
            launch.shared_bytes,
            driver.CUstream(stream),
            kernel_arguments(inputs, output, launch.scalars),
            0,
        ),
        "cuLaunchKernel",
    )


def _driver() -> Any:
    from cuda.bindings import driver

    return driver


def _check(driver: Any, result: Any, call: str) -> Any:
    """The value of a cuda-python driver call, which returns (CUresult, values...)."""
    error = result[0]
    if error != driver.CUresult.CUDA_SUCCESS:
        _, name = driver.cuGetErrorName(error)
        raise RuntimeError(f"{call} failed: {name.decode() if isinstance(name, bytes) else name}")
    return result[1] if len(result) == 2 else result[1:]


# ---------------------------------------------------------------------------------------------
# Run-time compilation and its caches


def source_digest(source: Path) -> str:
    """SHA-256 of a kernel source and, recursively, the local headers it includes (``#include
    "..."`` next to it): what NVRTC compiles, apart from the CUDA headers."""
    digest = hashlib.sha256()
    seen: set[Path] = set()

    def add(path: Path) -> None:
        path = path.resolve()
        if path in seen:
            return
        seen.add(path)
        text = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + text + b"\0")
        for name in _INCLUDE.findall(text.decode("utf-8", errors="replace")):
            if (path.parent / name).is_file():
                add(path.parent / name)

    add(source)
    return digest.hexdigest()


def kernel_cache_key(source: Path, arch: str, nvrtc_version: tuple[int, int]) -> str:
    """The disk cache's file stem for ``source`` compiled for ``arch`` (``sm_87``) by NVRTC
    ``nvrtc_version``: any change to one of the three is a different file."""
    return f"{source.stem}-{arch}-nvrtc{nvrtc_version[0]}.{nvrtc_version[1]}-{source_digest(source)}"


def kernel_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "litevit" / "kernels"


def nvrtc_version() -> tuple[int, int]:
    from cuda.bindings import nvrtc

    error, major, minor = nvrtc.nvrtcVersion()
    if error != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise RuntimeError(f"nvrtcVersion failed: {error}")
    return int(major), int(minor)


def _compile_cubin(source: Path, arch: str) -> bytes:
    from litevit.plugins.compile import nvrtc_compile

    # A warning a newer NVRTC has about the source must not stop inference: CI holds the line.
    result = nvrtc_compile(source, arch, warnings_as_errors=False)
    if not result.cubin:
        raise RuntimeError(f"NVRTC gave no cubin for {source.name} ({arch})")
    return bytes(result.cubin)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class KernelCache:
    """The ops' kernels for the current CUDA context, compiled with NVRTC on first use.

    Cubins are kept per (op, architecture) in memory and on disk (one NVRTC run gives an op's
    FP32 and FP16 kernels, which live in one module); modules and functions are kept per CUDA
    context, since a module belongs to the context that loaded it. Thread-safe: TensorRT may
    enqueue from several threads.
    """

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._cubins: dict[tuple[str, str], bytes] = {}
        self._modules: dict[tuple[int, str], Any] = {}
        self._functions: dict[tuple[int, str, str], Any] = {}
        self._lock = threading.Lock()

    def cubin(self, spec: KernelSpec, arch: str) -> bytes:
        """The op's kernels compiled for ``arch``: from memory, the disk cache, or NVRTC."""
        key = (spec.op_type, arch)
        cached = self._cubins.get(key)
        if cached is not None:
            return cached
        path = (
            self.cache_dir or kernel_cache_dir()
        ) / f"{kernel_cache_key(spec.source, arch, nvrtc_version())}.cubin"
        if path.is_file():
            cubin = path.read_bytes()
        else:
            cubin = _compile_cubin(spec.source, arch)
            try:
                _write_atomically(path, cubin)
            except OSError:
                pass  # a read-only or full cache only costs the next process another NVRTC run
        self._cubins[key] = cubin
        return cubin

    def function(self, spec: KernelSpec, dtype: str) -> Any:
        """The ``CUfunction`` of the op's ``dtype`` ("float32"/"float16") kernel in the current context."""
        driver = _driver()
        with self._lock:
            context = _check(driver, driver.cuCtxGetCurrent(), "cuCtxGetCurrent")
            if int(context) == 0:
                raise RuntimeError("no CUDA context is current: TensorRT enqueues plugins inside one")
            function_key = (int(context), spec.op_type, dtype)
            function = self._functions.get(function_key)
            if function is not None:
                return function
            module_key = (int(context), spec.op_type)
            module = self._modules.get(module_key)
            if module is None:
                device = _check(driver, driver.cuCtxGetDevice(), "cuCtxGetDevice")
                module = _check(
                    driver,
                    driver.cuModuleLoadData(self.cubin(spec, _device_arch(driver, device))),
                    "cuModuleLoadData",
                )
                self._modules[module_key] = module
            function = _check(
                driver,
                driver.cuModuleGetFunction(module, spec.kernels[dtype].encode()),
                "cuModuleGetFunction",
            )
            self._functions[function_key] = function
            return function


def _device_arch(driver: Any, device: Any) -> str:
    """``sm_XY`` of ``device``: NVRTC compiles a cubin (SASS) for exactly that GPU, which runs on
    any driver of the same CUDA major version, unlike PTX from a newer NVRTC."""
    attribute = driver.CUdevice_attribute
    major = _check(
        driver,
        driver.cuDeviceGetAttribute(attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
        "cuDeviceGetAttribute",
    )
    minor = _check(
        driver,
        driver.cuDeviceGetAttribute(attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
        "cuDeviceGetAttribute",
    )
    return f"sm_{major}{minor}"


KERNELS = KernelCache()


# ---------------------------------------------------------------------------------------------
# The TensorRT classes (defined once TensorRT is imported)


def _dims(dims: Any) -> tuple[int, ...]:
    # trt.Dims indexes like a tuple but is not typed as iterable.
    return tuple(int(dims[i]) for i in range(len(dims)))


@functools.lru_cache(maxsize=None)
def plugin_classes() -> tuple[type[Any], type[Any]]:
    """``(LitevitPlugin, LitevitPluginCreator)``, subclasses of the installed TensorRT's
    IPluginV3 interfaces and IPluginCreatorV3One."""
    import tensorrt as trt

    def _int32_fields(arrays: Sequence[tuple[str, np.ndarray]]) -> tuple[Any, trt.PluginFieldCollection_]:
        """kINT32 plugin fields over ``arrays``, and what must outlive TensorRT's use of them:
        TensorRT keeps raw pointers into the arrays, the fields and the collection."""
        # The bindings convert a str to FallbackString implicitly; the stubs do not say so.
        fields = [
            trt.PluginField(name, data, trt.PluginFieldType.INT32)  # type: ignore[call-overload]
            for name, data in arrays
        ]
        collection = trt.PluginFieldCollection_(trt.PluginFieldCollection(fields))
        return (arrays, fields, collection), collection

    class LitevitPlugin(trt.IPluginV3, trt.IPluginV3OneCore, trt.IPluginV3OneBuild, trt.IPluginV3OneRuntime):
        """One litevit op (``spec``) with its node's attributes."""

        def __init__(self, spec: KernelSpec, attributes: Attributes) -> None:
            trt.IPluginV3.__init__(self)
            trt.IPluginV3OneCore.__init__(self)
            trt.IPluginV3OneBuild.__init__(self)
            trt.IPluginV3OneRuntime.__init__(self)
            # TensorRT reads these back through the Python bindings, which need each one set.
            self.plugin_name = spec.op_type
            self.plugin_namespace = NAMESPACE
            self.plugin_version = VERSION
            self.num_outputs = 1
            self.spec = spec
            self.attributes = attributes
            self._serialized: Any = None  # what get_fields_to_serialize's answer points into

        def get_capability_interface(self, type: Any) -> Any:
            return self

        def clone(self) -> LitevitPlugin:
            return LitevitPlugin(self.spec, dict(self.attributes))

        # --- build ---------------------------------------------------------------------------
        def get_output_data_types(self, input_types: list[trt.DataType]) -> list[trt.DataType]:
            return [input_types[0]]

        def get_output_shapes(
            self,
            inputs: list[trt.DimsExprs],
            shape_inputs: list[trt.DimsExprs],
            expr_builder: trt.IExprBuilder,
        ) -> list[trt.DimsExprs]:
            rules = self.spec.output_dims(self.attributes)
            return [trt.DimsExprs(output_dim_exprs(rules, inputs, expr_builder, trt.DimensionOperation))]

        def supports_format_combination(
            self, pos: int, in_out: list[trt.DynamicPluginTensorDesc], num_inputs: int
        ) -> bool:
            # FP32 or FP16, linear (NCHW as exported), every input and the output of one type.
            desc = in_out[pos].desc
            if desc.format != trt.TensorFormat.LINEAR or desc.type not in (
                trt.DataType.FLOAT,
                trt.DataType.HALF,
            ):
                return False
            return pos == 0 or desc.type == in_out[0].desc.type

        def configure_plugin(
            self, inputs: list[trt.DynamicPluginTensorDesc], outputs: list[trt.DynamicPluginTensorDesc]
        ) -> None:
            if len(inputs) != self.spec.num_inputs or len(outputs) != 1:
                raise LitevitError(
                    f"the {self.spec.op_type} plugin takes {self.spec.num_inputs} inputs and gives 1 output; "
                    f"got {len(inputs)} and {len(outputs)}."
                )

        def get_workspace_size(
            self, inputs: list[trt.DynamicPluginTensorDesc], outputs: list[trt.DynamicPluginTensorDesc]
        ) -> int:
            return 0

        # --- runtime -------------------------------------------------------------------------
        def set_tactic(self, tactic: int) -> None:
            pass  # one kernel per type: no custom tactics

        def on_shape_change(
            self, inputs: list[trt.PluginTensorDesc], outputs: list[trt.PluginTensorDesc]
        ) -> None:
            shapes = [_dims(desc.dims) for desc in inputs]
            expected = tuple(self.spec.output_shape(shapes, self.attributes))
            if _dims(outputs[0].dims) != expected:
                raise LitevitError(
                    f"the {self.spec.op_type} plugin's output is {_dims(outputs[0].dims)} for inputs "
                    f"{shapes}; its shape rule gives {expected}."
                )
            # Compile or load the kernel here rather than inside the first enqueue.
            KERNELS.function(self.spec, KERNEL_DTYPES[inputs[0].type.name])

        def enqueue(
            self,
            input_desc: list[trt.PluginTensorDesc],
            output_desc: list[trt.PluginTensorDesc],
            inputs: list[int],
            outputs: list[int],
            workspace: int,
            stream: int,
        ) -> None:
            launch = self.spec.launch([_dims(desc.dims) for desc in input_desc], self.attributes)
            function = KERNELS.function(self.spec, KERNEL_DTYPES[input_desc[0].type.name])
            launch_kernel(_driver(), function, launch, inputs, outputs[0], stream)

        def attach_to_context(self, resource_context: Any) -> LitevitPlugin:
            return self.clone()

        def get_fields_to_serialize(self) -> trt.PluginFieldCollection_:
            self._serialized, collection = _int32_fields(attribute_arrays(self.spec, self.attributes))
            return collection

    class LitevitPluginCreator(trt.IPluginCreatorV3One):
        """Creates the ``spec`` op's plugin from a node's attributes or an engine's fields."""

        def __init__(self, spec: KernelSpec) -> None:
            trt.IPluginCreatorV3One.__init__(self)
            self.name = spec.op_type
            self.plugin_namespace = NAMESPACE
            self.plugin_version = VERSION
            self._field_names, self.field_names = _int32_fields(
                [(name, np.zeros(0, np.int32)) for name in spec.attribute_names]
            )
            self.spec = spec

        def create_plugin(
            self, name: str, field_collection: trt.PluginFieldCollection_, phase: Any
        ) -> LitevitPlugin:
            fields = [field_collection[i] for i in range(len(field_collection))]
            return LitevitPlugin(self.spec, attributes_from_fields(self.spec, fields))

    return LitevitPlugin, LitevitPluginCreator


# ---------------------------------------------------------------------------------------------
# Registration


# op_type -> the creator registered in this process. The registry keeps a pointer to it, so it
# must stay alive; it also makes register() idempotent.
_REGISTERED: dict[str, Any] = {}
_REGISTER_LOCK = threading.Lock()


def register() -> list[str]:
    """Register a creator per litevit op with TensorRT's plugin registry, once per process;
    return the plugin names (``litevit::CSA v1``, ...)."""
    require("tensorrt")
    import tensorrt as trt

    match = re.match(r"(\d+)\.(\d+)", trt.__version__)
    if match is None or (int(match.group(1)), int(match.group(2))) < MIN_TENSORRT:
        raise LitevitError(
            f"litevit's Python plugins need TensorRT {MIN_TENSORRT[0]}.{MIN_TENSORRT[1]} or newer "
            f"(IPluginV3); with TensorRT {trt.__version__} build and use liblitevit_plugins.so "
            f"(litevit plugins build)."
        )
    if not has("cuda.bindings"):
        raise MissingDependencyError(
            "cuda-python is not installed; litevit's Python plugins compile and launch their kernels "
            "with it: pip install 'litevit[kernels]' (cuda-bindings and NVRTC for CUDA 12)."
        )
    try:
        nvrtc_version()
    except Exception as exc:  # cuda.bindings raises its own types when libnvrtc is not found
        raise MissingDependencyError(
            f"NVRTC is not available ({exc}); litevit's Python plugins compile their kernels with it: "
            f"pip install 'litevit[kernels]', or install the CUDA toolkit's NVRTC."
        ) from None
    with _REGISTER_LOCK:
        registry = trt.get_plugin_registry()
        _, creator_class = plugin_classes()
        names = []
        for op_type, spec in kernels.specs().items():
            name = f"{NAMESPACE}::{op_type} v{VERSION}"
            names.append(name)
            if op_type in _REGISTERED:
                continue
            if registry.get_creator(op_type, VERSION, NAMESPACE) is not None:
                raise LitevitError(
                    f"TensorRT already has a {name} plugin (liblitevit_plugins.so is loaded): use either the "
                    f"library or litevit's Python plugins in one process."
                )
            creator = creator_class(spec)
            if not registry.register_creator(creator, NAMESPACE):
                raise LitevitError(f"TensorRT refused to register the Python plugin {name}.")
            _REGISTERED[op_type] = creator
        return names
