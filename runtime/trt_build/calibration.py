"""Implicit INT8 (TensorRT < 11): TensorRT's entropy calibrator fed from an image folder, and
its calibration cache kept under a litevit key so that it is never reused for other data."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from litevit._io import sha256_file, write_bytes, write_json
from litevit.errors import LitevitError
from litevit.runtime import runners
from litevit.runtime.trt_build.profiles import ShapeRange
from litevit.runtime.trt_build.tensorrt_log import one_line

if TYPE_CHECKING:
    import tensorrt as trt


CALIBRATION_KEY_FORMAT = "litevit.calibration-cache/1"


# Implicit INT8: this many images of the --calib folder, evenly spread over it.
IMPLICIT_CALIBRATION_IMAGES = 512


@dataclass(frozen=True)
class CalibrationCache:
    """TensorRT's calibration cache file plus litevit's key file beside it.

    The key file records the calibration key (what data, preprocessing and graph the cache
    was computed from) and the cache's SHA-256. A cache without a key file, with another key,
    or changed since litevit wrote it is refused: TensorRT would reuse it silently.
    """

    path: Path
    key: str

    @property
    def key_path(self) -> Path:
        return self.path.with_name(self.path.name + ".key.json")

    def read(self) -> bytes | None:
        """The cache to reuse, None when there is none, or one sentence why it cannot be used."""
        if not self.path.exists():
            return None
        remedy = "delete it to recalibrate, or pass another --calib-cache"
        try:
            recorded = json.loads(self.key_path.read_text())
        except FileNotFoundError:
            raise LitevitError(
                f"the calibration cache {str(self.path)!r} was not written by litevit (no "
                f"{self.key_path.name}), so its data is unknown: {remedy}."
            ) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise LitevitError(f"cannot read {str(self.key_path)!r}: {exc}; {remedy}.") from None
        if not isinstance(recorded, dict) or recorded.get("format") != CALIBRATION_KEY_FORMAT:
            raise LitevitError(f"{str(self.key_path)!r} is not a litevit calibration key file; {remedy}.")
        if recorded.get("key") != self.key:
            raise LitevitError(
                f"the calibration cache {str(self.path)!r} was computed for calibration key "
                f"{str(recorded.get('key'))[:16]}..., not this build's {self.key[:16]}... (other images, "
                f"preprocessing or graph): {remedy}."
            )
        data = self.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != recorded.get("sha256"):
            raise LitevitError(
                f"the calibration cache {str(self.path)!r} changed since litevit wrote it: {remedy}."
            )
        return data

    def write(self, data: bytes, tensorrt_version: str) -> None:
        write_bytes(self.path, data)
        write_json(
            self.key_path,
            {
                "format": CALIBRATION_KEY_FORMAT,
                "key": self.key,
                "sha256": hashlib.sha256(data).hexdigest(),
                "tensorrt": tensorrt_version,
                "cache": self.path.name,
            },
        )


@dataclass
class _CalibrationState:
    """What the calibrator callbacks saw; TensorRT swallows exceptions raised inside them."""

    batches: int = 0
    error: str | None = None


def _entropy_calibrator(
    input_name: str,
    shape: tuple[int, ...],
    batches: Iterator[np.ndarray],
    cache: CalibrationCache,
    cached: bytes | None,
    cuda: runners._CudaApi,
    buffer: int,
    state: _CalibrationState,
) -> trt.IInt8EntropyCalibrator2:
    """An entropy calibrator (the one DLA also takes) copying each batch into ``buffer``."""
    import tensorrt as trt

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self) -> int:
            # Explicit-batch networks: the batch is a dim of the input tensor itself.
            return 1

        def get_batch(self, names: list[str]) -> list[int]:
            # An empty list tells TensorRT that the calibration data is exhausted.
            if state.error is not None:
                return []
            try:
                batch = next(batches, None)
            except Exception as exc:  # an exception raised inside a TensorRT callback is lost
                state.error = one_line(str(exc)) or type(exc).__name__
                return []
            if batch is None:
                return []
            if names != [input_name] or batch.shape != shape or batch.dtype != np.float32:
                state.error = (
                    f"calibration batch {state.batches + 1} is {batch.dtype}{list(batch.shape)} for "
                    f"{names}; the calibration profile takes float32{list(shape)} for [{input_name!r}]"
                )
                return []
            cuda.copy_to_device(buffer, np.ascontiguousarray(batch))
            cuda.synchronize()
            state.batches += 1
            return [buffer]

        def read_calibration_cache(self) -> bytes | None:
            return cached

        def write_calibration_cache(self, cache_data: Any) -> None:
            try:
                cache.write(bytes(memoryview(cache_data)), trt.__version__)
            except LitevitError as exc:  # raised inside a TensorRT callback it would be lost
                state.error = one_line(str(exc))

    return EntropyCalibrator()


@dataclass
class ImplicitCalibration:
    """Implicit INT8: TensorRT's entropy calibrator fed from ``batches``, its cache kept keyed."""

    cache: CalibrationCache
    batches: Callable[[], Iterable[np.ndarray]]
    cached: bytes | None  # a cache litevit wrote for this key: TensorRT then reads no batches
    state: _CalibrationState = field(default_factory=lambda: _CalibrationState())

    def build(
        self,
        builder: trt.Builder,
        network: trt.INetworkDefinition,
        config: trt.IBuilderConfig,
        shape_ranges: Mapping[str, ShapeRange],
        log: Callable[[str], None],
    ) -> trt.IHostMemory | None:
        import tensorrt as trt

        if network.num_inputs != 1:
            raise LitevitError("implicit INT8 calibration takes one-input graphs; this one has several.")
        name = network.get_input(0).name
        shape = shape_ranges[name].opt
        cached = self.cached
        if config.num_optimization_profiles:
            # A dynamic-shape network is calibrated at one shape: the build profile's opt shape.
            profile = builder.create_optimization_profile()
            profile.set_shape(name, trt.Dims(list(shape)), trt.Dims(list(shape)), trt.Dims(list(shape)))
            config.set_calibration_profile(profile)
        log(
            f"calibration: reusing {self.cache.path.name} (its key matches)"
            if cached is not None
            else f"calibration: TensorRT entropy calibrator 2 at {'x'.join(map(str, shape))}"
        )
        cuda = runners._open_cuda(0)
        buffer = cuda.malloc(int(np.prod(shape)) * 4)
        try:
            config.int8_calibrator = _entropy_calibrator(
                name,
                shape,
                iter(self.batches()) if cached is None else iter(()),
                self.cache,
                cached,
                cuda,
                buffer,
                self.state,
            )
            serialized = builder.build_serialized_network(network, config)
        finally:
            cuda.free(buffer)
            cuda.close()
        if self.state.error is not None:
            raise LitevitError(f"calibration stopped: {self.state.error}.")
        if serialized is not None and cached is None and self.state.batches == 0:
            raise LitevitError("implicit INT8 calibration got no batches: the --calib folder gave no images.")
        return serialized


