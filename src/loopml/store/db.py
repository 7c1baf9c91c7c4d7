"""Engine and session handling for the metadata database (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from loopml.core.errors import StorageError


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; foreign keys are off by default in SQLite.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Database:
    """A connection to the metadata database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///path/loopml.db`` or ``postgresql+psycopg://...``.
    connect_args : dict, optional
        Passed to the DBAPI driver (tests use it to pin a PostgreSQL schema).
    """

    def __init__(self, url: str, connect_args: dict[str, Any] | None = None) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        args = dict(connect_args or {})
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            args.setdefault("check_same_thread", False)
            args.setdefault("timeout", 30)
        self.engine: Engine = create_engine(url, connect_args=args, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise StorageError(f"metadata database error: {exc.orig}") from exc
        except ProgrammingError as exc:
            session.rollback()
            raise StorageError(
                f"metadata database error: {exc.orig} (is the schema migrated? "
                "run `loopml db upgrade`)"
            ) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self) -> None:
        """Apply every pending migration (idempotent)."""
        from loopml.store.migrate import upgrade

        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
