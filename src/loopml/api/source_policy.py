"""Which sources a key may have the server read.

The server reads a source with its own rights: its files, its network position, its
cloud credentials. Admin keys may name anything; other keys may name built-in datasets,
cloud storage, and HTTP(S) URLs whose host is a public address, so that a maintainer
cannot read the server's files or probe the network behind it.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from loopml.core.enums import Role
from loopml.core.errors import Forbidden
from loopml.core.schemas import ApiKey
from loopml.data.sources import ALIASES, describe

CLOUD_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl")
WEB_SCHEMES = ("http", "https")


def check_source(source: str, key: ApiKey) -> None:
    """Raise :class:`Forbidden` when ``key`` may not have the server read ``source``."""
    if key.global_role is Role.admin or describe(source) == "builtin" or source in ALIASES:
        return
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    if "::" not in source and scheme in CLOUD_SCHEMES:
        return
    if "::" not in source and scheme in WEB_SCHEMES:
        host = urlsplit(source).hostname or ""
        if _public(host):
            return
        raise Forbidden(
            f"{host or source!r} is not a public address; only admin keys may have the "
            "server fetch from its own network",
            field="source",
        )
    raise Forbidden(
        "only admin keys may have the server read its own files or other URL kinds; "
        f"other keys may name builtin:, {', '.join(s + '://' for s in CLOUD_SCHEMES[:3])}... "
        "or public http(s) URLs, or upload the files",
        field="source",
    )


def _public(host: str) -> bool:
    """Whether every address ``host`` resolves to is a public one."""
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return True  # unresolvable here: the fetch itself will fail and say so
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            return False
    return True
