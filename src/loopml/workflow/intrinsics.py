"""The States Language's intrinsic functions: ``States.Format('{} {}', $.a, $.b)`` and kin.

An expression is parsed once into a function of ``(input, context)``; a failure while
evaluating it is the ``States.IntrinsicFailure`` error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import uuid
from collections.abc import Callable
from typing import Any

from loopml.core.errors import StatesError
from loopml.workflow.paths import Path, PathSyntaxError

Evaluator = Callable[[Any, Any], Any]

_HASHES = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}


def is_intrinsic(text: str) -> bool:
    return text.startswith("States.")


def compile_intrinsic(text: str) -> Evaluator:
    """Parse ``text``; raise :class:`PathSyntaxError` with the reason when it is malformed."""
    parser = _Parser(text)
    call = parser.call()
    parser.skip()
    if parser.i != len(text):
        raise PathSyntaxError(f"{text!r}: unexpected {text[parser.i :]!r} after the call")
    return call


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def skip(self) -> None:
        while self.i < len(self.text) and self.text[self.i] == " ":
            self.i += 1

    def fail(self, what: str) -> PathSyntaxError:
        return PathSyntaxError(f"{self.text!r}: {what} at character {self.i + 1}")

    def call(self) -> Evaluator:
        self.skip()
        start = self.i
        while self.i < len(self.text) and (
            self.text[self.i].isalnum() or self.text[self.i] in "._"
        ):
            self.i += 1
        name = self.text[start : self.i]
        if name not in FUNCTIONS:
            raise self.fail(f"unknown intrinsic function {name!r}")
        if self.text[self.i : self.i + 1] != "(":
            raise self.fail(f"'(' must follow {name}")
        self.i += 1
        args: list[Evaluator] = []
        self.skip()
        if self.text[self.i : self.i + 1] == ")":
            self.i += 1
        else:
            while True:
                # Format's template keeps its escaped braces apart from its placeholders.
                args.append(self.argument(template=name == "States.Format" and not args))
                self.skip()
                char = self.text[self.i : self.i + 1]
                self.i += 1
                if char == ")":
                    break
                if char != ",":
                    self.i -= 1
                    raise self.fail("expected ',' or ')'")
        function = FUNCTIONS[name]
        arity = _ARITY[name]
        if not arity[0] <= len(args) <= arity[1]:
            raise self.fail(f"{name} takes {arity[0]} to {arity[1]} arguments, not {len(args)}")

        def evaluate(data: Any, context: Any) -> Any:
            values = [arg(data, context) for arg in args]
            try:
                return function(*values)
            except StatesError:
                raise
            except Exception as exc:
                raise StatesError("States.IntrinsicFailure", f"{name}: {exc}") from None

        return evaluate

    def argument(self, template: bool = False) -> Evaluator:
        self.skip()
        char = self.text[self.i : self.i + 1]
        if char == "'":
            value = self.string(template)
            return lambda data, context: value
        if char == "$":
            start = self.i
            depth = 0
            quote = ""
            while self.i < len(self.text):
                c = self.text[self.i]
                if quote:
                    if c == "\\":
                        self.i += 1
                    elif c == quote:
                        quote = ""
                elif depth and c in "'\"":
                    quote = c
                elif c in "[(":
                    depth += 1
                elif c in "])":
                    if depth == 0:
                        break
                    depth -= 1
                elif c == "," and depth == 0:
                    break
                self.i += 1
            path = Path(self.text[start : self.i].strip())
            if path.context:
                return lambda data, context: path.get(context)
            return lambda data, context: path.get(data)
        if self.text.startswith("States.", self.i):
            return self.call()
        start = self.i
        while self.i < len(self.text) and self.text[self.i] not in ",) ":
            self.i += 1
        word = self.text[start : self.i]
        literal: Any
        if word in ("true", "false", "null"):
            literal = {"true": True, "false": False, "null": None}[word]
        else:
            try:
                literal = json.loads(word)
            except ValueError:
                raise self.fail(
                    f"{word!r} is not a string, number, boolean, null or path"
                ) from None
            if not isinstance(literal, int | float):
                raise self.fail(f"{word!r} is not a literal")
        return lambda data, context: literal

    def string(self, template: bool = False) -> str:
        """A quoted literal; ``\\'``, ``\\{``, ``\\}`` and ``\\\\`` are its only escapes.

        For Format's ``template`` the escapes of braces and backslashes stay escaped, so
        that ``\\{\\}`` is text there and ``{}`` a placeholder.
        """
        self.i += 1
        out: list[str] = []
        while self.i < len(self.text):
            char = self.text[self.i]
            if char == "\\":
                nxt = self.text[self.i + 1 : self.i + 2]
                if nxt not in ("'", "{", "}", "\\"):
                    raise self.fail("a backslash escapes only ', {, } and \\")
                out.append("\\" + nxt if template and nxt != "'" else nxt)
                self.i += 2
                continue
            if char == "'":
                self.i += 1
                return "".join(out)
            out.append(char)
            self.i += 1
        raise self.fail("a string is never closed")


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _format(template: str, *values: Any) -> str:
    if not isinstance(template, str):
        raise ValueError("the template must be a string")
    out: list[str] = []
    used = 0
    i = 0
    while i < len(template):
        char = template[i]
        if char == "\\" and template[i + 1 : i + 2] in ("{", "}", "\\"):
            out.append(template[i + 1])
            i += 2
        elif template.startswith("{}", i):
            if used >= len(values):
                raise ValueError("the template has more '{}' than arguments")
            out.append(_text(values[used]))
            used += 1
            i += 2
        else:
            out.append(char)
            i += 1
    if used != len(values):
        raise ValueError(f"{len(values)} arguments for {used} '{{}}' in the template")
    return "".join(out)


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        raise ValueError("States.Format takes strings, numbers, booleans and null, not JSON")
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return str(value)


def _json_to_string(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _array(values: list[Any], what: str) -> list[Any]:
    if not isinstance(values, list):
        raise ValueError(f"{what} must be an array")
    return values


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"{what} must be an integer, not {value!r}")
    return int(value)


def _rounded(value: Any, what: str) -> int:
    """Step Functions rounds a non-integer argument to the nearest integer."""
    return _integer(math.floor(_number(value) + 0.5), what)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, as Python's ``==`` has it."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def _contains(values: Any, value: Any) -> bool:
    return any(_same(item, value) for item in _array(values, "the first argument"))


def _partition(values: list[Any], size: Any) -> list[list[Any]]:
    size = _rounded(size, "the chunk size")
    if size <= 0:
        raise ValueError("the chunk size must be positive")
    values = _array(values, "the first argument")
    return [values[i : i + size] for i in range(0, len(values), size)]


def _range(start: Any, end: Any, step: Any) -> list[int]:
    start, end, step = (_rounded(v, "each argument") for v in (start, end, step))
    if step == 0:
        raise ValueError("the step must not be 0")
    values = list(range(start, end + (1 if step > 0 else -1), step))
    if len(values) > 1000:
        raise ValueError("the range has more than 1000 items")
    return values


def _unique(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in _array(values, "the argument"):
        if not _contains(seen, value):
            seen.append(value)
    return seen


def _hash(data: Any, algorithm: str) -> str:
    if algorithm not in _HASHES:
        raise ValueError(f"the algorithm must be one of {', '.join(_HASHES)}, not {algorithm!r}")
    text = data if isinstance(data, str) else _json_to_string(data)
    return hashlib.new(_HASHES[algorithm], text.encode()).hexdigest()


def _merge(first: Any, second: Any, deep: Any) -> dict[str, Any]:
    if not isinstance(first, dict) or not isinstance(second, dict):
        raise ValueError("both arguments must be JSON objects")
    if deep is not False:
        raise ValueError("only a shallow merge (false) is supported, as in Step Functions")
    return {**first, **second}


def _random(start: Any, end: Any, seed: Any = None) -> int:
    start, end = _rounded(start, "start"), _rounded(end, "end")
    rng = random.Random(_integer(seed, "seed")) if seed is not None else random
    return rng.randrange(start, end) if end > start else start


def _split(text: Any, delimiters: Any) -> list[str]:
    if not isinstance(text, str) or not isinstance(delimiters, str) or not delimiters:
        raise ValueError("both arguments must be strings, the delimiters not empty")
    parts = [text]
    for delimiter in delimiters:
        parts = [piece for part in parts for piece in part.split(delimiter)]
    return [part for part in parts if part]


def _add(a: Any, b: Any) -> int:
    values = [_rounded(v, "each argument") for v in (a, b)]
    if not all(-(2**31) <= v < 2**31 for v in values):
        raise ValueError("the arguments must lie between -2147483648 and 2147483647")
    return values[0] + values[1]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{value!r} is not a number")
    return value


def _get_item(values: Any, index: Any) -> Any:
    values = _array(values, "the first argument")
    index = _integer(index, "the index")
    if not 0 <= index < len(values):
        raise ValueError(f"index {index} is outside an array of {len(values)}")
    return values[index]


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "States.Format": _format,
    "States.StringToJson": lambda text: json.loads(text, parse_constant=_not_json),
    "States.JsonToString": _json_to_string,
    "States.Array": lambda *values: list(values),
    "States.ArrayPartition": _partition,
    "States.ArrayContains": _contains,
    "States.ArrayRange": _range,
    "States.ArrayGetItem": _get_item,
    "States.ArrayLength": lambda values: len(_array(values, "the argument")),
    "States.ArrayUnique": _unique,
    "States.Base64Encode": lambda text: base64.b64encode(text.encode()).decode(),
    "States.Base64Decode": lambda text: base64.b64decode(text, validate=True).decode(),
    "States.Hash": _hash,
    "States.JsonMerge": _merge,
    "States.MathRandom": _random,
    "States.MathAdd": _add,
    "States.StringSplit": _split,
    "States.UUID": lambda: str(uuid.uuid4()),
}
_MANY = 1 << 16
_ARITY: dict[str, tuple[int, int]] = {
    "States.Format": (1, _MANY),
    "States.StringToJson": (1, 1),
    "States.JsonToString": (1, 1),
    "States.Array": (0, _MANY),
    "States.ArrayPartition": (2, 2),
    "States.ArrayContains": (2, 2),
    "States.ArrayRange": (3, 3),
    "States.ArrayGetItem": (2, 2),
    "States.ArrayLength": (1, 1),
    "States.ArrayUnique": (1, 1),
    "States.Base64Encode": (1, 1),
    "States.Base64Decode": (1, 1),
    "States.Hash": (2, 2),
    "States.JsonMerge": (3, 3),
    "States.MathRandom": (2, 3),
    "States.MathAdd": (2, 2),
    "States.StringSplit": (2, 2),
    "States.UUID": (0, 0),
}
