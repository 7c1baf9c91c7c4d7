"""Image collections: a folder with one sub-folder per class (or loose, unlabelled images).

An image dataset is a table with one row per image: ``image`` (the SHA-256 of its bytes,
which are stored as a blob of their own), ``label`` (the sub-folder's name, or missing)
and ``file`` (its name within the source).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa

from loopml.core.errors import InvalidInput
from loopml.data.sources import StagedFile

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_FORMATS = {"PNG", "JPEG"}


@dataclass
class ImageSet:
    """Rows of an image dataset and the bytes of each distinct image."""

    table: pa.Table
    images: dict[str, bytes] = field(default_factory=dict)
    predefined_test: list[bool] | None = None
    sizes: dict[str, int] = field(default_factory=dict)


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def check_image(data: bytes, name: str) -> tuple[int, int]:
    """Decode an image fully enough to trust it; returns (width, height)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow's warning for a large image: refused below, not warned about.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        with img:
            if img.format not in IMAGE_FORMATS:
                raise InvalidInput(
                    f"{name} is a {img.format} image; loopml reads PNG and JPEG", field="source"
                )
            width, height = img.size
            if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
                # Pillow only warns up to twice its limit, and would decode it whole.
                raise Image.DecompressionBombError(
                    f"{width}x{height} pixels, over {Image.MAX_IMAGE_PIXELS:,}"
                )
            img.load()
            return img.size
    except Image.DecompressionBombError as exc:
        raise InvalidInput(
            f"{name} is too large an image to decode safely: {exc}", field="source"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"{name} is not a decodable image: {exc}", field="source") from exc


def image_folder(files: Iterable[StagedFile]) -> ImageSet:
    """Read images laid out as ``<class>/<file>`` (labelled) or ``<file>`` (unlabelled)."""
    labels, names, hashes = [], [], []
    images: dict[str, bytes] = {}
    sizes: dict[str, int] = {}
    for f in files:
        data = f.path.read_bytes()
        width, height = check_image(data, f.name)
        digest = hashlib.sha256(data).hexdigest()
        images[digest] = data
        sizes[f"{width}x{height}"] = sizes.get(f"{width}x{height}", 0) + 1
        parts = f.name.split("/")
        labels.append(parts[-2] if len(parts) > 1 else None)
        names.append(f.name)
        hashes.append(digest)
    if any(label is None for label in labels) and any(label is not None for label in labels):
        raise InvalidInput(
            "images must all be in class sub-folders (labelled) or all at the top (unlabelled)",
            field="source",
        )
    table = pa.table(
        {
            "image": pa.array(hashes, pa.string()),
            "label": pa.array(labels, pa.string()),
            "file": pa.array(names, pa.string()),
        }
    )
    return ImageSet(table=table, images=images, sizes=sizes)


def encode_png(pixels: object) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` uint8 array."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=False)  # type: ignore[arg-type]
    return buffer.getvalue()
