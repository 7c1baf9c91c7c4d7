"""The model card: one Markdown page on what a model version is, how good, and its story."""

from __future__ import annotations

from collections.abc import Sequence

from loopml.core.schemas import ModelVersion, StageChange


def model_card(version: ModelVersion, history: Sequence[StageChange]) -> str:
    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = [
        f"# {version.project} model v{version.number}",
        "",
        f"- **Stage:** {version.stage.value}",
        f"- **Task:** {version.task.value}, metric `{version.metric}`",
        f"- **Score:** {num(version.score)} cross-validated, {num(version.test_score)} on the "
        "frozen test split",
        "- **Against the baselines:** "
        + ("beats them" if version.beats_baselines else "does not beat them")
        + " by more than the fold-to-fold noise",
        f"- **Trained on:** {version.dataset or 'unknown'} (training {version.training or '-'})",
        f"- **Artifact:** `{version.artifact}`, {version.size_bytes:,} bytes, content hash "
        f"`{version.content_hash}`",
        f"- **Prediction time:** {num(version.predict_seconds_per_1000)} s per 1,000 rows",
    ]
    if version.classes:
        lines.append(f"- **Classes:** {', '.join(map(str, version.classes))}")
    lines += ["", "## Inputs", "", "| column | kind |", "|---|---|"]
    lines += [f"| {_cell(c['name'])} | {c['kind']} |" for c in version.inputs]
    if version.gates:
        lines += ["", "## Quality gates", "", "| gate | result | detail |", "|---|---|---|"]
        lines += [
            f"| {g.gate} | {'passed' if g.passed else '**failed**'} | {_cell(g.message)} |"
            for g in version.gates
        ]
    lines += ["", "## History", "", "| when | stage | by | why |", "|---|---|---|---|"]
    lines += [
        f"| {c.at:%Y-%m-%d %H:%M} | {c.from_stage.value if c.from_stage else '-'} → "
        f"{c.to_stage.value} | {_cell(c.actor)} | {_cell(c.reason)} |"
        for c in history
    ]
    return "\n".join(lines) + "\n"


def _cell(text: object) -> str:
    """Free text as one Markdown table cell: its lines joined, its pipes escaped."""
    return " ".join(str(text).splitlines()).replace("|", "\\|")
