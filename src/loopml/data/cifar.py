"""CIFAR-10 and CIFAR-100 "python version" archives, read without trusting them.

The archives hold pickles; loading an arbitrary pickle runs arbitrary code, so these
are read by an unpickler that builds only dicts, lists, bytes and numpy arrays. Members
are checked before anything is read: a name that escapes its folder or content that
expands past the cap is refused.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from loopml.core.errors import InvalidInput, PayloadTooLarge
from loopml.data.images import ImageSet, encode_png

_LAYOUTS = {
    # folder: (label key, names file, names key, training members, test member)
    "cifar-100-python": (b"fine_labels", "meta", b"fine_label_names", ("train",), "test"),
    "cifar-10-batches-py": (
        b"labels",
        "batches.meta",
        b"label_names",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
    ),
}
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    # How pickle protocol 5 (Python 3.14's default) rebuilds an array from its bytes.
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR archive")


def _unpickle(data: bytes, name: str) -> dict[bytes, Any]:
    try:
        value = _DataOnly(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # any malformed pickle
        raise InvalidInput(f"{name} is not a CIFAR batch: {exc}", field="source") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} is not a CIFAR batch (no dictionary inside)", field="source")
    # An archive pickled again under Python 3 has text keys: the originals have bytes.
    return {k.encode() if isinstance(k, str) else k: v for k, v in value.items()}


def is_cifar(path: Path) -> bool:
    """Whether a file is a tar archive laid out as CIFAR's python version."""
    try:
        with tarfile.open(path, "r:*") as tar:
            first = tar.next()
    except (tarfile.TarError, OSError, EOFError):
        return False
    return first is not None and first.name.split("/")[0].rstrip("/") in _LAYOUTS


def read_cifar(
    path: Path, name: str, *, classes: Sequence[str] | None = None, max_expanded: int
) -> ImageSet:
    """Images of a CIFAR archive, optionally only some classes (by name).

    The archive's own train/test division becomes the version's frozen test split.
    """
    with tarfile.open(path, "r:*") as tar:
        members = _checked_members(tar, name, max_expanded)
        folder = next(iter(members)).split("/")[0]
        label_key, meta_name, names_key, train, test = _LAYOUTS[folder]

        def load(member: str) -> dict[bytes, Any]:
            full = f"{folder}/{member}"
            if full not in members:
                raise InvalidInput(f"{name} has no {full}", field="source")
            extracted = tar.extractfile(members[full])
            if extracted is None:
                raise InvalidInput(f"{name}: {full} is not a file", field="source")
            return _unpickle(extracted.read(), full)

        label_names = _label_names(load(meta_name), names_key, f"{name}: {folder}/{meta_name}")
        wanted = _wanted(label_names, classes)
        hashes: list[str] = []
        labels: list[str] = []
        files: list[str] = []
        test_flags: list[bool] = []
        images: dict[str, bytes] = {}
        for member, is_test in [(m, False) for m in train] + [(test, True)]:
            batch = load(member)
            data = np.asarray(batch.get(b"data"))
            codes = list(batch.get(label_key, []))
            filenames = batch.get(b"filenames", [b""] * len(codes))
            if (
                data.ndim != 2
                or data.shape[1] != 3072
                or len(codes) != data.shape[0]
                or len(filenames) != len(codes)
            ):
                raise InvalidInput(
                    f"{name}: {member} does not hold 32x32x3 images with one label and one "
                    "file name each",
                    field="source",
                )
            if not all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in codes):
                raise InvalidInput(
                    f"{name}: {member} has label codes that are not whole numbers",
                    field="source",
                )
            if not all(isinstance(f, bytes | str) for f in filenames):
                raise InvalidInput(
                    f"{name}: {member} has file names that are not text", field="source"
                )
            unknown = sorted({int(c) for c in codes if not 0 <= c < len(label_names)})
            if unknown:
                raise InvalidInput(
                    f"{name}: {member} has label codes {unknown[:5]} beyond the "
                    f"{len(label_names)} class names of its meta file",
                    field="source",
                )
            for row, code, filename in zip(data, codes, filenames, strict=True):
                if code not in wanted:
                    continue
                png = encode_png(row.reshape(3, 32, 32).transpose(1, 2, 0).astype(np.uint8))
                digest = hashlib.sha256(png).hexdigest()
                images[digest] = png
                hashes.append(digest)
                labels.append(label_names[code])
                shown = (
                    filename.decode(errors="replace") if isinstance(filename, bytes) else filename
                )
                files.append(f"{member}/{shown}")
                test_flags.append(is_test)
    if not hashes:
        raise InvalidInput(f"{name}: no images of the chosen classes", field="classes")
    table = pa.table({"image": hashes, "label": labels, "file": files})
    sizes = {"32x32": len(hashes)}
    return ImageSet(table=table, images=images, predefined_test=test_flags, sizes=sizes)


def _label_names(meta: dict[Any, Any], key: bytes, where: str) -> list[str]:
    """The class names of a meta file, as bytes (the original pickles) or text (one
    pickled again under Python 3)."""
    names = meta.get(key, meta.get(key.decode()))
    if not isinstance(names, list | tuple) or not names:
        raise InvalidInput(f"{where} holds no {key.decode()!r} list", field="source")
    if not all(isinstance(n, bytes | str) for n in names):
        raise InvalidInput(f"{where}: {key.decode()!r} holds more than names", field="source")
    return [n.decode(errors="replace") if isinstance(n, bytes) else n for n in names]


def _wanted(label_names: list[str], classes: Sequence[str] | None) -> set[int]:
    if not classes:
        return set(range(len(label_names)))
    unknown = [c for c in classes if c not in label_names]
    if unknown:
        raise InvalidInput(
            f"unknown classes {unknown}; this archive has: {', '.join(label_names)}",
            field="classes",
        )
    return {label_names.index(c) for c in classes}


_HEADER = tarfile.BLOCKSIZE


def _checked_members(tar: tarfile.TarFile, name: str, cap: int) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    total = 0
    for member in tar:
        parts = member.name.split("/")
        if member.name.startswith("/") or ".." in parts or member.issym() or member.islnk():
            raise InvalidInput(
                f"{name}: archive member {member.name!r} points outside its folder",
                field="source",
            )
        total += _HEADER + max(member.size, 0)  # an empty member still costs its header
        if total > cap:
            raise PayloadTooLarge(
                f"{name} expands past {cap:,} bytes (setting max_expanded_bytes)", field="source"
            )
        if member.isfile():
            members[member.name] = member
    folders = {m.split("/")[0] for m in members}
    if len(folders) != 1 or next(iter(folders)) not in _LAYOUTS:
        raise InvalidInput(
            f"{name} is not a CIFAR python archive (expected one folder named "
            f"{' or '.join(_LAYOUTS)})",
            field="source",
        )
    return members
