"""A FAKE of the small TensorRT Python API subset litevit uses; TensorRT cannot be installed here.

It proves litevit's logic (which calls it makes, with which flags and graphs, for which TensorRT
version), never TensorRT's behaviour: the fake parses nothing the way TensorRT does, optimises
nothing and has no precedence rules of its own. Its API surface follows the version it is made
for, from the facts in ``litevit.runtime.trt_build.TrtFeatures`` and the type stubs: a member
that version lacks is absent (``BuilderFlag.FP16`` on 11, ``load_library`` on 8.5,
``ENABLE_PLUGIN_OVERRIDE`` before 10.15, ...), so litevit code that used it there fails a test.

"Engines" are the parsed ONNX graph run by ONNX Runtime on the CPU, behind the engine/context
API the runner uses (device memory is host memory, see :class:`FakeCuda`); a plugin "creator"
carries an ONNX function body so that an engine using it can run. ``output_error`` perturbs
every engine output so that parity failures can be provoked.

From 10.0 it also has the Python plugin surface (the IPluginV3 interfaces and
IPluginCreatorV3One as empty base classes, plugin fields, ``register_creator``, the enums
plugins compare with), so that litevit's Python plugins can be registered and called; the
fake never calls a plugin itself, and an engine built with one runs the node's function body.
"""

from __future__ import annotations

import ctypes
import enum
import json
import importlib.machinery
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from litevit.runtime import runners

VERSIONS = ("8.5.2.2", "8.6.2.3", "10.3.0.26", "10.4.0.26", "10.8.0.43", "10.15.1.29", "11.4.0.106")
ENGINE_MAGIC = b"FAKE-TENSORRT-ENGINE\n"

