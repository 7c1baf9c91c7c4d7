"""Recently verified API keys and served deployments, kept for a short time.

Every request otherwise pays for a key lookup and a deployment lookup in the metadata
database, which on the predict path costs more than the model. A change made through
this server empties the cache before its response is sent, so it applies to the next
request; a change made elsewhere (another server process, a job, the CLI on the home)
applies within ``ttl`` seconds.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopml.core.schemas import ApiKey
from loopml.store import deployments, keys
from loopml.store.db import Database
from loopml.store.deployments import Served

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
_MAX_ENTRIES = 4096


class _Recent(Generic[K, T]):
    """Values ``load(key)`` gave, trusted for ``ttl`` seconds. Past half of it, the first
    request to read a value has it looked up again in the background and keeps the one it
    has, so that under steady traffic no request waits for the database, and no value is
    older than ``ttl``."""

    def __init__(
        self, ttl: float, load: Callable[[K], T], refresher: ThreadPoolExecutor | None = None
    ) -> None:
        self.ttl = ttl
        self.load = load
        self.refresher = refresher
        self._found: dict[K, tuple[float, T]] = {}
        self._refreshing: set[K] = set()
        self._generation = 0
        self._lock = threading.Lock()

    def fresh(self, key: K) -> T | None:
        """The value if it is known and fresh (no lookup waits); once it is half way to
        stale, a background lookup renews it."""
        hit = self._found.get(key)
        if hit is None:
            return None
        age = time.monotonic() - hit[0]
        if age >= self.ttl:
            return None
        if self.refresher is not None and age >= self.ttl / 2:
            with self._lock:
                start = key not in self._refreshing
                self._refreshing.add(key)
            if start:
                self.refresher.submit(self._refresh, key)
        return hit[1]

    def _refresh(self, key: K) -> None:
        try:
            self.get(key, again=True)
        except Exception:  # e.g. a key revoked meanwhile: forget it, the next request asks
            with self._lock:
                self._found.pop(key, None)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def get(self, key: K, again: bool = False) -> T:
        """The value, looked up unless it is fresh (always when ``again``)."""
        if self.ttl <= 0:
            return self.load(key)
        now = time.monotonic()
        with self._lock:
            hit = self._found.get(key)
            generation = self._generation
        if hit is not None and now - hit[0] < self.ttl and not again:
            return hit[1]
        value = self.load(key)
        with self._lock:
            # A lookup that overlapped a change may have read the old state: not kept.
            if generation == self._generation:
                if len(self._found) >= _MAX_ENTRIES:
                    self._found.clear()
                self._found[key] = (now, value)
        return value

    def forget(self) -> None:
        with self._lock:
            self._found.clear()
            self._generation += 1


class Lookups:
    """Keys and deployments as recently read from ``db``.

    Parameters
    ----------
    db : Database
        The metadata database.
    ttl : float
        Seconds a looked-up value is trusted; 0 turns the cache off.
    """

    def __init__(self, db: Database, ttl: float) -> None:
        self.db = db
        refresher = ThreadPoolExecutor(1, thread_name_prefix="loopml-lookups")
        self._refresher = refresher
        self._keys: _Recent[str, ApiKey] = _Recent(ttl, self._load_key, refresher)
        self._served: _Recent[tuple[str, str], Served] = _Recent(ttl, self._load_served, refresher)

    def fresh_key(self, secret: str) -> ApiKey | None:
        """The key for ``secret`` if it was verified moments ago (no database work)."""
        return self._keys.fresh(secret)

    def fresh_served(self, project: str, name: str) -> Served | None:
        return self._served.fresh((project, name))

    def key(self, secret: str) -> ApiKey:
        """The key for ``secret``; unknown and revoked keys are never cached."""
        return self._keys.get(secret)

    def served(self, project: str, name: str) -> Served:
        return self._served.get((project, name))

    def _load_key(self, secret: str) -> ApiKey:
        with self.db.session() as s:
            return keys.authenticate(s, secret)

    def _load_served(self, key: tuple[str, str]) -> Served:
        with self.db.session() as s:
            return deployments.served(s, *key)

    def close(self) -> None:
        self._refresher.shutdown(wait=True, cancel_futures=True)

    def forget(self) -> None:
        """Drop everything: something may have changed."""
        self._keys.forget()
        self._served.forget()


_READS = frozenset({"GET", "HEAD", "OPTIONS"})
# Only the prediction routes themselves (a project or deployment may be named "predict").
PREDICT_PATH = re.compile(
    r"^/api/v1/projects/(?P<project>[^/]+)/deployments/(?P<name>[^/]+)/(predict|invocations)$"
)


class ForgetOnWrite:
    """ASGI middleware: a request that may change keys or deployments (any method but a
    read, except predictions) empties the lookups before its response starts."""

    def __init__(self, app: ASGIApp, lookups: Callable[[], Lookups | None]) -> None:
        self.app = app
        self.lookups = lookups

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in _READS
            or (scope["method"] == "POST" and PREDICT_PATH.match(scope["path"]))
        ):
            await self.app(scope, receive, send)
            return

        async def forgetting(message: Message) -> None:
            if message["type"] == "http.response.start":
                found = self.lookups()
                if found is not None:
                    found.forget()
            await send(message)

        await self.app(scope, receive, forgetting)
