"""A FAKE of the small TensorRT Python API subset litevit uses; TensorRT cannot be installed here.

It proves litevit's own logic (which calls it makes, with which flags and graphs, for which
TensorRT version), never TensorRT's behaviour: the fake parses nothing the way TensorRT does,
optimises nothing and has no precedence rules of its own.

**Its API surface is each release's own.** ``tensorrt_api_surface.json`` holds what the Python
bindings of each release define, read from NVIDIA's binding sources by ``tensorrt_api.py``
(classes, members with their keyword names, enum values, deprecations, module functions). The
fake is written with the members litevit's code paths touch and then cut to the surface of the
release it is made for (the newest extracted release not newer than the version asked for):

* a class, function, member or enum value that release lacks is removed (``load_library`` and
  ``OnnxParserFlag`` on 8.5, ``get_creator`` before 10.0, ``BuilderFlag.FP16``, the INT8
  calibrator and ``get_plugin_creator`` on 11, ...), so litevit code using it there fails;
* setting an attribute the release's class lacks raises AttributeError, as pybind11 does;
* using a member the release deprecates is recorded in ``records.deprecated``;
* the enums are the release's own, member by member (numbered in binding order).

"Engines" are the parsed ONNX graph run by ONNX Runtime on the CPU, behind the engine/context
API the runner uses (device memory is host memory, see :class:`FakeCuda`); a plugin "creator"
carries an ONNX function body so that an engine using it can run. ``output_error`` perturbs
every engine output so that parity failures can be provoked. ``records.events`` lists, in order,
the calls whose order matters (TensorRT's own plugins registered, plugin libraries loaded,
engines deserialized, graphs parsed).

From 10.0 it also has the Python plugin surface (the IPluginV3 interfaces and
IPluginCreatorV3One as empty base classes, plugin fields, ``register_creator``, the enums
plugins compare with), so that litevit's Python plugins can be registered and called; the
fake never calls a plugin itself, and an engine built with one runs the node's function body.
"""

from __future__ import annotations

import ctypes
import enum
import functools
import importlib.machinery
import json
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import tensorrt_api

from litevit.runtime import runners

VERSIONS = (
    "8.5.2.2",
    "8.6.2.3",
    "10.3.0.26",
    "10.4.0.26",
    "10.8.0.43",
    "10.13.3.9",
    "10.15.1.29",
    "11.4.0.106",
)
ENGINE_MAGIC = b"FAKE-TENSORRT-ENGINE\n"
# Module attributes that are the fake's own (what litevit asked of it), not TensorRT's.
FAKE_ONLY = frozenset({"records", "api_release"})

_NUMPY = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64, "INT8": np.int8}
_ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "FLOAT",
    onnx.TensorProto.FLOAT16: "HALF",
    onnx.TensorProto.INT32: "INT32",
}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2])


@functools.cache
def _surfaces() -> dict[str, Any]:
    return json.loads(tensorrt_api.SURFACE.read_text())["releases"]


def api_surface(version: str) -> tuple[str, dict[str, Any]]:
    """The extracted release a fake of ``version`` follows (the newest not newer than it)."""
    releases = _surfaces()
    older = [name for name in releases if _version(name) <= _version(version)]
    if not older:
        raise ValueError(f"no TensorRT API surface at or below {version}")
    name = max(older, key=_version)
    return name, releases[name]


class FakeCuda(runners._CudaApi):
    """Device memory is host memory (ctypes buffers); copies are memmoves; no streams."""

    def __init__(self, device_index: int = 0) -> None:
        self.blocks: dict[int, Any] = {}
        self.freed = 0
        self.closed = False

    def malloc(self, nbytes):
        block = ctypes.create_string_buffer(max(nbytes, 1))
        self.blocks[ctypes.addressof(block)] = block
        return ctypes.addressof(block)

    def free(self, pointer):
        del self.blocks[pointer]
        self.freed += 1

    def copy_to_device(self, pointer, host):
        ctypes.memmove(pointer, host.ctypes.data, host.nbytes)

    def copy_to_host(self, host, pointer):
        ctypes.memmove(host.ctypes.data, pointer, host.nbytes)

    def stream_handle(self):
        return 1234

    def synchronize(self):
        pass

    def record_start(self):
        pass

    def record_end(self):
        pass

    def elapsed_ms(self):
        return 0.5

    def close(self):
        self.closed = True


