"""The image endpoint: a JPEG/PNG body -> the model's input; its output -> top-k classes or a PNG
label mask at the image's size."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from litevit.labels import LABEL_SETS, class_names
from litevit.runtime.bench import resize_bilinear, resize_nearest
from litevit.runtime.runners import TensorInfo
from litevit.serve.models import ApiError, ServedModel

if TYPE_CHECKING:
    from PIL import Image


DEFAULT_TOP_K = 5
# Class scores are resized to the image size this many classes at a time (bounded memory for
# large images with many classes).
_RESIZE_CLASSES_PER_STEP = 16


# --------------------------------------------------------------------------------------------
# The image endpoint


def decode_image(data: bytes) -> Image.Image:
    """A JPEG/PNG body -> RGB PIL image, or a 400 naming why not."""
    from PIL import Image as PILImage

    if not data:
        raise ApiError(400, "the request body is empty; send the JPEG or PNG file's bytes as the body.")
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            if image.format not in ("JPEG", "PNG"):
                raise ApiError(400, f"the body is a {image.format} image; send a JPEG or PNG.")
            image.load()
            return image.convert("RGB")
    except PILImage.DecompressionBombError as exc:
        raise ApiError(413, f"the image is too large to decode: {_without_reprs(str(exc))}") from None
    except PILImage.UnidentifiedImageError:
        # PIL's own message names the in-memory buffer object (<_io.BytesIO object at 0x...>).
        raise ApiError(
            400,
            "the body is not a decodable JPEG or PNG image (its bytes are not any image format); send the "
            "bytes of a JPEG or PNG file.",
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:  # PIL raises all three for bad files
        text = _without_reprs(str(exc))
        first = text.splitlines()[0] if text else type(exc).__name__
        raise ApiError(400, f"the body is not a decodable JPEG or PNG image ({first}).") from None


_OBJECT_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")


def _without_reprs(text: str) -> str:
    """``text`` without Python object reprs (``<_io.BytesIO object at 0x7f...>``): they tell a
    client nothing."""
    return _OBJECT_REPR.sub("", text).strip()


def image_input(model: ServedModel) -> TensorInfo:
    """The model's one image input (N, 3, H, W), or a 400 saying the image endpoint does not apply."""
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4 or model.inputs[0].shape[1] != 3:
        raise ApiError(
            400,
            f"model {model.name!r} does not take one (N, 3, H, W) image; use /v2/models/{model.name}/infer.",
        )
    return model.inputs[0]


def top_k_classes(model: ServedModel, logits: np.ndarray, k: int) -> list[dict[str, Any]]:
    scores = logits.astype(np.float64).ravel()
    probabilities = np.exp(scores - scores.max())
    probabilities /= probabilities.sum()
    order = np.argsort(-scores, kind="stable")[:k]
    names = _class_names(model, scores.size)
    return [
        {
            "index": int(index),
            "label": names[index] if names is not None else None,
            "score": float(probabilities[index]),
        }
        for index in order
    ]


def _class_names(model: ServedModel, count: int) -> list[str] | None:
    label_set = model.manifest.get("data_config", {}).get("label_set")
    if label_set not in LABEL_SETS:
        return None
    names = class_names(label_set)
    return names if len(names) == count else None


def label_mask(output: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One image's segmentation output -> class index per pixel at ``size`` (height, width).

    A ``labels`` output (h, w) is resized nearest-neighbour; class scores (C, h, w) are resized
    bilinearly and then argmax-ed (the papers' order), a few classes at a time."""
    if output.ndim == 2:
        return resize_nearest(output, size)
    best = np.zeros(size, dtype=np.int64)
    best_score = np.full(size, -np.inf, dtype=np.float32)
    for start in range(0, output.shape[0], _RESIZE_CLASSES_PER_STEP):
        chunk = resize_bilinear(output[start : start + _RESIZE_CLASSES_PER_STEP].astype(np.float32), size)
        chunk_best = chunk.argmax(axis=0)
        chunk_score = np.take_along_axis(chunk, chunk_best[None], axis=0)[0]
        better = chunk_score > best_score
        best[better] = chunk_best[better] + start
        best_score[better] = chunk_score[better]
    return best


def encode_mask_png(mask: np.ndarray, num_classes: int, palette: list[tuple[int, int, int]] | None) -> bytes:
    """Class indices as a PNG: 8-bit grey (or palette) up to 256 classes, else 16-bit grey."""
    from PIL import Image as PILImage

    if num_classes <= 256:
        image = PILImage.fromarray(mask.astype(np.uint8))
        if palette is not None:  # turns the grey image into a palette image with the same indices
            image.putpalette([channel for colour in palette for channel in colour])
    else:
        image = PILImage.fromarray(mask.astype(np.uint16))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
