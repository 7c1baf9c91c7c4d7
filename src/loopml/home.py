"""A loopml home: the metadata database and blob store of one installation, opened.

Opening a home applies pending migrations and, on the very first start, creates the
admin API key: printed once and written to ``<home>/admin.key`` with mode 0600.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from loopml.core.enums import Role
from loopml.settings import Settings
from loopml.store import keys
from loopml.store.blobs import BlobStore
from loopml.store.db import Database


@dataclass
class Home:
    settings: Settings
    db: Database
    blobs: BlobStore

    def close(self) -> None:
        self.db.dispose()


def open_home(settings: Settings, announce: Callable[[str], None] | None = None) -> Home:
    """Open (and on first use, initialise) the installation described by ``settings``.

    Parameters
    ----------
    settings : Settings
        Where the database and blobs live.
    announce : callable, optional
        Called with a message holding the admin key when one is created.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    db.upgrade()
    blobs = BlobStore(settings.resolved_storage_url, settings.storage_options)
    home = Home(settings, db, blobs)
    secret = ensure_admin_key(home)
    if secret and announce:
        announce(
            f"Created the admin API key (shown once, also saved to {settings.admin_key_path}):\n"
            f"  {secret}"
        )
    return home


def ensure_admin_key(home: Home) -> str | None:
    """Create an admin key if no unrevoked one exists; return its secret when created."""
    with home.db.session() as s:
        if keys.count_admins(s) > 0:
            return None
        created = keys.create(s, "admin", global_role=Role.admin)
    path = home.settings.admin_key_path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(created.secret + "\n")
    os.chmod(path, 0o600)
    return created.secret


def read_admin_key(settings: Settings) -> str | None:
    path = settings.admin_key_path
    return path.read_text().strip() if path.exists() else None