def calibration_record(
    manifest: Mapping[str, Any] | None, precision: str, calibration: ImplicitCalibration | None
) -> dict[str, Any] | None:
    """Implicit: the key, cache and batch count; Q/DQ: the key of the calibration that wrote
    the graph (from the artefact's manifest)."""
    if precision != "int8":
        return None
    if calibration is not None:
        return {
            "mode": "implicit",
            "key": calibration.cache.key,
            "cache": str(calibration.cache.path),
            "reused_cache": calibration.cached is not None,
            "batches": calibration.state.batches,
        }
    recorded = (manifest or {}).get("calibration") or {}
    return {"mode": "qdq", "key": recorded.get("key")}


def implicit_calibration_batches(
    manifest: Mapping[str, Any], images: str | os.PathLike[str], shape: Sequence[int], onnx_sha256: str
) -> tuple[Callable[[], Iterator[np.ndarray]], str]:
    """Batches of the --calib folder's images, preprocessed as the manifest says, at ``shape``
    (N, 3, H, W), and the calibration key: graph, preprocessing and every image's bytes."""
    from litevit.calibration.images import Preprocessing, evenly_spaced, load_images
    from litevit.calibration.int8 import calibration_images

    folder = Path(images)
    paths = evenly_spaced(calibration_images(folder), IMPLICIT_CALIBRATION_IMAGES)
    batch, _, height, width = shape
    prep = Preprocessing.from_manifest(dict(manifest), (height, width))
    digest = hashlib.sha256()
    digest.update(f"{onnx_sha256}\n{prep.fingerprint()}\n{list(shape)}\n".encode())
    for path in paths:
        digest.update(f"{path.relative_to(folder).as_posix()}\n{sha256_file(path)}\n".encode())

    def batches() -> Iterator[np.ndarray]:
        loaded = load_images(paths, prep)
        if loaded.unreadable:
            from litevit.calibration.images import describe_unreadable

            raise LitevitError(
                f"the calibration folder has {describe_unreadable(loaded.unreadable, folder)}."
            )
        # Whole batches only: the calibration profile takes exactly the opt shape.
        for start in range(0, len(loaded.arrays) - batch + 1, batch):
            yield np.ascontiguousarray(loaded.arrays[start : start + batch], dtype=np.float32)

    return batches, digest.hexdigest()