def _read_device(address: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    count = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.ctypeslib.as_array((ctypes.c_ubyte * count).from_address(address))
    return raw.view(dtype).reshape(shape).copy()


def _write_device(address: int, array: np.ndarray) -> None:
    ctypes.memmove(address, np.ascontiguousarray(array).ctypes.data, array.nbytes)


def engine_bytes(
    model: onnx.ModelProto,
    version: str,
    profiles: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] | None = None,
    output_error: float = 0.0,
) -> bytes:
    """A serialized fake engine: the header says which TensorRT made it and its profile."""
    header = {
        "version": version,
        "profiles": {name: [list(s) for s in shapes] for name, shapes in (profiles or {}).items()},
        "output_error": output_error,
    }
    return ENGINE_MAGIC + json.dumps(header).encode() + b"\n" + model.SerializeToString()


@dataclass
class Records:
    """What litevit asked of the fake, for the tests to inspect."""

    network_flags: list[int] = field(default_factory=list)
    parser_flags: list[str] = field(default_factory=list)
    parsed: list[tuple[onnx.ModelProto, str | None]] = field(default_factory=list)
    configs: list[Any] = field(default_factory=list)
    loaded_libraries: list[str] = field(default_factory=list)
    # (name, version, namespace) of each creator registered from Python.
    registered_creators: list[tuple[str, str, str]] = field(default_factory=list)
    calibration_batches: int = 0
    calibration_cache_read: list[bytes | None] = field(default_factory=list)
    deserialized: int = 0
    # Calls whose order matters: "init_libnvinfer_plugins", "load_library", "deserialize", "parse".
    events: list[str] = field(default_factory=list)
    # "Class.member" of every deprecated member litevit used.
    deprecated: list[str] = field(default_factory=list)


class _Bound:
    """A class the bindings define: no attribute it lacks can be set (pybind11 classes have no
    instance dict); Python subclasses (litevit's loggers, calibrators, plugins) may add their own."""

    _trt_name = ""
    _allowed: frozenset[str] = frozenset()
    _deprecated: frozenset[str] = frozenset()
    _records: Records | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        if not name.startswith("_") and "_trt_name" in cls.__dict__:
            if name not in cls._allowed:
                raise AttributeError(f"'tensorrt.{cls._trt_name}' object has no attribute '{name}'")
            if name in cls._deprecated and cls._records is not None:
                cls._records.deprecated.append(f"{cls._trt_name}.{name}")
        object.__setattr__(self, name, value)


def _bound(name: str):
    """Class decorator: the fake class stands for the bindings' class ``name``."""

    def mark(cls):
        cls._trt_name = name
        return cls

    return mark


