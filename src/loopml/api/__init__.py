"""The REST API: FastAPI app factory, one router per resource, auth, error mapping."""

from loopml.api.app import create_app

__all__ = ["create_app"]
