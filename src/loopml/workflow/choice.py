"""Choice rules: every comparison operator, ``And``/``Or``/``Not`` and the type tests.

A comparison between values of different types is false, as in Step Functions; a
``Variable`` the input does not hold is a ``States.Runtime`` error, except for
``IsPresent``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from loopml.workflow.paths import Path, PathSyntaxError

Rule = Callable[[Any, Any], bool]

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}
_TYPES = ("String", "Numeric", "Timestamp")
COMPARISONS: set[str] = {f"{kind}{name}" for kind in _TYPES for name in _ORDER} | {
    "BooleanEquals",
    "StringMatches",
}
TESTS = {"IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"}
OPERATORS = COMPARISONS | {f"{name}Path" for name in COMPARISONS - {"StringMatches"}} | TESTS


def compile_rule(rule: Any, where: str, top: bool = True) -> Rule:
    """Compile one rule; raise :class:`PathSyntaxError` naming ``where`` when malformed."""
    if not isinstance(rule, dict):
        raise PathSyntaxError(f"{where}: a choice rule is an object")
    for combinator in ("And", "Or"):
        if combinator in rule:
            inner = rule[combinator]
            if not isinstance(inner, list) or not inner:
                raise PathSyntaxError(f"{where}.{combinator}: a non-empty list of rules")
            rules = [
                compile_rule(r, f"{where}.{combinator}[{i}]", False) for i, r in enumerate(inner)
            ]
            if combinator == "And":
                return lambda data, context: all(r(data, context) for r in rules)
            return lambda data, context: any(r(data, context) for r in rules)
    if "Not" in rule:
        negated = compile_rule(rule["Not"], f"{where}.Not", False)
        return lambda data, context: not negated(data, context)
    if "Variable" not in rule:
        raise PathSyntaxError(f"{where}: a rule needs 'Variable' (or 'And', 'Or', 'Not')")
    names = [key for key in rule if key in OPERATORS]
    if len(names) != 1:
        raise PathSyntaxError(
            f"{where}: a rule needs exactly one comparison operator, found {names or 'none'}"
        )
    name = names[0]
    try:
        variable = Path(rule["Variable"])
    except PathSyntaxError as exc:
        raise PathSyntaxError(f"{where}.Variable: {exc}") from None
    return _comparison(name, rule[name], variable, f"{where}.{name}")


def _comparison(name: str, operand: Any, variable: Path, where: str) -> Rule:
    def read(data: Any, context: Any) -> Any:
        return variable.read(data, context, f"{where.rsplit('.', 1)[0]}.Variable")

    if name in TESTS:
        if not isinstance(operand, bool):
            raise PathSyntaxError(f"{where}: must be true or false")
        if name == "IsPresent":
            return lambda data, context: (
                variable.exists(context if variable.context else data) is operand
            )
        test = _TEST[name]
        return lambda data, context: test(read(data, context)) is operand
    if name.endswith("Path"):
        try:
            other = Path(operand)
        except PathSyntaxError as exc:
            raise PathSyntaxError(f"{where}: {exc}") from None
        compare = _compare(name[:-4])

        def by_path(data: Any, context: Any) -> bool:
            return compare(read(data, context), other.read(data, context, where))

        return by_path
    _check_operand(name, operand, where)
    if name == "StringMatches":
        pattern = _wildcard(operand)
        return lambda data, context: (
            isinstance(value := read(data, context), str) and pattern(value)
        )
    compare = _compare(name)
    return lambda data, context: compare(read(data, context), operand)


def _check_operand(name: str, operand: Any, where: str) -> None:
    if name.startswith(("String", "Timestamp")) and not isinstance(operand, str):
        raise PathSyntaxError(f"{where}: must be a string")
    if name.startswith("Timestamp") and parse_timestamp(operand) is None:
        raise PathSyntaxError(f"{where}: {operand!r} is not an RFC 3339 timestamp")
    if name.startswith("Numeric") and not _is_number(operand):
        raise PathSyntaxError(f"{where}: must be a number")
    if name == "BooleanEquals" and not isinstance(operand, bool):
        raise PathSyntaxError(f"{where}: must be true or false")


def _compare(name: str) -> Callable[[Any, Any], bool]:
    if name == "BooleanEquals":
        return lambda a, b: isinstance(a, bool) and isinstance(b, bool) and a is b
    for kind in _TYPES:
        if name.startswith(kind):
            order = _ORDER[name[len(kind) :]]
            break
    if kind == "String":
        return lambda a, b: isinstance(a, str) and isinstance(b, str) and order(a, b)
    if kind == "Numeric":
        return lambda a, b: _is_number(a) and _is_number(b) and order(a, b)

    def timestamps(a: Any, b: Any) -> bool:
        left, right = parse_timestamp(a), parse_timestamp(b)
        return left is not None and right is not None and order(left, right)

    return timestamps


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TIMESTAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})", re.ASCII
)


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as Step Functions reads it (an uppercase ``T``, seconds and a
    zone: ``Z`` or ``±hh:mm``), or ``None`` for anything else."""
    match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    moment, fraction, zone = match.groups()
    # fromisoformat before Python 3.11 reads neither "Z" nor fractions other than 3 or 6 digits.
    text = f"{moment}.{(fraction or '0')[:6].ljust(6, '0')}{'+00:00' if zone == 'Z' else zone}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _wildcard(pattern: str) -> Callable[[str], bool]:
    """A matcher for ``StringMatches``: ``*`` is any run of characters, ``\\*`` a star.

    Matched by hand, greedily, segment by segment: a regular expression of one ``.*`` per
    star backtracks exponentially on patterns such as ``*a*a*a*b``.
    """
    segments = [""]
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            segments[-1] += pattern[i + 1]
            i += 2
            continue
        if char == "*":
            segments.append("")
        else:
            segments[-1] += char
        i += 1
    if len(segments) == 1:
        return lambda value: value == segments[0]
    first, *middle, last = segments

    def matches(value: str) -> bool:
        if len(value) < len(first) + len(last):
            return False
        if not value.startswith(first) or not value.endswith(last):
            return False
        at, end = len(first), len(value) - len(last)
        for segment in middle:
            found = value.find(segment, at, end)
            if found < 0:
                return False
            at = found + len(segment)
        return True

    return matches


_TEST: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda value: value is None,
    "IsNumeric": _is_number,
    "IsString": lambda value: isinstance(value, str),
    "IsBoolean": lambda value: isinstance(value, bool),
    "IsTimestamp": lambda value: parse_timestamp(value) is not None,
}
