"""Run the AutoML benchmark: one JSON line per (system, task, budget, seed), resumable.

    .venv/bin/python -m benchmarks.automl.run --budgets 30 120 --seeds 0 1 2 \\
        --systems loopml lightgbm_default flaml autogluon

Runs already in ``--out`` are skipped, so an interrupted run picks up where it stopped.
Runs go one at a time: each system gets every core it was given (``--n-jobs``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from benchmarks.automl import datasets, systems

DEFAULT_OUT = Path(__file__).with_name("results.jsonl")


def _key(record: dict[str, Any]) -> tuple[str, str, float, int]:
    return (record["system"], record["task"], float(record["budget"]), int(record["seed"]))


def done_keys(path: Path, retry_failed: bool) -> set[tuple[str, str, float, int]]:
    """Runs already in ``path`` (the failed ones too, unless ``retry_failed``)."""
    keys: set[tuple[str, str, float, int]] = set()
    if not path.exists():
        return keys
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if retry_failed and record.get("error"):
            keys.discard(_key(record))
        else:
            keys.add(_key(record))
    return keys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[30.0, 120.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--systems", nargs="+", choices=systems.SYSTEMS, default=list(systems.SYSTEMS)
    )
    parser.add_argument(
        "--tasks", nargs="+", choices=sorted(datasets.TASKS), default=list(datasets.TASKS)
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--n-jobs", type=int, default=2, help="threads for each system")
    parser.add_argument(
        "--autogluon-python",
        help="Python of AutoGluon's venv (default: $LOOPML_BENCH_AUTOGLUON_PYTHON, else this one)",
    )
    parser.add_argument("--retry-failed", action="store_true", help="run again what failed before")
    args = parser.parse_args(argv)
    if args.autogluon_python:
        os.environ["LOOPML_BENCH_AUTOGLUON_PYTHON"] = args.autogluon_python

    problems = [why for system in args.systems if (why := systems.missing(system))]
    if problems:
        raise SystemExit("\n".join(problems) + "\n(see benchmarks/automl/README.md)")

    done = done_keys(args.out, args.retry_failed)
    jobs = [
        (system, task, budget, seed)
        for budget in args.budgets
        for seed in args.seeds
        for task in args.tasks
        for system in args.systems
        if (system, task, float(budget), seed) not in done
    ]
    machine = f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores"
    console = Console()
    budgets = sum(budget for system, _, budget, _ in jobs if system != "lightgbm_default")
    console.print(
        f"{len(jobs)} runs to go ({len(done)} already in {args.out}); "
        f"their time budgets add up to {budgets / 60:.0f} min"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    baselines: dict[tuple[str, int], float] = {}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("starting", total=len(jobs))
        for system, task, budget, seed in jobs:
            progress.update(bar, description=f"{system} · {task} · {budget:g} s · seed {seed}")
            if (task, seed) not in baselines:
                baselines[task, seed] = datasets.baseline(task, seed)
            result = systems.run(system, task, budget, seed, n_jobs=args.n_jobs)
            spec = datasets.TASKS[task]
            record = {
                "system": system,
                "task": task,
                "kind": spec.kind,
                "metric": spec.metric,
                "budget": budget,
                "seed": seed,
                "n_jobs": args.n_jobs,
                "baseline": baselines[task, seed],
                **result,
                "machine": machine,
                "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            }
            with args.out.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            if record["error"]:
                outcome = f"[red]failed[/red] {record['error'][:120]}"
            else:
                outcome = (
                    f"{spec.metric} {record['score']:.4f} (baseline {record['baseline']:.4f}), "
                    f"fit {record['fit_seconds']:.1f} s, "
                    f"predict {record['predict_seconds_per_1000']:.3f} s/1k"
                )
            progress.console.print(f"{system} {task} {budget:g}s seed {seed}: {outcome}")
            progress.advance(bar)


if __name__ == "__main__":
    main()
