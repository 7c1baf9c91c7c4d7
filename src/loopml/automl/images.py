"""Image columns: values as encoded bytes (PNG, JPEG) or pixel arrays, decoded to one
fixed size, and the classic features (small pixels, gradient histograms) that tabular
learners read from them.

The size is chosen once from the training images: the most common side, kept between
16 and 64 pixels (small images are upscaled, as a CNN wants two downsamplings of room;
larger ones are shrunk, as a CPU has minutes, not days).
"""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import numpy as np

from loopml.core.errors import InvalidInput

MIN_SIDE, MAX_SIDE = 16, 64
MAX_PIXELS = 40_000_000  # a larger image is refused before it is decoded
_SAMPLE = 200
_SMALL = 8  # classic features: an 8 x 8 grey thumbnail...
_CELLS, _BINS = 4, 8  # ...and gradient orientations in 4 x 4 cells, 8 bins each


def is_image_value(value: Any) -> bool:
    """Bytes of an encoded image, or a 2-D / 3-D array of pixels."""
    if isinstance(value, bytes | bytearray | memoryview):
        return True
    return isinstance(value, np.ndarray) and value.ndim in (2, 3)


def plan_shape(values: list[Any], column: str = "image") -> tuple[int, int, int]:
    """(height, width, channels) for a column, from a sample of its training values."""
    sides: Counter[tuple[int, int]] = Counter()
    colour = False
    for i, value in enumerate(values[:_SAMPLE]):
        if not is_image_value(value):
            raise InvalidInput(
                f"column {column!r} mixes images with {type(value).__name__} values (the "
                f"{i + 1}th present value)",
                field="X",
            )
        try:
            pixels = _pixels(value)
        except InvalidInput as exc:
            raise InvalidInput(
                f"column {column!r}, its {i + 1}th present value: {exc.message}", field="X"
            ) from exc
        sides[pixels.shape[:2]] += 1
        colour = colour or _is_colour(pixels)
    (h, w), _ = sides.most_common(1)[0]
    return (
        int(np.clip(h, MIN_SIDE, MAX_SIDE)),
        int(np.clip(w, MIN_SIDE, MAX_SIDE)),
        3 if colour else 1,
    )


def _is_colour(pixels: np.ndarray) -> bool:
    if pixels.ndim == 2 or pixels.shape[2] == 1:
        return False
    rgb = pixels[..., :3].astype(np.int16)
    return bool(
        np.abs(rgb[..., 0] - rgb[..., 1]).max() > 2 or np.abs(rgb[..., 1] - rgb[..., 2]).max() > 2
    )


def _pixels(value: Any) -> np.ndarray:
    """A uint8 pixel array (H x W or H x W x C) of one value."""
    if isinstance(value, bytes | bytearray | memoryview):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(bytes(value))) as image:
                if image.width * image.height > MAX_PIXELS:  # checked before decoding
                    raise InvalidInput(
                        f"an image of {image.width} x {image.height} pixels is larger than "
                        f"the {MAX_PIXELS:,} pixels loopml decodes",
                        field="X",
                    )
                image.load()
                if image.mode in ("I", "I;16", "I;16B", "F"):  # 16-bit and float grey
                    return _scaled(np.asarray(image))
                return np.asarray(image.convert("L" if image.mode in ("L", "1") else "RGB"))
        except UnidentifiedImageError as exc:
            raise InvalidInput(
                "a value is not an image (PNG, JPEG or another format Pillow reads)", field="X"
            ) from exc
        except Image.DecompressionBombError as exc:  # a few KB that decode to gigabytes
            raise InvalidInput(f"an image is too large: {exc}", field="X") from exc
        except OSError as exc:
            raise InvalidInput(f"an image cannot be decoded: {exc}", field="X") from exc
    array = np.asarray(value)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise InvalidInput(
            f"an image array has shape {array.shape}; expected H x W (x C)", field="X"
        )
    return array if array.dtype == np.uint8 else _scaled(array)


