"""JSONPath as Amazon States Language uses it: paths, reference paths and ``ResultPath``.

A *definite* path (names and indices only) selects one value; a path with a wildcard,
slice, union, filter or ``..`` selects a list, possibly empty. A path that starts with
``$$`` reads the context object instead of the state's input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from loopml.core.errors import StatesError

_NAME = re.compile(r"[A-Za-z_$@\u0080-\uffff][\w$@\-\u0080-\uffff]*")
_INT = re.compile(r"-?\d+")
_FILTER = re.compile(
    r"\?\(\s*@((?:\.[\w$\-]+|\[\d+\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(\S.*?))?\s*\)\s*$"
)

Step = tuple[str, Any]


class PathSyntaxError(ValueError):
    """The text is not a JSONPath the States Language accepts."""


class Path:
    """A compiled JSONPath.

    Parameters
    ----------
    text : str
        The path, ``$`` or ``$$`` followed by steps: ``.name``, ``['name']``, ``[0]``,
        ``[-1]``, ``[*]``, ``.*``, ``[1:3]``, ``[0,2]``, ``..name`` and ``[?(@.k > 1)]``.
    """

    __slots__ = ("context", "definite", "steps", "text")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text.startswith("$"):
            raise PathSyntaxError(f"{text!r} is not a path: a path starts with '$'")
        self.text = text
        self.context = text.startswith("$$")
        self.steps = _parse(text[2:] if self.context else text[1:], text)
        self.definite = all(kind in ("key", "index") for kind, _ in self.steps)

    def get(self, data: Any) -> Any:
        """The value the path selects; :class:`PathMissing` when a definite path misses."""
        if self.definite:
            node = data
            for kind, arg in self.steps:
                if kind == "key":
                    if not isinstance(node, dict) or arg not in node:
                        raise PathMissing(self.text)
                    node = node[arg]
                else:
                    if not isinstance(node, list) or not -len(node) <= arg < len(node):
                        raise PathMissing(self.text)
                    node = node[arg]
            return node
        nodes = [data]
        for kind, arg in self.steps:
            nodes = [found for node in nodes for found in _SELECT[kind](node, arg)]
        return nodes

    def read(self, data: Any, context: Any, field: str) -> Any:
        """The value at the path in the state's input (or, for ``$$``, the context object);
        a miss is the ``States.Runtime`` error naming the path and ``field``."""
        try:
            return self.get(context if self.context else data)
        except PathMissing:
            source = "context object" if self.context else "input"
            raise StatesError(
                "States.Runtime",
                f"The JSONPath '{self.text}' specified for the field '{field}' could not be "
                f"found in the {source}",
            ) from None

    def exists(self, data: Any) -> bool:
        try:
            found = self.get(data)
        except PathMissing:
            return False
        return self.definite or bool(found)

    def __repr__(self) -> str:
        return f"Path({self.text!r})"


class PathMissing(StatesError):
    """A definite path named something the data does not hold."""

    def __init__(self, path: str) -> None:
        super().__init__("States.Runtime", f"The JSONPath '{path}' could not be found in the input")


def reference(text: str) -> Path:
    """A reference path: names and indices only, as ``ResultPath`` and ``Variable`` need."""
    path = Path(text)
    if not path.definite or path.context:
        raise PathSyntaxError(
            f"{text!r} must be a reference path: '$' followed by names and indices only"
        )
    return path


def put(data: Any, path: Path | None, value: Any) -> Any:
    """A copy of ``data`` with ``value`` at ``path`` (``None`` discards the value)."""
    if path is None:
        return data
    if not path.steps:
        return value
    return _put(data, path.steps, value, path.text)


def _put(node: Any, steps: list[Step], value: Any, text: str) -> Any:
    kind, arg = steps[0]
    if kind == "key":
        if node is None:
            node = {}
        if not isinstance(node, dict):
            raise StatesError(
                "States.ResultPathMatchFailure",
                f"Unable to apply ResultPath '{text}': {_kind(node)} has no field {arg!r}",
            )
        copy = dict(node)
        copy[arg] = value if len(steps) == 1 else _put(node.get(arg), steps[1:], value, text)
        return copy
    if not isinstance(node, list) or not -len(node) <= arg < len(node):
        raise StatesError(
            "States.ResultPathMatchFailure",
            f"Unable to apply ResultPath '{text}': no element [{arg}] in {_kind(node)}",
        )
    items = list(node)
    items[arg] = value if len(steps) == 1 else _put(node[arg], steps[1:], value, text)
    return items


def _kind(node: Any) -> str:
    return "an array" if isinstance(node, list) else f"the value {node!r}"[:60]


def _parse(rest: str, text: str) -> list[Step]:
    steps: list[Step] = []
    i = 0
    while i < len(rest):
        if rest.startswith("..", i):
            i += 2
            if rest.startswith("*", i):
                steps.append(("descend", None))
                i += 1
                continue
            match = _NAME.match(rest, i)
            if match is None:
                raise PathSyntaxError(f"{text!r}: a name must follow '..' at {i + 1}")
            steps.append(("descend", match.group()))
            i = match.end()
        elif rest[i] == ".":
            if rest.startswith("[", i + 1):
                i += 1  # `$.abc.['def ghi']`, as AWS's documentation writes it
                continue
            if rest.startswith("*", i + 1):
                steps.append(("wild", None))
                i += 2
                continue
            match = _NAME.match(rest, i + 1)
            if match is None:
                raise PathSyntaxError(f"{text!r}: a name must follow '.' at {i + 1}")
            steps.append(("key", match.group()))
            i = match.end()
        elif rest[i] == "[":
            end = _closing(rest, i, text)
            steps.append(_bracket(rest[i + 1 : end].strip(), text))
            i = end + 1
        else:
            raise PathSyntaxError(f"{text!r}: unexpected {rest[i]!r} at {i + 1}")
    return steps


def _closing(rest: str, start: int, text: str) -> int:
    quote = None
    depth = 0
    j = start
    while j < len(rest):
        char = rest[j]
        if quote:
            if char == "\\":
                j += 1  # the escaped character cannot close the string
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise PathSyntaxError(f"{text!r}: '[' is never closed")


def _bracket(inner: str, text: str) -> Step:
    if inner == "*":
        return ("wild", None)
    if inner.startswith("?"):
        match = _FILTER.match(inner)
        if match is None:
            raise PathSyntaxError(f"{text!r}: cannot read the filter [{inner}]")
        return ("filter", _filter(match.group(1), match.group(2), match.group(3), text))
    slice_ = _slice_parts(inner)
    if slice_ is not None:
        start, stop, step = slice_
        if step == 0:
            raise PathSyntaxError(f"{text!r}: a slice's step must not be 0")
        return ("slice", slice(start, stop, step))
    members = _members(inner, text)
    if len(members) > 1:
        return ("union", members)
    return ("index" if isinstance(members[0], int) else "key", members[0])


def _slice_parts(inner: str) -> tuple[int | None, int | None, int | None] | None:
    """``start:stop[:step]``, each part optional, or None when ``inner`` is no slice (read
    by hand: a regular expression with optional spaces around optional parts backtracks
    in cubic time on long inputs)."""
    parts = inner.split(":")
    if not 2 <= len(parts) <= 3:
        return None
    numbers: list[int | None] = []
    for part in (p.strip() for p in parts):
        if part and not _INT.fullmatch(part):
            return None
        numbers.append(int(part) if part else None)
    numbers += [None] * (3 - len(numbers))
    return numbers[0], numbers[1], numbers[2]


def _members(inner: str, text: str) -> list[Any]:
    """The names and indices of ``['a', "b", 0]``, split at commas outside quotes."""
    members: list[Any] = []
    i, size = 0, len(inner)
    while True:
        while i < size and inner[i] == " ":
            i += 1
        if i < size and inner[i] in "'\"":
            quote, i, chars = inner[i], i + 1, []
            while i < size and inner[i] != quote:
                if inner[i] == "\\" and i + 1 < size and inner[i + 1] in (quote, "\\"):
                    i += 1
                chars.append(inner[i])
                i += 1
            if i >= size:
                raise PathSyntaxError(f"{text!r}: a name in [{inner}] is never closed")
            members.append("".join(chars))
            i += 1
        else:
            match = _INT.match(inner, i)
            if match is None:
                raise PathSyntaxError(f"{text!r}: cannot read the selector [{inner}]")
            members.append(int(match.group()))
            i = match.end()
        while i < size and inner[i] == " ":
            i += 1
        if i == size:
            return members
        if inner[i] != ",":
            raise PathSyntaxError(f"{text!r}: cannot read the selector [{inner}]")
        i += 1


def _filter(sub: str, op: str | None, literal: str | None, text: str) -> Callable[[Any], bool]:
    path = Path("$" + sub)
    if op is None:
        return path.exists
    assert literal is not None
    literal = literal.strip()
    value: Any
    if literal[:1] in "'\"" and literal[-1:] == literal[:1]:
        value = literal[1:-1]
    elif literal in ("true", "false", "null"):
        value = {"true": True, "false": False, "null": None}[literal]
    else:
        try:
            value = float(literal) if any(c in literal for c in ".eE") else int(literal)
        except ValueError:
            raise PathSyntaxError(f"{text!r}: {literal!r} is not a literal") from None
    compare = _COMPARE[op]

    def test(item: Any) -> bool:
        try:
            found = path.get(item)
        except PathMissing:
            return False
        if _json_type(found) != _json_type(value):
            return op == "!="  # JSON types never compare equal: true is not 1
        try:
            return bool(compare(found, value))
        except TypeError:
            return False

    return test


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else type(value).__name__


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    return list(node) if isinstance(node, list) else []


def _descend(node: Any, name: str | None) -> list[Any]:
    found: list[Any] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            if name is None:
                found.extend(current.values())
            elif name in current:
                found.append(current[name])
        kids = _children(current)
        stack.extend(reversed(kids))
    return found


_SELECT: dict[str, Callable[[Any, Any], list[Any]]] = {
    "key": lambda node, arg: [node[arg]] if isinstance(node, dict) and arg in node else [],
    "index": lambda node, arg: (
        [node[arg]] if isinstance(node, list) and -len(node) <= arg < len(node) else []
    ),
    "wild": lambda node, _: _children(node),
    "slice": lambda node, arg: node[arg] if isinstance(node, list) else [],
    "union": lambda node, arg: [
        found
        for member in arg
        for found in _SELECT["index" if isinstance(member, int) else "key"](node, member)
    ],
    "filter": lambda node, arg: [item for item in _children(node) if arg(item)],
    "descend": _descend,
}
