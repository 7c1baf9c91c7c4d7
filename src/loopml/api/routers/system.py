"""Health and version: public, for load balancers and monitoring."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from loopml import __version__
from loopml.api.auth import get_home
from loopml.home import Home
from loopml.store.migrate import current_revision, head_revision

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str
    database: str
    schema_revision: str | None
    version: str


class Version(BaseModel):
    version: str
    api: str = "v1"


@cache
def _expected_revision() -> str | None:
    return head_revision()


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(home: Home = Depends(get_home)) -> JSONResponse:
    """Whether the server can reach its metadata database and finds the schema this
    version needs (503 when it cannot, or the schema is missing or at another revision)."""
    revision, problem = None, None
    try:
        with home.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(home.db.engine)
    except Exception as exc:
        problem = f"error: {type(exc).__name__}"
    else:
        expected = _expected_revision()
        if revision != expected:
            problem = f"error: schema revision {revision}, this server needs {expected}"
    body = Health(
        status="unavailable" if problem else "ok",
        database=problem or "ok",
        schema_revision=revision,
        version=__version__,
    )
    return JSONResponse(body.model_dump(), status_code=503 if problem else 200)


@router.get("/version", response_model=Version)
def version() -> Version:
    return Version(version=__version__)