def _scaled(array: np.ndarray) -> np.ndarray:
    """uint8 pixels of other numbers: 16-bit by their range, floats of 0..1 or 0..16
    (scikit-learn's digits) stretched, anything else clipped to 0..255."""
    if array.dtype in (np.uint16, np.int32, np.uint32) and array.size and array.max() > 255:
        return (array.astype(np.float64) / 257.0).clip(0, 255).astype(np.uint8)
    values = np.nan_to_num(array.astype(np.float64))
    top = values.max() if values.size else 0.0
    scale = 255.0 if top <= 1.0 else (255.0 / 16.0 if top <= 16.0 else 1.0)
    return np.clip(values * scale, 0, 255).astype(np.uint8)


def to_arrays(values: list[Any], shape: tuple[int, int, int]) -> np.ndarray:
    """``n x H x W x C`` uint8 pixels; a missing image is all zeros."""
    from PIL import Image

    h, w, c = shape
    out = np.zeros((len(values), h, w, c), dtype=np.uint8)
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and value != value):
            continue
        if not is_image_value(value):
            raise InvalidInput(
                f"row {i}: an image column holds {type(value).__name__}, not image bytes or pixels",
                field="X",
            )
        try:
            pixels = _pixels(value)
        except InvalidInput as exc:
            raise InvalidInput(f"row {i}: {exc.message}", field="X", row=i) from exc
        if pixels.ndim == 3 and pixels.shape[2] == 4:
            pixels = pixels[..., :3]
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[..., 0]
        image = Image.fromarray(pixels)
        image = image.convert("RGB" if c == 3 else "L")
        if image.size != (w, h):
            image = image.resize((w, h), Image.Resampling.BILINEAR)
        arr = np.asarray(image)
        out[i] = arr if arr.ndim == 3 else arr[..., None]
    return out


def classic_features(images: np.ndarray) -> np.ndarray:
    """Per image: an 8 x 8 grey thumbnail and 4 x 4 cells of 8-bin gradient orientation
    histograms (HOG-like), 192 numbers in [0, 1]."""
    grey = images.astype(np.float32).mean(axis=3) / 255.0  # n x H x W
    n, h, w = grey.shape
    thumb = _pooled(grey.reshape(n, -1), _cells(h, w, _SMALL), _SMALL * _SMALL)
    gy, gx = np.gradient(grey, axis=(1, 2))
    magnitude = np.hypot(gx, gy).reshape(n, -1)
    angle = np.mod(np.arctan2(gy, gx), np.pi).reshape(n, -1)  # unsigned orientation
    bins = np.minimum((angle / np.pi * _BINS).astype(np.int64), _BINS - 1)
    width = _CELLS * _CELLS * _BINS
    index = _cells(h, w, _CELLS)[None, :] * _BINS + bins  # n x (H*W): cell and bin
    offsets = (np.arange(n) * width)[:, None]
    hist = np.bincount((index + offsets).ravel(), magnitude.ravel(), minlength=n * width)
    hist = hist.reshape(n, width)
    norms = np.linalg.norm(hist, axis=1, keepdims=True)
    return np.hstack([thumb, hist / np.where(norms > 0, norms, 1.0)]).astype(np.float64)


def _cells(h: int, w: int, side: int) -> np.ndarray:
    """The cell of each pixel (row-major, H*W of them) in a ``side x side`` grid."""
    rows = np.minimum(np.arange(h) * side // h, side - 1)
    cols = np.minimum(np.arange(w) * side // w, side - 1)
    return (rows[:, None] * side + cols[None, :]).ravel()


def _pooled(flat: np.ndarray, cells: np.ndarray, k: int) -> np.ndarray:
    """Mean of ``flat``'s pixels (n x H*W) per cell: n x k."""
    n = len(flat)
    offsets = (np.arange(n) * k)[:, None]
    sums = np.bincount((cells[None, :] + offsets).ravel(), flat.ravel(), minlength=n * k)
    counts = np.bincount(cells, minlength=k)
    return sums.reshape(n, k) / np.maximum(counts, 1)
