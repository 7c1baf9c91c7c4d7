"""Model artifacts: a zip of plain files with a manifest of their SHA-256 hashes.

The content hash is the SHA-256 of the canonical manifest, so it names the model's
content whatever the zip's own metadata. Loading checks every file against the
manifest and, when the caller knows it, the manifest against the expected content
hash: a changed byte anywhere refuses the load. Nothing in an artifact is
unpickled; learners load from their own formats (LightGBM text, XGBoost UBJSON,
CatBoost CBM, numpy arrays, skops restricted to scikit-learn types).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from loopml.core.errors import IntegrityError, InvalidInput, NotFound

FORMAT = "loopml.automl/1"
_MANIFEST = "manifest.json"
MAX_UNPACKED_BYTES = 16 * 2**30


def json_default(value: Any) -> Any:
    """JSON for what a saved model's state holds besides plain values: numpy scalars and
    arrays, tuples, and paths (a backbone's weights file) as text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def _check_expected(source: Path, manifest_bytes: bytes, expected_hash: str) -> None:
    """Compare before unpacking anything else: a foreign file is refused cheaply."""
    try:
        actual = hashlib.sha256(_canonical(json.loads(manifest_bytes))).hexdigest()
    except ValueError:
        raise IntegrityError(f"{source}: the manifest is not valid JSON") from None
    if actual != expected_hash:
        raise IntegrityError(
            f"{source}: content hash {actual} does not match the expected {expected_hash}"
        )


def _canonical(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def content_hash(files: dict[str, bytes]) -> str:
    """The hash a saved artifact of these files will carry."""
    return hashlib.sha256(_canonical(_manifest(files))).hexdigest()


def _manifest(files: dict[str, bytes]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "files": {name: hashlib.sha256(blob).hexdigest() for name, blob in sorted(files.items())},
    }


def pack(files: dict[str, bytes]) -> bytes:
    """The artifact's bytes: what :func:`write` stores."""
    manifest = _manifest(files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name])
        stamp = zipfile.ZipInfo(_MANIFEST, date_time=(1980, 1, 1, 0, 0, 0))
        zf.writestr(stamp, _canonical(manifest))
    return buffer.getvalue()


def write(path: str | Path, files: dict[str, bytes]) -> str:
    """Write an artifact atomically; return its content hash."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(pack(files))
    partial.replace(target)
    return content_hash(files)


def read(path: str | Path, expected_hash: str | None = None) -> tuple[dict[str, bytes], str]:
    """Read and verify an artifact; return its files and content hash."""
    source = Path(path)
    if not source.exists():
        raise NotFound(f"no model file at {source}")
    try:
        with zipfile.ZipFile(source) as zf:
            names = zf.namelist()
            if _MANIFEST not in names:
                raise IntegrityError(f"{source} is not a loopml model: it has no manifest")
            declared = sum(info.file_size for info in zf.infolist())
            if declared > MAX_UNPACKED_BYTES:
                # zipfile reads no more than each entry declares: this bounds memory.
                raise IntegrityError(
                    f"{source} would unpack to {declared} bytes, over {MAX_UNPACKED_BYTES}"
                )
            manifest_bytes = zf.read(_MANIFEST)
            if expected_hash is not None:
                _check_expected(source, manifest_bytes, expected_hash)
            files = {n: zf.read(n) for n in names if n != _MANIFEST}
    except zipfile.BadZipFile as exc:
        raise InvalidInput(f"{source} is not a loopml model file: {exc}") from None
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        raise IntegrityError(f"{source}: the manifest is not valid JSON") from None
    if manifest.get("format") != FORMAT:
        raise IntegrityError(f"{source}: unknown model format {manifest.get('format')!r}")
    actual = hashlib.sha256(_canonical(manifest)).hexdigest()
    if expected_hash is not None and actual != expected_hash:
        raise IntegrityError(
            f"{source}: content hash {actual} does not match the expected {expected_hash}"
        )
    listed = manifest.get("files", {})
    if set(listed) != set(files):
        raise IntegrityError(f"{source}: its files do not match its manifest")
    for name, digest in listed.items():
        if hashlib.sha256(files[name]).hexdigest() != digest:
            raise IntegrityError(f"{source}: {name} was changed after the model was saved")
    return files, actual
