"""Summarise ``results.jsonl`` as Markdown: scores per task, then rank and normalised score.

    .venv/bin/python -m benchmarks.automl.summarise [benchmarks/automl/results.jsonl]

As in the AutoML Benchmark, a failed run is scored as the constant predictor (class priors,
or the training mean). Per task, seed and budget: systems are ranked (1 = best, ties share
the mean rank), and normalised score = (score - baseline) / (best - baseline), so 0 is the
constant predictor and 1 the best system of the field; below 0 is worse than a constant.
Only (task, seed) pairs that every listed system has run are compared.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.automl.datasets import HIGHER_IS_BETTER, TASKS

KEY = ["system", "task", "budget", "seed"]


def markdown(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def load(path: Path) -> pd.DataFrame:
    """Every record, the last one winning where a run was repeated."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records:
        raise SystemExit(f"{path} holds no results")
    frame = pd.DataFrame(records).drop_duplicates(KEY, keep="last")
    frame["failed"] = frame["error"].notna() | frame["score"].isna()
    # The AutoML Benchmark's imputation: a failure scores as the constant predictor.
    frame["imputed"] = frame["score"].where(~frame["failed"], frame["baseline"])
    return frame


def compare(frame: pd.DataFrame, order: list[str]) -> tuple[pd.DataFrame, int]:
    """Rank and normalised score per run, over the (task, seed, budget) all systems ran."""
    frame = frame[frame["system"].isin(order)]
    counts = frame.groupby(["task", "seed", "budget"])["system"].transform("nunique")
    complete = frame[counts == len(order)].copy()
    skipped = frame[counts != len(order)].groupby(["task", "seed", "budget"]).ngroups
    sign = complete["metric"].map(lambda m: 1.0 if HIGHER_IS_BETTER[m] else -1.0)
    complete["signed"] = sign * complete["imputed"]
    groups = complete.groupby(["task", "seed", "budget"])
    complete["rank"] = groups["signed"].rank(ascending=False, method="average")
    best = groups["signed"].transform("max") * sign
    gap = best - complete["baseline"]
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = (complete["imputed"] - complete["baseline"]) / gap
    complete["normalised"] = normalised.where(gap.abs() > 1e-12, 0.0)
    return complete, skipped


def _cell(scores: pd.DataFrame, best: float | None) -> str:
    ok = scores.loc[~scores["failed"], "score"]
    n_failed = int(scores["failed"].sum())
    if ok.empty:
        return f"failed ({n_failed})"
    text = f"{ok.mean():.4f}"
    if best is not None and np.isclose(ok.mean(), best):
        text = f"**{text}**"
    return text + (f" ({n_failed} failed)" if n_failed else "")


def task_table(complete: pd.DataFrame, budget: float, order: list[str]) -> str:
    rows = []
    part = complete[complete["budget"] == budget]
    for name in [t for t in TASKS if t in set(part["task"])]:
        runs = part[part["task"] == name]
        metric = TASKS[name].metric
        means = {s: runs.loc[(runs["system"] == s) & ~runs["failed"], "score"] for s in order}
        finite = [m.mean() for m in means.values() if not m.empty]
        best = (max if HIGHER_IS_BETTER[metric] else min)(finite) if finite else None
        baseline = runs.drop_duplicates("seed")["baseline"].mean()
        rows.append(
            [name, TASKS[name].kind, metric, runs["seed"].nunique(), f"{baseline:.4f}"]
            + [_cell(runs[runs["system"] == s], best) for s in order]
        )
    return markdown(["task", "type", "metric", "seeds", "constant", *order], rows)


def summary_table(complete: pd.DataFrame, order: list[str]) -> str:
    rows = []
    for budget in sorted(complete["budget"].unique()):
        for system in order:
            runs = complete[(complete["budget"] == budget) & (complete["system"] == system)]
            ok = runs[~runs["failed"]]
            failed_tasks = runs.loc[runs["failed"], "task"].nunique()
            predict = ok["predict_seconds_per_1000"]
            rows.append(
                [
                    f"{budget:g} s",
                    system,
                    f"{runs['rank'].mean():.2f}",
                    f"{runs['normalised'].mean():.3f}",
                    f"{int(runs['failed'].sum())}/{len(runs)} ({failed_tasks} tasks)",
                    f"{ok['fit_seconds'].mean():.1f}" if len(ok) else "-",
                    f"{ok['fit_seconds'].max():.1f}" if len(ok) else "-",
                    f"{predict.mean():.4f}" if len(ok) else "-",
                    f"{predict.max():.4f}" if len(ok) else "-",
                ]
            )
    headers = [
        "budget",
        "system",
        "mean rank",
        "mean normalised score",
        "failed runs",
        "mean fit s",
        "max fit s",
        "mean predict s / 1,000 rows",
        "max predict s / 1,000 rows",
    ]
    return markdown(headers, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "results", type=Path, nargs="?", default=Path(__file__).with_name("results.jsonl")
    )
    parser.add_argument("--systems", nargs="+", help="systems to compare, in column order")
    args = parser.parse_args(argv)
    frame = load(args.results)
    present = list(dict.fromkeys(frame["system"]))
    order = args.systems or sorted(present, key=lambda s: (s != "loopml", present.index(s)))
    complete, skipped = compare(frame, order)
    if complete.empty:
        raise SystemExit("no (task, seed, budget) has been run by every system yet")
    n_tasks, seeds = complete["task"].nunique(), sorted(complete["seed"].unique())
    print(f"{n_tasks} tasks, seeds {', '.join(map(str, seeds))}; systems: {', '.join(order)}.")
    if skipped:
        print(f"({skipped} task/seed/budget combinations left out: not every system ran them.)")
    for budget in sorted(complete["budget"].unique()):
        print(f"\n### Budget {budget:g} s: mean test score over seeds (best in bold)\n")
        print(task_table(complete, budget, order))
    print("\n### Summary\n")
    print(summary_table(complete, order))


if __name__ == "__main__":
    main()
