"""What every SDK resource shares: the call into the client and error mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from loopml.core.errors import ERRORS_BY_CODE, LoopmlError

if TYPE_CHECKING:
    from loopml.sdk.client import Client

_PROBLEM_PREFIX = "urn:loopml:problem:"


class ApiError(LoopmlError):
    """An error answer whose problem type has no matching ``core.errors`` class."""

    code = "api-error"


_MEMBERS = {"type", "title", "status", "detail", "instance", "field", "errors"}


def raise_for(response: httpx.Response) -> None:
    """Raise the ``core.errors`` type a problem answer names; success passes."""
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):  # a proxy or gateway answered, not loopml
        body = {}
    detail = body.get("detail") or response.text or response.reason_phrase
    code = str(body.get("type", "")).removeprefix(_PROBLEM_PREFIX)
    cls = ERRORS_BY_CODE.get(code, ApiError)
    # Members beyond RFC 9457's own (a CSV's line) are the error's details, as raised.
    details = {k: v for k, v in body.items() if k not in _MEMBERS}
    error = cls(str(detail), field=body.get("field"), errors=body.get("errors"), **details)
    error.status = response.status_code  # type: ignore[attr-defined]
    raise error


class Resource:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _call(self, method: str, path: str, model: Any = None, **kwargs: Any) -> Any:
        return self._client.request(method, path, model, **kwargs)
