"""Payload templates: ``Parameters``, ``ResultSelector`` and ``ItemSelector``.

A key ending in ``.$`` takes its value from a path (``$.x``), the context object
(``$$.Execution.Id``) or an intrinsic function; every other value is copied as written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loopml.workflow.intrinsics import compile_intrinsic, is_intrinsic
from loopml.workflow.paths import Path, PathSyntaxError

Template = Callable[[Any, Any], Any]


def compile_template(template: Any, where: str) -> Template:
    """A function of ``(input, context)``; :class:`PathSyntaxError` names the key at fault."""
    if isinstance(template, dict):
        parts: list[tuple[str, bool, Any]] = []
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    raise PathSyntaxError(f"{where}.{key}: a '.$' key needs a path or intrinsic")
                parts.append((key[:-2], True, _dynamic(value, f"{where}.{key}")))
            else:
                parts.append((key, False, compile_template(value, f"{where}.{key}")))

        def build(data: Any, context: Any) -> dict[str, Any]:
            return {key: value(data, context) for key, _, value in parts}

        return build
    if isinstance(template, list):
        items = [compile_template(item, f"{where}[{i}]") for i, item in enumerate(template)]
        return lambda data, context: [item(data, context) for item in items]
    return lambda data, context: template


def _dynamic(text: str, where: str) -> Template:
    try:
        if is_intrinsic(text):
            return compile_intrinsic(text)
        path = Path(text)
    except PathSyntaxError as exc:
        raise PathSyntaxError(f"{where}: {exc}") from None

    return lambda data, context: path.read(data, context, where)
