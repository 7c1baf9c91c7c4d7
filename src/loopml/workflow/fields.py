"""Reading the fields states share: paths, templates, seconds, ``Retry`` and ``Catch``.

Each reader records a problem (where, message) instead of raising, so that one pass
reports everything wrong with a definition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loopml.workflow.intrinsics import compile_intrinsic, is_intrinsic
from loopml.workflow.paths import Path, PathSyntaxError, reference
from loopml.workflow.states import Catcher, Retrier
from loopml.workflow.templates import compile_template


class FieldReader:
    def __init__(
        self, problems: list[tuple[str, str]], known_task: Callable[[str], bool] | None
    ) -> None:
        self.problems = problems
        self.known_task = known_task

    def problem(self, where: str, message: str) -> None:
        self.problems.append((where or "definition", message))

    def select(self, body: dict[str, Any], key: str, where: str) -> Any:
        if key not in body:
            return None
        if body[key] is None:
            return lambda data, context: {}
        try:
            path = Path(body[key])
        except PathSyntaxError as exc:
            self.problem(f"{where}.{key}", str(exc))
            return None
        if not path.steps and not path.context:
            return None

        return lambda data, context: path.read(data, context, f"{where}.{key}")

    def reference(self, text: Any, where: str) -> Path | None:
        try:
            return reference(text)
        except PathSyntaxError as exc:
            self.problem(where, str(exc))
            return None

    def dynamic(self, text: Any, where: str) -> Callable[[Any, Any], Any] | None:
        """A reading of ``(input, context)``: a reference path (``$$`` for the context object)
        or an intrinsic function, as ``ErrorPath`` and ``CausePath`` take."""
        try:
            if isinstance(text, str) and is_intrinsic(text):
                return compile_intrinsic(text)
            path = Path(text)
        except PathSyntaxError as exc:
            self.problem(where, str(exc))
            return None
        if not path.definite:
            self.problem(where, f"{text!r} must be a reference path or an intrinsic function")
            return None
        # A definite path that misses raises PathMissing, the States.Runtime error.
        return lambda data, context: path.get(context if path.context else data)

    def path(self, text: Any, where: str) -> Path | None:
        try:
            return Path(text)
        except PathSyntaxError as exc:
            self.problem(where, str(exc))
            return None

    def template(self, body: dict[str, Any], key: str, where: str) -> Any:
        if key not in body:
            return None
        try:
            return compile_template(body[key], f"{where}.{key}")
        except PathSyntaxError as exc:
            self.located(f"{where}.{key}", exc)
            return None

    def located(self, where: str, exc: Exception) -> None:
        """Record ``exc``, whose text may begin with a more precise place than ``where``."""
        text = str(exc)
        place, sep, message = text.partition(": ")
        if sep and place.startswith(where):
            self.problem(place, message)
        else:
            self.problem(where, text)

    def seconds(
        self,
        body: dict[str, Any],
        key: str,
        prefix: str,
        positive: bool = True,
        unit: str = "seconds",
    ) -> float | None:
        if key not in body:
            return None
        value = body[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if positive else 0):
            self.problem(
                f"{prefix}{key}",
                f"must be a {'positive' if positive else 'non-negative'}"
                f" whole number{' of ' + unit if unit else ''}, not {value!r}",
            )
            return None
        return float(value)

    def errors(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.problem(where, "must be a non-empty list of error names")
            return ()
        if "States.ALL" in value and len(value) > 1:
            self.problem(where, "States.ALL must appear alone")
        return tuple(value)

    def retriers(self, value: Any, where: str) -> list[Retrier]:
        if not isinstance(value, list):
            self.problem(where, "must be a list of retriers")
            return []
        out = []
        for i, item in enumerate(value):
            at = f"{where}[{i}]"
            if not isinstance(item, dict):
                self.problem(at, "a retrier is an object")
                continue
            allowed = {
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            }
            for key in set(item) - allowed:
                self.problem(f"{at}.{key}", "is not a field of a retrier")
            retrier = Retrier(self.errors(item.get("ErrorEquals"), f"{at}.ErrorEquals"))
            interval = self.seconds(item, "IntervalSeconds", f"{at}.")
            attempts = self.seconds(item, "MaxAttempts", f"{at}.", positive=False, unit="")
            max_delay = self.seconds(item, "MaxDelaySeconds", f"{at}.")
            rate = item.get("BackoffRate", 2.0)
            if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 1:
                self.problem(f"{at}.BackoffRate", f"must be a number >= 1.0, not {rate!r}")
                rate = 2.0
            jitter = item.get("JitterStrategy", "NONE")
            if jitter not in ("NONE", "FULL"):
                self.problem(f"{at}.JitterStrategy", f"must be NONE or FULL, not {jitter!r}")
            retrier.interval = interval if interval is not None else 1.0
            retrier.max_attempts = int(attempts) if attempts is not None else 3
            retrier.backoff, retrier.max_delay = float(rate), max_delay
            retrier.full_jitter = jitter == "FULL"
            out.append(retrier)
        self.all_last([r.errors for r in out], where)
        return out

    def catchers(self, value: Any, where: str) -> list[Catcher]:
        if not isinstance(value, list):
            self.problem(where, "must be a list of catchers")
            return []
        out = []
        for i, item in enumerate(value):
            at = f"{where}[{i}]"
            if not isinstance(item, dict):
                self.problem(at, "a catcher is an object")
                continue
            for key in set(item) - {"ErrorEquals", "Next", "ResultPath", "Comment"}:
                self.problem(f"{at}.{key}", "is not a field of a catcher")
            if not isinstance(item.get("Next"), str):
                self.problem(f"{at}.Next", "must be the name of a state")
                continue
            catcher = Catcher(
                self.errors(item.get("ErrorEquals"), f"{at}.ErrorEquals"),
                str(item.get("Next")),
                Path("$"),
            )
            if "ResultPath" in item:
                if item["ResultPath"] is None:
                    catcher.discard, catcher.result_path = True, None
                else:
                    catcher.result_path = self.reference(item["ResultPath"], f"{at}.ResultPath")
            out.append(catcher)
        self.all_last([c.errors for c in out], where)
        return out

    def all_last(self, lists: list[tuple[str, ...]], where: str) -> None:
        for i, errors in enumerate(lists[:-1]):
            if "States.ALL" in errors:
                self.problem(f"{where}[{i}].ErrorEquals", "States.ALL must be in the last entry")
