"""Metadata database (SQLAlchemy 2 + Alembic) and blob store (fsspec)."""

from loopml.store.blobs import BlobStore
from loopml.store.db import Database

__all__ = ["BlobStore", "Database"]
