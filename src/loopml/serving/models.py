"""Loaded models, kept in memory by content hash so that a request never loads one twice."""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.core.schemas import ModelVersion
from loopml.store.blobs import BlobStore

if TYPE_CHECKING:
    from loopml.automl import AutoML

_KEEP = 8


class ModelCache:
    """The most recently used models, loaded from the blob store and verified.

    Parameters
    ----------
    blobs : BlobStore
        Where model artifacts are.
    keep : int
        How many loaded models to hold.
    """

    def __init__(self, blobs: BlobStore, keep: int = _KEEP) -> None:
        self.blobs = blobs
        self.keep = keep
        self._models: OrderedDict[str, AutoML] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def loaded(self, version: ModelVersion) -> AutoML | None:
        """The model of ``version`` if it is in memory already (never loads)."""
        return self._models.get(version.content_hash)

    def get(self, version: ModelVersion) -> AutoML:
        """The model of ``version``; its artifact must match the hashes it was registered with."""
        key = version.content_hash
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one load per model, however many requests wait for it
            with self._lock:
                if key in self._models:
                    return self._models[key]
            model = self._load(version)
            with self._lock:
                self._models[key] = model
                while len(self._models) > self.keep:
                    self._models.popitem(last=False)
                self._loading.pop(key, None)
        return model

    def _load(self, version: ModelVersion) -> AutoML:
        from loopml.automl import AutoML

        data = self.blobs.get(version.artifact, sha256=version.artifact_sha256)
        with tempfile.TemporaryDirectory(prefix="loopml-model-") as tmp:
            path = Path(tmp) / "model.zip"
            path.write_bytes(data)
            return AutoML.load(path, expected_hash=version.content_hash)