def make_tensorrt(
    version: str = "10.3.0.26",
    *,
    plugins: dict[tuple[str, str, str], onnx.FunctionProto] | None = None,
    log_on_parse: list[tuple[str, str]] | None = None,
    parse_fails: bool = False,
    log_on_build: list[tuple[str, str]] | None = None,
    build_fails: bool = False,
    dla_cores: int = 0,
    output_error: float = 0.0,
) -> types.ModuleType:
    """A ``tensorrt`` module for ``version``. ``plugins``: the creators a loaded plugin library
    would register, (name, version, namespace) -> the function body the fake runs for it."""
    release, api = api_surface(version)
    classes = api["classes"]
    trt = types.ModuleType("tensorrt")
    # A spec like an installed module's, so importlib (and torch, which probes for tensorrt) sees one.
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None, origin="fake_tensorrt.py")
    trt.__version__ = version
    records = Records()
    trt.records = records
    creators = dict(plugins or {})

    def enum_of(name: str, scope: Any = trt) -> None:
        """The release's enum ``name`` (``Outer.Inner`` for a nested one), if it has it."""
        entry = classes.get(name)
        if entry is not None and entry["kind"] == "enum":
            setattr(
                scope,
                name.rsplit(".", 1)[-1],
                enum.IntEnum(name.rsplit(".", 1)[-1], entry["values"], start=0),
            )

    for name in (
        "NetworkDefinitionCreationFlag",
        "BuilderFlag",
        "OnnxParserFlag",
        "MemoryPoolType",
        "DeviceType",
        "TensorIOMode",
        "DataType",
        "PluginFieldType",
        "TensorFormat",
        "DimensionOperation",
        "TensorRTPhase",
    ):
        enum_of(name)

    def nptype(dtype):
        return _NUMPY[dtype.name]

    trt.nptype = nptype

    # --- logging ------------------------------------------------------------------------------
    @_bound("ILogger")
    class ILogger(_Bound):
        def __init__(self) -> None:
            pass

        def log(self, severity, msg):
            raise NotImplementedError

    enum_of("ILogger.Severity", ILogger)
    for value in classes["ILogger"].get("exported_values", []):
        setattr(ILogger, value, ILogger.Severity[value])

    @_bound("Logger")
    class Logger(ILogger):
        def __init__(self, min_severity=ILogger.Severity.WARNING):
            super().__init__()
            self.min_severity = min_severity

        def log(self, severity, msg):
            pass

    trt.ILogger, trt.Logger = ILogger, Logger

    @_bound("Dims")
    class Dims(tuple, _Bound):
        pass

    trt.Dims = Dims

    # --- plugin registry -------------------------------------------------------------------
    python_creators: dict[tuple[str, str, str], Any] = {}

    @_bound("IPluginRegistry")
    class IPluginRegistry(_Bound):
        def __init__(self) -> None:
            self._lookups: list[tuple[str, str, str]] = []

        def _find(self, name, plugin_version, namespace):
            self._lookups.append((name, plugin_version, namespace))
            key = (name, plugin_version, namespace)
            return creators.get(key) or python_creators.get(key)

        def load_library(self, plugin_path):
            records.loaded_libraries.append(plugin_path)
            records.events.append("load_library")
            return object()

        def get_creator(self, type, version, plugin_namespace=""):
            return self._find(type, version, plugin_namespace)

        def get_plugin_creator(self, type, version, plugin_namespace=""):
            return self._find(type, version, plugin_namespace)

        def register_creator(self, creator, plugin_namespace=""):
            key = (creator.name, creator.plugin_version, plugin_namespace)
            if key in creators or key in python_creators:
                return False
            python_creators[key] = creator
            records.registered_creators.append(key)
            return True

    registry = IPluginRegistry()
    trt.IPluginRegistry = IPluginRegistry
    trt.get_plugin_registry = lambda: registry

    def init_libnvinfer_plugins(logger, namespace):
        records.events.append("init_libnvinfer_plugins")
        return True

    trt.init_libnvinfer_plugins = init_libnvinfer_plugins
    _add_python_plugin_api(trt)

    # --- network and parser ----------------------------------------------------------------
    @_bound("ITensor")
    class ITensor(_Bound):
        def __init__(self, name, shape):
            self.name, self.shape = name, Dims(shape)

    @_bound("INetworkDefinition")
    class INetworkDefinition(_Bound):
        def __init__(self, flags):
            self._flags = flags
            self._inputs: list[ITensor] = []
            self._model: onnx.ModelProto | None = None

        @property
        def num_inputs(self):
            return len(self._inputs)

        def get_input(self, index):
            return self._inputs[index]

    @_bound("ParserError")
    class ParserError(_Bound):
        def __init__(self, text):
            self._text = text

        def desc(self):
            return self._text

    @_bound("OnnxParser")
    class OnnxParser(_Bound):
        def __init__(self, network, logger):
            self._network, self._logger, self._errors = network, logger, []

        def set_flag(self, flag):
            records.parser_flags.append(flag.name)

        def parse(self, model, path=None):
            records.events.append("parse")
            parsed = onnx.load_from_string(bytes(model))
            records.parsed.append((parsed, path))
            for severity, text in log_on_parse or []:
                self._logger.log(ILogger.Severity[severity], text)
            if parse_fails:
                self._errors.append(ParserError("In node 3 (importFallbackPluginImporter): UNSUPPORTED_NODE"))
                return False
            initializers = {t.name for t in parsed.graph.initializer}
            for value in parsed.graph.input:
                if value.name not in initializers:
                    dims = [
                        d.dim_value if d.HasField("dim_value") else -1
                        for d in value.type.tensor_type.shape.dim
                    ]
                    self._network._inputs.append(ITensor(value.name, dims))
            self._network._model = parsed
            return True

        @property
        def num_errors(self):
            return len(self._errors)

        def get_error(self, index):
            return self._errors[index]

    trt.ITensor, trt.INetworkDefinition, trt.ParserError, trt.OnnxParser = (
        ITensor,
        INetworkDefinition,
        ParserError,
        OnnxParser,
    )

    # --- builder configuration ---------------------------------------------------------------
    @_bound("IOptimizationProfile")
    class IOptimizationProfile(_Bound):
        def __init__(self):
            self._shapes = {}

        def set_shape(self, input, min, opt, max):
            assert all(isinstance(d, Dims) for d in (min, opt, max))
            self._shapes[input] = (tuple(min), tuple(opt), tuple(max))

    @_bound("ITimingCache")
    class ITimingCache(_Bound):
        def __init__(self, data):
            self._data = bytes(data)

        def serialize(self):
            return b"fake-timing-cache:" + version.encode()

    @_bound("IBuilderConfig")
    class IBuilderConfig(_Bound):
        def __init__(self):
            # The release's flags, by name (the real attribute is the bit mask).
            self.flags: set[str] = set()
            self._pools: dict[str, int] = {}
            self._profiles: list[IOptimizationProfile] = []
            self._calibration_profile = None
            self._timing_cache = None
            self.default_device_type = trt.DeviceType.GPU
            self.DLA_core = -1
            records.configs.append(self)

        def set_flag(self, flag):
            self.flags.add(flag.name)

        def set_memory_pool_limit(self, pool_type, pool_size):
            self._pools[pool_type.name] = pool_size

        def add_optimization_profile(self, profile):
            self._profiles.append(profile)
            return len(self._profiles) - 1

        @property
        def num_optimization_profiles(self):
            return len(self._profiles)

        def create_timing_cache(self, serialized_timing_cache):
            return ITimingCache(serialized_timing_cache)

        def set_timing_cache(self, cache, ignore_mismatch):
            if cache._data.startswith(b"other-gpu"):
                return False
            self._timing_cache = cache
            return True

        def get_timing_cache(self):
            return self._timing_cache

        def set_calibration_profile(self, profile):
            self._calibration_profile = profile
            return True

    # The bindings' int8_calibrator is a property: a class attribute lets the conformance step
    # keep or remove it with the release's surface, like any other member.
    IBuilderConfig.int8_calibrator = None

    @_bound("IInt8EntropyCalibrator2")
    class IInt8EntropyCalibrator2(_Bound):
        def __init__(self):
            pass

    trt.IOptimizationProfile, trt.ITimingCache, trt.IBuilderConfig = (
        IOptimizationProfile,
        ITimingCache,
        IBuilderConfig,
    )
    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2

    @_bound("Builder")
    class Builder(_Bound):
        num_DLA_cores = dla_cores

        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags=0):
            records.network_flags.append(flags)
            return INetworkDefinition(flags)

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            for severity, text in log_on_build or []:
                self.logger.log(ILogger.Severity[severity], text)
            if build_fails:
                return None
            calibrator = config.__dict__.get("int8_calibrator")
            if calibrator is not None:
                _calibrate(calibrator, network, config)
            model = onnx.ModelProto()
            model.CopyFrom(network._model)
            present = {(f.domain, f.name) for f in model.functions}
            for node in model.graph.node:
                key = (node.op_type, _attr(node, "plugin_version", "1"), _attr(node, "plugin_namespace", ""))
                if key in creators and (node.domain, node.op_type) not in present:
                    model.functions.append(creators[key])
                    present.add((node.domain, node.op_type))
            profiles = config._profiles[0]._shapes if config._profiles else None
            return engine_bytes(model, version, profiles, output_error)

    def _calibrate(calibrator, network, config):
        # Explicit-batch networks: litevit's calibrator must say 1 (the batch is in the shape).
        assert calibrator.get_batch_size() == 1
        cached = calibrator.read_calibration_cache()
        records.calibration_cache_read.append(cached)
        if cached is not None:
            return
        name = network._inputs[0].name
        shape = tuple(network._inputs[0].shape)
        if config._calibration_profile is not None:
            shape = config._calibration_profile._shapes[name][1]
        while True:
            pointers = calibrator.get_batch([name])
            if not pointers:
                break
            assert len(pointers) == 1, "one device pointer per network input"
            _read_device(pointers[0], shape, np.float32)
            records.calibration_batches += 1
        calibrator.write_calibration_cache(b"FAKE-CALIBRATION-CACHE " + version.encode())

    trt.Builder = Builder

    # --- runtime -------------------------------------------------------------------------------
    @_bound("IExecutionContext")
    class IExecutionContext(_Bound):
        def __init__(self, engine):
            self.engine = engine
            self._shapes: dict[str, tuple[int, ...]] = {}
            self._addresses: dict[str, int] = {}
            self._outputs: dict[str, np.ndarray] | None = None

        def set_input_shape(self, name, shape):
            shape = tuple(shape)
            ranges = self.engine._profiles.get(name)
            if ranges is not None:
                low, _, high = ranges
                if len(shape) != len(low) or not all(
                    a <= s <= b for a, s, b in zip(low, shape, high, strict=True)
                ):
                    return False
            elif shape != tuple(self.engine._static_shape(name)):
                return False
            self._shapes[name] = shape
            self._outputs = None
            return True

        def _run(self, feeds):
            import onnxruntime as ort

            session = ort.InferenceSession(
                self.engine._model.SerializeToString(), providers=["CPUExecutionProvider"]
            )
            outputs = session.run(None, feeds)
            names = [o.name for o in session.get_outputs()]
            results = {}
            for name, out in zip(names, outputs, strict=True):
                if self.engine._output_error and np.issubdtype(out.dtype, np.floating):
                    out = out + self.engine._output_error * np.abs(out).max() * np.sign(out + 1e-12)
                results[name] = out
            return results

        def get_tensor_shape(self, name):
            if name in self._shapes:
                return Dims(self._shapes[name])
            if self._outputs is None:
                zeros = {n: np.zeros(s, self.engine._dtype(n)) for n, s in self._shapes.items()}
                self._outputs = self._run(zeros)
            return Dims(self._outputs[name].shape)

        def set_tensor_address(self, name, memory):
            self._addresses[name] = memory

        def execute_async_v3(self, stream_handle):
            assert stream_handle == 1234
            feeds = {
                name: _read_device(self._addresses[name], shape, self.engine._dtype(name))
                for name, shape in self._shapes.items()
            }
            for name, array in self._run(feeds).items():
                _write_device(self._addresses[name], array)
            return True

    @_bound("ICudaEngine")
    class ICudaEngine(_Bound):
        def __init__(self, header, model):
            self._model = model
            self._profiles = {
                name: tuple(tuple(s) for s in shapes) for name, shapes in header["profiles"].items()
            }
            self._output_error = header["output_error"]
            initializers = {t.name for t in model.graph.initializer}
            self._inputs = [value for value in model.graph.input if value.name not in initializers]
            self._outputs = list(model.graph.output)

        @property
        def num_io_tensors(self):
            return len(self._inputs) + len(self._outputs)

        def _value(self, name):
            return next(v for v in self._inputs + self._outputs if v.name == name)

        def get_tensor_name(self, index):
            return (self._inputs + self._outputs)[index].name

        def _static_shape(self, name):
            return [
                d.dim_value if d.HasField("dim_value") else -1
                for d in self._value(name).type.tensor_type.shape.dim
            ]

        def get_tensor_shape(self, name):
            return Dims(self._static_shape(name))

        def get_tensor_dtype(self, name):
            return trt.DataType[_ONNX_DTYPES[self._value(name).type.tensor_type.elem_type]]

        def _dtype(self, name):
            return nptype(self.get_tensor_dtype(name))

        def get_tensor_mode(self, name):
            inputs = {v.name for v in self._inputs}
            return trt.TensorIOMode.INPUT if name in inputs else trt.TensorIOMode.OUTPUT

        def create_execution_context(self):
            return IExecutionContext(self)

    @_bound("Runtime")
    class Runtime(_Bound):
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, serialized_engine):
            records.events.append("deserialize")
            records.deserialized += 1
            if not serialized_engine.startswith(ENGINE_MAGIC):
                return None
            header_line, model_bytes = serialized_engine[len(ENGINE_MAGIC) :].split(b"\n", 1)
            header = json.loads(header_line)
            if header["version"] != version:
                return None
            return ICudaEngine(header, onnx.load_from_string(model_bytes))

    trt.IExecutionContext, trt.ICudaEngine, trt.Runtime = IExecutionContext, ICudaEngine, Runtime
    _conform(trt, api, records)
    trt.api_release = release  # which extracted surface this fake follows (fake-only, see FAKE_ONLY)
    return trt