_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64}
_ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "FLOAT",
    onnx.TensorProto.FLOAT16: "HALF",
    onnx.TensorProto.INT32: "INT32",
}


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


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
    trt = types.ModuleType("tensorrt")
    # A spec like an installed module's, so importlib (and torch, which probes for tensorrt) sees one.
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None, origin="fake_tensorrt.py")
    trt.__version__ = version
    v = _version(version)
    records = Records()
    trt.records = records
    creators = dict(plugins or {})

    class Severity(enum.Enum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    class ILogger:
        def __init__(self) -> None:
            pass

        def log(self, severity, msg):
            raise NotImplementedError

    ILogger.Severity = Severity

    class Logger(ILogger):
        WARNING = Severity.WARNING
        ERROR = Severity.ERROR

        def __init__(self, severity=Severity.WARNING):
            super().__init__()

        def log(self, severity, msg):
            pass

    trt.ILogger, trt.Logger = ILogger, Logger

    network_flags = {}
    if v < (11, 0):
        network_flags["EXPLICIT_BATCH"] = 0
    if v >= (9, 0):
        network_flags["STRONGLY_TYPED"] = 1 if v < (11, 0) else 0
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", network_flags)
    builder_flags = {"GPU_FALLBACK": 3}
    if v < (11, 0):
        builder_flags.update(FP16=0, INT8=1)
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", builder_flags)
    parser_flags = {"NATIVE_INSTANCENORM": 0}
    if v >= (10, 15):
        parser_flags["ENABLE_PLUGIN_OVERRIDE"] = 4
    trt.OnnxParserFlag = enum.IntEnum("OnnxParserFlag", parser_flags)
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0})
    trt.DeviceType = enum.IntEnum("DeviceType", {"GPU": 0, "DLA": 1})
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.nptype = lambda dtype: _DTYPES[dtype]

    class Dims(tuple):
        pass

    trt.Dims = Dims

    # --- plugin registry -------------------------------------------------------------------
    class Registry:
        def __init__(self) -> None:
            self.lookups: list[tuple[str, str, str]] = []

        def _find(self, name, plugin_version, namespace):
            self.lookups.append((name, plugin_version, namespace))
            key = (name, plugin_version, namespace)
            return creators.get(key) or python_creators.get(key)

    if v >= (8, 6):

        def load_library(self, path):
            records.loaded_libraries.append(path)
            return object()

        Registry.load_library = load_library
    if v >= (10, 0):
        Registry.get_creator = lambda self, name, plugin_version, namespace="": self._find(
            name, plugin_version, namespace
        )
    else:
        Registry.get_plugin_creator = lambda self, name, plugin_version, namespace="": self._find(
            name, plugin_version, namespace
        )
    python_creators: dict[tuple[str, str, str], Any] = {}
    if v >= (10, 0):

        def register_creator(self, creator, plugin_namespace=""):
            key = (creator.name, creator.plugin_version, plugin_namespace)
            if key in creators or key in python_creators:
                return False
            python_creators[key] = creator
            records.registered_creators.append(key)
            return True

        Registry.register_creator = register_creator
        _add_python_plugin_api(trt)
    registry = Registry()
    trt.get_plugin_registry = lambda: registry
    trt.init_libnvinfer_plugins = lambda logger, namespace: True

    # --- network and parser ----------------------------------------------------------------
    class Tensor:
        def __init__(self, name, shape):
            self.name, self.shape = name, Dims(shape)

    class Network:
        def __init__(self, flags):
            self.flags = flags
            self.inputs: list[Tensor] = []
            self.model: onnx.ModelProto | None = None

        @property
        def num_inputs(self):
            return len(self.inputs)

        def get_input(self, index):
            return self.inputs[index]

    class ParserError:
        def __init__(self, text):
            self.text = text

        def desc(self):
            return self.text

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.logger, self.errors = network, logger, []

        def set_flag(self, flag):
            records.parser_flags.append(flag.name)

        def parse(self, data, path=None):
            model = onnx.load_from_string(bytes(data))
            records.parsed.append((model, path))
            for severity, text in log_on_parse or []:
                self.logger.log(Severity[severity], text)
            if parse_fails:
                self.errors.append(ParserError("In node 3 (importFallbackPluginImporter): UNSUPPORTED_NODE"))
                return False
            initializers = {t.name for t in model.graph.initializer}
            for value in model.graph.input:
                if value.name not in initializers:
                    dims = [
                        d.dim_value if d.HasField("dim_value") else -1
                        for d in value.type.tensor_type.shape.dim
                    ]
                    self.network.inputs.append(Tensor(value.name, dims))
            self.network.model = model
            return True

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, index):
            return self.errors[index]

    trt.OnnxParser = OnnxParser

    # --- builder configuration ---------------------------------------------------------------
    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, low, opt, high):
            assert all(isinstance(d, Dims) for d in (low, opt, high))
            self.shapes[name] = (tuple(low), tuple(opt), tuple(high))

    class TimingCache:
        def __init__(self, data):
            self.data = bytes(data)

        def serialize(self):
            return b"fake-timing-cache:" + version.encode()

    class Config:
        def __init__(self):
            self.flags: set[str] = set()
            self.pools: dict[str, int] = {}
            self.profiles: list[Profile] = []
            self.calibration_profile = None
            self.default_device_type = trt.DeviceType.GPU
            self.DLA_core = -1
            self.timing_cache = None
            records.configs.append(self)

        def __setattr__(self, name, value):
            if name == "int8_calibrator" and v >= (11, 0):
                raise AttributeError("IBuilderConfig has no int8_calibrator in TensorRT 11")
            object.__setattr__(self, name, value)

        def set_flag(self, flag):
            self.flags.add(flag.name)

        def set_memory_pool_limit(self, pool, size):
            self.pools[pool.name] = size

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

        @property
        def num_optimization_profiles(self):
            return len(self.profiles)

        def create_timing_cache(self, data):
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            if cache.data.startswith(b"other-gpu"):
                return False
            self.timing_cache = cache
            return True

        def get_timing_cache(self):
            return self.timing_cache

    if v < (11, 0):

        def set_calibration_profile(self, profile):
            self.calibration_profile = profile
            return True

        Config.set_calibration_profile = set_calibration_profile

        class IInt8EntropyCalibrator2:
            def __init__(self):
                pass

        trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2

    class Builder:
        num_DLA_cores = dla_cores

        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags=0):
            records.network_flags.append(flags)
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            for severity, text in log_on_build or []:
                self.logger.log(Severity[severity], text)
            if build_fails:
                return None
            calibrator = config.__dict__.get("int8_calibrator")
            if calibrator is not None:
                _calibrate(calibrator, network, config)
            model = onnx.ModelProto()
            model.CopyFrom(network.model)
            present = {(f.domain, f.name) for f in model.functions}
            for node in model.graph.node:
                key = (node.op_type, _attr(node, "plugin_version", "1"), _attr(node, "plugin_namespace", ""))
                if key in creators and (node.domain, node.op_type) not in present:
                    model.functions.append(creators[key])
                    present.add((node.domain, node.op_type))
            profiles = config.profiles[0].shapes if config.profiles else None
            return engine_bytes(model, version, profiles, output_error)

    def _calibrate(calibrator, network, config):
        # Explicit-batch networks: litevit's calibrator must say 1 (the batch is in the shape).
        assert calibrator.get_batch_size() == 1
        cached = calibrator.read_calibration_cache()
        records.calibration_cache_read.append(cached)
        if cached is not None:
            return
        name = network.inputs[0].name
        shape = tuple(network.inputs[0].shape)
        if config.calibration_profile is not None:
            shape = config.calibration_profile.shapes[name][1]
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
    class Context:
        def __init__(self, engine):
            self.engine = engine
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}
            self._outputs: dict[str, np.ndarray] | None = None

        def set_input_shape(self, name, shape):
            shape = tuple(shape)
            ranges = self.engine.profiles.get(name)
            if ranges is not None:
                low, _, high = ranges
                if len(shape) != len(low) or not all(
                    a <= s <= b for a, s, b in zip(low, shape, high, strict=True)
                ):
                    return False
            elif shape != tuple(self.engine.static_shape(name)):
                return False
            self.shapes[name] = shape
            self._outputs = None
            return True

        def _run(self, feeds):
            import onnxruntime as ort

            session = ort.InferenceSession(
                self.engine.model.SerializeToString(), providers=["CPUExecutionProvider"]
            )
            outputs = session.run(None, feeds)
            names = [o.name for o in session.get_outputs()]
            results = {}
            for name, out in zip(names, outputs, strict=True):
                if self.engine.output_error and np.issubdtype(out.dtype, np.floating):
                    out = out + self.engine.output_error * np.abs(out).max() * np.sign(out + 1e-12)
                results[name] = out
            return results

        def get_tensor_shape(self, name):
            if name in self.shapes:
                return Dims(self.shapes[name])
            if self._outputs is None:
                zeros = {n: np.zeros(s, self.engine.dtype(n)) for n, s in self.shapes.items()}
                self._outputs = self._run(zeros)
            return Dims(self._outputs[name].shape)

        def set_tensor_address(self, name, address):
            self.addresses[name] = address

        def execute_async_v3(self, stream_handle):
            assert stream_handle == 1234
            feeds = {
                name: _read_device(self.addresses[name], shape, self.engine.dtype(name))
                for name, shape in self.shapes.items()
            }
            for name, array in self._run(feeds).items():
                _write_device(self.addresses[name], array)
            return True

    class Engine:
        def __init__(self, header, model):
            self.model = model
            self.profiles = {
                name: tuple(tuple(s) for s in shapes) for name, shapes in header["profiles"].items()
            }
            self.output_error = header["output_error"]
            initializers = {t.name for t in model.graph.initializer}
            self.inputs = [value for value in model.graph.input if value.name not in initializers]
            self.outputs = list(model.graph.output)

        @property
        def num_io_tensors(self):
            return len(self.inputs) + len(self.outputs)

        def _value(self, name):
            return next(v for v in self.inputs + self.outputs if v.name == name)

        def get_tensor_name(self, index):
            return (self.inputs + self.outputs)[index].name

        def static_shape(self, name):
            return [
                d.dim_value if d.HasField("dim_value") else -1
                for d in self._value(name).type.tensor_type.shape.dim
            ]

        def get_tensor_shape(self, name):
            return Dims(self.static_shape(name))

        def get_tensor_dtype(self, name):
            return _ONNX_DTYPES[self._value(name).type.tensor_type.elem_type]

        def dtype(self, name):
            return _DTYPES[self.get_tensor_dtype(name)]

        def get_tensor_mode(self, name):
            return "INPUT" if any(v.name == name for v in self.inputs) else "OUTPUT"

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            records.deserialized += 1
            if not data.startswith(ENGINE_MAGIC):
                return None
            header_line, model_bytes = data[len(ENGINE_MAGIC) :].split(b"\n", 1)
            header = json.loads(header_line)
            if header["version"] != version:
                return None
            return Engine(header, onnx.load_from_string(model_bytes))

    trt.Runtime = Runtime
    return trt


