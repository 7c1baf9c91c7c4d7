"""Reading a workflow definition: JSON or YAML text into a JSON object, within limits.

Only JSON's values are allowed (YAML's anchors, dates and other types are refused), at
most 1 MiB of text and 100 levels deep; every problem is an
:class:`~loopml.core.errors.InvalidDefinition`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

from loopml.core.errors import InvalidDefinition

MAX_DEFINITION_CHARS = 1_048_576  # Step Functions' limit on a definition
MAX_DEPTH = 100  # nested objects and arrays; deeper is a mistake or an attack


class _NoAliases(yaml.SafeLoader):
    """YAML without anchors and aliases: ten nested aliases in a few hundred bytes expand
    to billions of nodes (a "billion laughs"), and JSON has no such thing anyway."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(
                f"line {event.start_mark.line + 1}: aliases (*name) are not "
                "allowed in a workflow definition"
            )
        return super().compose_node(parent, index)


def load_definition(text: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Parse JSON or YAML text into a definition object (a dict passes through); only
    JSON's values are allowed, at most 1 MiB of text and 100 levels deep."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if isinstance(text, str):
        if len(text) > MAX_DEFINITION_CHARS:
            raise InvalidDefinition([("definition", f"longer than {MAX_DEFINITION_CHARS:,} "
                                      "characters")])  # fmt: skip
        try:
            data = (
                json.loads(text)
                if text.lstrip().startswith("{")
                else yaml.load(text, Loader=_NoAliases)
            )
        except (ValueError, yaml.YAMLError) as exc:
            raise InvalidDefinition([("definition", f"neither JSON nor YAML: {exc}")]) from None
    else:
        data = text
    if not isinstance(data, dict):
        raise InvalidDefinition([("definition", "must be an object with StartAt and States")])
    _check_json(data, "definition", 0)
    return data


def _check_json(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidDefinition([(where, f"nested more than {MAX_DEPTH} levels deep")])
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidDefinition([(f"{where}.{key}", "a field name must be a string")])
            _check_json(item, f"{where}.{key}" if where != "definition" else key, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidDefinition([(where, "NaN and Infinity are not JSON numbers")])
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise InvalidDefinition([(where, f"{type(value).__name__} is not a JSON value "
                                  "(quote it as a string)")])  # fmt: skip