def _add_python_plugin_api(trt: types.ModuleType) -> None:
    """The classes a Python IPluginV3 plugin subclasses or builds, as plain Python: empty interface
    bases, plugin fields and dims expressions (removed again where the release has none)."""
    for name in (
        "IPluginV3",
        "IPluginV3OneCore",
        "IPluginV3OneBuild",
        "IPluginV3OneRuntime",
        "IPluginCreatorV3One",
    ):
        setattr(trt, name, _bound(name)(type(name, (_Bound,), {"__init__": lambda self: None})))

    # The bindings give a field's data back as an array of its type, of the field's length.
    field_dtypes = {"INT32": np.int32, "FLOAT32": np.float32, "INT8": np.int8, "CHAR": np.int8}

    @_bound("PluginField")
    class PluginField(_Bound):
        def __init__(self, name="", data=None, type=trt.PluginFieldType.UNKNOWN):
            self.name, self.type = name, type
            self.data = np.asarray(data if data is not None else [], dtype=field_dtypes.get(type.name))
            self.size = self.data.size

    @_bound("PluginFieldCollection")
    class PluginFieldCollection(list, _Bound):
        pass

    @_bound("PluginFieldCollection_")
    class PluginFieldCollection_(_Bound):
        def __init__(self, fields):
            self._fields = list(fields)

        def __len__(self):
            return len(self._fields)

        def __getitem__(self, index):
            return self._fields[index]

    @_bound("DimsExprs")
    class DimsExprs(list, _Bound):
        pass

    trt.PluginField, trt.PluginFieldCollection, trt.PluginFieldCollection_ = (
        PluginField,
        PluginFieldCollection,
        PluginFieldCollection_,
    )
    trt.DimsExprs = DimsExprs


