"""Python client for the loopml REST API."""

from loopml.sdk.client import ApiError, Client

__all__ = ["ApiError", "Client"]