def _add_python_plugin_api(trt: types.ModuleType) -> None:
    """The TensorRT >= 10.0 classes a Python IPluginV3 plugin subclasses or builds, as plain
    Python: empty interface bases, plugin fields, dims expressions and the enums it compares."""
    for name in (
        "IPluginV3",
        "IPluginV3OneCore",
        "IPluginV3OneBuild",
        "IPluginV3OneRuntime",
        "IPluginCreatorV3One",
    ):
        setattr(trt, name, type(name, (), {"__init__": lambda self: None}))
    trt.PluginFieldType = enum.Enum(
        "PluginFieldType", "FLOAT16 FLOAT32 FLOAT64 INT8 INT16 INT32 CHAR DIMS UNKNOWN"
    )
    trt.DataType = enum.Enum("DataType", "FLOAT HALF INT8 INT32 BOOL")
    trt.TensorFormat = enum.Enum("TensorFormat", "LINEAR CHW2 HWC8 CHW4 CHW16 CHW32")
    trt.DimensionOperation = enum.Enum(
        "DimensionOperation", "SUM PROD MAX MIN SUB EQUAL LESS FLOOR_DIV CEIL_DIV"
    )
    trt.TensorRTPhase = enum.Enum("TensorRTPhase", "BUILD RUNTIME")

    # The bindings give a field's data back as an array of its type, of the field's length.
    field_dtypes = {"INT32": np.int32, "FLOAT32": np.float32, "INT8": np.int8, "CHAR": np.int8}

    class PluginField:
        def __init__(self, name="", data=None, type=trt.PluginFieldType.UNKNOWN):
            self.name, self.type = name, type
            self.data = np.asarray(data if data is not None else [], dtype=field_dtypes.get(type.name))
            self.size = self.data.size

    class PluginFieldCollection(list):
        pass

    class PluginFieldCollection_:
        def __init__(self, fields):
            self.fields = list(fields)

        def __len__(self):
            return len(self.fields)

        def __getitem__(self, index):
            return self.fields[index]

    class DimsExprs(list):
        pass

    trt.PluginField, trt.PluginFieldCollection, trt.PluginFieldCollection_ = (
        PluginField,
        PluginFieldCollection,
        PluginFieldCollection_,
    )
    trt.DimsExprs = DimsExprs


def _attr(node: onnx.NodeProto, name: str, default: str) -> str:
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute).decode()
    return default
