"""Data quality of a window against its reference: missing values, outliers, unseen
categories, values of the wrong type, and missing or extra columns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from loopml.monitoring.profile import Profile
from loopml.monitoring.sketch import CategorySketch, NumericSketch


@dataclass(frozen=True)
class QualityLimits:
    """How much worse than the reference a window may be before a finding is raised.

    Parameters
    ----------
    missing_increase : float
        Missing-value rate above the reference's by more than this (absolute share).
    outlier_rate : float
        Outlier rate (beyond the reference's 3-IQR fences) above the reference's by more
        than this.
    unseen_rate : float
        Share of a categorical column's values the reference never had.
    """

    missing_increase: float = 0.05
    outlier_rate: float = 0.01
    unseen_rate: float = 0.01


@dataclass(frozen=True)
class QualityFinding:
    # missing_values, outliers, unseen_categories, type_violations, missing_column, extra_columns
    check: str
    column: str | None
    severity: str  # "warning" | "error" | "info"
    value: float
    reference: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quality(
    reference: Profile, current: Profile, limits: QualityLimits | None = None
) -> list[QualityFinding]:
    """Findings of a window against its reference, most severe first."""
    limits = limits or QualityLimits()
    found: list[QualityFinding] = []
    for name, ref in reference.columns.items():
        cur = current.columns.get(name)
        absent = cur is not None and cur.rows and cur.missing == cur.rows and ref.present
        if cur is None or absent:
            found.append(
                QualityFinding(
                    "missing_column",
                    name,
                    "error",
                    1.0,
                    None,
                    f"`{name}` is missing: the reference has it, no row of this window does",
                )
            )
            continue
        found.extend(_column(name, ref, cur, limits))
    if current.extra:
        found.append(
            QualityFinding(
                "extra_columns",
                None,
                "info",
                float(len(current.extra)),
                None,
                f"{len(current.extra)} column(s) the reference does not have were ignored: "
                f"{', '.join(current.extra[:10])}",
            )
        )
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda f: order[f.severity])


def _column(
    name: str,
    ref: NumericSketch | CategorySketch,
    cur: NumericSketch | CategorySketch,
    limits: QualityLimits,
) -> list[QualityFinding]:
    found = []
    if cur.rows:
        was, now = _rate(ref.missing, ref.rows), cur.missing / cur.rows
        if now - was > limits.missing_increase:
            found.append(
                QualityFinding(
                    "missing_values",
                    name,
                    "warning",
                    now,
                    was,
                    f"`{name}` is missing in {now:.1%} of rows (reference {was:.1%})",
                )
            )
    if isinstance(ref, NumericSketch) and isinstance(cur, NumericSketch):
        if cur.invalid:
            share = cur.invalid / cur.rows
            found.append(
                QualityFinding(
                    "type_violations",
                    name,
                    "error",
                    share,
                    0.0,
                    f"`{name}` should hold numbers; {cur.invalid} value(s) ({share:.1%}) were not",
                )
            )
        if cur.present:
            was, now = _rate(ref.outliers, ref.present), cur.outliers / cur.present
            if now - was > limits.outlier_rate:
                found.append(
                    QualityFinding(
                        "outliers",
                        name,
                        "warning",
                        now,
                        was,
                        f"`{name}` has {now:.1%} outliers outside [{ref.low:.4g}, {ref.high:.4g}] "
                        f"(reference {was:.1%})",
                    )
                )
    elif isinstance(cur, CategorySketch) and cur.present and cur.unseen:
        share = cur.unseen / cur.present
        if share > limits.unseen_rate:
            examples = ", ".join(repr(v) for v in cur.unseen_values(3))
            found.append(
                QualityFinding(
                    "unseen_categories",
                    name,
                    "warning",
                    share,
                    0.0,
                    f"`{name}` has {share:.1%} values the reference never had (e.g. {examples})",
                )
            )
    return found


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