def _members(classes: dict[str, Any], name: str) -> tuple[set[str], set[str]]:
    """(every member of class ``name``, inherited and exported enum values included; the members
    every binding of which is deprecated)."""
    entry = classes.get(name) or {}
    members = set(entry.get("members", {})) | set(entry.get("exported_values", []))
    members |= {nested[len(name) + 1 :] for nested in classes if nested.startswith(name + ".")}
    deprecated = {
        member
        for member, signatures in entry.get("members", {}).items()
        if all(tensorrt_api.parse_signature(s)["deprecated"] for s in signatures)
    }
    for base in entry.get("bases", []):
        inherited, inherited_deprecated = _members(classes, base)
        members |= inherited
        deprecated |= inherited_deprecated - set(entry.get("members", {}))
    return members, deprecated


def _conform(trt: types.ModuleType, api: dict[str, Any], records: Records) -> None:
    """Cut the fake to the release's surface (see the module docstring)."""
    classes = api["classes"]
    module_names = (
        {name for name in classes if "." not in name}
        | set(api["functions"])
        | set(api["attributes"])
        | set(api["package_functions"])
    )
    for name in [n for n in vars(trt) if not n.startswith("_") and n not in FAKE_ONLY]:
        if name not in module_names:
            delattr(trt, name)
            continue
        value = getattr(trt, name)
        if isinstance(value, type) and "_trt_name" in value.__dict__:
            _conform_class(value, classes, records)


def _conform_class(cls: type, classes: dict[str, Any], records: Records) -> None:
    members, deprecated = _members(classes, cls._trt_name)
    for attribute in [a for a in list(cls.__dict__) if not a.startswith("_")]:
        if attribute not in members:
            delattr(cls, attribute)
        elif attribute in deprecated:
            setattr(
                cls, attribute, _recording(cls.__dict__[attribute], f"{cls._trt_name}.{attribute}", records)
            )
    cls._allowed = frozenset(members)
    cls._deprecated = frozenset(deprecated)
    cls._records = records


def _recording(member: Any, name: str, records: Records) -> Any:
    """``member`` (a function or property), recording each use in ``records.deprecated``."""
    if isinstance(member, property):
        getter = member.fget
        return property(
            (lambda self: records.deprecated.append(name) or getter(self)) if getter else None,
            member.fset,
        )
    if callable(member):

        @functools.wraps(member)
        def used(*args: Any, **kwargs: Any) -> Any:
            records.deprecated.append(name)
            return member(*args, **kwargs)

        return used
    return member


def _attr(node: onnx.NodeProto, name: str, default: str) -> str:
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute).decode()
    return default
